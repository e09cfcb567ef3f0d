"""``export --tiled``: the stage graphs of the exact memory-bounded path, beside the whole-frame graph.

Design: one ONNX file per stage (``model.prior.onnx``, ``model.stem.onnx``, ``model.trunk.onnx``,
``model.head.onnx`` for HDM) plus one manifest ``model.tiled.json``, rather than one file holding
several graphs: every stage is then an ordinary single-graph model that ONNX Runtime, Polygraphy,
``trtexec`` and ``hdm-deploy build-engine`` take as it is (one engine per stage, each with its own
optimisation profile), and a Jetson can keep only the engines it uses. The manifest (also stored in
each stage's ``metadata_props`` under ``tiled_manifest``) holds the stage order, each tensor's grid
scale and axes, the halos computed by :func:`hdm_deploy.graph.receptive.stage_halo` from the exported
stage graphs, and the TensorRT profile per stage for a largest frame and tile.

The family supplies the stages (:class:`~hdm_deploy.families.base.TiledStage`, ``Family.tiled_stages``);
each is traced with ``torch.export``, converted with the dynamo exporter, gets the family's local
functions where it uses them, the DeformConv flavour and ``onnx.checker``. Before anything is
published, each stage is loaded in ONNX Runtime and the tiled runner (small tiles, so interior and
border tiles occur) is compared with the whole-frame graph on the golden photographs.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from hdm_deploy import __version__
from hdm_deploy.core.errors import ExportError, ParityError, first_line
from hdm_deploy.core.fs import atomic_write_text, sha256_file
from hdm_deploy.families.base import Family, TiledStage
from hdm_deploy.graph import flavours
from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.graph.receptive import stage_halo
from hdm_deploy.graph.schedule import order_for_ort
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
from hdm_deploy.runtime.tiled import MANIFEST_FORMAT, TiledRunner, manifest_path_for, stage_path_for

__all__ = ["compare_tiled", "export_stage_graphs"]

#: the tile used when verifying on export: small, so interior, edge and corner tiles all occur
VERIFY_TILE = 64


def _convert(stage: TiledStage, hooks: Any, plan: Any) -> onnx.ModelProto:
    names = list(stage.inputs)
    try:
        program = torch.export.export(
            stage.module,
            stage.example,
            dynamic_shapes=stage.dynamic_shapes,
            strict=False,
            prefer_deferred_runtime_asserts_over_guards=True,
        )
    except Exception as exc:
        raise ExportError(
            f"torch.export of stage {stage.name} failed: {first_line(exc)}", "re-run with --debug"
        ) from exc
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,
                opset_version=_graph.OPSET,
                input_names=names,
                output_names=list(stage.outputs),
                custom_translation_table=hooks.translation_table(plan) if stage.uses_functions else None,
                optimize=True,
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(
                f"ONNX conversion of stage {stage.name} failed: {first_line(exc)}", "re-run with --debug"
            ) from exc
    return onnx_program.model_proto


def _halo_entry(stage: TiledStage, proto: onnx.ModelProto) -> dict[str, Any]:
    inputs = {k: v[0] for k, v in stage.inputs.items()}
    outputs = {k: v[0] for k, v in stage.outputs.items()}
    axes = {k: tuple(v[1]) for k, v in (*stage.inputs.items(), *stage.outputs.items())}
    rows, cols = stage_halo(proto, inputs, outputs, axes, deform=stage.displacement is not None)
    entry = {}
    for label, h in (("rows", rows), ("cols", cols)):
        entry[label] = {
            "before": h.before,
            "after": h.after,
            "before_aligned": h.before_aligned,
            "after_aligned": h.after_aligned,
        }
    out: dict[str, Any] = {"halo": entry, "align": rows.align}
    if stage.displacement is not None:
        out["displacement"] = dict(stage.displacement)
    return out


def _profile(stage: dict[str, Any], max_hw: tuple[int, int], tile: int, batch: int) -> dict[str, Any]:
    """TensorRT min/opt/max shapes per input of a stage: whole stages up to the largest frame, tiled
    stages up to the tile plus both halos (``build-engine`` reads these)."""
    shapes = {}
    for name, t in stage["inputs"].items():
        if stage["mode"] == "whole":
            hw = max_hw
        else:
            h = stage["halo"]
            hw = (
                tile + h["rows"]["before_aligned"] + h["rows"]["after_aligned"],
                tile + h["cols"]["before_aligned"] + h["cols"]["after_aligned"],
            )
        s = t["scale"]
        shapes[name] = {
            "max_rows": int(np.ceil(hw[0] * s)),
            "max_cols": int(np.ceil(hw[1] * s)),
            "axes": t["axes"],
            "max_batch": batch,
        }
    return shapes


def export_stage_graphs(
    family: Family,
    hooks: Any,
    model: torch.nn.Module,
    plan: Any,
    whole_output: Path,
    *,
    deform: str,
    max_pixels: int,
    source: dict[str, Any],
    profile_max: tuple[int, int] = (4320, 7680),
    profile_tile: int = 1024,
) -> tuple[dict[str, Any], dict[str, onnx.ModelProto]]:
    """Trace, convert and check every stage; → (manifest, {stage file name: proto}). Nothing written."""
    if family.tiling != "exact" or not family.tiled_stages:
        raise ExportError(
            f"family {family.name!r} does not tile exactly (tiling={family.tiling!r})",
            "export without --tiled; infer --tile-overlap gives an approximate, measured tiling",
        )
    stages: list[TiledStage] = family.resolve("tiled_stages")(model)
    protos: dict[str, onnx.ModelProto] = {}
    entries = []
    with hooks.tracing(plan), torch.no_grad():
        for stage in stages:
            proto = _convert(stage, hooks, plan)
            if stage.uses_functions:
                hooks.finish_graph(proto, plan, "uint8")
            if deform != "onnx":
                proto = flavours.convert_deform(proto, deform, check=False)
            if stage.program_order:
                order_for_ort(proto)
            entry: dict[str, Any] = {
                "name": stage.name,
                "mode": stage.mode,
                "file": stage_path_for(whole_output, stage.name).name,
                "inputs": {k: {"scale": v[0], "axes": list(v[1])} for k, v in stage.inputs.items()},
                "outputs": {k: {"scale": v[0], "axes": list(v[1])} for k, v in stage.outputs.items()},
            }
            if stage.mode == "tiled":
                entry.update(_halo_entry(stage, proto))
            elif stage.mode != "whole":
                raise ExportError(f"stage {stage.name}: unknown mode {stage.mode!r}")
            entries.append(entry)
            protos[entry["file"]] = proto
    for entry in entries:
        entry["tensorrt_profile"] = _profile(entry, profile_max, profile_tile, 1)
    manifest = {
        "format": MANIFEST_FORMAT,
        "family": family.name,
        "whole": whole_output.name,
        "pad_multiple": family.frame.pad_multiple,
        "min_side": family.frame.min_side,
        "max_pixels": int(max_pixels),
        "outputs": ["enhanced", *family.extras],
        "deform": deform,
        "package_version": __version__,
        "checkpoint_sha256": source.get("checkpoint_sha256", ""),
        "stages": entries,
    }
    for entry in entries:
        proto = protos[entry["file"]]
        proto.producer_name = "hdm-deploy"
        proto.producer_version = __version__
        proto.doc_string = f"{family.title}, tiled path stage {entry['name']} ({entry['mode']})."
        _graph.set_metadata(
            proto,
            {
                "family": family.name,
                "tiled_stage": entry["name"],
                "tiled_mode": entry["mode"],
                "deform": deform,
                "tiled_manifest": json.dumps(
                    {k: v for k, v in manifest.items() if k != "stages"} | {"stage": entry}
                ),
            },
        )
        _graph.finalize(proto)
    return manifest, protos


def compare_tiled(whole_runner: Any, tiled_runner: Any, frames: np.ndarray) -> dict[str, Any]:
    """Tiled vs whole-frame on ``frames``: % identical uint8 values, max level difference, masks equal."""
    a, b = whole_runner(frames), tiled_runner(frames)
    diff = np.abs(a.image.astype(np.int16) - b.image.astype(np.int16))
    report = {
        "shape": list(frames.shape),
        "identical_pct": float(100.0 * np.mean(diff == 0)),
        "max_level": int(diff.max()),
        "extras_equal": {k: bool(np.array_equal(v, b.extras.get(k))) for k, v in a.extras.items()},
        "tiles": getattr(tiled_runner, "tiles_run", None),
    }
    report["passed"] = (
        report["identical_pct"] >= 99.99 and report["max_level"] <= 1 and all(report["extras_equal"].values())
    )
    return report


def write_and_verify(
    manifest: dict[str, Any],
    protos: dict[str, onnx.ModelProto],
    whole_output: Path,
    frames_list: list[np.ndarray],
) -> list[dict[str, Any]]:
    """Write the stage graphs and the manifest, then load each stage in ONNX Runtime and compare the
    tiled runner (tile :data:`VERIFY_TILE`) with the whole-frame graph; a miss raises ParityError
    (exit 1) and removes what was written."""
    written = []
    for name, proto in protos.items():
        written.append(_graph.save(proto, whole_output.with_name(name)))
    for entry in manifest["stages"]:
        entry["sha256"] = sha256_file(whole_output.with_name(entry["file"]))
    mpath = manifest_path_for(whole_output)
    atomic_write_text(mpath, json.dumps(manifest, indent=1))
    written.append(mpath)
    reports = []
    try:
        with (
            OnnxRuntimeRunner(whole_output, device="cpu") as whole,
            TiledRunner(mpath, tile=VERIFY_TILE) as tiled,
        ):
            for frames in frames_list:
                reports.append(compare_tiled(whole, tiled, frames))
    except Exception:
        for p in written:
            p.unlink(missing_ok=True)
        raise
    failed = [r for r in reports if not r["passed"]]
    if failed:
        for p in written:
            p.unlink(missing_ok=True)
        r = failed[0]
        raise ParityError(
            f"tiled path misses the whole-frame graph on {r['shape']}: {r['identical_pct']:.4f} % identical, "
            f"max {r['max_level']} levels, extras equal {r['extras_equal']}; stage graphs not written",
            "re-run with --debug and report it",
        )
    return reports
