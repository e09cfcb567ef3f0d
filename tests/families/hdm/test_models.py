"""The PyTorch HDM: published state-dict names/shapes, batch-agnostic region conv, DCNv2 layout."""

from __future__ import annotations

import re

import pytest
import torch
import torch.nn.functional as F

from hdm_deploy.families.hdm.model import HDM, HDMConfig
from hdm_deploy.families.hdm.region_conv import RegionConv, per_sample_conv3x3

PUBLISHED_TOP_LEVEL = [
    "conv0", "conv1", "conv2", "FAB", "deconv1", "deconv2", "output",
    "drconv", "drconv_phy", "dcn_block", "mix1", "mix2", "mix3", "mix4",
]  # fmt: skip


def test_published_state_dict_names_and_shapes():
    sd = HDM().state_dict()
    assert sum(v.numel() for v in sd.values()) == 2_946_684
    assert list(dict.fromkeys(k.split(".")[0] for k in sd)) == PUBLISHED_TOP_LEVEL
    assert sd["dcn_block.dcn.weight"].shape == (64, 64, 3, 3)
    assert sd["dcn_block.dcn.bias"].shape == (64,)
    assert sd["dcn_block.dcn.conv_offset_mask.weight"].shape == (27, 64, 3, 3)
    assert sd["drconv_phy.conv_kernel.1.weight"].shape == (25, 64, 1, 1)
    assert sd["drconv_phy.conv_kernel.3.weight"].shape == (5 * 64 * 64, 5, 1, 1)
    assert sd["drconv.conv_guide.weight"].shape == (5, 64, 3, 3)
    assert sd["FAB.0.gp.0.calayer.ca.0.weight"].shape == (8, 64, 1, 1)
    assert sd["FAB.0.gp.0.palayer.pa.2.weight"].shape == (1, 8, 1, 1)
    assert sd["FAB.2.gp.9.weight"].shape == (64, 64, 3, 3)  # the group's closing conv
    assert sd["deconv1.0.weight"].shape == (64, 64, 4, 4)
    assert sd["output.2.weight"].shape == (3, 64, 5, 5)
    assert {k for k in sd if re.match(r"mix\d\.w", k)} == {f"mix{i}.w" for i in range(1, 5)}
    assert [float(sd[f"mix{i}.w"]) for i in range(1, 5)] == pytest.approx([-1.0, -0.6, -0.5, -0.5])


def _published_region_conv(x, kernels, masks):
    """The published eval path: one grouped conv with groups = batch."""
    b, c, h, w = x.shape
    out = F.conv2d(x.reshape(1, b * c, h, w), kernels.reshape(-1, c, 3, 3), padding=1, groups=b)
    return (out.view(b, masks.shape[1], c, h, w) * masks).sum(1)


def test_region_conv_matches_grouped_conv_for_any_batch():
    torch.manual_seed(0)
    rc = RegionConv(8, 5)
    for b in (1, 2, 3):
        x = torch.randn(b, 8, 6, 7)
        masks = F.one_hot(torch.randint(0, 5, (b, 6, 7)), 5).permute(0, 3, 1, 2).unsqueeze(2).float()
        ours = rc(x, masks)
        ref = _published_region_conv(x, rc.region_kernels(x), masks)
        torch.testing.assert_close(ours, ref, rtol=1e-5, atol=1e-5)


def test_per_sample_conv_is_per_sample():
    torch.manual_seed(1)
    x, k = torch.randn(3, 4, 5, 5), torch.randn(3, 6, 4, 3, 3)
    whole = per_sample_conv3x3(x, k)
    for i in range(3):
        torch.testing.assert_close(
            whole[i : i + 1], F.conv2d(x[i : i + 1], k[i], padding=1), rtol=1e-5, atol=1e-5
        )


def test_forward_shapes_and_batch_independence():
    torch.manual_seed(2)
    m = HDM(HDMConfig(width=8, groups=1, blocks=1)).eval()
    x = torch.randn(2, 3, 16, 24)
    masks = torch.zeros(2, 5, 1, 4, 6)
    masks[:, 1] = 1
    with torch.no_grad():
        both = m(x, masks)
        one = m(x[1:], masks[1:])
    assert both.shape == (2, 3, 16, 24)
    torch.testing.assert_close(both[1:], one, rtol=1e-5, atol=1e-6)


def test_width_must_divide_by_8():
    with pytest.raises(ValueError, match="multiple of 8"):
        HDM(HDMConfig(width=12))
