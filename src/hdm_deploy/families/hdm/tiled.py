"""HDM split into the stages of the exact memory-bounded path (torch side of ``export --tiled``).

    prior  (whole frame) uint8 frame, padded to ×4 ─ DCP ─────────────────────────→ masks (1/4)
    stem   (tiles)       uint8 tile ─ /255, normalise ─ conv0 ─ conv1 → res1 (1/2) ─ conv2 → res2 (1/4)
    trunk  (whole frame) res2, masks ─ FAB ─ [DCN → region conv] × 2 ─ mix1(res2, ·) → mixed (1/4)
    head   (tiles)       mixed, res1 ─ deconv1 ─ mix2(res1, ·) ─ deconv2 ─ output ─ clamp, round → uint8

Everything global (the DCP prior's atmospheric light and thresholds, the channel attentions'
pooling, the region conv's kernel generator, the deformable conv's offsets) is in ``prior`` or
``trunk``, which run on the whole frame (the trunk at 1/4 resolution). ``stem`` and ``head`` are
convolutions, transposed convolutions, a reflection pad, a 2×2 average and pointwise ops: their
halos are computed from the exported graphs (:func:`hdm_deploy.graph.receptive.stage_halo`).

Each stage computes what :class:`~.frame_path.FramePath` computes for its part, operation for
operation (same normalisation, same clamp and round-half-even), so the stitched result equals the
whole-frame graph up to float summation order.
"""

from __future__ import annotations

import torch
from torch import nn

from hdm_deploy.families.base import TiledStage
from hdm_deploy.families.export_modules import export_ready
from hdm_deploy.families.hdm.dcp.export_op import dcp_masks
from hdm_deploy.families.hdm.model import HDM, normalize
from hdm_deploy.families.hdm.region_conv import RegionConv, per_sample_conv3x3

__all__ = ["tiled_stages"]

NCHW = (2, 3)
NHWC = (1, 2)
MASKS = (3, 4)  # [N, 5, 1, H/4, W/4]


class Prior(nn.Module):
    def forward(self, image: torch.Tensor) -> torch.Tensor:
        return dcp_masks(image.permute(0, 3, 1, 2))


class Stem(nn.Module):
    def __init__(self, net: HDM):
        super().__init__()
        self.conv0, self.conv1, self.conv2 = net.conv0, net.conv1, net.conv2

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = image.permute(0, 3, 1, 2).to(torch.float32) / 255
        res1 = self.conv1(self.conv0(normalize(x)))
        return res1, self.conv2(res1)


def lean_region_conv(rc: RegionConv, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """``drconv_phy`` region by region: the same per-sample 3×3 convolutions and one-hot selection as
    :meth:`RegionConv.forward`, but never materialising all regions' outputs ([B, 5·C, H, W], plus a
    copy per tap and the masked product): one region's [B, C, H, W] at a time. With one-hot masks the
    sum over regions adds exact zeros, so the result is the same up to the GEMMs' own rounding; the
    trunk's peak memory drops severalfold (docs/memory.md)."""
    b, c, h, w = x.shape
    kernels = rc.region_kernels(x).reshape(b, rc.region_num, c, c, 3, 3)
    out = None
    for r in range(rc.region_num):
        term = per_sample_conv3x3(x, kernels[:, r]).reshape(b, c, h, w) * masks[:, r]
        out = term if out is None else out + term
    return out


class Trunk(nn.Module):
    def __init__(self, net: HDM):
        super().__init__()
        self.FAB, self.dcn_block, self.drconv_phy, self.mix1 = (
            net.FAB,
            net.dcn_block,
            net.drconv_phy,
            net.mix1,
        )

    def forward(self, res2: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        x = self.FAB(res2)
        x = lean_region_conv(self.drconv_phy, self.dcn_block(x), masks)
        x = lean_region_conv(self.drconv_phy, self.dcn_block(x), masks)
        return self.mix1(res2, x)


class Head(nn.Module):
    def __init__(self, net: HDM):
        super().__init__()
        self.deconv1, self.mix2, self.deconv2, self.output = net.deconv1, net.mix2, net.deconv2, net.output

    def forward(self, mixed: torch.Tensor, res1: torch.Tensor) -> torch.Tensor:
        x = self.mix2(res1, self.deconv1(mixed))
        y = self.output(self.deconv2(x)).clamp(0, 1)
        return torch.round(y * 255).to(torch.uint8).permute(0, 2, 3, 1)


def tiled_stages(model: HDM) -> list[TiledStage]:
    """The four stages with their modules, example inputs and dynamic shapes (for ``torch.export``)."""
    net = export_ready(model)
    w = net.config.width
    regions = net.config.regions
    d = torch.export.Dim
    n = d("N", min=1, max=1024)
    h, wd = d("h", min=2, max=4096), d("w", min=2, max=4096)
    big_h, big_w = d("H", min=8, max=16384), d("W", min=8, max=16384)
    return [
        TiledStage(
            name="prior",
            mode="whole",
            inputs={"image": (1.0, NHWC)},
            outputs={"masks": (0.25, MASKS)},
            module=Prior().eval(),
            example=(torch.randint(0, 256, (2, 40, 44, 3), dtype=torch.uint8),),
            dynamic_shapes={"image": {0: n, 1: 4 * h, 2: 4 * wd}},
            uses_functions=True,
        ),
        TiledStage(
            name="stem",
            mode="tiled",
            inputs={"image": (1.0, NHWC)},
            outputs={"res1": (0.5, NCHW), "res2": (0.25, NCHW)},
            module=Stem(net).eval(),
            example=(torch.randint(0, 256, (2, 37, 42, 3), dtype=torch.uint8),),
            dynamic_shapes={"image": {0: n, 1: big_h, 2: big_w}},
        ),
        TiledStage(
            name="trunk",
            mode="whole",
            inputs={"res2": (0.25, NCHW), "masks": (0.25, MASKS)},
            outputs={"mixed": (0.25, NCHW)},
            module=Trunk(net).eval(),
            example=(torch.randn(2, w, 10, 11), torch.rand(2, regions, 1, 10, 11)),
            dynamic_shapes={"res2": {0: n, 2: h, 3: wd}, "masks": {0: n, 3: h, 4: wd}},
        ),
        TiledStage(
            name="head",
            mode="tiled",
            inputs={"mixed": (0.25, NCHW), "res1": (0.5, NCHW)},
            outputs={"enhanced": (1.0, NHWC)},
            module=Head(net).eval(),
            example=(torch.randn(2, w, 10, 11), torch.randn(2, w, 20, 22)),
            dynamic_shapes={"mixed": {0: n, 2: h, 3: wd}, "res1": {0: n, 2: 2 * h, 3: 2 * wd}},
        ),
    ]
