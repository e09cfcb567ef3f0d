"""Image reading/writing for the pipeline (torch-free).

HDM is an 8-bit RGB model: every input becomes uint8 RGB for the network and the DCP masks, and the
output is written back in the input's layout — grey stays grey, alpha is carried through unchanged,
16-bit stays 16-bit (from the float output, so the extra precision is real). EXIF orientation is
applied on read so phone photos are upright.
"""

from __future__ import annotations

import contextlib
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from hdm_deploy.core.errors import InputImageError, first_line
from hdm_deploy.core.fs import atomic_path

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm", ".pnm", ".gif")
#: Suffixes whose formats can hold more than 8 bits per sample (read with OpenCV first).
DEEP_SUFFIXES = (".png", ".tif", ".tiff", ".ppm", ".pgm", ".pnm")
#: Pillow modes we convert and how the output is written back.
_MODE_LAYOUT = {
    "RGB": "rgb",
    "RGBA": "rgba",
    "L": "gray",
    "LA": "gray_alpha",
    "P": "rgb",
    "PA": "rgba",
    "1": "gray",
    "CMYK": "rgb",
    "YCbCr": "rgb",
    "I;16": "gray",
    "I;16B": "gray",
    "I;16L": "gray",
    "I;16N": "gray",
}


@dataclass
class LoadedImage:
    """An input frame as the network sees it, plus what is needed to write the result back alike."""

    rgb8: np.ndarray  #: uint8 [H, W, 3]
    layout: str  #: "rgb" | "rgba" | "gray" | "gray_alpha"
    bit_depth: int = 8  #: 8 or 16: the depth the output is written with
    alpha: np.ndarray | None = None  #: the untouched alpha channel (uint8 or uint16), if any
    path: Path | None = None

    @property
    def size(self) -> tuple[int, int]:
        return self.rgb8.shape[1], self.rgb8.shape[0]


def to_uint8(values: np.ndarray) -> np.ndarray:
    """uint16 → uint8 by rounding v/257 (exact inverse of the ×257 8→16-bit expansion)."""
    if values.dtype == np.uint8:
        return values
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def _from_16bit(path: Path, arr: np.ndarray) -> LoadedImage:
    """16-bit data read by OpenCV (Pillow truncates 48/64-bit PNGs to 8 bits)."""
    if arr.ndim == 2:
        return LoadedImage(np.repeat(to_uint8(arr)[..., None], 3, axis=2), "gray", 16, None, path)
    channels = arr.shape[2]
    if channels == 1:
        return LoadedImage(np.repeat(to_uint8(arr[..., 0])[..., None], 3, axis=2), "gray", 16, None, path)
    if channels == 2:
        return LoadedImage(
            np.repeat(to_uint8(arr[..., :1]), 3, axis=2), "gray_alpha", 16, arr[..., 1].copy(), path
        )
    rgb = cv2.cvtColor(arr[..., :3], cv2.COLOR_BGR2RGB)
    alpha = arr[..., 3].copy() if channels == 4 else None
    return LoadedImage(
        np.ascontiguousarray(to_uint8(rgb)), "rgba" if alpha is not None else "rgb", 16, alpha, path
    )


#: Default ``--max-pixels``: 100 MP (a 12 MP phone photo, 8K video frames, 50 MP camera RAW exports pass).
DEFAULT_MAX_PIXELS = 100_000_000


@contextlib.contextmanager
def _no_bomb_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        yield


