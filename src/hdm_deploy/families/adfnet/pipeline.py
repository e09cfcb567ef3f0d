"""The ADFNet frame path in PyTorch, and the published test protocol.

Clean path (the default; what the exported graph computes): uint8 RGB frames → /255 → reflect-pad
bottom/right to multiples of 8 → network → crop back → clamp [0, 1] → round half to even → uint8.
A Gray model takes frames whose three channels are equal (a greyscale image as ``image_io`` reads
it) and sees one channel; its output is repeated on three channels. A colour frame given to a Gray
model is refused (:func:`check_grey`): convert it yourself if grey output is what you want.

Published protocol (``protocol="published"``, to reproduce published numbers; ``ADFNet_RGB/test.py``
and ``ADFNet_Gray/test.py``):

* RGB/L: the network sees **BGR** (``cv2.imread(f, cv2.COLOR_BGR2RGB)`` passes the constant as an
  imread flag, so the image stays BGR); reflect-pad to ×8; the 4-quadrant :func:`forward_chop`
  (``min_size`` 4,000,000) with hard seams; clamp; crop.
* Gray: no padding; :func:`forward_chop` with ``min_size`` 400,000 (its quadrants are multiples of
  8, which is why the published Gray test needs no padding); clamp.
* ``self_ensemble``: the ×8 flip/rot90 ensemble (``test_x8``, KAIR modes 0–7) inside each quadrant.

The quadrants give different outputs from the whole image (the network pools globally, per row and
per column), so this path is not the clean path; it is offered for the PyTorch runner only.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from hdm_deploy.core.errors import InputImageError
from hdm_deploy.core.runner import Prediction, check_frames, check_grey_frames, quantize
from hdm_deploy.families.adfnet.family import MIN_SIDE, PAD_MULTIPLE
from hdm_deploy.families.adfnet.model import ADFNet

__all__ = [
    "PROTOCOLS",
    "check_grey",
    "enhance",
    "forward_chop",
    "pad_crop_forward",
    "published_forward",
    "self_ensemble",
]

PROTOCOLS = ("clean", "published")
#: ``forward_chop``'s ``min_size`` in the published RGB and Gray tests
CHOP_MIN_SIZE_RGB = 4_000_000
CHOP_MIN_SIZE_GRAY = 400_000


def check_grey(frames: np.ndarray) -> None:
    """A Gray model takes frames with three equal channels; anything else is a one-line error."""
    check_grey_frames(frames)


def pad_crop_forward(net: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Reflect-pad [N,C,H,W] bottom/right to multiples of 8, run, crop back, clamp to [0, 1]."""
    h, w = x.shape[2], x.shape[3]
    pad_h = (h + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE - h
    pad_w = (w + PAD_MULTIPLE - 1) // PAD_MULTIPLE * PAD_MULTIPLE - w
    xp = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    return net(xp)[:, :, :h, :w].clamp(0, 1)


def _augment(x: torch.Tensor, mode: int) -> torch.Tensor:
    """KAIR ``augment_img`` modes 0–7 on the (H, W) axes of [N,C,H,W] (np.rot90 = torch.rot90 on dims 2,3)."""
    rot = {0: 0, 1: 1, 2: 0, 3: 3, 4: 2, 5: 1, 6: 2, 7: 3}[mode]
    y = torch.rot90(x, rot, dims=(2, 3)) if rot else x
    return torch.flip(y, dims=(2,)) if mode in (1, 2, 4, 7) else y


def self_ensemble(net, x: torch.Tensor) -> torch.Tensor:
    """``test_x8``: mean of the 8 augmented outputs mapped back (modes 3 and 5 are each other's inverse)."""
    outs = []
    for mode in range(8):
        y = net(_augment(x, mode))
        outs.append(_augment(y, {3: 5, 5: 3}.get(mode, mode)))
    return torch.stack(outs, dim=0).mean(dim=0)


def forward_chop(x: torch.Tensor, net, *, min_size: int, ensemble: bool = False) -> torch.Tensor:
    """The published 4-quadrant chop: quadrants of (⌊h/2⌋//8)·8 + 24 rows (columns alike) anchored at
    the corners; each fills its own half of the output (hard seams); recursion while a quadrant has
    at least ``min_size`` pixels."""
    b, _, h, w = x.shape
    h_half, w_half = h // 2, w // 2
    h_size, w_size = (h_half // 8) * 8 + 24, (w_half // 8) * 8 + 24
    if h_size > h or w_size > w:
        raise InputImageError(
            f"the published forward_chop needs a larger image than {w}×{h} (quadrant {w_size}×{h_size})",
            "use the clean protocol for small images",
        )
    quads = [
        x[:, :, 0:h_size, 0:w_size],
        x[:, :, 0:h_size, w - w_size : w],
        x[:, :, h - h_size : h, 0:w_size],
        x[:, :, h - h_size : h, w - w_size : w],
    ]
    if w_size * h_size < min_size:
        outs = [self_ensemble(net, q) if ensemble else net(q) for q in quads]
    else:
        outs = [forward_chop(q, net, min_size=min_size, ensemble=ensemble) for q in quads]
    out = x.new_empty(b, outs[0].shape[1], h, w)
    out[:, :, 0:h_half, 0:w_half] = outs[0][:, :, 0:h_half, 0:w_half]
    out[:, :, 0:h_half, w_half:w] = outs[1][:, :, 0:h_half, w_size - w + w_half : w_size]
    out[:, :, h_half:h, 0:w_half] = outs[2][:, :, h_size - h + h_half : h_size, 0:w_half]
    out[:, :, h_half:h, w_half:w] = outs[3][:, :, h_size - h + h_half : h_size, w_size - w + w_half : w_size]
    return out


def published_forward(model: ADFNet, x: torch.Tensor, *, self_ensemble: bool = False) -> torch.Tensor:
    """The published test's inference on a float [N,C,H,W] input already in the network's channel
    order (BGR for RGB models) and range (/255, noise not clipped): clamped output."""
    if model.config.n_colors == 1:  # ADFNet_Gray/test.py: no padding, always chopped
        return forward_chop(x, model, min_size=CHOP_MIN_SIZE_GRAY, ensemble=self_ensemble).clamp(0, 1)
    h, w = x.shape[2], x.shape[3]
    pad_h = (-h) % PAD_MULTIPLE
    pad_w = (-w) % PAD_MULTIPLE
    xp = F.pad(x, (0, pad_w, 0, pad_h), mode="reflect")
    y = forward_chop(xp, model, min_size=CHOP_MIN_SIZE_RGB, ensemble=self_ensemble).clamp(0, 1)
    return y[:, :, :h, :w]


@torch.inference_mode()
def enhance(
    model: ADFNet, frames: np.ndarray, *, protocol: str = "clean", self_ensemble: bool = False
) -> Prediction:
    """Denoise uint8 RGB frames [N,H,W,3] (or one [H,W,3] frame)."""
    if protocol not in PROTOCOLS:
        raise InputImageError(f"unknown ADFNet protocol {protocol!r}", f"use one of {', '.join(PROTOCOLS)}")
    if self_ensemble and protocol != "published":
        raise InputImageError(
            "the ×8 self-ensemble is part of the published protocol", "add protocol='published'"
        )
    frames = check_frames(frames, MIN_SIDE)
    grey = model.config.n_colors == 1
    if grey:
        check_grey(frames)
    device = next(model.parameters()).device
    x = torch.from_numpy(np.require(frames, requirements="W")).to(device).permute(0, 3, 1, 2).float() / 255
    if grey:
        x = x[:, :1]
    if protocol == "clean":
        y = pad_crop_forward(model, x)
    else:
        flip = not grey  # the published RGB test feeds BGR
        xin = x.flip(1) if flip else x
        y = published_forward(model, xin, self_ensemble=self_ensemble)
        y = y.flip(1) if flip else y
    if grey:
        y = y.expand(-1, 3, -1, -1)
    y_np = np.ascontiguousarray(y.float().cpu().numpy())
    return Prediction(image=quantize(y_np), image_float=y_np, extras={})
