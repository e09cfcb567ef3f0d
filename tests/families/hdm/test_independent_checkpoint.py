"""A checkpoint written by an independent implementation of the published network (published
format, random weights, non-zero offsets) loads with no key changes, and ``infer`` reproduces that
implementation's output on photographs to within uint8 rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.families.hdm.checkpoint import load_checkpoint
from hdm_deploy.families.hdm.dcp.reference import region_masks
from hdm_deploy.families.hdm.model import HDMConfig
from hdm_deploy.families.hdm.pipeline import enhance
from hdm_deploy.runtime.image_io import read_image, write_image
from hdm_deploy_dev.synthetic import load_photo, psnr
from independent_hdm import make_published_checkpoint, published_pipeline

PHOTOS = [("astronaut", 160, 160), ("coffee", 192, 128), ("rocket", 188, 124), ("motorcycle_left", 180, 120)]


def _photo(name, w, h):
    import cv2

    return cv2.resize(load_photo(name), (w, h), interpolation=cv2.INTER_AREA)


@pytest.fixture(scope="module")
def published(tmp_path_factory):
    path = tmp_path_factory.mktemp("ckpt") / "hdm_haze_sots.pk"
    net = make_published_checkpoint(path)
    return path, net


def test_loads_without_key_changes(published):
    path, _ = published
    raw = torch.load(path, weights_only=True)["model"]
    model = load_checkpoint(path)
    assert model.config == HDMConfig()
    ours = model.state_dict()
    assert [k.removeprefix("module.") for k in raw] == list(ours)
    for k, v in raw.items():
        torch.testing.assert_close(ours[k.removeprefix("module.")], v, rtol=0, atol=0)
    offset_w = ours["dcn_block.dcn.conv_offset_mask.weight"]
    assert offset_w.abs().mean() > 1e-3  # the offsets are really exercised


@pytest.mark.slow
@pytest.mark.parametrize(("name", "w", "h"), PHOTOS)
def test_enhance_matches_independent_implementation(published, name, w, h):
    path, net = published
    rgb = _photo(name, w, h)
    masks = region_masks(rgb)
    expected = published_pipeline(net, rgb, masks).numpy()
    pred = enhance(load_checkpoint(path), rgb, "reference")
    got = pred.image_float[0]
    # the two implementations differ only in float summation order
    assert np.abs(got - expected).max() < 1e-4
    expected_u8 = np.rint(expected * 255).astype(np.uint8).transpose(1, 2, 0)
    value = psnr(pred.image[0], expected_u8, peak=255.0)
    identical = float(np.mean(pred.image[0] == expected_u8)) * 100
    print(
        f"\n{name} {w}x{h}: float max|Δ| {np.abs(got - expected).max():.2e}, uint8 PSNR {value:.1f} dB, {identical:.3f} % identical"
    )
    assert value >= 60.0, f"{name}: PSNR {value:.1f} dB"
    assert np.abs(pred.image[0].astype(int) - expected_u8).max() <= 1
    # the output is a real picture, not a constant: the check above is not vacuous
    assert expected.std() > 0.02


@pytest.mark.slow
def test_infer_cli_matches_independent_implementation(published, tmp_path):
    path, net = published
    rgb = _photo("chelsea", 200, 132)
    write_image(tmp_path / "in.png", rgb)
    result = CliRunner().invoke(
        app, ["infer", str(tmp_path / "in.png"), "-o", str(tmp_path / "out.png"), "--model", str(path)]
    )
    assert result.exit_code == 0, result.output
    got = read_image(tmp_path / "out.png").rgb8
    expected = published_pipeline(net, rgb, region_masks(rgb)).numpy()
    expected_u8 = np.rint(expected * 255).astype(np.uint8).transpose(1, 2, 0)
    assert psnr(got, expected_u8, peak=255.0) >= 60.0
