"""The bundled ADFNet demonstration checkpoint: published raw format, non-zero offsets, and it
denoises a held-out bundled photograph (σ = 25) better than doing nothing."""

from __future__ import annotations

import numpy as np

from hdm_deploy.core.photos import read_photo
from hdm_deploy.families.adfnet.checkpoint import sample_checkpoint_path
from hdm_deploy.families.checkpoint_io import torch_runner


def psnr(a, b) -> float:
    return float(10 * np.log10(255.0**2 / np.mean((a.astype(np.float64) - b) ** 2)))


def test_sample_checkpoint_denoises_a_held_out_photo():
    runner = torch_runner(sample_checkpoint_path(), device="cpu")
    assert runner.model.fe1.fe[1].dcn[0].conv_offset_mask.weight.abs().mean() > 1e-3
    clean = read_photo("coffee")  # not among the training photographs
    noise = np.random.default_rng(0).normal(0, 25, clean.shape)
    noisy = np.clip(np.rint(clean + noise), 0, 255).astype(np.uint8)
    out = runner.run(noisy).image[0]
    assert psnr(out, clean) > psnr(noisy, clean) + 1.0
