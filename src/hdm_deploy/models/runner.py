"""The PyTorch backend behind the common :class:`~hdm_deploy.runtime.base.Runner` interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..runtime.base import Prediction, Runner
from .checkpoint import load_checkpoint
from .hdm import HDM
from .pipeline import MaskImpl, enhance
from .sample import sample_checkpoint_path


def pick_device(device: str | None = None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


class TorchRunner(Runner):
    """HDM in PyTorch with reference (published, CPU) or torch (batched, on-device) DCP masks."""

    backend = "torch"

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
        self.device = pick_device(device)
        self.masks = masks
        self.model = (
            (model or load_checkpoint(path, trust_checkpoint=trust_checkpoint)).eval().to(self.device)
        )

    def run(self, frames: np.ndarray) -> Prediction:
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
