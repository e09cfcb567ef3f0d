"""Checkpoint I/O for MHNet: the published format, loaded strictly.

Published format (``Deblur/train.py``): ``torch.save({'epoch', 'state_dict': net.state_dict(),
'optimizer'})`` with the network wrapped in ``nn.DataParallel`` on several GPUs, so every key starts
with ``module.``. :mod:`hdm_deploy.families.checkpoint_io` unwraps ``state_dict`` and strips the
prefix (the published loader does the same: strict, then strict again with 7 characters cut); here
the configuration is read off the tensor shapes (deblur: ``stage2.info.weight`` is 64×32, derain
40×32; smaller test networks load the same way), the variant named by ``--arch mhnet:VARIANT`` is
enforced, and loading is strict with every missing, unexpected and mis-shaped key named.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdm_deploy.core.errors import CheckpointError
from hdm_deploy.core.fs import atomic_path
from hdm_deploy.families.checkpoint_io import META_KEY, key_mismatch
from hdm_deploy.families.mhnet.family import GENERATION_2023, GENERATION_2024, VARIANTS, detect
from hdm_deploy.families.mhnet.model import VARIANT_CONFIGS, MHNet, MHNetConfig, variant_of

__all__ = ["check_state_dict", "infer_config", "load_for_family", "refuse_2024", "save_checkpoint"]

ROOT_2024_MESSAGE = (
    "this is a checkpoint of MHNet's 2024 root file (MHNet.py at HEAD of Tombs98/MHNet): that file "
    "does not instantiate (AFFM calls super(SKFF, self), FRSNet calls super(CASNet, self): NameError), "
    "its forward returns one tensor where the published test.py indexes restored[0], and no "
    "checkpoints of it were ever published"
)


def refuse_2024(source: str) -> CheckpointError:
    return CheckpointError(
        f"{source}: {ROOT_2024_MESSAGE}",
        "use a checkpoint of the 2023 Deblur/Derain MHNet (commit 46ba1eb), the network the published "
        "test scripts run",
    )


def _count(state: Mapping[str, Any], pattern: str) -> int:
    found = [int(m.group(1)) for k in state if (m := re.match(pattern, k))]
    return 1 + max(found) if found else 0


def infer_config(state: Mapping[str, torch.Tensor]) -> MHNetConfig:
    """Width, n_feat, block counts and heads read off the tensor shapes of a 2023 state dict (the
    kernel size stays the published 3: a wrong one is then reported as mis-shaped keys)."""
    try:
        width = state["shallow_feat1.0.weight"].shape[0]
        n_feat = state["stage2.info.weight"].shape[0]
        heads = state["stage1.middle_blks.0.temperature"].shape[0]
        levels = _count(state, r"stage1\.encoders\.(\d+)\.")
        enc = tuple(_count(state, rf"stage1\.encoders\.{i}\.(\d+)\.") for i in range(levels))
        dec = tuple(_count(state, rf"stage1\.decoders\.{i}\.(\d+)\.") for i in range(levels))
        num_cab = _count(state, r"stage2\.CABG1\.body\.(\d+)\.body\.") or 0
        in_c = state["shallow_feat1.0.weight"].shape[1]
        out_c = state["tail.weight"].shape[0]
        reduction = width // state["shallow_feat1.1.CA.conv_du.0.weight"].shape[0]
    except (KeyError, ValueError, ZeroDivisionError) as exc:
        raise CheckpointError(
            f"not an MHNet (2023) state dict: cannot find {exc} among its {len(state)} keys",
            "check that the file is a Deblur/Derain MHNet checkpoint",
        ) from None
    return MHNetConfig(
        width=width,
        n_feat=n_feat,
        num_cab=num_cab,
        reduction=reduction,
        enc_blk_nums=enc,
        dec_blk_nums=dec,
        heads=heads,
        in_c=in_c,
        out_c=out_c,
    )


def check_state_dict(model: MHNet, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strict match: raise one error naming every missing, unexpected and mis-shaped key."""
    problems = key_mismatch(model.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"{source} does not fit MHNet-{variant_of(model.config)}: {problems}",
            "use a checkpoint of the published 2023 MHNet (Deblur or Derain), or drop/adjust --arch",
        )


def _config_for(state: Mapping[str, torch.Tensor], variant: str | None, source: str) -> MHNetConfig:
    generation = detect(state.keys())
    if variant in (GENERATION_2024, "root2024") or (variant is None and generation == GENERATION_2024):
        raise refuse_2024(source)
    if variant in VARIANT_CONFIGS:
        return VARIANT_CONFIGS[variant]
    if variant not in (None, GENERATION_2023):
        raise CheckpointError(
            f"unknown MHNet variant {variant!r}",
            f"use --arch mhnet or mhnet:VARIANT with one of {', '.join(VARIANTS)}",
        )
    if generation is None and not any(k.startswith("stage2.") for k in state):
        raise CheckpointError(
            f"{source}: not an MHNet state dict (no shallow_feat1/stage1/stage2 keys)",
            "check the file, or pass the right --arch",
        )
    return infer_config(state)


def load_for_family(
    state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    variant: str | None,
    *,
    source: str = "checkpoint",
) -> MHNet:
    """The family hook (``Family.load_checkpoint``): an MHNet in eval mode from a cleaned state dict.

    ``variant``: ``None``/``2023`` (from the shapes), ``deblur`` or ``derain`` (that published
    configuration, strictly), ``2024`` (refused: see :data:`ROOT_2024_MESSAGE`).
    """
    del meta
    model = MHNet(_config_for(state, variant, source))
    check_state_dict(model, state, source=source)
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_checkpoint(
    model: MHNet, path: str | os.PathLike, *, epoch: int = 0, metadata: Mapping[str, Any] | None = None
) -> Path:
    """Write the published format (``{'epoch', 'state_dict', 'optimizer'}`` with ``module.`` keys), atomically."""
    state = {f"module.{k}": v.detach().cpu().clone() for k, v in model.state_dict().items()}
    payload: dict[str, Any] = {"epoch": epoch, "state_dict": state, "optimizer": {}}
    if metadata:
        payload[META_KEY] = dict(metadata)
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)
    return Path(path)
