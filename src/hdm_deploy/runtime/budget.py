"""Memory budgets: a measured memory model picks the whole frame or the tiled path, and the tile size.

``load_runner("model.onnx", max_memory="3G")`` returns a :class:`BudgetRunner`. For each batch it
predicts the peak RSS of the whole-frame graph and of the exact tiled path (:mod:`.tiled`, when
``export --tiled`` wrote its stage graphs) from :class:`MemoryModel` — linear in the frame's pixels
and the tile region's pixels, coefficients measured by ``benchmarks/memory_model.py`` and stored in
``runtime/data/memory_model.json`` — and runs the whole frame when it fits, else the tiled path with
the largest tile that fits. When not even the tiled path fits (its trunk runs on the whole 1/4-res
map), it raises :class:`BudgetError` (exit 2) saying what would fit. Torch-free.

For families whose tiling is not exact (``Family.tiling == "overlap"``), :class:`OverlapRunner` runs
the whole graph on overlapping tiles and blends them: an approximation, whose PSNR against the whole
frame is measured and reported every time it is used (never silently inexact).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.errors import HdmDeployError, ModelFormatError
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner, SessionFromOnnx
from hdm_deploy.runtime.tiled import TiledManifest, TiledRunner, manifest_path_for

__all__ = [
    "BudgetError",
    "BudgetRunner",
    "ExecutionPlan",
    "MemoryModel",
    "OverlapRunner",
    "format_bytes",
    "largest_frames",
    "parse_bytes",
    "plan_execution",
]

#: tile sizes the planner tries, largest first (frame pixels; multiples of every stage's alignment)
TILE_CANDIDATES = (2048, 1536, 1024, 768, 640, 512, 384, 256, 192, 128)
#: headroom on every prediction: the fitted model is within ±12 % of its measured rows
#: (tests/runtime/test_memory_budget.py), so a plan needs predicted · (1 + MARGIN) ≤ budget
MARGIN = 0.15
#: the published network width the coefficients were measured with; other widths scale per pixel
MEASURED_WIDTH = 64
_UNITS = {"": 1, "b": 1, "k": 2**10, "m": 2**20, "g": 2**30, "t": 2**40}


class BudgetError(HdmDeployError):
    """The memory budget cannot hold the frame in any execution (exit 2)."""


def parse_bytes(text: str | int | float) -> int:
    """``"3G"``, ``"3GB"``, ``"3GiB"``, ``"512M"``, ``"2.5g"`` or a plain number of bytes → bytes
    (binary units: G = 2^30)."""
    if isinstance(text, (int, float)):
        return int(text)
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([kKmMgGtT]?)(?:i?[bB])?\s*", str(text))
    if not m:
        raise HdmDeployError(f"cannot read memory size {text!r}", "write it like 3G, 512M or 8GiB")
    value = float(m.group(1)) * _UNITS[m.group(2).lower()]
    if value < 1:
        raise HdmDeployError(f"memory size {text!r} is not positive")
    return int(value)


def format_bytes(n: float) -> str:
    return f"{n / 2**30:.2f} GiB" if n >= 2**30 else f"{n / 2**20:.0f} MiB"


@dataclass(frozen=True)
class MemoryModel:
    """Predicted peak RSS (bytes) — whole: ``base + a·P``; tiled: ``base + c·P + d·R`` — with ``P`` the
    padded frame pixels × batch and ``R`` the largest tile region (tile + halos) × batch."""

    whole_base: float
    whole_per_pixel: float
    tiled_base: float
    tiled_per_frame_pixel: float
    tiled_per_region_pixel: float
    provenance: dict[str, Any] = field(default_factory=dict)
    scale: float = 1.0  #: network width / measured width, applied to the per-pixel terms
    family: str = ""  #: the model family the coefficients were measured for

    @classmethod
    def load(cls, path: str | os.PathLike | None = None) -> MemoryModel:
        if path is None:
            path = Path(str(resources.files("hdm_deploy.runtime") / "data" / "memory_model.json"))
        try:
            data = json.loads(Path(path).read_text())
            return cls(
                whole_base=data["whole"]["base"],
                whole_per_pixel=data["whole"]["per_pixel"],
                tiled_base=data["tiled"]["base"],
                tiled_per_frame_pixel=data["tiled"]["per_frame_pixel"],
                tiled_per_region_pixel=data["tiled"]["per_region_pixel"],
                provenance=data.get("provenance", {}),
                family=data.get("family", ""),
            )
        except (OSError, ValueError, KeyError) as exc:
            raise ModelFormatError(
                f"cannot read the memory model {path}: {exc}", "re-run benchmarks/memory_model.py --write"
            ) from exc

    def for_width(self, width: int | None) -> MemoryModel:
        if not width or width == MEASURED_WIDTH:
            return self
        return MemoryModel(**{**self.__dict__, "scale": width / MEASURED_WIDTH})

    def whole(self, pixels: int) -> float:
        return self.whole_base + self.scale * self.whole_per_pixel * pixels

    def tiled(self, pixels: int, region: int) -> float:
        return self.tiled_base + self.scale * (
            self.tiled_per_frame_pixel * pixels + self.tiled_per_region_pixel * region
        )


@dataclass(frozen=True)
class ExecutionPlan:
    mode: str  #: "whole" | "tiled"
    tile: int | None
    predicted: float  #: bytes
    budget: int | None

    def describe(self) -> str:
        what = "whole frame" if self.mode == "whole" else f"tiled, tile {self.tile}"
        limit = f" of {format_bytes(self.budget)}" if self.budget else ""
        return f"{what} (predicted peak {format_bytes(self.predicted)}{limit})"


def _padded(n: int, m: int) -> int:
    return -(-n // m) * m


def _region(tile: int, h: int, w: int, grow: tuple[int, int]) -> int:
    return (min(tile, h) + grow[0]) * (min(tile, w) + grow[1])


def plan_execution(
    model: MemoryModel,
    height: int,
    width: int,
    batch: int,
    budget: int | None,
    *,
    tiled: bool,
    grow: tuple[int, int] = (0, 0),
    pad_multiple: int = 4,
    align: int = 4,
    tile: int | None = None,
) -> ExecutionPlan:
    """Whole frame when it fits ``budget``, else the exact tiled path with the largest tile that fits;
    ``tile`` forces the tiled path with that tile. ``grow``: (rows, cols) a tile region adds (halos)."""
    h, w = _padded(height, pad_multiple), _padded(width, pad_multiple)
    pixels = h * w * batch
    if tile is not None:
        return ExecutionPlan("tiled", tile, model.tiled(pixels, _region(tile, h, w, grow) * batch), budget)
    whole = model.whole(pixels)
    if budget is None or whole * (1 + MARGIN) <= budget:
        return ExecutionPlan("whole", None, whole, budget)
    if tiled:
        for t in TILE_CANDIDATES:
            if t % align:
                continue
            predicted = model.tiled(pixels, _region(t, h, w, grow) * batch)
            if predicted * (1 + MARGIN) <= budget:
                return ExecutionPlan("tiled", t, predicted, budget)
    smallest = model.tiled(pixels, _region(TILE_CANDIDATES[-1], h, w, grow) * batch) if tiled else whole
    fits = largest_frames(model, budget, width / height, tiled=tiled, grow=grow, batch=batch)
    fit_text = ", ".join(f"{k} {v[0]}×{v[1]}" for k, v in fits.items() if v) or "nothing"
    raise BudgetError(
        f"--max-memory {format_bytes(budget)} is too small for a {width}×{height} frame"
        + (f" (batch {batch})" if batch > 1 else "")
        + f": the {'tiled path (its whole-frame trunk)' if tiled else 'whole frame'} needs about "
        f"{format_bytes(smallest * (1 + MARGIN))}" + ("" if tiled else "; export --tiled for the tiled path"),
        f"at this aspect ratio {format_bytes(budget)} fits at most: {fit_text}; "
        f"or give --max-memory {math.ceil(smallest * (1 + MARGIN) / 2**30 * 10) / 10:g}G",
    )


def largest_frames(
    model: MemoryModel,
    budget: int,
    aspect: float = 16 / 9,
    *,
    tiled: bool = True,
    grow: tuple[int, int] = (0, 0),
    batch: int = 1,
) -> dict[str, tuple[int, int] | None]:
    """The largest frame (width, height) of aspect ``aspect`` that fits ``budget``: whole and tiled
    (tile 128, the smallest the planner uses)."""

    def search(fits: Callable[[int, int], bool]) -> tuple[int, int] | None:
        lo, hi = 0, 1 << 16  # height
        while lo < hi:
            mid = (lo + hi + 1) // 2
            if fits(round(mid * aspect), mid):
                lo = mid
            else:
                hi = mid - 1
        h = lo // 4 * 4
        w = round(h * aspect) // 4 * 4
        return (w, h) if h >= 4 and w >= 4 else None

    limit = budget / (1 + MARGIN)
    out = {"whole": search(lambda w, h: model.whole(_padded(w, 4) * _padded(h, 4) * batch) <= limit)}
    if tiled:
        t = TILE_CANDIDATES[-1]

        def tiled_fits(w: int, h: int) -> bool:
            hp, wp = _padded(h, 4), _padded(w, 4)
            return model.tiled(hp * wp * batch, _region(t, hp, wp, grow) * batch) <= limit

        out["tiled"] = search(tiled_fits)
    return out


def network_width(meta: dict[str, str]) -> int | None:
    try:
        return int(json.loads(meta.get("network", "{}")).get("width") or 0) or None
    except ValueError:
        return None


class BudgetRunner(Runner):
    """An exported model under a memory budget: the whole-frame graph or the exact tiled path, per
    batch, as :func:`plan_execution` decides (``on_plan`` is told each decision)."""

    backend = "onnxruntime"

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        max_memory: int | str | None = None,
        tile: int | None = None,
        memory_model: MemoryModel | None = None,
        on_plan: Callable[[ExecutionPlan], None] | None = None,
        **session_options: Any,
    ):
        super().__init__(path)
        self.budget = parse_bytes(max_memory) if max_memory is not None else None
        opts = {k: v for k, v in session_options.items() if k in ("threads", "providers")}
        # the settings benchmarks/memory_model.py found lowest for the whole frame (docs/memory.md)
        self.whole = OnnxRuntimeRunner(
            SessionFromOnnx(path, arena=False, mem_pattern=False, **session_options)
        )
        self.min_side = self.whole.min_side
        manifest = manifest_path_for(path)
        self.manifest = TiledManifest.load(manifest) if manifest.exists() else None
        if tile is not None and self.manifest is None:
            raise HdmDeployError(
                f"--tile needs the tiled stage graphs ({manifest.name}) beside {Path(path).name}",
                "export with `hdm-deploy export --tiled`",
            )
        self.tiled = TiledRunner(self.manifest, tile=tile, **opts) if self.manifest and tile else None
        if self.tiled is None and self.manifest is not None:
            self.tiled = TiledRunner(self.manifest, tile=TILE_CANDIDATES[-1], **opts)
        self.forced_tile = tile
        self.model = (memory_model or MemoryModel.load()).for_width(network_width(self.whole.metadata))
        family = self.whole.facts.family
        if self.budget is not None and family and self.model.family and family != self.model.family:
            raise HdmDeployError(
                f"no measured memory model for family {family!r} (the shipped one is {self.model.family!r}'s)",
                "measure one with benchmarks/memory_model.py, or use --tile/--overlap without --max-memory",
            )
        self.on_plan = on_plan
        self.last_plan: ExecutionPlan | None = None

    def grow(self) -> tuple[int, int]:
        if self.manifest is None:
            return (0, 0)
        tiled = [s for s in self.manifest.stages if s.mode == "tiled"]
        rows = max(sum(s.halo[0]) for s in tiled)
        cols = max(sum(s.halo[1]) for s in tiled)
        return rows, cols

    def plan(self, n: int, h: int, w: int) -> ExecutionPlan:
        return plan_execution(
            self.model,
            h,
            w,
            n,
            self.budget,
            tiled=self.tiled is not None,
            grow=self.grow(),
            align=self.manifest.align if self.manifest else 4,
            tile=self.forced_tile,
        )

    def validate(self, frames: Any) -> np.ndarray:
        frames = self.whole.validate(frames)
        self.last_plan = self.plan(*frames.shape[:3])  # BudgetError before any work
        return frames

    def _run(self, frames: np.ndarray) -> Prediction:
        plan = self.last_plan or self.plan(*frames.shape[:3])
        if self.on_plan:
            self.on_plan(plan)
        if plan.mode == "whole":
            return self.whole.run(frames)
        assert self.tiled is not None and plan.tile is not None
        self.tiled.tile = self.tiled.check_tile(plan.tile)
        return self.tiled.run(frames)

    def describe(self) -> dict[str, Any]:
        info = self.whole.describe()
        info.update(
            backend="onnxruntime (memory budget)" if self.budget else "onnxruntime (tiled)",
            max_memory=format_bytes(self.budget) if self.budget else None,
            tiled_path=str(self.manifest.path) if self.manifest else None,
            plan=self.last_plan.describe() if self.last_plan else None,
        )
        return info

    def close(self) -> None:
        self.whole.close()
        if self.tiled is not None:
            self.tiled.close()


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _ramp(n: int, overlap: int, at_start: bool, at_end: bool) -> np.ndarray:
    """Blend weights along one axis of a tile: linear ramps over the overlap on inner sides."""
    w = np.ones(n, dtype=np.float64)
    k = min(overlap, n // 2)
    if k > 0:
        ramp = (np.arange(k) + 0.5) / k
        if not at_start:
            w[:k] = ramp
        if not at_end:
            w[n - k :] = ramp[::-1]
    return w


class OverlapRunner(Runner):
    """**Approximate** tiling of a whole-frame graph, for families whose networks look at the whole
    image (``Family.tiling == "overlap"``): the graph runs on ``tile``-sized tiles overlapping by
    ``overlap`` pixels, blended with linear ramps. Extra outputs (e.g. masks) are per-tile and are not
    returned. Every call measures PSNR against the whole frame — on the frame itself when it has at
    most ``reference_pixels`` pixels, else on its central crop of that size (tiled the same way) — and
    stores it in :attr:`last_psnr` / reports it through ``report`` (the CLI prints it)."""

    backend = "onnxruntime (overlap tiles, approximate)"

    def __init__(
        self,
        inner: Runner,
        *,
        tile: int = 512,
        overlap: int = 64,
        multiple: int = 4,
        reference_pixels: int = 1024 * 1024,
        report: Callable[[str], None] | None = None,
    ):
        super().__init__(inner.model_path)
        if tile <= 2 * overlap or tile % multiple or overlap % multiple:
            raise HdmDeployError(
                f"overlap tiling needs tile > 2·overlap and both multiples of {multiple} (got {tile}, {overlap})",
                "e.g. --tile 512 --overlap 64",
            )
        self.inner, self.tile, self.overlap, self.multiple = inner, tile, overlap, multiple
        self.min_side = inner.min_side
        self.reference_pixels = reference_pixels
        self.report = report
        self.last_psnr: float | None = None
        self.last_reference: str = ""

    def validate(self, frames: Any) -> np.ndarray:
        return self.inner.validate(frames)

    def tiled(self, frames: np.ndarray) -> np.ndarray:
        n, h, w, _ = frames.shape
        step = self.tile - self.overlap
        acc = np.zeros((n, h, w, 3), dtype=np.float64)
        wsum = np.zeros((h, w), dtype=np.float64)
        ys = list(range(0, max(h - self.tile, 0) + 1, step))
        xs = list(range(0, max(w - self.tile, 0) + 1, step))
        if ys[-1] + self.tile < h:
            ys.append(h - self.tile)
        if xs[-1] + self.tile < w:
            xs.append(w - self.tile)
        for y in ys:
            for x in xs:
                y1, x1 = min(y + self.tile, h), min(x + self.tile, w)
                out = self.inner.run(np.ascontiguousarray(frames[:, y:y1, x:x1]))
                wy = _ramp(y1 - y, self.overlap, y == 0, y1 == h)
                wx = _ramp(x1 - x, self.overlap, x == 0, x1 == w)
                weight = wy[:, None] * wx[None, :]
                acc[:, y:y1, x:x1] += out.image.astype(np.float64) * weight[None, :, :, None]
                wsum[y:y1, x:x1] += weight
        return np.clip(np.rint(acc / wsum[None, :, :, None]), 0, 255).astype(np.uint8)

    def _run(self, frames: np.ndarray) -> Prediction:
        image = self.tiled(frames)
        h, w = frames.shape[1:3]
        if h * w <= self.reference_pixels:
            ref, got, where = self.inner.run(frames).image, image, f"the whole {w}×{h} frame"
        else:
            side = int(math.sqrt(self.reference_pixels))
            ch, cw = min(h, side), min(w, side)
            y, x = (h - ch) // 2, (w - cw) // 2
            crop = np.ascontiguousarray(frames[:, y : y + ch, x : x + cw])
            ref, got = self.inner.run(crop).image, self.tiled(crop)
            where = f"a central {cw}×{ch} crop (the whole frame exceeds the reference size)"
        self.last_psnr = psnr(ref, got)
        self.last_reference = where
        if self.report:
            self.report(
                f"approximate overlap tiling (tile {self.tile}, overlap {self.overlap}): "
                f"PSNR {self.last_psnr:.2f} dB vs whole-frame inference on {where}"
            )
        return Prediction(image=image, image_float=None, extras={})

    def describe(self) -> dict[str, Any]:
        return {
            **self.inner.describe(),
            "backend": self.backend,
            "tile": self.tile,
            "overlap": self.overlap,
            "psnr_vs_whole_db": self.last_psnr,
        }

    def close(self) -> None:
        self.inner.close()
