"""HDM split into the stages of the exact memory-bounded path (torch side of ``export --tiled``).

    prior         (whole) uint8 frame, padded to ×4 ─ DCP ───────────────────────────→ masks (1/4)
    stem          (tiles) uint8 tile ─ /255, normalise ─ conv0 ─ conv1 → res1 (1/2) ─ conv2 → res2 (1/4)
    trunk_fab     (whole) res2 ─ FAB → fab; dcn offsets/modulation of fab → offset1, modulation1
    dcn1          (tiles) fab, offset1, modulation1 ─ DeformConv → deformed1
    trunk_region1 (whole) deformed1, masks ─ region conv → region1; offsets → offset2, modulation2
    dcn2          (tiles) region1, offset2, modulation2 ─ DeformConv → deformed2
    trunk_out     (whole) deformed2, masks, res2 ─ region conv ─ mix1(res2, ·) → mixed (1/4)
    head          (tiles) mixed, res1 ─ deconv1 ─ mix2(res1, ·) ─ deconv2 ─ output ─ clamp, round → uint8

Everything global (the DCP prior's atmospheric light and thresholds, the channel attentions'
pooling, the region conv's kernel generator) is in a ``whole`` stage. ``stem`` and ``head`` are
convolutions, transposed convolutions, a reflection pad, a 2×2 average and pointwise ops: their
halos are computed from the exported graphs (:func:`hdm_deploy.graph.receptive.stage_halo`). The
deformable convs run in tiles too: their static reach comes from the same walk, and the runtime grows
each tile's halo by the largest displacement of the offsets inside that tile (``displacement``), which
is exact for any offsets. The trunk is split at the deformable convs because ONNX Runtime's
``DeformConv`` on the whole 1/4 map was the trunk's largest allocation (docs/memory.md).

Each stage computes what :class:`~.frame_path.FramePath` computes for its part, operation for
operation (same normalisation, same clamp and round-half-even), so the stitched result equals the
whole-frame graph up to float summation order.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

from hdm_deploy.families.base import TiledStage
from hdm_deploy.families.export_modules import export_ready
from hdm_deploy.families.hdm.dcp.export_op import dcp_masks
from hdm_deploy.families.hdm.model import HDM, normalize
from hdm_deploy.families.hdm.region_conv import RegionConv

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
    """``drconv_phy`` tap by tap: the same per-sample 3×3 products as :meth:`RegionConv.forward`, but
    with the kernel tap as the outer loop, so only one shifted copy of ``x`` is alive at a time (the
    region-outer order kept all nine alive across the regions: 2.3 KB per 1/4-res pixel) and all
    regions accumulate into one tensor, each product masked by its region. With one-hot masks a
    pixel receives exactly its region's nine products in tap order, plus exact zeros: the same sums
    as the whole graph up to the GEMMs' own rounding (docs/memory.md)."""
    b, c, h, w = x.shape
    kernels = rc.region_kernels(x).reshape(b, rc.region_num, c, c, 9)
    xp = F.pad(x, (1, 1, 1, 1))
    out = None
    for t in range(9):
        i, j = divmod(t, 3)
        shifted = xp[:, :, i : i + h, j : j + w].reshape(b, c, h * w)
        for r in range(rc.region_num):
            term = torch.matmul(kernels[:, r, :, :, t], shifted).reshape(b, c, h, w) * masks[:, r]
            out = term if out is None else out + term
    return out


