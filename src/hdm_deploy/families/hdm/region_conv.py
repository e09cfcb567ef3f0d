"""Region-level dynamic convolution (HDM §3.2, ``DRConv2d_phy``).

A small head turns the 3×3-pooled input into 5 per-sample 3×3 kernels; every pixel's output is the
convolution with the kernel of the region its DCP mask assigns it to.

The published code convolves each sample with its own kernels through one grouped convolution with
``groups = batch``. That bakes the batch size into the graph, so here the per-sample convolution is
nine batched matrix products over shifted views of the input (one per kernel tap): standard
``Slice``/``MatMul``/``Add`` in ONNX, valid for any batch size, and no C·9·H·W im2col buffer.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def kernel_generator(channels: int, regions: int, kernel_size: int = 3) -> nn.Sequential:
    """``conv_kernel``: pool to k×k → 1×1 conv to regions² → sigmoid → grouped 1×1 conv to regions·C·C."""
    return nn.Sequential(
        nn.AdaptiveAvgPool2d((kernel_size, kernel_size)),
        nn.Conv2d(channels, regions * regions, 1),
        nn.Sigmoid(),
        nn.Conv2d(regions * regions, regions * channels * channels, 1, groups=regions),
    )


def per_sample_conv3x3(x: torch.Tensor, kernels: torch.Tensor) -> torch.Tensor:
    """Convolve sample b of ``x`` [B,C,H,W] with its own filters ``kernels`` [B,K,C,3,3] (stride 1, pad 1).

    Returns [B,K,H,W]. Tap (i,j) contributes kernels[:,:,:,i,j] @ x_shifted(i,j).
    """
    b, c, h, w = x.shape
    k = kernels.shape[1]
    taps = kernels.reshape(b, k, c, 9)
    xp = F.pad(x, (1, 1, 1, 1))
    out = None
    for t in range(9):
        i, j = divmod(t, 3)
        shifted = xp[:, :, i : i + h, j : j + w].reshape(b, c, h * w)
        term = torch.matmul(taps[..., t], shifted)
        out = term if out is None else out + term
    return out.reshape(b, k, h, w)


class RegionConv(nn.Module):
    """``drconv_phy``: per-sample region kernels, selected per pixel by the (one-hot) DCP masks."""

    def __init__(self, channels: int, regions: int = 5):
        super().__init__()
        self.channels = channels
        self.region_num = regions
        self.conv_kernel = kernel_generator(channels, regions)

    def region_kernels(self, x: torch.Tensor) -> torch.Tensor:
        """[B, regions·C, C, 3, 3]: output channel r·C + o of region r reads input channel i."""
        c = self.channels
        return self.conv_kernel(x).reshape(x.shape[0], self.region_num * c, c, 3, 3)

    def forward(self, x: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
        """``masks``: [B, regions, 1, H, W], one-hot over regions (the DCP intervals)."""
        b, c, h, w = x.shape
        per_region = per_sample_conv3x3(x, self.region_kernels(x)).reshape(b, self.region_num, c, h, w)
        return (per_region * masks).sum(dim=1)


class LearnedRegionConv(RegionConv):
    """``drconv``: DRConv with a learned guide (argmax of a 3×3 conv) instead of DCP masks.

    The published network builds it but never calls it; it exists so that published checkpoints
    load strictly, and its forward is here so the module is not a dead shell.
    """

    def __init__(self, channels: int, regions: int = 5):
        super().__init__(channels, regions)
        self.conv_guide = nn.Conv2d(channels, regions, 3, padding=1)

    def forward(self, x: torch.Tensor, masks: torch.Tensor | None = None) -> torch.Tensor:
        if masks is None:
            guide = self.conv_guide(x)
            masks = (
                F.one_hot(guide.argmax(dim=1), self.region_num).permute(0, 3, 1, 2).unsqueeze(2).to(x.dtype)
            )
        return super().forward(x, masks)
