"""What ``hdm-deploy masks`` does: compute the 5 DCP region masks with a chosen implementation and draw them.

The picture shows the ÷4 image (what the masks are computed on) next to the same image tinted by region,
with a legend that gives each region's transmission interval and share of pixels. Small images are
enlarged by an integer factor (nearest neighbour) so that the picture is at least ~640 px wide.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageDraw, ImageFont

from hdm_deploy.core.errors import InputImageError, missing_dependency
from hdm_deploy.core.fs import atomic_path
from hdm_deploy.families.base import resolve
from hdm_deploy.families.hdm.dcp import DCPError, reference
from hdm_deploy.families.hdm.dcp.onnx_function import DEFAULT_MAX_PIXELS, dcp_masks_model

Impl = Literal["reference", "torch", "onnx"]
IMPLS: tuple[str, ...] = ("reference", "torch", "onnx")

#: Region colours (RdYlBu, colour-blind safe): 1 = most transmission (clearest) … 5 = least (densest haze).
COLOURS = ((44, 123, 182), (171, 217, 233), (255, 255, 191), (253, 174, 97), (215, 25, 28))
LABELS = (  # ASCII: Pillow's default font has no ≥ / ≤
    "t >= 0.8   (clearest)",
    "0.6 <= t < 0.8",
    "0.4 <= t < 0.6",
    "0.2 <= t < 0.4",
    "t < 0.2   (densest haze)",
)


@dataclass(frozen=True)
class RegionMasks:
    masks: np.ndarray  #: float32 [5, 1, h, w]
    small: np.ndarray  #: uint8 [h, w, 3], the Lanczos ÷4 image
    impl: str

    @property
    def regions(self) -> np.ndarray:
        return self.masks[:, 0].argmax(axis=0).astype(np.uint8)

    def coverage(self) -> list[float]:
        """Share of pixels in each region (sums to 1)."""
        return [float(v) for v in self.masks[:, 0].mean(axis=(1, 2))]


def compute(rgb: np.ndarray, impl: str = "reference") -> RegionMasks:
    """Region masks of one uint8 RGB image [H, W, 3] with ``impl`` = reference | torch | onnx."""
    if impl not in IMPLS:
        raise DCPError(f"unknown masks implementation {impl!r}", f"use one of {', '.join(IMPLS)}")
    if impl == "reference":
        result = reference.tran_mask(rgb)
        return RegionMasks(result.masks, result.small, impl)
    small = reference.downscale(rgb)  # validates the input too
    batch = np.ascontiguousarray(np.asarray(rgb).transpose(2, 0, 1)[None])
    if impl == "torch":
        try:  # torch is an optional extra: resolved only here, like a family's torch hooks
            dcp_masks = resolve("hdm_deploy.families.hdm.dcp.torch_masks:dcp_masks")
        except ImportError as exc:
            raise missing_dependency("masks --impl torch", exc) from exc

        masks = dcp_masks(batch).numpy()[0]
    else:
        import onnxruntime as ort

        max_pixels = max(DEFAULT_MAX_PIXELS, batch.shape[2] * batch.shape[3])
        session = ort.InferenceSession(
            dcp_masks_model(inline=True, max_pixels=max_pixels).SerializeToString(),
            providers=["CPUExecutionProvider"],
        )
        masks = session.run(None, {"images": batch})[0][0]
    return RegionMasks(np.ascontiguousarray(masks, np.float32), small, impl)


def _font(size: int):

    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed bitmap font
        return ImageFont.load_default()


def overlay(result: RegionMasks, alpha: float = 0.6, min_width: int = 640) -> np.ndarray:
    """uint8 RGB picture: ÷4 image | tinted by region, with a legend below."""

    small = result.small
    regions = result.regions
    h, w = regions.shape
    scale = max(1, -(-min_width // (2 * w + 12)))
    palette = np.array(COLOURS, np.float32)
    tinted = (1 - alpha) * small.astype(np.float32) + alpha * palette[regions]
    big = lambda a: np.repeat(np.repeat(a, scale, axis=0), scale, axis=1)  # noqa: E731
    left = big(small)
    right = big(np.clip(np.rint(tinted), 0, 255).astype(np.uint8))

    gap = 12
    font_size = 16
    row = font_size + 10
    legend_h = 5 * row + 2 * gap + font_size + 6
    width = max(2 * left.shape[1] + gap, 460)
    canvas = Image.new("RGB", (width, left.shape[0] + legend_h), (255, 255, 255))
    canvas.paste(Image.fromarray(left), (0, 0))
    canvas.paste(Image.fromarray(right), (left.shape[1] + gap, 0))
    draw = ImageDraw.Draw(canvas)
    font = _font(font_size)
    y = left.shape[0] + gap
    draw.text(
        (4, y),
        f"DCP regions ({result.impl}), {w}x{h} masks of the refined transmission t",
        fill=(0, 0, 0),
        font=font,
    )
    y += font_size + 6
    for k, (colour, label, share) in enumerate(zip(COLOURS, LABELS, result.coverage(), strict=True)):
        draw.rectangle([4, y + 2, 4 + 2 * font_size, y + font_size + 2], fill=colour, outline=(40, 40, 40))
        draw.text((12 + 2 * font_size, y), f"region {k + 1}: {label}", fill=(0, 0, 0), font=font)
        draw.text((width - 90, y), f"{share:7.1%}", fill=(0, 0, 0), font=font)
        y += row
    return np.asarray(canvas)


#: Suffixes the overlay picture may be written as (the suffix picks the format, as with every image we write).
PICTURE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


def check_picture_suffix(path: str | Path) -> Path:
    """``path`` if its suffix names a picture format we write, else :class:`InputImageError`."""
    path = Path(path)
    if path.suffix.lower() not in PICTURE_SUFFIXES:
        raise InputImageError(
            f"cannot write the masks picture as '{path.suffix or '(no suffix)'}' ({path})",
            f"use -o NAME with one of {', '.join(PICTURE_SUFFIXES)}",
        )
    return path


def write_picture(path: str | Path, picture: np.ndarray) -> Path:
    """Write an RGB picture atomically in the format its suffix names (PNG, JPEG, …)."""

    path = check_picture_suffix(path)
    suffix = path.suffix.lower()
    params = [cv2.IMWRITE_JPEG_QUALITY, 95] if suffix in (".jpg", ".jpeg") else []
    ok, data = cv2.imencode(suffix, cv2.cvtColor(np.ascontiguousarray(picture), cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise InputImageError(f"OpenCV could not encode {path}", "write a .png instead")
    with atomic_path(path) as tmp:
        tmp.write_bytes(data.tobytes())
    return path


def write_npy(path: str | Path, masks: np.ndarray) -> Path:
    with atomic_path(path, suffix=".npy") as tmp, open(tmp, "wb") as f:
        np.save(f, masks)
    return Path(path)
