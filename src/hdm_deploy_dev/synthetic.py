"""Synthetic haze from the atmospheric scattering model I = J·t + A·(1 − t), t = exp(−β·depth).

Used to train the bundled sample model and to make the bundled hazy sample photo. Needs
scikit-image (a dev dependency) for its bundled photographs; the motorcycle scene comes with a
stereo disparity map, which gives a physically based depth (∝ 1/disparity).
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

#: scikit-image photographs of natural scenes (all bundled in its wheel, no download).
TRAIN_PHOTOS = ("astronaut", "chelsea", "motorcycle_left", "motorcycle_right", "immunohistochemistry")
HELD_OUT_PHOTOS = ("rocket", "coffee")


def load_photo(name: str) -> np.ndarray:
    """uint8 RGB [H,W,3] of a scikit-image photograph ('motorcycle_left'/'_right' from the stereo pair)."""
    import skimage.data

    if name.startswith("motorcycle_"):
        left, right, _ = skimage.data.stereo_motorcycle()
        return np.ascontiguousarray(left if name.endswith("left") else right)
    img = getattr(skimage.data, name)()
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    return np.ascontiguousarray(img[..., :3].astype(np.uint8))


def motorcycle_depth() -> np.ndarray:
    """Depth in [0, 1] for 'motorcycle_left' from its bundled disparity (invalid pixels in-painted)."""
    import skimage.data

    _, _, disparity = skimage.data.stereo_motorcycle()
    valid = np.isfinite(disparity) & (disparity > 0)
    # depth ∝ 1/disparity; relative to the farthest valid point, so the garage wall is at 1.
    relative = np.where(valid, disparity[valid].min() / np.where(valid, disparity, 1.0), 0.0)
    depth8 = np.rint(relative * 255.0).astype(np.uint8)
    filled = cv2.inpaint(depth8, (~valid).astype(np.uint8), 5, cv2.INPAINT_TELEA)
    return filled.astype(np.float32) / 255.0


def smooth_depth(height: int, width: int, rng: np.random.Generator) -> np.ndarray:
    """A plausible outdoor depth in [0, 1]: far at the top, plus a low-frequency random field."""
    rows = np.linspace(1.0, 0.0, height, dtype=np.float32)[:, None] * np.ones((1, width), np.float32)
    noise = rng.standard_normal((max(height // 32, 2), max(width // 32, 2))).astype(np.float32)
    field = cv2.resize(noise, (width, height), interpolation=cv2.INTER_CUBIC)
    field = (field - field.min()) / max(float(np.ptp(field)), 1e-6)
    depth = 0.7 * rows + 0.3 * field
    return (depth - depth.min()) / max(float(np.ptp(depth)), 1e-6)


def depth_for(name: str, shape: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    if name == "motorcycle_left":
        return motorcycle_depth()
    return smooth_depth(shape[0], shape[1], rng)


@dataclass(frozen=True)
class Haze:
    beta: float  #: scattering coefficient (depth is in [0, 1])
    airlight: tuple[float, float, float]  #: A per channel, RGB in [0, 1]

    @staticmethod
    def random(rng: np.random.Generator) -> Haze:
        level = rng.uniform(0.7, 0.95)
        tint = rng.uniform(-0.03, 0.03, size=3)
        return Haze(float(rng.uniform(0.5, 1.8)), tuple(float(v) for v in np.clip(level + tint, 0, 1)))

    def apply(self, clean: np.ndarray, depth: np.ndarray) -> np.ndarray:
        """uint8 clean RGB + depth → uint8 hazy RGB."""
        t = np.exp(-self.beta * (0.1 + 0.9 * depth))[..., None]
        j = clean.astype(np.float32) / 255.0
        hazy = j * t + np.asarray(self.airlight, np.float32) * (1.0 - t)
        return np.clip(np.rint(hazy * 255.0), 0, 255).astype(np.uint8)


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    """PSNR in dB of two arrays of the same scale (inf when identical)."""
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10.0 * np.log10(peak * peak / mse)
