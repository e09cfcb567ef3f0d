"""ADFNet (Shen et al., AAAI 2023) with the published module names, so published state dicts load
strictly; written from the paper and the fact sheet, not copied.

Differences from the published code that do not change the maths:

* the DCNv2 main conv is ``torchvision.ops.deform_conv2d`` (the published CUDA-only extension has the
  same sampling: offset channel 2·(g·9+k) is dy, 2·(g·9+k)+1 dx, zero outside the image), so it runs
  on the CPU and exports to ONNX ``DeformConv``;
* the ``offset_mean > 100`` logging branch is gone (it only logged, and a data-dependent branch
  cannot be traced);
* global/row/column pooling is a ``mean`` (``AdaptiveAvgPool2d((1, 1))`` computes the same);
* the per-pixel dynamic filters run as ``unfold`` (published) or as 9 shifted slices with a
  multiply-accumulate (``shifted``; no 9× feature tensor, equal up to summation order), chosen per
  model with :func:`set_dynamic_filter`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn
from torchvision.ops import deform_conv2d

__all__ = [
    "DYNAMIC_FILTERS",
    "VARIANTS",
    "ADFNet",
    "ADFNetConfig",
    "dynamic_filter",
    "set_dynamic_filter",
]

#: How the per-pixel dynamic filters are computed (``unfold``: the published way).
DYNAMIC_FILTERS = ("unfold", "shifted")
OFFSET_CHANNELS = 32  #: width of the OffsetBlock feature every DCN's offsets are predicted from
OFFSET_GROUPS = 8  #: DCNv2 deformable groups
TAPS = 9  #: 3×3 kernels everywhere


@dataclass(frozen=True)
class ADFNetConfig:
    """``n_colors`` (3: RGB/Real, 1: Gray) and the first-level width (32; 64 for ADFNet-L)."""

    n_colors: int = 3
    width: int = 32

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


#: The published variants: ``rgb`` (ADFNet_RGB and ADFNet_Real), ``gray``, ``L`` (adfnet-L.py).
VARIANTS: dict[str, ADFNetConfig] = {
    "rgb": ADFNetConfig(3, 32),
    "gray": ADFNetConfig(1, 32),
    "L": ADFNetConfig(3, 64),
}


def lrelu() -> nn.LeakyReLU:
    return nn.LeakyReLU(negative_slope=0.2, inplace=True)


def dynamic_filter(x: torch.Tensor, kernel: torch.Tensor, dilation: int, impl: str) -> torch.Tensor:
    """Σ_k x(p + d·Δ_k) · kernel[:, c·9 + k](p) with zero padding: a per-pixel, per-channel 3×3
    filter of dilation ``d``. ``kernel`` is [N, 9·C, H, W] (channel index c·9 + k)."""
    n, c, h, w = x.shape
    kernel = kernel.reshape(n, c, TAPS, h, w)
    if impl == "unfold":
        cols = F.unfold(x, kernel_size=3, dilation=dilation, padding=dilation).reshape(n, c, TAPS, h, w)
        return (cols * kernel).sum(2)
    if impl != "shifted":
        raise ValueError(f"dynamic filter implementation must be one of {DYNAMIC_FILTERS}, got {impl!r}")
    d = dilation
    xp = F.pad(x, (d, d, d, d))
    out = None
    for k in range(TAPS):
        i, j = divmod(k, 3)
        term = xp[:, :, i * d : i * d + h, j * d : j * d + w] * kernel[:, :, k]
        out = term if out is None else out + term
    return out


def set_dynamic_filter(model: nn.Module, impl: str) -> nn.Module:
    """Switch every dynamic filter of ``model`` to ``impl`` (``unfold`` | ``shifted``); returns it."""
    if impl not in DYNAMIC_FILTERS:
        raise ValueError(f"dynamic filter implementation must be one of {DYNAMIC_FILTERS}, got {impl!r}")
    for m in model.modules():
        if isinstance(m, (DyConv, DepthDC)):
            m.impl = impl
    return model


def gate(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return torch.sigmoid(x.mean(dim=dims, keepdim=True)) * 2


class Attention(nn.Module):
    """MFI: channel gate (mean over H, W), then row gate (over C, W) and column gate (over C, H) of
    the channel-gated map; returns the sum of the three gated maps. No parameters."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_hw = gate(x, (2, 3)) * x
        return gate(x_hw, (1, 3)) * x_hw + x_hw + gate(x_hw, (1, 2)) * x_hw


