"""MHNet in PyTorch behind the common :class:`~hdm_deploy.core.runner.Runner` interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdm_deploy.core.errors import CheckpointError
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.families.checkpoint_io import read_state_dict
from hdm_deploy.families.mhnet.checkpoint import load_for_family
from hdm_deploy.families.mhnet.family import MIN_SIDE
from hdm_deploy.families.mhnet.model import MHNet, variant_of
from hdm_deploy.families.mhnet.pipeline import restore
from hdm_deploy.families.torch_env import pick_device


class TorchRunner(Runner):
    """MHNet (2023, deblur or derain) in PyTorch: the frame path of :func:`~.pipeline.restore`."""

    backend = "torch"
    min_side = MIN_SIDE

    def __init__(
        self,
        model_path: str | Path | None = None,
        *,
        device: str | None = None,
        trust_checkpoint: bool = False,
        arch: str | None = None,
        model: MHNet | None = None,
    ):
        if model is None and model_path is None:
            raise CheckpointError(
                "MHNet has no bundled sample checkpoint",
                "pass --model CHECKPOINT (.pth of the published MHNet)",
            )
        super().__init__(model_path)
        self.device = pick_device(device)
        if model is None:
            state, meta = read_state_dict(model_path, trust_checkpoint)
            variant = arch.partition(":")[2] or None if arch else None
            model = load_for_family(state, meta, variant, source=str(model_path))
        self.model = model.eval().to(self.device)

    def _run(self, frames: np.ndarray) -> Prediction:
        return restore(self.model, frames)

    def describe(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            **super().describe(),
            "device": str(self.device),
            "precision": "fp32",
            "network": f"MHNet-{variant_of(cfg)}(width={cfg.width}, n_feat={cfg.n_feat}, num_cab={cfg.num_cab})",
            "torch": torch.__version__,
        }
