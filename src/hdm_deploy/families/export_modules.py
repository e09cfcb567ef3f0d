"""Torch modules that make a family's network exportable with dynamic H, W (shared by every family).

:func:`export_ready` copies a network and swaps ``AdaptiveAvgPool2d`` for shape-generic
equivalents: with dynamic H, W torch decomposes adaptive pooling into index tensors, GatherND and
masked fills; a 1×1 pool is a mean, and an n×n pool is a product with two small averaging matrices
built from PyTorch's bin edges (same bins, same result to float rounding).
"""

from __future__ import annotations

import copy

import torch
from torch import nn

__all__ = ["BinnedMean", "GlobalMean", "export_ready"]


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


def export_ready(model: nn.Module) -> nn.Module:
    """A copy of ``model`` (eval, fp32, CPU) with shape-generic pooling; same weights, same maths."""
    clone = copy.deepcopy(model).float().cpu().eval()
    _swap_pools(clone)
    for p in clone.parameters():
        p.requires_grad_(False)
    return clone
