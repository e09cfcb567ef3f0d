"""The bundled sample checkpoint: HDM at the published width, briefly trained on synthetic haze.

It is the default model of ``infer``/``export`` and gives the tests realistic weights (non-zero
deformable offsets, meaningful masks). ``scripts/train_sample_model.py`` re-creates it.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hdm_deploy.core.errors import CheckpointError

SAMPLE_NAME = "hdm_sample.pk"


def sample_checkpoint_path(must_exist: bool = True) -> Path:
    path = Path(str(resources.files("hdm_deploy") / "assets" / SAMPLE_NAME))
    if must_exist and not path.is_file():
        raise CheckpointError(
            f"the bundled sample checkpoint is missing ({path})",
            "re-create it with `python scripts/train_sample_model.py` or pass --model CKPT",
        )
    return path
