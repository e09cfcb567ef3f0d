"""The whole frame path as one torch module, the thing that is exported.

    image (uint8 NHWC, or float NCHW in [0,1])
      → reflect-pad bottom/right to multiples of 4 → DCP masks of the padded uint8 frame
      → /255, normalise (``families.hdm.model.normalize``) → HDM → crop back → clamp [0,1]
      → round half to even → uint8 NHWC (or the clamped float NCHW)

It computes exactly what :func:`hdm_deploy.families.hdm.pipeline.enhance` does with ``masks="torch"``
(same padding, same arithmetic, same rounding), but on tensors, so ``torch.export`` sees it all.

The network is traced as :func:`~hdm_deploy.families.export_modules.export_ready` returns it
(shape-generic pooling).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from hdm_deploy.core.contracts import IO_KINDS
from hdm_deploy.families.export_modules import export_ready
from hdm_deploy.families.hdm.dcp.export_op import dcp_masks
from hdm_deploy.families.hdm.family import PAD_MULTIPLE
from hdm_deploy.families.hdm.model import HDM, normalize

__all__ = ["FramePath", "export_ready"]


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
