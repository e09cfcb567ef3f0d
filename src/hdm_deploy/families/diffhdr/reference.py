"""The published sampling procedure in PyTorch, for parity (torch).

A re-implementation of ``generalized_steps_overlapping`` + ``DiffusiveRestoration.diffusive_restoration``
as published: float32 betas on the device, ``compute_alpha`` with a prepended 0, all patches of x_t
and of the condition cropped per step, batches of 8, AHDR recomputed for every batch at every step,
the UNet fed ``t`` of shape (1,), ε summed into a canvas and divided by the coverage mask, DDIM eta 0.
It shares no code with the torch-free :mod:`.sampler` beyond the model, so the two check each other.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from hdm_deploy.core.errors import ModelFormatError
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.families.diffhdr.model import DiffHDR

__all__ = ["NoFrameRunner", "published_sample"]

PUBLISHED_BATCH = 8


def _compute_alpha(beta: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    beta = torch.cat([torch.zeros(1, device=beta.device), beta], dim=0)
    return (1 - beta).cumprod(dim=0).index_select(0, t + 1).view(-1, 1, 1, 1)


@torch.no_grad()
def published_sample(
    model: DiffHDR,
    cond: torch.Tensor,
    noise: torch.Tensor,
    *,
    steps: int,
    patch: int,
    stride: int,
    batch: int = PUBLISHED_BATCH,
    tick: Callable[[], None] | None = None,
    clamp: bool = True,
) -> torch.Tensor:
    """x̂0 of the last step, clamped to [0, 1] as published unless ``clamp=False`` (``cond``
    [1,18,H,W], ``noise`` [1,3,H,W], padded)."""
    device = noise.device
    betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float().to(device)
    skip = 1000 // steps
    seq = list(range(0, 1000, skip))
    seq_next = [-1, *seq[:-1]]
    _, _, h, w = cond.shape
    corners = [(i, j) for i in range(0, h - patch + 1, stride) for j in range(0, w - patch + 1, stride)]
    mask = torch.zeros_like(noise)
    for hi, wi in corners:
        mask[:, :, hi : hi + patch, wi : wi + patch] += 1
    xt = noise
    x0 = noise
    n = noise.shape[0]
    for i, j in zip(reversed(seq), reversed(seq_next), strict=True):
        t = (torch.ones(n) * i).to(device)
        at = _compute_alpha(betas, t.long())
        at_next = _compute_alpha(betas, (torch.ones(n) * j).to(device).long())
        eps_sum = torch.zeros_like(noise)
        xt_patch = torch.cat([xt[:, :, hi : hi + patch, wi : wi + patch] for hi, wi in corners], dim=0)
        cond_patch = torch.cat([cond[:, :, hi : hi + patch, wi : wi + patch] for hi, wi in corners], dim=0)
        for k in range(0, len(corners), batch):
            c = cond_patch[k : k + batch]
            feature = model.ahdr(c[:, :6], c[:, 6:12], c[:, 12:18])
            out = model.unet(xt_patch[k : k + batch], t, feature)
            for idx, (hi, wi) in enumerate(corners[k : k + batch]):
                eps_sum[0, :, hi : hi + patch, wi : wi + patch] += out[idx]
            if tick:
                tick()
        et = torch.div(eps_sum, mask)
        x0 = (xt - et * (1 - at).sqrt()) / at.sqrt()
        c2 = (1 - at_next).sqrt()  # eta = 0: c1 = 0
        xt = at_next.sqrt() * x0 + c2 * et
    x0 = x0.clone()
    if not clamp:
        return x0
    x0[x0 >= 1] = 1
    x0[x0 <= 0] = 0
    return x0


class NoFrameRunner(Runner):
    """DiffHDR has no single-frame path (three exposures in, a sampler around two graphs): this
    runner refuses with the command that does run it."""

    backend = "torch"

    def __init__(self, model_path: str | Path | None = None, **_: object):
        raise ModelFormatError(
            "DiffHDR takes three exposures and runs a diffusion sampler, not single frames",
            "use `hdm-deploy hdr SHORT MEDIUM LONG --exposures … --model diffhdr.onnx`",
        )

    def _run(self, frames: np.ndarray) -> Prediction:  # pragma: no cover - never constructed
        raise NotImplementedError
