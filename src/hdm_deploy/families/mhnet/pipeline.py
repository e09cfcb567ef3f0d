"""MHNet's frame path in PyTorch, for the runner and as the exported graph.

    uint8 RGB frames [N,H,W,3] → float /255 (``TF.to_tensor``, as the published test script)
      → reflect-pad bottom/right to multiples of 16 → MHNet → final stage (``restored[0]``)
      → crop back to H×W → clamp [0,1] → round half to even → uint8

Why pad outside the network: stage 1 zero-pads its own input to ×16, but ``concat12`` joins it with the
*unpadded* shallow features, so the published network fails on any side not divisible by 16 (the
published numbers were all measured on such sizes: GoPro/HIDE 1280×720, Rain100 480×320). The
published code's only external padding (the original RealBlur deblur test) is reflection at the
bottom/right, cropped back afterwards; we use the same mode to ×16 (the multiple the network needs;
×8 would still fail). For multiple-of-16 sizes nothing is padded: exactly the published computation,
with stage 1's internal zero-pad a no-op. The internal padding stays in the network as published.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from hdm_deploy.core.contracts import IO_KINDS
from hdm_deploy.core.runner import Prediction, check_frames, pad_to_multiple, quantize
from hdm_deploy.families.mhnet.family import MIN_SIDE, PAD_MULTIPLE
from hdm_deploy.families.mhnet.model import MHNet

__all__ = ["FramePath", "restore"]


@torch.inference_mode()
def restore(model: MHNet, frames: np.ndarray) -> Prediction:
    """Restore uint8 RGB frames [N,H,W,3] (or one [H,W,3] frame) with the final MHNet stage."""
    frames = check_frames(frames, MIN_SIDE)
    device = next(model.parameters()).device
    padded, (h, w) = pad_to_multiple(frames, PAD_MULTIPLE)
    x = torch.from_numpy(np.require(padded, requirements="W")).to(device).permute(0, 3, 1, 2).float().div(255)
    y = model.restore(x)[:, :, :h, :w].clamp(0, 1)
    y_np = y.float().cpu().numpy()
    return Prediction(image=quantize(y_np), image_float=y_np)


class FramePath(nn.Module):
    """The exported signature: uint8 NHWC frames (or float NCHW in [0,1]) → (enhanced,)."""

    def __init__(self, net: MHNet, io: str = "uint8"):
        super().__init__()
        if io not in IO_KINDS:
            raise ValueError(f"io must be one of {IO_KINDS}, got {io!r}")
        self.net = net
        self.io = io

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor]:
        x = image.permute(0, 3, 1, 2).to(torch.float32) / 255 if self.io == "uint8" else image
        h, w = x.shape[2], x.shape[3]
        pad_h = (h + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE - h
        pad_w = (w + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE - w
        x = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
        y = self.net.restore(x)[:, :, :h, :w].clamp(0, 1)
        if self.io == "uint8":
            y = torch.round(y * 255).to(torch.uint8).permute(0, 2, 3, 1)
        return (y,)