class TrunkFAB(nn.Module):
    """FAB, then the first deformable conv's offsets and modulation (local, whole map)."""

    def __init__(self, net: HDM):
        super().__init__()
        self.FAB, self.dcn = net.FAB, net.dcn_block.dcn

    def forward(self, res2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.FAB(res2)
        offset, mask = self.dcn.offsets_and_mask(x)
        return x, offset, mask


class Deform(nn.Module):
    """The deformable conv alone (run in tiles whose halo follows the offsets at run time)."""

    def __init__(self, net: HDM):
        super().__init__()
        self.dcn = net.dcn_block.dcn

    def forward(self, x: torch.Tensor, offset: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        d = self.dcn
        return deform_conv2d(x, offset, d.weight, d.bias, padding=d.padding, mask=mask)


class TrunkRegion(nn.Module):
    """Region conv (global kernel generator + per-pixel region selection), then the next deformable
    conv's offsets and modulation."""

    def __init__(self, net: HDM):
        super().__init__()
        self.drconv_phy, self.dcn = net.drconv_phy, net.dcn_block.dcn

    def forward(
        self, deformed1: torch.Tensor, masks: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = lean_region_conv(self.drconv_phy, deformed1, masks)
        offset, mask = self.dcn.offsets_and_mask(x)
        return x, offset, mask


class TrunkOut(nn.Module):
    def __init__(self, net: HDM):
        super().__init__()
        self.drconv_phy, self.mix1 = net.drconv_phy, net.mix1

    def forward(self, deformed2: torch.Tensor, masks: torch.Tensor, res2: torch.Tensor) -> torch.Tensor:
        return self.mix1(res2, lean_region_conv(self.drconv_phy, deformed2, masks))


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

    def deform_stage(name: str, x: str, offset: str, mask: str, out: str) -> TiledStage:
        # tiles whose halo is the conv's reach plus the offsets' largest displacement in the tile,
        # measured at run time (exact for any offsets); channel 2k / 2k+1 = row / column shift of tap k
        return TiledStage(
            name=name,
            mode="tiled",
            inputs={x: (0.25, NCHW), offset: (0.25, NCHW), mask: (0.25, NCHW)},
            outputs={out: (0.25, NCHW)},
            module=Deform(net).eval(),
            example=(torch.randn(2, w, 10, 11), torch.randn(2, 18, 10, 11), torch.rand(2, 9, 10, 11)),
            dynamic_shapes=({0: n, 2: h, 3: wd},) * 3,
            displacement={"tensor": offset, "inputs": [x], "rows": [0, 2], "cols": [1, 2]},
        )

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
            name="trunk_fab",
            mode="whole",
            inputs={"res2": (0.25, NCHW)},
            outputs={"fab": (0.25, NCHW), "offset1": (0.25, NCHW), "modulation1": (0.25, NCHW)},
            module=TrunkFAB(net).eval(),
            example=(torch.randn(2, w, 10, 11),),
            dynamic_shapes={"res2": {0: n, 2: h, 3: wd}},
        ),
        deform_stage("dcn1", "fab", "offset1", "modulation1", "deformed1"),
        TiledStage(
            name="trunk_region1",
            mode="whole",
            inputs={"deformed1": (0.25, NCHW), "masks": (0.25, MASKS)},
            outputs={"region1": (0.25, NCHW), "offset2": (0.25, NCHW), "modulation2": (0.25, NCHW)},
            module=TrunkRegion(net).eval(),
            program_order=True,
            example=(torch.randn(2, w, 10, 11), torch.rand(2, regions, 1, 10, 11)),
            dynamic_shapes={"deformed1": {0: n, 2: h, 3: wd}, "masks": {0: n, 3: h, 4: wd}},
        ),
        deform_stage("dcn2", "region1", "offset2", "modulation2", "deformed2"),
        TiledStage(
            name="trunk_out",
            mode="whole",
            inputs={"deformed2": (0.25, NCHW), "masks": (0.25, MASKS), "res2": (0.25, NCHW)},
            outputs={"mixed": (0.25, NCHW)},
            module=TrunkOut(net).eval(),
            program_order=True,
            example=(torch.randn(2, w, 10, 11), torch.rand(2, regions, 1, 10, 11), torch.randn(2, w, 10, 11)),
            dynamic_shapes={
                "deformed2": {0: n, 2: h, 3: wd},
                "masks": {0: n, 3: h, 4: wd},
                "res2": {0: n, 2: h, 3: wd},
            },
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
