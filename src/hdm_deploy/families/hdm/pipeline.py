"""The published frame path in PyTorch: uint8 RGB → DCP masks → HDM → uint8 RGB.

Frames of any size ≥ 4 px are reflect-padded (bottom/right) to multiples of 4 — the published code
fails otherwise — and the masks are computed on the padded frame so they match the 1/4-resolution
features; the output is cropped back. For multiple-of-4 sizes this is exactly the published code.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.core.runner import Prediction, check_frames, pad_to_multiple, quantize
from hdm_deploy.families.hdm.dcp.reference import region_masks
from hdm_deploy.families.hdm.dcp.torch_masks import dcp_masks
from hdm_deploy.families.hdm.family import MIN_SIDE, PAD_MULTIPLE
from hdm_deploy.families.hdm.model import HDM, normalize

MaskImpl = Literal["reference", "torch"]
MASK_IMPLS: tuple[str, ...] = ("reference", "torch")


def check_mask_impl(impl: str) -> MaskImpl:
    """``impl`` if it names a mask implementation, else an :class:`HdmDeployError` with the choices."""
    if impl not in MASK_IMPLS:
        raise HdmDeployError(
            f"unknown DCP mask implementation {impl!r}", f"use --masks {' or --masks '.join(MASK_IMPLS)}"
        )
    return impl  # type: ignore[return-value]


def compute_masks(
    padded: np.ndarray, impl: MaskImpl = "reference", device: torch.device | str = "cpu"
) -> torch.Tensor:
    """[N,5,1,H/4,W/4] float32 masks for padded uint8 frames [N,H,W,3].

    ``reference`` is the published numpy/OpenCV computation (one frame at a time, on the CPU);
    ``torch`` is the batched implementation that runs on ``device`` (and is what the ONNX graph does).
    """
    if check_mask_impl(impl) == "reference":
        masks = np.stack([region_masks(frame) for frame in padded])
        return torch.from_numpy(masks).to(device)

    images = torch.from_numpy(np.require(padded, requirements="CW")).to(device).permute(0, 3, 1, 2)
    return dcp_masks(images)


@torch.inference_mode()
def enhance(
    model: HDM,
    frames: np.ndarray,
    masks: MaskImpl | np.ndarray | torch.Tensor = "reference",
) -> Prediction:
    """Enhance uint8 RGB frames [N,H,W,3] (or one [H,W,3] frame).

    ``masks`` picks the DCP implementation, or passes precomputed masks for the padded frame.
    """
    frames = check_frames(frames, MIN_SIDE)
    device = next(model.parameters()).device
    padded, (h, w) = pad_to_multiple(frames, PAD_MULTIPLE)
    if isinstance(masks, str):
        mask_t = compute_masks(padded, masks, device)
    else:
        mask_t = torch.as_tensor(masks, dtype=torch.float32, device=device)
    x = torch.from_numpy(np.require(padded, requirements="W")).to(device).permute(0, 3, 1, 2).float().div(255)
    y = model(normalize(x), mask_t)[:, :, :h, :w].clamp(0, 1)
    y_np = y.float().cpu().numpy()
    return Prediction(image=quantize(y_np), image_float=y_np, extras={"masks": mask_t.float().cpu().numpy()})
