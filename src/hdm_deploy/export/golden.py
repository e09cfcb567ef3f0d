"""Golden bundles: sample inputs + PyTorch outputs written beside an exported model.

``model.golden.npz`` lets a device with no PyTorch (a Jetson with only TensorRT/ORT) check parity:
``hdm-deploy parity model.engine --reference model.golden.npz``. It is a plain ``.npz`` (no
pickles): ``manifest`` (a JSON string: format, provenance, tolerances, cases) and per case ``i``
the arrays ``input_i`` uint8 [N,H,W,3], ``enhanced_i`` uint8 [N,H,W,3], ``enhanced_float_i``
float32 [N,3,H,W] and ``masks_i`` float32 [N,5,1,Hp/4,Wp/4].

The inputs are real photographs bundled with the package (``assets/golden_*.png``: small copies of
scikit-image's public-domain/CC0 ``rocket``, ``coffee`` and ``chelsea``) at two sizes each —
sizes not divisible by 4 included — and one batch of two.

Reading is torch-free; only :func:`make_golden` needs torch (imported lazily).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._fs import atomic_path
from ..errors import ModelFormatError

FORMAT = "hdm-deploy golden bundle v1"

#: (asset file, description) of the bundled photographs.
PHOTOS = {
    "rocket": (
        "golden_rocket.png",
        "scikit-image data.rocket (NASA, public domain), resized 640×427 → 160×107",
    ),
    "coffee": (
        "golden_coffee.png",
        "scikit-image data.coffee (Rachel Michetti, CC0), resized 600×400 → 150×100",
    ),
    "chelsea": (
        "golden_chelsea.png",
        "scikit-image data.chelsea (Stefan van der Walt, CC0), resized 451×300 → 128×96",
    ),
}
#: second, smaller size of each photograph (W, H), made with cv2.INTER_AREA
SMALL_SIZES = {"rocket": (80, 54), "coffee": (76, 50), "chelsea": (64, 48)}
BATCH_CASE = (("rocket", "chelsea"), (64, 48))

#: Tolerances by export precision (fp32: issue 4's acceptance numbers; fp16: issue 6's).
TOLERANCES = {
    "fp32": {"psnr_min": 40.0, "max_abs": 2e-4, "identical_min": 99.9, "mask_min": 99.9},
    "fp16": {"psnr_min": 45.0, "max_abs": None, "identical_min": None, "mask_min": 100.0},
}


def default_tolerances(precision: str = "fp32") -> dict[str, float | None]:
    return dict(TOLERANCES.get(precision, TOLERANCES["fp32"]))


def golden_path_for(model_path: str | os.PathLike) -> Path:
    """``model.onnx`` → ``model.golden.npz`` (same folder, same stem)."""
    p = Path(model_path)
    return p.with_name(p.stem + ".golden.npz")


def default_golden_for(model_path: str | os.PathLike) -> Path:
    """The golden bundle ``parity`` uses by default: ``STEM.golden.npz`` beside the model, else the one
    the model names — ONNX metadata ``golden`` (kept by ``convert``), or an engine sidecar's copy of it —
    so ``model.plugin.onnx`` and ``model.engine`` find ``model.golden.npz``. Returns the first candidate
    that exists, else ``STEM.golden.npz`` (for the error message)."""
    p = Path(model_path)
    own = golden_path_for(p)
    if own.is_file() or not p.is_file():
        return own
    named = None
    try:
        if p.suffix == ".onnx":
            from . import _graph

            model = _graph.load(p, external_data=False)
            named = {m.key: m.value for m in model.metadata_props}.get("golden")
        elif p.suffix in (".engine", ".plan"):
            from ..engines.sidecar import read_sidecar

            sidecar = read_sidecar(p, required=False)
            named = sidecar.model_metadata.get("golden") if sidecar else None
    except ModelFormatError:
        return own
    if named and (p.parent / Path(named).name).is_file():
        return p.parent / Path(named).name
    return own


def asset_path(name: str) -> Path:
    return Path(str(resources.files("hdm_deploy") / "assets" / name))


def read_photo(key: str) -> np.ndarray:
    """uint8 RGB [H,W,3] of a bundled golden photograph."""
    import cv2

    path = asset_path(PHOTOS[key][0])
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ModelFormatError(f"bundled photograph missing: {path}", "reinstall hdm-deploy")
    return np.ascontiguousarray(bgr[..., ::-1])


def golden_cases() -> list[tuple[str, np.ndarray]]:
    """(name, uint8 [N,H,W,3]) for every golden case."""
    import cv2

    cases = []
    photos = {k: read_photo(k) for k in PHOTOS}
    for key, img in photos.items():
        h, w = img.shape[:2]
        cases.append((f"{key}_{w}x{h}", img[None]))
    for key, size in SMALL_SIZES.items():
        small = cv2.resize(photos[key], size, interpolation=cv2.INTER_AREA)
        cases.append((f"{key}_{size[0]}x{size[1]}", small[None]))
    keys, size = BATCH_CASE
    batch = np.stack([cv2.resize(photos[k], size, interpolation=cv2.INTER_AREA) for k in keys])
    cases.append((f"batch2_{'+'.join(keys)}_{size[0]}x{size[1]}", batch))
    return cases


@dataclass
class GoldenCase:
    name: str
    input: np.ndarray  #: uint8 [N,H,W,3]
    enhanced: np.ndarray  #: uint8 [N,H,W,3]
    enhanced_float: np.ndarray | None  #: float32 [N,3,H,W]
    masks: np.ndarray | None  #: float32 [N,5,1,Hp/4,Wp/4]


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
        if case.masks is not None:
            arrays[f"masks_{i}"] = np.ascontiguousarray(case.masks, dtype=np.float32)
        n, h, w, _ = case.input.shape
        manifest["cases"].append({"name": case.name, "batch": n, "width": w, "height": h})
    arrays["manifest"] = np.array(json.dumps(manifest, indent=1, sort_keys=True))
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.savez_compressed(f, **arrays)
    return Path(path)


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
                        masks=data.get(f"masks_{i}"),
                    )
                )
    except (OSError, ValueError, KeyError) as exc:
        raise ModelFormatError(f"{path} is not a readable golden bundle ({exc})") from exc
    return GoldenBundle(manifest, cases, path)


def make_golden(
    model,
    dcp_impl=None,
    cases: list[tuple[str, np.ndarray]] | None = None,
    *,
    precision: str = "fp32",
    provenance: dict[str, Any] | None = None,
) -> GoldenBundle:
    """Run the PyTorch pipeline (``models.pipeline.enhance`` with the torch DCP masks) on the cases."""
    import torch

    from ..models.pipeline import enhance
    from ..runtime.image_io import pad_to_multiple
    from .dcp_op import default_impl

    impl = dcp_impl or default_impl()
    out = []
    for name, frames in cases if cases is not None else golden_cases():
        padded, _ = pad_to_multiple(frames, 4)
        with torch.inference_mode():
            masks = impl.torch_fn(torch.from_numpy(np.ascontiguousarray(padded)).permute(0, 3, 1, 2))
        pred = enhance(model, frames, masks=masks)
        out.append(GoldenCase(name, frames, pred.image, pred.image_float, pred.masks))
    manifest = {
        "tolerances": default_tolerances(precision),
        "reference": "PyTorch HDM (hdm_deploy.models.pipeline.enhance) with torch DCP masks",
        "dcp": impl.name,
        "torch": torch.__version__,
        "photos": {k: v[1] for k, v in PHOTOS.items()},
        **(provenance or {}),
    }
    return GoldenBundle(manifest, out)