def check_image_header(path: Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> tuple[int, int] | None:
    """Size (W, H) from the file header only — no pixel decoded — checked against ``max_pixels``
    (None for the few 16-bit/float files only OpenCV can parse).

    Also refuses empty files and animated images (every frame or none: HDM enhances single
    images; a GIF/APNG/WebP animation would lose all frames but the first).
    """
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputImageError(f"{path}: cannot read ({exc.strerror})") from None
    if size == 0:
        raise InputImageError(f"{path}: empty file (0 bytes)", "the file was not written completely")
    try:
        with _no_bomb_warning(), Image.open(path) as im:  # lazy: reads the header only
            w, h = im.size
            frames = getattr(im, "n_frames", 1)
    except Image.DecompressionBombError as exc:
        found = re.search(r"\((\d+) pixels\)", str(exc))
        size_text = f"{int(found.group(1)) / 1e6:.0f} MP" if found else "too many pixels"
        raise InputImageError(
            f"{path}: image too large ({size_text}; Pillow refuses more than "
            f"{2 * (Image.MAX_IMAGE_PIXELS or 0) / 1e6:.0f} MP as a decompression bomb)",
            "downscale it",
        ) from None
    except UnidentifiedImageError:
        if path.suffix.lower() in DEEP_SUFFIXES:
            return None  # float TIFF/PNG variants Pillow cannot parse: OpenCV decides (and refuses floats)
        raise InputImageError(
            f"{path}: not a readable image ({size} bytes of unknown content)",
            f"use one of {', '.join(IMAGE_SUFFIXES)}",
        ) from None
    except OSError as exc:
        raise InputImageError(f"{path}: cannot read image ({first_line(exc)})") from None
    if max_pixels and w * h > max_pixels:
        raise InputImageError(
            f"{path}: image {w}×{h} ({w * h / 1e6:.0f} MP) is larger than --max-pixels {max_pixels / 1e6:g} MP",
            "downscale it, or raise --max-pixels if the machine has the memory",
        )
    if frames > 1:
        raise InputImageError(
            f"{path}: animated image with {frames} frames; only still images are enhanced",
            "split it into frames (e.g. ffmpeg -i in.gif f%03d.png) or convert it to a video",
        )
    return w, h


def read_image(path: str | Path, max_pixels: int | None = DEFAULT_MAX_PIXELS) -> LoadedImage:
    """Read any common image as uint8 RGB, remembering layout, bit depth and alpha for the output.

    The header is checked first (:func:`check_image_header`): size limit, empty and animated files.
    """
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"image not found: {path}")
    check_image_header(path, max_pixels)
    # OpenCV only for formats that can hold 16-bit (or float) samples, which Pillow would truncate;
    # every other file is decoded once, by Pillow.
    raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED) if path.suffix.lower() in DEEP_SUFFIXES else None
    if raw is not None and raw.dtype == np.uint16:
        return _from_16bit(path, raw)
    if raw is not None and raw.dtype not in (np.uint8, np.uint16):
        raise InputImageError(
            f"{path}: {raw.dtype} pixels are not supported (the models take 8-bit RGB)",
            "convert the image to 8- or 16-bit integer PNG/TIFF",
        )
    try:
        with _no_bomb_warning(), Image.open(path) as im:  # the size was checked against --max-pixels
            im = ImageOps.exif_transpose(im)
            mode = im.mode
            if mode not in _MODE_LAYOUT:
                raise InputImageError(
                    f"{path}: image mode {mode} is not supported",
                    "convert it to 8-bit RGB, RGBA or greyscale",
                )
            layout = _MODE_LAYOUT[mode]
            if mode.startswith("I;16"):
                arr16 = np.asarray(im, dtype=np.uint16)
                return _from_16bit(path, arr16)
            alpha = None
            if layout in ("rgba", "gray_alpha"):
                alpha = np.asarray(im.getchannel("A"), dtype=np.uint8).copy()
            rgb = np.asarray(im.convert("RGB"), dtype=np.uint8)
    except UnidentifiedImageError:
        raise InputImageError(
            f"{path}: not a readable image", f"use one of {', '.join(IMAGE_SUFFIXES)}"
        ) from None
    except OSError as exc:
        raise InputImageError(f"{path}: cannot read image ({exc})") from None
    return LoadedImage(np.ascontiguousarray(rgb), layout, 8, alpha, path)


def _gray(rgb: np.ndarray) -> np.ndarray:
    """ITU-R 601 luma, the same weights Pillow uses for RGB→L."""
    y = rgb[..., 0] * 0.299 + rgb[..., 1] * 0.587 + rgb[..., 2] * 0.114
    return y


def render_output(like: LoadedImage, rgb8: np.ndarray, rgb_float: np.ndarray | None = None) -> np.ndarray:
    """Arrange an enhanced frame in the input's layout and depth (channels-last, RGB order).

    ``rgb_float`` (HWC, [0,1]) is used for 16-bit output when available; otherwise 8-bit values ×257.
    """
    if like.bit_depth == 16:
        if rgb_float is not None:
            data = np.rint(np.clip(rgb_float, 0, 1) * 65535.0).astype(np.uint16)
        else:
            data = rgb8.astype(np.uint16) * 257
    else:
        data = rgb8
    if like.layout in ("gray", "gray_alpha"):
        g = _gray(data.astype(np.float64))
        data = np.rint(g).astype(data.dtype)[..., None]
    if like.alpha is not None:
        alpha = like.alpha
        if alpha.dtype != data.dtype:
            alpha = (alpha.astype(np.uint16) * 257) if data.dtype == np.uint16 else to_uint8(alpha)
        data = np.concatenate([data, alpha[..., None]], axis=2)
    return data


def write_image(path: str | Path, data: np.ndarray, quality: int = 95) -> Path:
    """Write HWC RGB(A)/grey uint8 or uint16 data atomically; the suffix picks the format."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix not in IMAGE_SUFFIXES:
        raise InputImageError(
            f"cannot write '{suffix}' images ({path})", f"use one of {', '.join(IMAGE_SUFFIXES)}"
        )
    if data.ndim == 3 and data.shape[2] == 1:
        data = data[..., 0]
    if data.dtype == np.uint16 and suffix not in DEEP_SUFFIXES:
        raise InputImageError(
            f"{suffix} cannot hold 16-bit data ({path})", "write .png or .tif for 16-bit input"
        )
    if suffix in (".jpg", ".jpeg") and data.ndim == 3 and data.shape[2] == 4:
        data = data[..., :3]  # JPEG has no alpha
    bgr = data
    if data.ndim == 3:
        code = cv2.COLOR_RGBA2BGRA if data.shape[2] == 4 else cv2.COLOR_RGB2BGR
        bgr = cv2.cvtColor(np.ascontiguousarray(data), code)
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if suffix in (".jpg", ".jpeg") else []
    ok, encoded = cv2.imencode(suffix, bgr, params)
    if not ok:
        raise InputImageError(f"OpenCV could not encode {path}")
    # Written by Python, not OpenCV: a full disk or a read-only folder is a real OSError (exit 3).
    with atomic_path(path) as tmp:
        tmp.write_bytes(encoded.tobytes())
    return path


def list_images(folder: str | Path) -> list[Path]:
    """Images directly inside ``folder``, sorted by name."""
    folder = Path(folder)
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
