"""Torch-free check of a DiffHDR golden bundle: the sampler over ONNX Runtime vs the stored PyTorch output.

The bundle (``NAME.golden.npz``, written by ``export``) holds three uint8 exposures, their stops, the
noise x_T on the padded grid, (patch, stride, steps) and the published procedure's clamped tonemapped
output from PyTorch. PSNR is measured on that tonemapped output (the domain the network generates).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.errors import ModelFormatError, ParityError
from hdm_deploy.families.diffhdr.family import CONDITION_GRAPH_KEY
from hdm_deploy.families.diffhdr.sampler import OrtGraphs, sample
from hdm_deploy.graph import onnx_io

__all__ = ["check_artifact", "check_golden", "condition_graph_of", "load_golden", "psnr"]

GOLDEN_KEYS = ("ldr_short", "ldr_medium", "ldr_long", "exposures", "noise", "expected", "grid")


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(peak**2 / mse)


def condition_graph_of(unet_path: str | os.PathLike) -> Path:
    """The AHDR graph named in the UNet graph's metadata (beside it)."""
    unet_path = Path(unet_path)
    meta = onnx_io.metadata(onnx_io.load(unet_path, external_data=False))
    if meta.get("family") != "diffhdr" or not meta.get(CONDITION_GRAPH_KEY):
        raise ModelFormatError(
            f"{unet_path} is not a DiffHDR UNet graph (no {CONDITION_GRAPH_KEY} in its metadata)",
            "export one with `hdm-deploy export Hdr_ddpm….pth.tar -o diffhdr.onnx`",
        )
    cond = unet_path.with_name(meta[CONDITION_GRAPH_KEY])
    if not cond.is_file():
        raise ModelFormatError(
            f"the condition graph {cond} is missing", "keep NAME.cond.onnx beside NAME.onnx"
        )
    return cond


def load_golden(path: str | os.PathLike) -> dict[str, np.ndarray]:
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(
            f"golden bundle not found: {path}", "export writes NAME.golden.npz beside NAME.onnx"
        )
    with np.load(path, allow_pickle=False) as data:
        missing = [k for k in GOLDEN_KEYS if k not in data]
        if missing:
            raise ModelFormatError(f"{path} is not a DiffHDR golden bundle (no {', '.join(missing)})")
        return {k: data[k] for k in data.files}


def check_golden(
    unet_path: str | os.PathLike,
    golden: dict[str, np.ndarray] | str | os.PathLike,
    *,
    condition_path: str | os.PathLike | None = None,
    threads: int = 0,
    providers: list[str] | None = None,
) -> dict[str, Any]:
    """Run the golden case through the graphs; returns PSNR (dB) and max |Δ| on the tonemapped output."""
    case = golden if isinstance(golden, dict) else load_golden(golden)
    cond_path = condition_path or condition_graph_of(unet_path)
    graphs = OrtGraphs(unet_path, cond_path, providers=providers, threads=threads)
    patch, stride, steps = (int(v) for v in case["grid"])
    ldrs = [case["ldr_short"], case["ldr_medium"], case["ldr_long"]]
    x0, stats = sample(
        ldrs,
        tuple(float(v) for v in case["exposures"]),
        case["noise"],
        graphs.feature,
        graphs.eps,
        steps=steps,
        patch=patch,
        stride=stride,
    )
    out = np.clip(x0, 0, 1)
    expected = case["expected"]
    raw = case.get("expected_raw")
    extra = {}
    if raw is not None:  # the unclamped x̂0: meaningful where a random-weight net saturates the clamp
        peak = float(raw.max() - raw.min()) or 1.0
        extra = {
            "raw_psnr_db": psnr(x0 - raw.min(), raw - raw.min(), peak),
            "raw_rel_err": float(np.linalg.norm(x0 - raw) / (np.linalg.norm(raw) or 1.0)),
            "unsaturated": float(((raw > 0) & (raw < 1)).mean()),
        }
    return {
        "psnr_db": psnr(out, expected),
        "max_abs": float(np.abs(out - expected).max()),
        **extra,
        "patches": stats.patches,
        "steps": stats.steps,
        "size": f"{ldrs[0].shape[1]}x{ldrs[0].shape[0]}",
    }


def check_artifact(
    model: str | os.PathLike,
    reference: str | os.PathLike | None = None,
    *,
    psnr_min: float | None = None,
    console=None,
) -> dict[str, Any]:
    """``hdm-deploy parity diffhdr.onnx`` / ``hdr-parity``: the golden case (default ``NAME.golden.npz``)
    through the graphs; prints one line; :class:`ParityError` below ``psnr_min`` (default 45 dB for an
    FP32 bundle, 30 dB for FP16) on the clamped tonemapped output."""
    model = Path(model)
    ref = Path(reference) if reference is not None else model.with_name(f"{model.stem}.golden.npz")
    case = load_golden(ref)
    result = check_golden(model, case)
    if psnr_min is None:
        psnr_min = 30.0 if str(case.get("precision", "fp32")) == "fp16" else 45.0
    raw = (
        f"; unclamped x̂0 PSNR {result['raw_psnr_db']:.2f} dB (rel err {result['raw_rel_err']:.1e}, "
        f"{100 * result['unsaturated']:.1f} % unsaturated)"
        if "raw_psnr_db" in result
        else ""
    )
    line = (
        f"DiffHDR golden case {result['size']}, {result['steps']} steps × {result['patches']} patches: "
        f"tonemapped PSNR {result['psnr_db']:.2f} dB (min {psnr_min:g}), max |Δ| {result['max_abs']:.2e}{raw}"
    )
    if console is not None:
        console.print(line, highlight=False, markup=False)
    if result["psnr_db"] < psnr_min:
        raise ParityError(
            f"PSNR {result['psnr_db']:.2f} dB < {psnr_min:g} dB", "the graphs do not reproduce PyTorch"
        )
    return result
