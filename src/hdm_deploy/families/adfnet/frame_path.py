"""The whole ADFNet frame path as one torch module — the thing that is exported.

    image (uint8 NHWC RGB, or float NCHW in [0,1])
      → (Gray models: channel 0; the runners refuse colour frames for them)
      → /255 → reflect-pad bottom/right to multiples of 8 → ADFNet → crop back → clamp [0,1]
      → (Gray: repeated on three channels) → round half to even → uint8 NHWC (or the float NCHW)

It computes what :func:`hdm_deploy.families.adfnet.pipeline.enhance` does with the clean protocol,
with the dynamic filters in the formulation the export plan chose.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

from hdm_deploy.core.contracts import IO_KINDS
from hdm_deploy.families.adfnet.model import ADFNet, set_dynamic_filter
from hdm_deploy.families.adfnet.pipeline import pad_crop_forward

__all__ = ["FramePath", "export_copy"]


def export_copy(model: ADFNet, dynamic_filter: str) -> ADFNet:
    """A frozen fp32 CPU copy of ``model`` with the chosen dynamic-filter formulation."""
    clone = copy.deepcopy(model).float().cpu().eval()
    for p in clone.parameters():
        p.requires_grad_(False)
    return set_dynamic_filter(clone, dynamic_filter)


class FramePath(nn.Module):
    """uint8 frames (or float NCHW) → (enhanced,), the exported graph's signature."""

    def __init__(self, net: ADFNet, io: str = "uint8"):
        super().__init__()
        if io not in IO_KINDS:
            raise ValueError(f"io must be one of {IO_KINDS}, got {io!r}")
        self.net = net
        self.io = io
        self.grey = net.config.n_colors == 1

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor]:
        # cast before any other op touches the uint8 tensor (TensorRT takes UINT8 only as I/O behind a Cast)
        x = image.to(torch.float32).permute(0, 3, 1, 2) / 255 if self.io == "uint8" else image
        if self.grey:
            x = x[:, :1]
        y = pad_crop_forward(self.net, x)
        if self.grey:
            y = y.expand(-1, 3, -1, -1)
        if self.io == "uint8":
            y = torch.round(y * 255).permute(0, 2, 3, 1).to(torch.uint8)
        return (y,)
