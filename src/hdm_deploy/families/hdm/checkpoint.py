"""Checkpoint I/O for HDM: the published format and plain state dicts, loaded strictly.

Published format: ``torch.save({'model': DataParallel(net).state_dict()})`` — every key starts with
``module.``. We also accept plain state dicts, other common wrappers (``state_dict``, ``net``,
``params``) and fp16 storage, and we infer the network size from the tensor shapes so small test
models load without extra flags.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdm_deploy.core.errors import CheckpointError
from hdm_deploy.core.fs import atomic_path
from hdm_deploy.families.checkpoint_io import META_KEY, key_mismatch, read_state_dict
from hdm_deploy.families.hdm.model import HDM, HDMConfig


def infer_config(state: Mapping[str, torch.Tensor]) -> HDMConfig:
    """Read width, group/block counts and region count off the tensor shapes."""
    try:
        width = state["conv0.0.weight"].shape[0]
        groups = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"FAB\.(\d+)\.gp\.", k)))
        blocks = max(int(m.group(1)) for k in state if (m := re.match(r"FAB\.0\.gp\.(\d+)\.", k)))
        regions = state["drconv_phy.conv_kernel.1.weight"].shape[0]
    except (KeyError, ValueError) as exc:
        raise CheckpointError(
            f"not an HDM state dict: cannot find {exc} among its {len(state)} keys",
            "check that the file is an HDM (DR_Net_phy) checkpoint",
        ) from None
    return HDMConfig(width=width, groups=groups, blocks=blocks, regions=math.isqrt(regions))


def check_state_dict(
    model: torch.nn.Module, state: Mapping[str, torch.Tensor], source: str = "checkpoint"
) -> None:
    """Strict match: raise one error naming every missing, unexpected and mis-shaped key."""
    problems = key_mismatch(model.state_dict(), state)
    if problems:
        raise CheckpointError(
            f"{source} does not fit HDM{tuple(model.config.as_dict().values())}: {problems}",
            "use the checkpoint of the published DR_Net_phy(3, 3) or one written by hdm-deploy",
        )


def load_checkpoint(
    path: str | os.PathLike,
    trust_checkpoint: bool = False,
    config: HDMConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> HDM:
    """Build an HDM in eval mode from a checkpoint; the size comes from the file unless ``config`` is given."""
    return load_checkpoint_with_meta(path, trust_checkpoint, config, map_location)[0]


def load_checkpoint_with_meta(
    path: str | os.PathLike,
    trust_checkpoint: bool = False,
    config: HDMConfig | None = None,
    map_location: str | torch.device = "cpu",
) -> tuple[HDM, Any]:
    """:func:`load_checkpoint` plus the file's ``hdm_deploy`` metadata (one unpickling for both)."""
    state, meta = read_state_dict(path, trust_checkpoint)
    if config is None:
        return load_for_family(state, meta, None, source=str(path)).to(map_location), meta
    model = HDM(config)
    check_state_dict(model, state, source=str(path))
    model.load_state_dict(state, strict=True)
    return model.eval().to(map_location), meta


def load_for_family(
    state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    variant: str | None,
    *,
    source: str = "checkpoint",
) -> HDM:
    """The family hook (``Family.load_checkpoint``): an HDM in eval mode from a cleaned state dict."""
    del meta, variant  # one published variant; the size comes from the tensor shapes
    model = HDM(infer_config(state))
    check_state_dict(model, state, source=source)
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_checkpoint(
    model: HDM,
    path: str | os.PathLike,
    half: bool = False,
    metadata: Mapping[str, Any] | None = None,
) -> Path:
    """Write the published format (``{'model': …}``, ``module.`` keys), atomically.

    ``half`` stores floating tensors as fp16 (half the size; loading casts back to fp32).
    """
    state = {}
    for k, v in model.state_dict().items():
        v = v.detach().cpu()
        state[f"module.{k}"] = v.half() if half and v.is_floating_point() else v.clone()
    meta = {"config": model.config.as_dict(), **(metadata or {})}
    with atomic_path(path) as tmp:
        torch.save({"model": state, META_KEY: meta}, tmp)
    return Path(path)
