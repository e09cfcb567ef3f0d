"""HDM (Liang et al., ACM MM 2022): the published ``DR_Net_phy`` with its state-dict names.

    x ─ conv0 ─ conv1 (↓2, = res1) ─ conv2 (↓2, = res2) ─ FAB (3 groups × 9 blocks)
      ─ [dcn_block → drconv_phy(masks)] × 2, shared weights ─ mix1(res2, ·)
      ─ deconv1 (↑2) ─ mix2(res1, ·) ─ deconv2 (↑2) ─ output (3 convs 5×5, tanh)

Input: RGB normalised with ``MEAN``/``STD``; masks: [B, 5, 1, H/4, W/4] from the DCP prior.
H and W must be multiples of 4 (use :func:`hdm_deploy.families.hdm.pipeline.enhance` for other sizes).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from hdm_deploy.families.hdm.blocks import Group, Mix, UpBlock
from hdm_deploy.families.hdm.deform import DCNBlock
from hdm_deploy.families.hdm.region_conv import LearnedRegionConv, RegionConv

#: The published normalisation (``transforms.Normalize``) applied to RGB in [0, 1].
MEAN = (0.64, 0.6, 0.58)
STD = (0.14, 0.15, 0.152)
#: Initial ``Mix`` weights of the published code (mix3/mix4 are built but unused).
MIX_INIT = (-1.0, -0.6, -0.5, -0.5)


@dataclass(frozen=True)
class HDMConfig:
    """Network size. Defaults are the published model; tests use small widths for speed."""

    width: int = 64
    groups: int = 3
    blocks: int = 9
    regions: int = 5

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


class HDM(nn.Module):
    def __init__(self, config: HDMConfig | None = None):
        super().__init__()
        cfg = config or HDMConfig()
        if cfg.width % 8:
            raise ValueError(
                f"width must be a multiple of 8 (attention bottlenecks divide by 8), got {cfg.width}"
            )
        self.config = cfg
        w = cfg.width
        # Registration order = the published state-dict order, so saved checkpoints diff cleanly.
        self.conv0 = nn.Sequential(nn.Conv2d(3, w, 5, 1, 2), nn.ReLU(inplace=True))
        self.conv1 = nn.Sequential(nn.Conv2d(w, w, 3, 1, 1), nn.Conv2d(w, w, 3, 2, 1), nn.ReLU(inplace=True))
        self.conv2 = nn.Sequential(nn.Conv2d(w, w, 3, 1, 1), nn.Conv2d(w, w, 3, 2, 1), nn.ReLU(inplace=True))
        self.FAB = nn.Sequential(*[Group(w, cfg.blocks) for _ in range(cfg.groups)], nn.ReLU(inplace=True))
        self.deconv1 = UpBlock(w)
        self.deconv2 = UpBlock(w)
        self.output = nn.Sequential(
            nn.Conv2d(w, w, 5, 1, 2), nn.Conv2d(w, w, 5, 1, 2), nn.Conv2d(w, 3, 5, 1, 2), nn.Tanh()
        )
        self.drconv = LearnedRegionConv(w, cfg.regions)  # unused by forward, kept for checkpoints
        self.drconv_phy = RegionConv(w, cfg.regions)
        self.dcn_block = DCNBlock(w)
        self.mix1, self.mix2, self.mix3, self.mix4 = (Mix(m) for m in MIX_INIT)

    def forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        res1 = self.conv1(self.conv0(x))
        res2 = self.conv2(res1)
        x = self.FAB(res2)
        # The same deformable conv and region conv run twice (shared weights), as published.
        x = self.drconv_phy(self.dcn_block(x), masks)
        x = self.drconv_phy(self.dcn_block(x), masks)
        x = self.mix1(res2, x)
        x = self.mix2(res1, self.deconv1(x))
        return self.output(self.deconv2(x))

    def used_parameter_count(self) -> int:
        unused = {"drconv", "mix3", "mix4"}
        return sum(p.numel() for n, p in self.named_parameters() if n.split(".")[0] not in unused)


def normalize(rgb01: torch.Tensor) -> torch.Tensor:
    """[B,3,H,W] RGB in [0,1] → network input; same arithmetic as torchvision's ``Normalize``."""
    mean = torch.tensor(MEAN, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    std = torch.tensor(STD, dtype=rgb01.dtype, device=rgb01.device).view(1, 3, 1, 1)
    return (rgb01 - mean) / std
