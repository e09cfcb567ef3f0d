"""DiffHDR inputs and outputs, torch-free: three 8-bit exposures → the 18-channel condition, μ-law.

As published (``datasets/hdr.py``): each LDR is read 8-bit, RGB, /255 (float64); per exposure the
6 channels are [LDR, LDR^2.2 / 2^ev], cast to float32; order [short, medium, long] (medium is the
reference the output aligns to). The image is zero-padded at the bottom/right so the patch grid covers
it exactly ((H−p) and (W−p) multiples of the stride; published: 1000×1500 → 1024×1536). The network
produces the μ-law tonemapped image (μ = 5000) in [0, 1]; clamping and the inverse μ-law give linear HDR.
"""

from __future__ import annotations

import math
import os
import warnings
from pathlib import Path

import cv2
import numpy as np

from hdm_deploy.core.errors import HdmDeployError, InputImageError
from hdm_deploy.families.diffhdr.family import MU

__all__ = [
    "GAMMA",
    "condition",
    "condition_patch",
    "inverse_mu_law",
    "mu_law",
    "padded_size",
    "parse_exposures",
    "read_exposure_file",
    "read_ldr",
]

GAMMA = 2.2


class ExposureWarning(UserWarning):
    pass


def read_ldr(path: str | os.PathLike) -> np.ndarray:
    """An 8-bit image as RGB uint8 ``[H, W, 3]`` (grayscale is repeated; alpha is refused)."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"exposure not found: {path}", "give three existing 8-bit images")
    image = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if image is None:
        raise InputImageError(f"{path} is not a readable image", "give 8-bit PNG/JPEG/TIFF exposures")
    if image.dtype != np.uint8:
        raise InputImageError(
            f"{path} is {image.dtype} ({image.dtype.itemsize * 8}-bit), DiffHDR takes 8-bit exposures",
            "convert it to 8 bits, as the published loader does (cv2.imread default flags)",
        )
    if image.ndim == 2:
        image = np.repeat(image[:, :, None], 3, axis=2)
    if image.shape[2] != 3:
        raise InputImageError(f"{path} has {image.shape[2]} channels", "give RGB exposures without alpha")
    return np.ascontiguousarray(image[:, :, ::-1])


def parse_exposures(text: str) -> tuple[float, float, float]:
    """``"-2,0,2"`` → three exposure values (stops) for short, medium, long."""
    try:
        values = tuple(float(v) for v in text.replace(" ", "").split(",") if v != "")
    except ValueError:
        raise HdmDeployError(
            f"--exposures {text!r} is not a list of numbers", "give three stops, e.g. --exposures -2,0,2"
        ) from None
    if len(values) != 3 or not all(math.isfinite(v) for v in values):
        raise HdmDeployError(
            f"--exposures {text!r} gives {len(values)} values, DiffHDR needs 3",
            "give short,medium,long in stops, e.g. --exposures -2,0,2",
        )
    return values  # type: ignore[return-value]


def read_exposure_file(path: str | os.PathLike) -> tuple[float, float, float]:
    """The published dataset's ``exposure.txt`` read as the published loader reads it: the *first
    character* of each line as an integer (Kalantari's files hold 0, 2, 4 … one per line). A line the
    published loader would read differently (``2.5`` → 2) gives a warning; one it cannot read
    (``-2``) is an error."""
    path = Path(path)
    if not path.is_file():
        raise HdmDeployError(f"exposure file not found: {path}", "give the scene's exposure.txt")
    lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    if len(lines) != 3:
        raise HdmDeployError(
            f"{path} has {len(lines)} exposure lines, DiffHDR needs 3",
            "one stop value per line: short, medium, long",
        )
    values = []
    for line in lines:
        if not line[0].isdigit():
            raise HdmDeployError(
                f"{path}: line {line!r} does not start with a digit (the published loader reads int(line[0]))",
                "give the stops with --exposures instead",
            )
        value = int(line[0])
        try:
            full = float(line.split()[0])
        except ValueError:
            full = value
        if full != value:
            warnings.warn(
                f"{path}: {line.strip()!r} is read as {value} (the published loader takes the first character)",
                ExposureWarning,
                stacklevel=2,
            )
        values.append(float(value))
    return tuple(values)  # type: ignore[return-value]


def padded_size(height: int, width: int, patch: int, stride: int) -> tuple[int, int]:
    """Smallest (H', W') ≥ (H, W) with H' = patch + k·stride (published: 1000×1500 → 1024×1536 at 512/64)."""

    def side(n: int) -> int:
        return patch + max(0, math.ceil((n - patch) / stride)) * stride

    return side(height), side(width)


def condition_tables(exposures: tuple[float, ...]) -> list[tuple[np.ndarray, np.ndarray]]:
    """Per exposure, the (LDR, LDR^2.2/2^ev) float32 lookup tables of :func:`fill_condition`."""
    return [_luts(float(ev)) for ev in exposures]


def fill_condition(
    out: np.ndarray, crops_chw: list[np.ndarray], tables: list[tuple[np.ndarray, np.ndarray]]
) -> None:
    """Write the 18-channel condition of three uint8 ``[3, h, w]`` crops into ``out`` ``[18, h, w]``
    (no temporaries: the sampler fills its patch batch in place)."""
    for e, (crop, (linear, gamma)) in enumerate(zip(crops_chw, tables, strict=True)):
        np.take(linear, crop, out=out[6 * e : 6 * e + 3])
        np.take(gamma, crop, out=out[6 * e + 3 : 6 * e + 6])


def _luts(ev: float) -> tuple[np.ndarray, np.ndarray]:
    """uint8 → (LDR, LDR^2.2/2^ev) as float32, each computed in float64 like the published loader and
    cast once: a table lookup gives the same bits as the per-pixel arithmetic, ~50× faster."""
    x = np.arange(256, dtype=np.float64) / 255.0
    return x.astype(np.float32), (x**GAMMA / 2.0**ev).astype(np.float32)


def condition_patch(ldrs: list[np.ndarray], exposures: tuple[float, ...]) -> np.ndarray:
    """uint8 RGB crops ``[h, w, 3]`` ×3 → float32 ``[18, h, w]`` (float64 arithmetic, as published)."""
    planes = []
    for ldr, ev in zip(ldrs, exposures, strict=True):
        linear, gamma = _luts(float(ev))
        chw = ldr.transpose(2, 0, 1)
        planes += [linear[chw], gamma[chw]]
    return np.ascontiguousarray(np.concatenate(planes, axis=0))


def condition_reference(ldrs: list[np.ndarray], exposures: tuple[float, ...]) -> np.ndarray:
    """The published per-pixel arithmetic (float64, then float32), for tests of :func:`condition_patch`."""
    planes = []
    for ldr, ev in zip(ldrs, exposures, strict=True):
        x = ldr.astype(np.float64) / 255.0
        planes.append(np.concatenate([x, x**GAMMA / 2.0**ev], axis=2).astype(np.float32))
    return np.ascontiguousarray(np.concatenate(planes, axis=2).transpose(2, 0, 1))


def condition(
    ldrs: list[np.ndarray], exposures: tuple[float, ...], size: tuple[int, int] | None = None
) -> np.ndarray:
    """The whole condition ``[18, H', W']``, zero-padded bottom/right to ``size`` (default: unpadded)."""
    cond = condition_patch(ldrs, exposures)
    if size is None:
        return cond
    out = np.zeros((cond.shape[0], *size), np.float32)
    out[:, : cond.shape[1], : cond.shape[2]] = cond
    return out


def mu_law(hdr: np.ndarray, mu: float = MU) -> np.ndarray:
    return np.log1p(mu * hdr) / np.log1p(mu)


def inverse_mu_law(tonemapped: np.ndarray, mu: float = MU) -> np.ndarray:
    """``(exp(x·ln(1+μ)) − 1)/μ`` in float32, as the published ``resume``."""
    x = tonemapped.astype(np.float32)
    return ((np.exp(x * np.float32(np.log(1 + mu))) - 1) / np.float32(mu)).astype(np.float32)
