"""HDM in PyTorch behind the common :class:`~hdm_deploy.core.runner.Runner` interface."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from hdm_deploy.core.errors import EnvironmentProblem
from hdm_deploy.core.memory import available_bytes
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.families.hdm.checkpoint import load_checkpoint
from hdm_deploy.families.hdm.family import MIN_SIDE
from hdm_deploy.families.hdm.model import HDM
from hdm_deploy.families.hdm.pipeline import MaskImpl, check_mask_impl, enhance
from hdm_deploy.families.hdm.sample import sample_checkpoint_path
from hdm_deploy.families.torch_env import pick_device

#: Peak extra memory of one CPU forward pass, bytes per frame pixel = A + B × width
#: (``python benchmarks/torch_memory.py``, torch masks, 640×480: 232 B/px at width 8, 1333 at 64 (published);
#: 1080p at width 64 ≈ 2.8 GB, as the README measured).
BYTES_PER_PIXEL_BASE = 80
BYTES_PER_PIXEL_PER_WIDTH = 20


def cpu_bytes_needed(frames_shape: tuple[int, ...], width: int) -> int:
    """Estimated peak memory of the PyTorch CPU path for a ``[N, H, W, 3]`` batch."""
    n, h, w = (int(x) for x in frames_shape[:3])
    hp, wp = -(-h // 4) * 4, -(-w // 4) * 4
    return int(n * hp * wp * (BYTES_PER_PIXEL_BASE + BYTES_PER_PIXEL_PER_WIDTH * width))


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

    #: Refuse a CPU batch the machine has not the memory for (instead of dying in the allocator).
    memory_guard = True

    def _run(self, frames: np.ndarray) -> Prediction:
        if self.memory_guard and self.device.type == "cpu":
            self.check_memory(frames.shape)
        return enhance(self.model, frames, self.masks)

    def check_memory(self, frames_shape: tuple[int, ...]) -> None:
        """:class:`EnvironmentProblem` (exit 3) when a batch would need more memory than is available."""

        need = cpu_bytes_needed(frames_shape, self.model.config.width)
        available = available_bytes()
        if available is not None and need > available:
            n, h, w = frames_shape[:3]
            batch = f"{n}×" if n > 1 else ""
            raise EnvironmentProblem(
                f"a {batch}{w}×{h} frame needs about {need / 1e9:.1f} GB on the PyTorch CPU path; "
                f"{available / 1e9:.1f} GB is available",
                "use the ONNX model (hdm-deploy export, then infer -m model.onnx) or --device cuda, "
                "or downscale the input",
            )

    def describe(self) -> dict[str, Any]:
        cfg = self.model.config
        return {
            **super().describe(),
            "device": str(self.device),
            "masks": self.masks,
            "options": {"masks": self.masks},
            "precision": "fp32",
            "network": f"HDM(width={cfg.width}, groups={cfg.groups}, blocks={cfg.blocks})",
            "torch": torch.__version__,
        }
