"""MHNet's golden bundle: the PyTorch frame path (:func:`~.pipeline.restore`) on the bundled photographs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hdm_deploy.core.photos import PHOTOS, golden_cases
from hdm_deploy.families.mhnet.family import PAD_MODE, PAD_MULTIPLE
from hdm_deploy.families.mhnet.model import MHNet, variant_of
from hdm_deploy.families.mhnet.pipeline import restore
from hdm_deploy.families.torch_env import reproducible_torch
from hdm_deploy.graph.golden import GoldenBundle, GoldenCase, default_tolerances

#: intra-op threads while golden outputs are computed: fixed, so a bundle does not depend on the
#: machine's core count.
GOLDEN_THREADS = 1


def make_golden(
    model: MHNet,
    cases: list[tuple[str, np.ndarray]] | None = None,
    *,
    precision: str = "fp32",
    provenance: dict[str, Any] | None = None,
) -> GoldenBundle:
    """PyTorch outputs of the frame path on ``cases`` (default: the bundled golden photographs)."""
    model = model.float().cpu().eval()
    out = []
    with reproducible_torch(GOLDEN_THREADS):
        for name, frames in cases if cases is not None else golden_cases():
            pred = restore(model, frames)
            out.append(GoldenCase(name, frames, pred.image, pred.image_float, {}))
    manifest = {
        "family": "mhnet",
        "variant": variant_of(model.config),
        "tolerances": default_tolerances(precision),
        "reference": "PyTorch MHNet (hdm_deploy.families.mhnet.pipeline.restore): "
        f"{PAD_MODE}-pad to ×{PAD_MULTIPLE}, final stage, crop, clamp",
        "torch": torch.__version__,
        "torch_threads": GOLDEN_THREADS,
        "photos": {k: v[1] for k, v in PHOTOS.items()},
        **(provenance or {}),
    }
    return GoldenBundle(manifest, out)
