"""Golden bundles: sample inputs + PyTorch outputs written beside an exported model.

``model.golden.npz`` lets a device with no PyTorch (a Jetson with only TensorRT/ORT) check parity:
``hdm-deploy parity model.engine --reference model.golden.npz``. It is a plain ``.npz`` (no
pickles): ``manifest`` (a JSON string: format, provenance, tolerances, cases, extras) and per case
``i`` the arrays ``input_i`` uint8 [N,H,W,3], ``enhanced_i`` uint8 [N,H,W,3], ``enhanced_float_i``
float32 [N,3,H,W] and, for each of the family's extra outputs ``NAME`` (HDM: ``masks``),
``NAME_i`` (batch-first).

The inputs are the bundled photographs (:mod:`hdm_deploy.core.photos`); a family's
``golden.py`` makes the bundle with PyTorch. Reading and writing here are torch-free.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.errors import ModelFormatError
from hdm_deploy.core.fs import atomic_path

FORMAT = "hdm-deploy golden bundle v1"
#: array-name stems the bundle itself uses (an extra output may not be called this)
_RESERVED = ("input", "enhanced", "enhanced_float", "manifest")

#: Tolerances by export precision (fp32: issue 4's acceptance numbers; fp16: issue 6's).
TOLERANCES = {
    "fp32": {"psnr_min": 40.0, "max_abs": 2e-4, "identical_min": 99.9, "extras_min": 99.9},
    "fp16": {"psnr_min": 45.0, "max_abs": None, "identical_min": None, "extras_min": 100.0},
}


def default_tolerances(precision: str = "fp32") -> dict[str, float | None]:
    return dict(TOLERANCES.get(precision, TOLERANCES["fp32"]))


def golden_path_for(model_path: str | os.PathLike) -> Path:
    """``model.onnx`` → ``model.golden.npz`` (same folder, same stem)."""
    p = Path(model_path)
    return p.with_name(p.stem + ".golden.npz")


@dataclass
class GoldenCase:
    name: str
    input: np.ndarray  #: uint8 [N,H,W,3]
    enhanced: np.ndarray  #: uint8 [N,H,W,3]
    enhanced_float: np.ndarray | None  #: float32 [N,3,H,W]
    extras: dict[str, np.ndarray] = field(default_factory=dict)  #: the family's extra outputs


@dataclass
class GoldenBundle:
    manifest: dict[str, Any]
    cases: list[GoldenCase] = field(default_factory=list)
    path: Path | None = None

    @property
    def tolerances(self) -> dict[str, float | None]:
        return dict(self.manifest.get("tolerances") or default_tolerances())


def write_golden(path: str | os.PathLike, bundle: GoldenBundle) -> Path:
    arrays: dict[str, np.ndarray] = {}
    manifest = dict(bundle.manifest)
    manifest["format"] = FORMAT
    manifest["cases"] = []
    for i, case in enumerate(bundle.cases):
        arrays[f"input_{i}"] = np.ascontiguousarray(case.input, dtype=np.uint8)
        arrays[f"enhanced_{i}"] = np.ascontiguousarray(case.enhanced, dtype=np.uint8)
        if case.enhanced_float is not None:
            arrays[f"enhanced_float_{i}"] = np.ascontiguousarray(case.enhanced_float, dtype=np.float32)
        for name, value in case.extras.items():
            if name in _RESERVED:
                raise ModelFormatError(f"extra output name {name!r} clashes with the bundle's own arrays")
            arrays[f"{name}_{i}"] = np.ascontiguousarray(value)
        n, h, w, _ = case.input.shape
        manifest["cases"].append(
            {"name": case.name, "batch": n, "width": w, "height": h, "extras": sorted(case.extras)}
        )
    arrays["manifest"] = np.array(json.dumps(manifest, indent=1, sort_keys=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


def _extras_of(data, i: int, names: list[str] | None) -> dict[str, np.ndarray]:
    """Case ``i``'s extra outputs: those the manifest lists, or (bundles written before the manifest
    listed them) every ``NAME_i`` array that is not one of the bundle's own."""
    if names is None:
        suffix = f"_{i}"
        names = [
            k[: -len(suffix)] for k in data.files if k.endswith(suffix) and k[: -len(suffix)] not in _RESERVED
        ]
    return {n: data[f"{n}_{i}"] for n in names if f"{n}_{i}" in data.files}


def load_golden(path: str | os.PathLike) -> GoldenBundle:
    """Read a bundle written by :func:`write_golden` (no pickles, no torch)."""
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(
            f"golden bundle not found: {path}", "export writes it beside the model (NAME.golden.npz)"
        )
    try:
        with np.load(path, allow_pickle=False) as data:
            manifest = json.loads(str(data["manifest"][()]))
            if manifest.get("format") != FORMAT:
                raise ModelFormatError(f"{path}: unknown golden format {manifest.get('format')!r}")
            cases = []
            for i, meta in enumerate(manifest["cases"]):
                cases.append(
                    GoldenCase(
                        name=meta["name"],
                        input=data[f"input_{i}"],
                        enhanced=data[f"enhanced_{i}"],
                        enhanced_float=data.get(f"enhanced_float_{i}"),
                        extras=_extras_of(data, i, meta.get("extras")),
                    )
                )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"{path} is not a readable golden bundle ({exc})") from exc
    return GoldenBundle(manifest, cases, path)
