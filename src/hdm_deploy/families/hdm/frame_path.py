"""The whole frame path as one torch module, the thing that is exported.

    image (uint8 NHWC, or float NCHW in [0,1])
      → reflect-pad bottom/right to multiples of 4 → DCP masks of the padded uint8 frame
      → /255, normalise (``models.hdm.normalize``) → HDM → crop back → clamp [0,1]
      → round half to even → uint8 NHWC (or the clamped float NCHW)

It computes exactly what :func:`hdm_deploy.models.pipeline.enhance` does with ``masks="torch"``
(same padding, same arithmetic, same rounding), but on tensors, so ``torch.export`` sees it all.

:func:`export_ready` copies the network and swaps ``AdaptiveAvgPool2d`` for shape-generic
equivalents: with dynamic H, W torch decomposes adaptive pooling into index tensors, GatherND and
masked fills; a 1×1 pool is a mean, and the 3×3 pool of the region-kernel head is a product with
two small averaging matrices built from PyTorch's bin edges (same bins, same result to float
rounding).
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn

from hdm_deploy.families.hdm.dcp.export_op import dcp_masks
from hdm_deploy.families.hdm.model import HDM, normalize

IO_KINDS = ("uint8", "float")
PAD_MULTIPLE = 4


class GlobalMean(nn.Module):
    """``AdaptiveAvgPool2d(1)`` for any H, W (ONNX ``ReduceMean`` over H, W)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3), keepdim=True)


class BinnedMean(nn.Module):
    """``AdaptiveAvgPool2d((bins, bins))`` for any H, W: PyTorch's bins (rows floor(i·H/b) …
    ceil((i+1)·H/b) − 1) as two 0/1 bin matrices, pooled = (B_H · x · B_Wᵀ) / bin sizes.

    The bin edges are tensors, not Python sizes, so torch.export needs no symbolic floor-division
    reasoning (its solver fails on that) and the graph has no data-dependent slices.
    """

    def __init__(self, bins: int):
        super().__init__()
        self.bins = bins

    def bin_matrix(self, size, like: torch.Tensor) -> torch.Tensor:
        idx = torch.arange(size, device=like.device).to(torch.float32)
        scaled = torch.arange(self.bins + 1, device=like.device).to(torch.float32) * size / self.bins
        # floor/ceil of i·size/bins: exact in float32 (a non-integer quotient is ≥ 1/bins from one)
        start, end = torch.floor(scaled[:-1]), torch.ceil(scaled[1:])
        inside = (idx[None, :] >= start[:, None]) & (idx[None, :] < end[:, None])
        return inside.to(like.dtype)  # [bins, size], 0/1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        rows = self.bin_matrix(x.shape[2], x)
        cols = self.bin_matrix(x.shape[3], x)
        sums = torch.matmul(torch.matmul(rows, x), cols.transpose(0, 1))
        counts = rows.sum(dim=1)[:, None] * cols.sum(dim=1)[None, :]
        return sums / counts


def _swap_pools(module: nn.Module) -> None:
    for name, child in module.named_children():
        if isinstance(child, nn.AdaptiveAvgPool2d):
            size = child.output_size
            size = (size, size) if isinstance(size, int) else tuple(size)
            if size == (1, 1):
                setattr(module, name, GlobalMean())
            elif size[0] == size[1] and size[0] is not None:
                setattr(module, name, BinnedMean(size[0]))
        else:
            _swap_pools(child)


def export_ready(model: HDM) -> HDM:
    """A copy of ``model`` (eval, fp32, CPU) with shape-generic pooling; same weights, same maths."""
    clone = copy.deepcopy(model).float().cpu().eval()
    _swap_pools(clone)
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone


class FramePath(nn.Module):
    """uint8 frames (or float NCHW) → (enhanced, masks), the exported graph's signature."""

    def __init__(self, net: HDM, io: str = "uint8"):
        super().__init__()
        if io not in IO_KINDS:
            raise ValueError(f"io must be one of {IO_KINDS}, got {io!r}")
        self.net = net
        self.io = io

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        # uint8: 0…255 as exact floats; float: already NCHW in [0, 1]
        x = image.permute(0, 3, 1, 2).to(torch.float32) if self.io == "uint8" else image
        h, w = x.shape[2], x.shape[3]
        pad_h = (h + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE - h
        pad_w = (w + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE - w
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        if self.io == "uint8":
            frame8 = x.to(torch.uint8)
            x01 = x / 255
        else:
            frame8 = torch.round(x.clamp(0, 1) * 255).to(torch.uint8)
            x01 = x
        masks = dcp_masks(frame8)
        y = self.net(normalize(x01), masks)[:, :, :h, :w].clamp(0, 1)
        if self.io == "uint8":
            y = torch.round(y * 255).to(torch.uint8).permute(0, 2, 3, 1)
        return y, masks
