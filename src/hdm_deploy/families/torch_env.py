"""The torch environment every family's torch code shares: the device its PyTorch runner uses, and the
reproducible settings its golden bundles are computed under."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch

from hdm_deploy.core.device import device_for
from hdm_deploy.core.errors import HdmDeployError

__all__ = ["pick_device", "reproducible_torch"]


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


@contextlib.contextmanager
def reproducible_torch(threads: int = 1) -> Iterator[None]:
    """A fixed intra-op thread count and ``torch.use_deterministic_algorithms(True)`` for the block,
    restored after it (the caller's settings are left as they were)."""
    old_threads = torch.get_num_threads()
    old_det = torch.are_deterministic_algorithms_enabled()
    old_warn = torch.is_deterministic_algorithms_warn_only_enabled()
    torch.set_num_threads(threads)
    torch.use_deterministic_algorithms(True)
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(old_det, warn_only=old_warn)
        torch.set_num_threads(old_threads)
