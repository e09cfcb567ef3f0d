"""ADFNet checkpoints: the published formats, remapped by pure functions and loaded strictly.

Published formats (see ``docs/adfnet.md``):

* RGB / Gray (EDSR-style trainer): a raw state dict, no wrapper, no prefix. The published test loads
  it with ``strict=False`` (mismatches silently ignored); we load strictly, naming every missing,
  unexpected or mis-shaped key. Buffers ``total_ops``/``total_params`` left by ``thop.profile`` are
  dropped (:func:`remap_state_dict`).
* Real (SIDD trainer): ``{'epoch', 'state_dict', 'optimizer'}`` with ``module.`` prefixes
  (DataParallel). The wrapper and prefix are removed by :mod:`~hdm_deploy.families.checkpoint_io`.

The variant comes from the shapes (``head.weight``: out = width, in = colours) unless one is named.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

import torch

from hdm_deploy.core.errors import CheckpointError
from hdm_deploy.core.fs import atomic_path
from hdm_deploy.families.adfnet.family import canonical_variant, is_thop_key, strip_prefixes
from hdm_deploy.families.adfnet.model import VARIANTS, ADFNet, ADFNetConfig
from hdm_deploy.families.checkpoint_io import key_mismatch

__all__ = [
    "check_state_dict",
    "infer_config",
    "load_for_family",
    "remap_state_dict",
    "sample_checkpoint_path",
    "save_published",
]


def remap_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """timm ``checkpoint_filter_fn`` style: strip wrapper prefixes, drop thop's counters."""
    return {strip_prefixes(k): v for k, v in state.items() if not is_thop_key(k)}


def infer_config(state: Mapping[str, torch.Tensor]) -> ADFNetConfig:
    """Colours and width from ``head.weight`` ([width, colours, 3, 3])."""
    head = state.get("head.weight")
    if head is None or head.ndim != 4:
        raise CheckpointError(
            "not an ADFNet state dict: no 4-d head.weight",
            "check that the file is an ADFNet (Net) checkpoint, or pass --arch",
        )
    return ADFNetConfig(n_colors=int(head.shape[1]), width=int(head.shape[0]))


def check_state_dict(model: ADFNet, state: Mapping[str, torch.Tensor], source: str = "checkpoint") -> None:
    """Strict match: one error naming every missing, unexpected and mis-shaped key."""
    problems = key_mismatch(model.state_dict(), state)
    if problems:
        cfg = model.config
        raise CheckpointError(
            f"{source} does not fit ADFNet(n_colors={cfg.n_colors}, width={cfg.width}): {problems}",
            "use a published ADFNet checkpoint (RGB, Gray, L or Real), or name the variant with --arch adfnet:VARIANT",
        )


def load_for_family(
    state: Mapping[str, torch.Tensor],
    meta: Mapping[str, Any],
    variant: str | None,
    *,
    source: str = "checkpoint",
) -> ADFNet:
    """The family hook: an ADFNet in eval mode from a cleaned state dict (strict)."""
    del meta
    state = remap_state_dict(state)
    name = canonical_variant(variant) if variant not in (None, "published") else None
    config = VARIANTS[name] if name else infer_config(state)
    model = ADFNet(config)
    check_state_dict(model, state, source=source)
    model.load_state_dict(state, strict=True)
    return model.eval()


def save_published(model: ADFNet, path: str | os.PathLike, fmt: str = "raw") -> Path:
    """Write a published-format checkpoint atomically: ``raw`` (RGB/Gray: the bare state dict) or
    ``real`` (``{'epoch', 'state_dict', 'optimizer'}`` with ``module.`` prefixes)."""
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    if fmt == "real":
        obj: Any = {"epoch": 1, "state_dict": {f"module.{k}": v for k, v in state.items()}, "optimizer": {}}
    elif fmt == "raw":
        obj = state
    else:
        raise ValueError(f"fmt must be 'raw' or 'real', got {fmt!r}")
    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


#: The bundled demonstration checkpoint (``scripts/train_adfnet_sample.py``; see docs/adfnet.md).
SAMPLE_NAME = "adfnet_sample_sigma25.pt"


def sample_checkpoint_path(must_exist: bool = True) -> Path:
    """The bundled ADFNet demonstration checkpoint (width 8, σ = 25, published raw format, fp16)."""
    path = Path(str(resources.files("hdm_deploy") / "assets" / SAMPLE_NAME))
    if must_exist and not path.is_file():
        raise CheckpointError(
            f"the bundled ADFNet sample checkpoint is missing ({path})",
            "re-create it with `python scripts/train_adfnet_sample.py`, or pass a published ADFNet checkpoint",
        )
    return path
