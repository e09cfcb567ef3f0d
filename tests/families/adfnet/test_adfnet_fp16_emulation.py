"""The ADFNet FP16 emulation of ``benchmarks/adfnet_fp16.py`` on the bundled trained sample (width 8):
finite output ≥ 45 dB vs FP32 at 32×32, actually rounding (not exact), and FP16 DCN sampling
coordinates visibly worse than the shipped FP32 coordinates once x passes 1024 px."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

import hdm_deploy
from hdm_deploy.families.adfnet.checkpoint import load_for_family
from hdm_deploy.families.adfnet.model import DCN
from hdm_deploy.families.checkpoint_io import read_state_dict

BENCH = Path(__file__).resolve().parents[3] / "benchmarks" / "adfnet_fp16.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("adfnet_fp16_bench", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def sample():
    state, meta = read_state_dict(Path(hdm_deploy.__file__).parent / "assets" / "adfnet_sample_sigma25.pt")
    return load_for_family(state, meta, None).eval()


def test_emulation_finite_and_above_45_db(bench, sample):
    x = bench.noisy_input(np.random.default_rng(0).integers(0, 256, (32, 32, 3), dtype=np.uint8), seed=0)
    with torch.no_grad():
        ref = sample(x).clamp(0, 1).numpy()
    y = bench.fp16_emulated(sample, x, coordinates_fp16=False).numpy()
    assert np.isfinite(y).all()
    assert 45.0 <= bench.psnr(y, ref) < float("inf")  # rounded, but within the target


def test_fp16_coordinates_hazard_beyond_1024_px(bench, sample):
    strip = bench.inputs(32, 1104, 8)[-1][1]
    assert strip.shape == (8, 1104, 3)
    x = bench.noisy_input(strip, seed=1)
    with torch.no_grad():
        ref = sample(x).clamp(0, 1).numpy()
    original = DCN.forward
    policy = bench.fp16_emulated(sample, x, coordinates_fp16=False).numpy()
    coords = bench.fp16_emulated(sample, x, coordinates_fp16=True).numpy()
    assert DCN.forward is original  # the patch is undone
    far_policy = bench.psnr(policy[..., 1024:], ref[..., 1024:])
    far_coords = bench.psnr(coords[..., 1024:], ref[..., 1024:])
    assert far_policy >= 45.0
    assert far_coords < far_policy - 10.0