class SEKG(nn.Module):
    """Depthwise 3×3 conv plus an ECA-style Conv1d over the channel axis of the global mean."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv_sa = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels)
        self.conv_ca = nn.Conv1d(1, 1, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = x.mean(dim=(2, 3))  # [N, C]
        ca = self.conv_ca(pooled.unsqueeze(1)).squeeze(1)  # [N, C]
        return self.conv_sa(x) + ca[:, :, None, None]


class AFG(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.sekg = SEKG(channels)
        self.conv = nn.Conv2d(channels, channels * TAPS, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(self.sekg(x))


class DyConv(nn.Module):
    impl = "unfold"

    def __init__(self, channels: int):
        super().__init__()
        self.afg = AFG(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return dynamic_filter(x, self.afg(x), 1, self.impl)


class DCN(nn.Module):
    """``ModulatedDeformConvPack`` with ``extra_offset_mask=True``: called with ``[x, feature]``;
    ``conv_offset_mask`` (32 → 8·27 channels) on the feature gives offsets (first 144 channels,
    i.e. cat(o1, o2)) and the sigmoid modulation mask (last 72)."""

    def __init__(self, channels: int):
        super().__init__()
        self.weight = nn.Parameter(torch.empty(channels, channels, 3, 3))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.conv_offset_mask = nn.Conv2d(OFFSET_CHANNELS, OFFSET_GROUPS * 3 * TAPS, 3, 1, 1)
        stdv = 1.0 / math.sqrt(channels * TAPS)
        nn.init.uniform_(self.weight, -stdv, stdv)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        x, feature = inputs
        o1, o2, m = torch.chunk(self.conv_offset_mask(feature), 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        return deform_conv2d(x, offset, self.weight, self.bias, padding=(1, 1), mask=torch.sigmoid(m))


class OffsetBlock(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.offset_conv1 = nn.Conv2d(channels, OFFSET_CHANNELS, 3, 1, 1)
        self.lrelu = lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lrelu(self.offset_conv1(x))


class RB(nn.Module):
    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.conv3 = nn.Conv2d(c, c, 3, 1, 1)
        self.lrelu = lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv3(self.lrelu(self.conv2(self.conv1(x))))


class CB(nn.Module):
    """MCB: a DCN branch, then dilated 3×3 convs (1, 3, 5), MFI attention, 1×1 fusion, residual."""

    def __init__(self, c: int, mid: int):
        super().__init__()
        self.dcn = nn.Sequential(DCN(c), lrelu(), nn.Conv2d(c, c, 3, 1, 1))
        self.offset = OffsetBlock(c)
        if c != mid:
            self.conv = nn.Conv2d(c, mid, 1)
        self.conv1 = nn.Conv2d(mid, mid, 3, 1, 1, 1)
        self.conv2 = nn.Conv2d(mid, mid, 3, 1, 3, 3)
        self.conv3 = nn.Conv2d(mid, mid, 3, 1, 5, 5)
        self.fusion = nn.Conv2d(4 * mid, c, 1)
        self.lrelu = lrelu()
        self.attention = Attention()
        self.squeeze = c != mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = self.dcn([x, self.offset(x)])
        if self.squeeze:
            x0 = self.conv(x0)
        x1 = self.lrelu(self.conv1(x0))
        x2 = self.lrelu(self.conv2(x0))
        x3 = self.lrelu(self.conv3(x0))
        return self.fusion(self.attention(torch.cat([x0, x1, x2, x3], dim=1))) + x


class DRB(nn.Module):
    """DCB: conv → dynamic conv → LReLU → conv, residual."""

    def __init__(self, c: int):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, 1, 1)
        self.dyconv = DyConv(c)
        self.conv2 = nn.Conv2d(c, c, 3, 1, 1)
        self.lrelu = lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.lrelu(self.dyconv(self.conv1(x))))


class DepthDC(nn.Module):
    """The shared per-pixel kernel applied at one dilation, then a 3×3 conv and LReLU."""

    impl = "unfold"

    def __init__(self, mid: int, dilation: int):
        super().__init__()
        self.dilation = dilation
        self.fuse = nn.Conv2d(mid, mid, 3, 1, 1)
        self.lrelu = lrelu()

    def forward(self, x: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
        return self.lrelu(self.fuse(dynamic_filter(x, kernel, self.dilation, self.impl)))


class DB(nn.Module):
    """MDCB: a DCN → SEKG → 1×1 branch predicts per-pixel kernels, applied at dilations 1, 3, 5."""

    def __init__(self, c: int, mid: int):
        super().__init__()
        if c != mid:
            self.conv = nn.Conv2d(c, mid, 1)
        self.offset = OffsetBlock(c)
        self.generate_kernel = nn.Sequential(DCN(c), lrelu(), SEKG(c), nn.Conv2d(c, mid * TAPS, 1))
        self.branch_1 = DepthDC(mid, 1)
        self.branch_3 = DepthDC(mid, 3)
        self.branch_5 = DepthDC(mid, 5)
        self.fusion = nn.Conv2d(4 * mid, c, 1)
        self.attention = Attention()
        self.squeeze = c != mid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x0 = x
        kernel = self.generate_kernel([x, self.offset(x)])
        if self.squeeze:
            x = self.conv(x)
        x1 = self.branch_1(x, kernel)
        x3 = self.branch_3(x, kernel)
        x5 = self.branch_5(x, kernel)
        return self.fusion(self.attention(torch.cat([x, x1, x3, x5], dim=1))) + x0


class FE(nn.Module):
    def __init__(self, c: int, mid: int):
        super().__init__()
        self.fe = nn.Sequential(RB(c), CB(c, mid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fe(x)


class DFE(nn.Module):
    def __init__(self, c: int, mid: int):
        super().__init__()
        self.fe = nn.Sequential(DRB(c), DB(c, mid))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fe(x)


class ADFNet(nn.Module):
    """The published ``Net``: a 4-level U-Net (widths w, 2w, 4w, 8w) with a global residual.
    H and W must be multiples of 8 (the frame path pads); no clamp inside."""

    def __init__(self, config: ADFNetConfig | None = None):
        super().__init__()
        self.config = config = config or ADFNetConfig()
        n1, n2, n3, n4 = (config.width * m for m in (1, 2, 4, 8))
        self.head = nn.Conv2d(config.n_colors, n1, 3, 1, 1)
        self.fe1 = FE(n1, n1)
        self.down1 = nn.Conv2d(n1, n2, 3, 2, 1)
        self.fe2 = FE(n2, n2)
        self.down2 = nn.Conv2d(n2, n3, 3, 2, 1)
        self.fe3 = FE(n3, n3 // 2)
        self.down3 = nn.Conv2d(n3, n4, 3, 2, 1)
        self.cfe = FE(n4, n4 // 2)
        self.up3 = nn.ConvTranspose2d(n4, n3, 6, 2, 2)
        self.dfe3 = DFE(n3, n3 // 2)
        self.up2 = nn.ConvTranspose2d(n3, n2, 6, 2, 2)
        self.dfe2 = DFE(n2, n2)
        self.up1 = nn.ConvTranspose2d(n2, n1, 6, 2, 2)
        self.dfe1 = DFE(n1, n1)
        self.tail = nn.Conv2d(n1, config.n_colors, 3, 1, 1)
        self.lrelu = lrelu()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        conv1 = self.fe1(self.head(x))
        conv2 = self.fe2(self.lrelu(self.down1(conv1)))
        conv3 = self.fe3(self.lrelu(self.down2(conv2)))
        cfe = self.cfe(self.lrelu(self.down3(conv3)))
        d3 = self.dfe3(self.up3(cfe) + conv3)
        d2 = self.dfe2(self.up2(d3) + conv2)
        d1 = self.dfe1(self.up1(d2) + conv1)
        return self.tail(d1) + x
