"""HDM's golden bundle: the PyTorch pipeline (torch DCP masks) on the bundled photographs."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from hdm_deploy.core.photos import PHOTOS, golden_cases
from hdm_deploy.core.runner import pad_to_multiple
from hdm_deploy.families.hdm.dcp.export_op import DCPImpl, default_impl
from hdm_deploy.families.hdm.family import PAD_MULTIPLE
from hdm_deploy.families.hdm.model import HDM
from hdm_deploy.families.hdm.pipeline import enhance
from hdm_deploy.families.torch_env import reproducible_torch
from hdm_deploy.graph.golden import GoldenBundle, GoldenCase, default_tolerances

#: intra-op threads while golden outputs are computed: fixed, so a bundle does not depend on the
#: machine's core count (1 vs 2 threads moved outputs by up to 4.8e-7) and does not slow down on a
#: busy machine (2 threads on 2 shared cores: 9–25 s for the 7 cases, 1 thread: 1.4–3.6 s).
GOLDEN_THREADS = 1


def make_golden(
    model: HDM,
    dcp_impl: DCPImpl | None = None,
    cases: list[tuple[str, np.ndarray]] | None = None,
    *,
    precision: str = "fp32",
    provenance: dict[str, Any] | None = None,
) -> GoldenBundle:
    """Run the PyTorch pipeline (:func:`~hdm_deploy.families.hdm.pipeline.enhance` with the torch DCP
    masks the exported graph computes) on the cases (default: the bundled golden photographs),
    under :func:`reproducible_torch` (one thread, deterministic algorithms)."""
    impl = dcp_impl or default_impl()
    out = []
    with reproducible_torch(GOLDEN_THREADS):
        for name, frames in cases if cases is not None else golden_cases():
            padded, _ = pad_to_multiple(frames, PAD_MULTIPLE)
            with torch.inference_mode():
                masks = impl.torch_fn(torch.from_numpy(np.ascontiguousarray(padded)).permute(0, 3, 1, 2))
            pred = enhance(model, frames, masks=masks)
            out.append(GoldenCase(name, frames, pred.image, pred.image_float, dict(pred.extras)))
    manifest = {
        "family": "hdm",
        "tolerances": default_tolerances(precision),
        "reference": "PyTorch HDM (hdm_deploy.families.hdm.pipeline.enhance) with torch DCP masks",
        "dcp": impl.name,
        "torch": torch.__version__,
        "torch_threads": GOLDEN_THREADS,
        "photos": {k: v[1] for k, v in PHOTOS.items()},
        **(provenance or {}),
    }
    return GoldenBundle(manifest, out)
