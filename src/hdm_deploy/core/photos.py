"""The photographs bundled with the package (``assets/golden_*.png``: small copies of scikit-image's
public-domain/CC0 ``rocket``, ``coffee`` and ``chelsea``) and the golden cases made from them: each at
two sizes — sizes not divisible by 4 included — and one batch of two."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

import cv2
import numpy as np

from hdm_deploy.core.errors import ModelFormatError

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


def asset_path(name: str) -> Path:
    return Path(str(resources.files("hdm_deploy") / "assets" / name))


def read_photo(key: str) -> np.ndarray:
    """uint8 RGB [H,W,3] of a bundled golden photograph."""

    path = asset_path(PHOTOS[key][0])
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise ModelFormatError(f"bundled photograph missing: {path}", "reinstall hdm-deploy")
    return np.ascontiguousarray(bgr[..., ::-1])


def golden_cases() -> list[tuple[str, np.ndarray]]:
    """(name, uint8 [N,H,W,3]) for every golden case."""

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
