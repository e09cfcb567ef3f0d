"""Real photographs for DCP parity tests and benchmarks: scikit-image's bundled images, resized with Pillow.

scikit-image is a test/dev dependency; it is imported only when a photo is requested.
"""

from __future__ import annotations

import functools

import numpy as np

#: The bundled photographs used by the DCP tests (``motorcycle_left`` is ``stereo_motorcycle()[0]``).
PHOTOS = (
    "astronaut",
    "chelsea",
    "coffee",
    "rocket",
    "motorcycle_left",
    "immunohistochemistry",
    "hubble_deep_field",
    "retina",
)


@functools.lru_cache(maxsize=16)
def photo(name: str) -> np.ndarray:
    """A bundled photograph as uint8 RGB [H, W, 3] (read-only)."""
    import skimage.data

    rgb = skimage.data.stereo_motorcycle()[0] if name == "motorcycle_left" else getattr(skimage.data, name)()
    rgb = np.ascontiguousarray(rgb[..., :3], dtype=np.uint8)
    rgb.setflags(write=False)
    return rgb


def resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Pillow ``resize(size, LANCZOS)`` of a uint8 RGB array; ``size`` is (width, height)."""
    from PIL import Image

    if (rgb.shape[1], rgb.shape[0]) == tuple(size):
        return np.array(rgb)
    return np.asarray(Image.fromarray(rgb).resize(tuple(size), Image.Resampling.LANCZOS)).copy()


def photo_at(name: str, size: tuple[int, int]) -> np.ndarray:
    """Bundled photograph ``name`` resized to ``size`` = (width, height) (aspect ratio not kept)."""
    return resize(photo(name), size)
