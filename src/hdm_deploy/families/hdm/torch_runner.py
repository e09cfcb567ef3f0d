"""HDM in PyTorch behind the common :class:`~hdm_deploy.core.runner.Runner` interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.families.hdm.checkpoint import load_checkpoint
from hdm_deploy.families.hdm.family import MIN_SIDE
from hdm_deploy.families.hdm.model import HDM
from hdm_deploy.families.hdm.pipeline import MaskImpl, check_mask_impl, enhance
from hdm_deploy.families.hdm.sample import sample_checkpoint_path


def pick_device(device: str | int | None = None) -> torch.device:
    """``None``/``auto``: CUDA when available, else the CPU; else ``cpu`` | ``cuda`` | ``cuda:N`` | ``N``."""
    from hdm_deploy.core.device import device_for

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


class TorchRunner(Runner):
    """HDM in PyTorch with reference (published, CPU) or torch (batched, on-device) DCP masks."""

    backend = "torch"
    min_side = MIN_SIDE

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        masks: MaskImpl = "reference",
        device: str | None = None,
        trust_checkpoint: bool = False,
        model: HDM | None = None,
    ):
        path = None if model is not None else Path(model_path or sample_checkpoint_path())
        super().__init__(path)
        self.masks = check_mask_impl(masks)
        self.device = pick_device(device)
        self.model = (
            (model or load_checkpoint(path, trust_checkpoint=trust_checkpoint)).eval().to(self.device)
        )

    def _run(self, frames: np.ndarray) -> Prediction:
        return enhance(self.model, frames, self.masks)

    def describe(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            **super().describe(),
            "device": str(self.device),
            "masks": self.masks,
            "precision": "fp32",
            "network": f"HDM(width={cfg.width}, groups={cfg.groups}, blocks={cfg.blocks})",
            "torch": torch.__version__,
        }
