"""ADFNet in PyTorch behind the common :class:`~hdm_deploy.core.runner.Runner` interface.

Options: ``protocol`` (``clean``: whole image, RGB, as the exported graph; ``published``: the
published test's BGR + 4-quadrant ``forward_chop``) and ``self_ensemble`` (×8, published protocol only).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.families.adfnet.family import MIN_SIDE
from hdm_deploy.families.adfnet.model import ADFNet
from hdm_deploy.families.adfnet.pipeline import PROTOCOLS, enhance
from hdm_deploy.families.checkpoint_io import open_checkpoint
from hdm_deploy.families.torch_env import pick_device


class TorchRunner(Runner):
    """An ADFNet checkpoint in PyTorch (CPU or CUDA)."""

    backend = "torch"
    min_side = MIN_SIDE

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        protocol: str | None = None,
        self_ensemble: bool = False,
        device: str | None = None,
        trust_checkpoint: bool = False,
        arch: str | None = None,
        model: ADFNet | None = None,
    ):
        protocol = protocol or "clean"
        if protocol not in PROTOCOLS:
            raise HdmDeployError(
                f"unknown ADFNet protocol {protocol!r}", f"use one of {', '.join(PROTOCOLS)}"
            )
        if self_ensemble and protocol != "published":
            raise HdmDeployError(
                "the ×8 self-ensemble belongs to the published protocol", "add protocol='published'"
            )
        super().__init__(model_path)
        if model is None:
            if model_path is None:
                raise HdmDeployError("no ADFNet checkpoint given", "pass the checkpoint path")
            _, model, _ = open_checkpoint(model_path, trust_checkpoint=trust_checkpoint, arch=arch)
        self.protocol = protocol
        self.self_ensemble = bool(self_ensemble)
        self.device = pick_device(device)
        self.model = model.eval().to(self.device)
        self.grey_only = model.config.n_colors == 1  # colour frames refused by Runner.validate

    def _run(self, frames: np.ndarray) -> Prediction:
        return enhance(self.model, frames, protocol=self.protocol, self_ensemble=self.self_ensemble)

    def describe(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            **super().describe(),
            "device": str(self.device),
            "options": {"protocol": self.protocol, "self_ensemble": self.self_ensemble},
            "precision": "fp32",
            "network": f"ADFNet(n_colors={cfg.n_colors}, width={cfg.width})",
            "torch": torch.__version__,
        }
