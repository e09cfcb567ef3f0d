"""ADFNet's golden bundle: the PyTorch clean path (published ``unfold`` dynamic filters) on the
bundled photographs (greyscale copies for a Gray model)."""

from __future__ import annotations

from typing import Any

import cv2
import numpy as np
import torch

from hdm_deploy.core.photos import PHOTOS, golden_cases
from hdm_deploy.families.adfnet.model import ADFNet
from hdm_deploy.families.adfnet.pipeline import enhance
from hdm_deploy.families.torch_env import reproducible_torch
from hdm_deploy.graph.golden import GoldenBundle, GoldenCase, default_tolerances

GOLDEN_THREADS = 1


def greyscale(frames: np.ndarray) -> np.ndarray:
    """uint8 RGB [N,H,W,3] → its BT.601 grey (cv2) repeated on three channels."""
    grey = np.stack([cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames])
    return np.ascontiguousarray(np.repeat(grey[..., None], 3, axis=3))


def make_golden(
    model: ADFNet,
    cases: list[tuple[str, np.ndarray]] | None = None,
    *,
    precision: str = "fp32",
    provenance: dict[str, Any] | None = None,
) -> GoldenBundle:
    """PyTorch outputs (one thread, deterministic algorithms) on the cases (default: bundled photos)."""
    grey = model.config.n_colors == 1
    out = []
    with reproducible_torch(GOLDEN_THREADS):
        for name, frames in cases if cases is not None else golden_cases():
            if grey:
                frames = greyscale(frames)
            pred = enhance(model, frames)
            out.append(GoldenCase(name, frames, pred.image, pred.image_float, {}))
    manifest = {
        "family": "adfnet",
        "tolerances": default_tolerances(precision),
        "reference": "PyTorch ADFNet (hdm_deploy.families.adfnet.pipeline.enhance, clean protocol, unfold filters)",
        "network": model.config.as_dict(),
        "torch": torch.__version__,
        "torch_threads": GOLDEN_THREADS,
        "photos": {k: v[1] for k, v in PHOTOS.items()},
        **(provenance or {}),
    }
    return GoldenBundle(manifest, out)
