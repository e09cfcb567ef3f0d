"""FFA-style feature attention blocks that HDM's backbone (``FAB``) is made of."""

from __future__ import annotations

import torch
from torch import nn


def conv3x3(channels: int) -> nn.Conv2d:
    return nn.Conv2d(channels, channels, 3, padding=1, bias=True)


class ChannelAttention(nn.Module):
    """``calayer``: squeeze to 1×1, bottleneck by 8, sigmoid gate per channel."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.ca = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, channels, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.ca(self.avg_pool(x))


class PixelAttention(nn.Module):
    """``palayer``: a per-pixel sigmoid gate shared by all channels."""

    def __init__(self, channels: int, reduction: int = 8):
        super().__init__()
        self.pa = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels // reduction, 1, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.pa(x)


class Block(nn.Module):
    """r = relu(conv1(x)) + x → conv2 → channel attention → pixel attention → + x."""

    def __init__(self, channels: int):
        super().__init__()
        self.conv1 = conv3x3(channels)
        self.act1 = nn.ReLU(inplace=True)
        self.conv2 = conv3x3(channels)
        self.calayer = ChannelAttention(channels)
        self.palayer = PixelAttention(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        r = self.act1(self.conv1(x)) + x
        r = self.palayer(self.calayer(self.conv2(r)))
        return r + x


class Group(nn.Module):
    """``blocks`` Blocks and a 3×3 conv, with a skip over the whole group (``gp`` holds the layers)."""

    def __init__(self, channels: int, blocks: int):
        super().__init__()
        self.gp = nn.Sequential(*[Block(channels) for _ in range(blocks)], conv3x3(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.gp(x) + x


class Mix(nn.Module):
    """Learned blend of a skip feature and the decoder feature: a·σ(w) + b·(1 − σ(w))."""

    def __init__(self, init: float):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([float(init)]))

    def forward(self, skip: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        f = torch.sigmoid(self.w)
        return skip * f + x * (1 - f)


class UpBlock(nn.Sequential):
    """×2 transposed conv, then a (left 1, top 1) reflection pad and a 2×2 stride-1 average (anti-checkerboard)."""

    def __init__(self, channels: int):
        super().__init__(
            nn.ConvTranspose2d(channels, channels, 4, stride=2, padding=1),
            nn.ReflectionPad2d((1, 0, 1, 0)),
            nn.AvgPool2d(2, stride=1),
            nn.ReLU(inplace=True),
        )
