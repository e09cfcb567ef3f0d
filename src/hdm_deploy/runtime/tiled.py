"""The exact memory-bounded path: stage graphs, whole-frame stages and halo tiles (torch-free).

``export --tiled`` writes, beside ``model.onnx``, one ONNX graph per stage (``model.<stage>.onnx``) and
a manifest ``model.tiled.json`` (see :mod:`hdm_deploy.export.tiled`): for each stage its mode
(``whole`` or ``tiled``), its input and output tensors with their grid scale relative to the padded
frame and their (row, column) axes, and for tiled stages the halo computed from the graph's layers
(:mod:`hdm_deploy.graph.receptive`). :class:`TiledRunner` runs the stages in order:

* the frame is reflect-padded to the family's multiple **once**, as the whole-frame graph does;
* a ``whole`` stage runs on the whole (padded) tensors;
* a ``tiled`` stage runs per output tile ``[y0, y1) × [x0, x1)`` (frame pixels, multiples of the
  stage's alignment) on the input region grown by the halo on each side and clipped to the frame —
  at the true frame border the graph's own padding is then exactly the whole model's, elsewhere the
  halo comes from the neighbours — and keeps the outputs' ``[y0, y1) × [x0, x1)`` part.

Nothing here knows a family: tensor names, scales and halos come from the manifest.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.contracts import OUTPUT_NAME
from hdm_deploy.core.errors import InputImageError, ModelFormatError, environment_problem, first_line
from hdm_deploy.core.runner import Prediction, Runner, check_max_pixels, pad_to_multiple
from hdm_deploy.runtime.onnxruntime_runner import CPU, onnxruntime_module

__all__ = [
    "MANIFEST_FORMAT",
    "StageSpec",
    "TiledManifest",
    "TiledRunner",
    "manifest_path_for",
    "ort_session",
    "stage_path_for",
]

MANIFEST_FORMAT = "hdm-deploy.tiled/1"
DEFAULT_TILE = 512


def manifest_path_for(whole: str | os.PathLike) -> Path:
    """``model.onnx`` → ``model.tiled.json``."""
    p = Path(whole)
    return p.with_name(f"{p.stem}.tiled.json")


def stage_path_for(whole: str | os.PathLike, stage: str) -> Path:
    """``model.onnx`` → ``model.<stage>.onnx``."""
    p = Path(whole)
    return p.with_name(f"{p.stem}.{stage}{p.suffix or '.onnx'}")


@dataclass(frozen=True)
class TensorSpec:
    scale: float
    axes: tuple[int, int]


@dataclass(frozen=True)
class StageSpec:
    name: str
    mode: str  #: "whole" | "tiled"
    file: str
    inputs: dict[str, TensorSpec]
    outputs: dict[str, TensorSpec]
    #: tiled stages: ((before, after) rows, (before, after) columns) in frame pixels, aligned
    halo: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    #: exact (unrounded) halos from the receptive field walk, for reports and tests
    halo_exact: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))
    align: int = 1
    #: deformable stages: the offsets tensor and its row/column channels ([first, step]); each tile's
    #: halo grows by the largest displacement inside it (:meth:`TiledRunner.tile_halo`)
    displacement: dict[str, Any] | None = None


@dataclass
class TiledManifest:
    path: Path
    family: str
    pad_multiple: int
    min_side: int
    max_pixels: int
    outputs: list[str]
    stages: list[StageSpec]
    whole: str
    raw: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, path: str | os.PathLike) -> TiledManifest:
        path = Path(path)
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelFormatError(
                f"cannot read the tiled manifest {path}: {first_line(exc)}",
                "re-export with `hdm-deploy export --tiled`",
            ) from exc
        if data.get("format") != MANIFEST_FORMAT:
            raise ModelFormatError(
                f"{path} is not an hdm-deploy tiled manifest ({MANIFEST_FORMAT})",
                "re-export with `hdm-deploy export --tiled`",
            )

        def tensors(d: dict) -> dict[str, TensorSpec]:
            return {k: TensorSpec(float(v["scale"]), tuple(v["axes"])) for k, v in d.items()}

        stages = []
        for s in data["stages"]:
            halo = s.get("halo") or {}

            def pair(axis: str, key: str, halo=halo) -> tuple[int, int]:
                h = halo.get(axis) or {}
                return int(h.get(f"before{key}", 0)), int(h.get(f"after{key}", 0))

            stages.append(
                StageSpec(
                    name=s["name"],
                    mode=s["mode"],
                    file=s["file"],
                    inputs=tensors(s["inputs"]),
                    outputs=tensors(s["outputs"]),
                    halo=(pair("rows", "_aligned"), pair("cols", "_aligned")),
                    halo_exact=(pair("rows", ""), pair("cols", "")),
                    align=int(s.get("align", 1)),
                    displacement=s.get("displacement"),
                )
            )
        return cls(
            path=path,
            family=data.get("family", ""),
            pad_multiple=int(data.get("pad_multiple", 1)),
            min_side=int(data.get("min_side", 1)),
            max_pixels=int(data.get("max_pixels", 0) or 0),
            outputs=list(data.get("outputs", [OUTPUT_NAME])),
            stages=stages,
            whole=data.get("whole", ""),
            raw=data,
        )

    def stage_file(self, stage: StageSpec) -> Path:
        return self.path.parent / stage.file

    @property
    def align(self) -> int:
        return int(np.lcm.reduce([s.align for s in self.stages] + [self.pad_multiple]))


def ort_session(
    source: str | os.PathLike | bytes,
    *,
    providers: list[str] | None = None,
    threads: int | None = None,
    arena: bool = False,
    mem_pattern: bool = False,
):
    """An ONNX Runtime session with the memory settings the tiled path uses (both off by default:
    benchmarks/memory_model.py measures that they lower the peak)."""
    ort = onnxruntime_module()
    options = ort.SessionOptions()
    options.enable_cpu_mem_arena = bool(arena)
    options.enable_mem_pattern = bool(mem_pattern)
    if threads:
        options.intra_op_num_threads = int(threads)
    options.log_severity_level = 3
    src = source if isinstance(source, bytes) else str(source)
    try:
        return ort.InferenceSession(src, sess_options=options, providers=providers or [CPU])
    except Exception as exc:
        raise ModelFormatError(
            f"ONNX Runtime cannot load {source if not isinstance(source, bytes) else 'a stage graph'}: "
            f"{first_line(exc)}",
            "re-export with `hdm-deploy export --tiled`",
        ) from exc


#: a stage executor: (stage, {input name: array}) → {output name: array}
StageRun = Callable[[StageSpec, dict[str, np.ndarray]], dict[str, np.ndarray]]


def _slicer(ndim: int, axes: tuple[int, int], rows: tuple[int, int], cols: tuple[int, int]) -> tuple:
    index = [slice(None)] * ndim
    index[axes[0]] = slice(*rows)
    index[axes[1]] = slice(*cols)
    return tuple(index)


def _scaled(v: int, scale: float, what: str) -> int:
    x = v * scale
    if abs(x - round(x)) > 1e-9:
        raise ModelFormatError(f"{what}: position {v} is not on the grid of scale {scale}")
    return round(x)


def tile_starts(size: int, tile: int) -> list[tuple[int, int]]:
    """[y0, y1) tiles covering ``[0, size)`` (the last one shorter when ``tile`` does not divide it)."""
    return [(y, min(y + tile, size)) for y in range(0, size, tile)]


class TiledRunner(Runner):
    """The stage graphs of a tiled export in ONNX Runtime (``stage_run`` swaps the backend:
    TensorRT engines of the stages plug in through the same callable)."""

    backend = "onnxruntime-tiled"

    def __init__(
        self,
        manifest: str | os.PathLike | TiledManifest,
        *,
        tile: int = DEFAULT_TILE,
        providers: list[str] | None = None,
        threads: int | None = None,
        arena: bool = False,
        mem_pattern: bool = False,
        halo_override: dict[str, tuple[tuple[int, int], tuple[int, int]]] | None = None,
        stage_run: StageRun | None = None,
    ):
        self.manifest = manifest if isinstance(manifest, TiledManifest) else TiledManifest.load(manifest)
        super().__init__(self.manifest.path)
        self.min_side = self.manifest.min_side
        self.tile = self.check_tile(tile)
        self.halo_override = dict(halo_override or {})
        self._sessions: dict[str, Any] = {}
        self._session_options = {
            "providers": providers,
            "threads": threads,
            "arena": arena,
            "mem_pattern": mem_pattern,
        }
        self._stage_run = stage_run or self.run_stage
        self.tiles_run = 0
        if stage_run is None:
            for stage in self.manifest.stages:  # load all up front: a broken file fails here
                self._session(stage)
        self._last_use = self._plan_lifetimes()

    def check_tile(self, tile: int) -> int:
        align = self.manifest.align
        if tile < align or tile % align:
            raise InputImageError(
                f"tile size {tile} is not a positive multiple of {align}",
                f"use e.g. --tile {max(align, tile // align * align) or align}",
            )
        return int(tile)

    def _plan_lifetimes(self) -> dict[str, int]:
        last: dict[str, int] = {}
        for i, stage in enumerate(self.manifest.stages):
            for name in stage.inputs:
                last[name] = i
        for name in self.manifest.outputs:
            last[name] = len(self.manifest.stages)
        return last

    def _session(self, stage: StageSpec):
        if stage.name not in self._sessions:
            path = self.manifest.stage_file(stage)
            if not path.exists():
                raise ModelFormatError(
                    f"stage graph {path} of {self.manifest.path.name} is missing",
                    "re-export with `hdm-deploy export --tiled`",
                )
            self._sessions[stage.name] = ort_session(path, **self._session_options)
        return self._sessions[stage.name]

    def run_stage(self, stage: StageSpec, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        session = self._session(stage)
        names = [o.name for o in session.get_outputs()]
        return dict(zip(names, session.run(names, feeds), strict=True))

    def validate(self, frames: Any) -> np.ndarray:
        frames = super().validate(frames)
        check_max_pixels(frames, self.manifest.max_pixels, pad_multiple=self.manifest.pad_multiple)
        return frames

    def halo(self, stage: StageSpec) -> tuple[tuple[int, int], tuple[int, int]]:
        return self.halo_override.get(stage.name, stage.halo)

    def _run(self, frames: np.ndarray) -> Prediction:
        padded, (h, w) = pad_to_multiple(frames, self.manifest.pad_multiple)
        H, W = padded.shape[1:3]
        tensors: dict[str, np.ndarray] = {"image": padded}
        self.tiles_run = 0
        for i, stage in enumerate(self.manifest.stages):
            try:
                if stage.mode == "whole":
                    outs = self._stage_run(stage, {n: tensors[n] for n in stage.inputs})
                else:
                    outs = self.run_tiled_stage(stage, tensors, H, W)
            except Exception as exc:
                problem = environment_problem(exc, f"stage {stage.name} on a {list(frames.shape)} batch")
                if problem is not None:
                    raise problem from exc
                raise
            tensors.update(outs)
            for name in [n for n in tensors if self._last_use.get(n, -1) <= i]:
                del tensors[name]  # no later stage reads it: free it before the next stage
        enhanced = tensors.pop(OUTPUT_NAME)[:, :h, :w]
        return Prediction(image=np.ascontiguousarray(enhanced), image_float=None, extras=tensors)

    def tile_halo(
        self, stage: StageSpec, tensors: dict[str, np.ndarray], ys: tuple[int, int], xs: tuple[int, int]
    ) -> tuple[int, int, int, int]:
        """(rows before, rows after, cols before, cols after) in frame pixels for the output tile
        ``ys × xs``: the stage's static halo, plus for a deformable stage the displacement of its offsets
        inside the tile. A sample at ``p + d`` (bilinear) reads rows/cols ``⌊p + d⌋`` and ``⌊p + d⌋ + 1``,
        so the tile's reach grows by ``max(0, −⌊min d⌋)`` before and ``max(0, ⌊max d⌋ + 1)`` after (on
        the offsets' grid), rounded up to the stage's alignment: exact for any offsets."""
        (rb, ra), (cb, ca) = self.halo(stage)
        disp = stage.displacement
        if not disp:
            return rb, ra, cb, ca
        name = disp["tensor"]
        spec = stage.inputs[name]
        off = tensors[name]
        s, align = spec.scale, max(1, stage.align)
        region = off[
            _slicer(
                off.ndim,
                spec.axes,
                (round(ys[0] * s), round(ys[1] * s)),
                (round(xs[0] * s), round(xs[1] * s)),
            )
        ]
        ch_axis = 1 if spec.axes[0] != 1 else 3  # NCHW offsets: channels on axis 1
        grow = []
        for key in ("rows", "cols"):
            first, step = disp[key]
            d = np.take(region, np.arange(first, region.shape[ch_axis], step), axis=ch_axis)
            lo, hi = (float(d.min()), float(d.max())) if d.size else (0.0, 0.0)
            if not (np.isfinite(lo) and np.isfinite(hi)):
                raise InputImageError(f"stage {stage.name}: non-finite offsets in {name}")
            before = max(0, -int(np.floor(lo))) / s  # frame pixels
            after = max(0, int(np.floor(hi)) + 1) / s
            grow.append((int(np.ceil(before / align)) * align, int(np.ceil(after / align)) * align))
        (gb, ga), (hb, ha) = grow
        return rb + gb, ra + ga, cb + hb, ca + ha

    def run_tiled_stage(
        self, stage: StageSpec, tensors: dict[str, np.ndarray], H: int, W: int
    ) -> dict[str, np.ndarray]:
        results: dict[str, np.ndarray] = {}
        for y0, y1 in tile_starts(H, self.tile):
            for x0, x1 in tile_starts(W, self.tile):
                rb, ra, cb, ca = self.tile_halo(stage, tensors, (y0, y1), (x0, x1))
                ry = (max(0, y0 - rb), min(H, y1 + ra))
                rx = (max(0, x0 - cb), min(W, x1 + ca))
                feeds = {}
                for name, spec in stage.inputs.items():
                    src = tensors[name]
                    rows = (_scaled(ry[0], spec.scale, name), _scaled(ry[1], spec.scale, name))
                    cols = (_scaled(rx[0], spec.scale, name), _scaled(rx[1], spec.scale, name))
                    feeds[name] = np.ascontiguousarray(src[_slicer(src.ndim, spec.axes, rows, cols)])
                outs = self._stage_run(stage, feeds)
                self.tiles_run += 1
                for name, spec in stage.outputs.items():
                    part = outs[name]
                    if name not in results:
                        shape = list(part.shape)
                        shape[spec.axes[0]] = _scaled(H, spec.scale, name)
                        shape[spec.axes[1]] = _scaled(W, spec.scale, name)
                        results[name] = np.empty(shape, dtype=part.dtype)
                    s = spec.scale
                    keep = _slicer(
                        part.ndim,
                        spec.axes,
                        (round((y0 - ry[0]) * s), round((y1 - ry[0]) * s)),
                        (round((x0 - rx[0]) * s), round((x1 - rx[0]) * s)),
                    )
                    into = _slicer(
                        part.ndim, spec.axes, (round(y0 * s), round(y1 * s)), (round(x0 * s), round(x1 * s))
                    )
                    results[name][into] = part[keep]
                del outs, feeds
        return results

    def describe(self) -> dict[str, Any]:
        return {
            **super().describe(),
            "device": "cpu",
            "family": self.manifest.family,
            "tile": self.tile,
            "stages": [f"{s.name}:{s.mode}" for s in self.manifest.stages],
            "onnxruntime": onnxruntime_module().__version__,
        }

    def close(self) -> None:
        self._sessions.clear()
