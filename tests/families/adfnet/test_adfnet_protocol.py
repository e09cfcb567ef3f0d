"""The published RGB/Gray test protocol: the 4-quadrant forward_chop (sizes, corner anchors, hard
seams, recursion), the ×8 self-ensemble (inverse transforms), and BGR fed to RGB networks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdm_deploy.core.errors import HdmDeployError, InputImageError
from hdm_deploy.families.adfnet.model import ADFNet, ADFNetConfig
from hdm_deploy.families.adfnet.pipeline import enhance, forward_chop, published_forward, self_ensemble
from hdm_deploy.families.adfnet.torch_runner import TorchRunner


class Recorder(torch.nn.Module):
    """Returns each quadrant filled with its call index; records the input sizes."""

    def __init__(self):
        super().__init__()
        self.shapes: list[tuple[int, int]] = []

    def forward(self, x):
        self.shapes.append(tuple(x.shape[2:]))
        return torch.full_like(x, float(len(self.shapes) - 1))


@pytest.mark.parametrize(("h", "w"), [(100, 130), (64, 64), (481, 321)])
def test_quadrant_sizes_anchors_and_hard_seams(h, w):
    net = Recorder()
    out = forward_chop(torch.zeros(1, 3, h, w), net, min_size=10**9)
    hs, ws = (h // 2 // 8) * 8 + 24, (w // 2 // 8) * 8 + 24
    assert net.shapes == [(hs, ws)] * 4 and hs % 8 == 0 and ws % 8 == 0
    expected = np.zeros((h, w))
    expected[: h // 2, w // 2 :] = 1
    expected[h // 2 :, : w // 2] = 2
    expected[h // 2 :, w // 2 :] = 3
    assert np.array_equal(out[0, 0].numpy(), expected)  # each quadrant fills exactly its half


def test_chop_places_pixels_back_where_they_came_from_and_recurses():
    x = torch.rand(2, 3, 200, 168)
    net = Recorder()
    y = forward_chop(
        x, lambda q: net(q) * 0 + q * 2, min_size=6000
    )  # 120×104 quadrants recurse once: 4 × 4 of 80×72
    assert torch.equal(y, x * 2)
    assert net.shapes == [(80, 72)] * 16


def test_self_ensemble_inverts_each_transform():
    x = torch.rand(1, 3, 24, 16)
    seen = []

    def net(t):
        seen.append(t)
        return t * 3

    torch.testing.assert_close(self_ensemble(net, x), x * 3, rtol=1e-6, atol=1e-6)  # every inverse right
    assert len(seen) == 8 and len({tuple(t.flatten()[:6].tolist()) for t in seen}) == 8  # 8 distinct views
    assert {tuple(t.shape[2:]) for t in seen} == {(24, 16), (16, 24)}


def test_chop_refuses_images_too_small_for_its_quadrants():
    with pytest.raises(InputImageError, match="forward_chop"):
        forward_chop(torch.zeros(1, 3, 16, 16), lambda t: t, min_size=10**9)


@pytest.fixture(scope="module")
def tiny_model():
    torch.manual_seed(0)
    model = ADFNet(ADFNetConfig(3, 8)).eval()
    with torch.no_grad():
        for n, p in model.named_parameters():
            if "conv_offset_mask" in n:
                p.normal_(0, 0.05)
    return model


def test_published_protocol_feeds_bgr_and_differs_from_clean(tiny_model):
    frames = np.random.default_rng(0).integers(0, 256, (1, 60, 75, 3), dtype=np.uint8)
    pub = enhance(tiny_model, frames, protocol="published").image_float
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        manual = published_forward(tiny_model, x.flip(1)).flip(1).numpy()
    assert np.abs(pub - manual).max() == 0
    clean = enhance(tiny_model, frames).image_float
    assert np.abs(pub - clean).max() > 1e-4  # global/row/column pooling: quadrants ≠ whole image


def test_runner_options(tiny_model):
    runner = TorchRunner(model=tiny_model, protocol="published", self_ensemble=True, device="cpu")
    assert runner.describe()["options"] == {"protocol": "published", "self_ensemble": True}
    out = runner.run(np.full((48, 48, 3), 128, np.uint8))  # the smallest frame the chop takes
    assert out.image.shape == (1, 48, 48, 3)
    with pytest.raises(HdmDeployError, match="published protocol"):
        TorchRunner(model=tiny_model, self_ensemble=True)
    with pytest.raises(HdmDeployError, match="protocol"):
        TorchRunner(model=tiny_model, protocol="tiles")


def test_gray_published_protocol_chops_without_padding():
    torch.manual_seed(1)
    model = ADFNet(ADFNetConfig(1, 8)).eval()
    grey = np.random.default_rng(1).integers(0, 256, (1, 75, 90, 1), dtype=np.uint8)
    frames = np.repeat(grey, 3, axis=3)
    got = enhance(model, frames, protocol="published").image_float
    x = torch.from_numpy(grey).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():  # ADFNet_Gray/test.py: quadrants 56×64 (multiples of 8), no pad, min_size 400,000
        expected = forward_chop(x, model, min_size=400_000).clamp(0, 1).numpy()
    assert np.array_equal(got, np.repeat(expected, 3, axis=1))
