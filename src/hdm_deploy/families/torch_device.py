"""The torch device a family's PyTorch runner uses (shared by every family's ``torch_runner``)."""

from __future__ import annotations

import torch

from hdm_deploy.core.device import device_for
from hdm_deploy.core.errors import HdmDeployError

__all__ = ["pick_device"]


def pick_device(device: str | int | None = None) -> torch.device:
    """``None``/``auto``: CUDA when available, else the CPU; else ``cpu`` | ``cuda`` | ``cuda:N`` | ``N``."""
    name = device_for("torch", device)  # HdmDeployError for anything else
    if name is None:
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if str(name).startswith("cuda"):
        if not torch.cuda.is_available():
            raise HdmDeployError(
                f"--device {device}: PyTorch sees no CUDA GPU here",
                "use --device cpu, or install a CUDA build of PyTorch",
            )
        index = torch.device(name).index
        if index is not None and index >= torch.cuda.device_count():
            raise HdmDeployError(
                f"--device {device}: PyTorch sees {torch.cuda.device_count()} CUDA device(s)",
                f"use an index below {torch.cuda.device_count()}, or --device cpu",
            )
    return torch.device(name)
