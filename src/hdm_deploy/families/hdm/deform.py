"""DCNv2 modulated deformable convolution with the published ``dcn_v2.DCN`` parameter layout,
computed by ``torchvision.ops.deform_conv2d`` (no CUDA extension; runs on CPU and CUDA, and the
dynamo ONNX exporter maps it to the standard ``DeformConv`` op)."""

from __future__ import annotations

import math

import torch
from torch import nn
from torchvision.ops import deform_conv2d


class ModulatedDeformConv2d(nn.Module):
    """``dcn_v2.DCN``: a plain conv predicts 3·k² channels → (y/x offsets, sigmoid modulation mask).

    Offset channel 2k is the row (y) shift of kernel tap k = i·kw + j and 2k+1 the column (x)
    shift — DCNv2's layout, which torchvision and ONNX ``DeformConv`` share, so no permutation is
    needed anywhere.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, padding: int = 1):
        super().__init__()
        self.kernel_size = kernel_size
        self.padding = padding
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.empty(out_channels))
        taps = kernel_size * kernel_size
        self.conv_offset_mask = nn.Conv2d(in_channels, 3 * taps, kernel_size, padding=padding, bias=True)
        self.reset_parameters()

    def reset_parameters(self) -> None:
        # DCNv2's initialisation: uniform weights, zero bias, zero offsets (a plain conv at start).
        stdv = 1.0 / math.sqrt(self.weight.shape[1] * self.kernel_size**2)
        nn.init.uniform_(self.weight, -stdv, stdv)
        nn.init.zeros_(self.bias)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def offsets_and_mask(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        o1, o2, m = torch.chunk(self.conv_offset_mask(x), 3, dim=1)
        return torch.cat((o1, o2), dim=1), torch.sigmoid(m)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        offset, mask = self.offsets_and_mask(x)
        return deform_conv2d(x, offset, self.weight, self.bias, padding=self.padding, mask=mask)


class DCNBlock(nn.Module):
    """Holds the deformable conv under the published name ``dcn_block.dcn``."""

    def __init__(self, channels: int):
        super().__init__()
        self.dcn = ModulatedDeformConv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.dcn(x)
