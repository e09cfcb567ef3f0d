"""Reading checkpoints for every family (torch): weights-only loading, common wrappers, prefixes.

Model code stays with its family; what is the same for every training script's ``torch.save`` —
``{'model': …}``/``{'state_dict': …}`` wrappers, ``module.`` prefixes, fp16 storage, refusing
pickles that are more than tensors unless the user trusts the file — lives here, with
:func:`open_checkpoint` finding the family from the state-dict keys (timm's ``_helpers`` style:
load once, remap with pure functions next to the model).
"""

from __future__ import annotations

import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdm_deploy.core.errors import CheckpointError, first_line
from hdm_deploy.families.base import Family
from hdm_deploy.families.registry import DEFAULT_FAMILY, detect_family, get_family

__all__ = [
    "META_KEY",
    "STRIP_PREFIXES",
    "WRAPPER_KEYS",
    "clean_state_dict",
    "open_checkpoint",
    "read_state_dict",
]

#: Keys under which training scripts commonly nest the state dict (first match wins).
WRAPPER_KEYS = ("model", "state_dict", "net", "params", "model_state_dict")
#: Prefixes that wrappers (DataParallel, DDP, torch.compile) add to every key.
STRIP_PREFIXES = ("module.", "_orig_mod.")
#: Extra top-level key in checkpoints we write; the published loader ignores it.
META_KEY = "hdm_deploy"


def _unwrap(obj: Any, path: Path) -> tuple[Mapping[str, torch.Tensor], dict]:
    meta: dict = {}
    if isinstance(obj, Mapping):
        meta = dict(obj.get(META_KEY) or {})
        for key in WRAPPER_KEYS:
            inner = obj.get(key)
            if isinstance(inner, (Mapping, torch.nn.Module)):  # {'model': net} as well as {'model': sd}
                obj = inner
                break
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path}: no state dict found (expected a dict of tensors, or one under {WRAPPER_KEYS})",
            "pass a checkpoint saved with torch.save({'model': net.state_dict()})",
        )
    return obj, meta


def clean_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes and cast floating tensors to fp32 (fp16/bf16 storage is allowed)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in STRIP_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value.float() if value.is_floating_point() else value
    return out


def read_state_dict(
    path: str | os.PathLike, trust_checkpoint: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Load tensors (and our metadata, if any) from ``path`` without building a model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", "give the path of a .pk/.pt/.pth file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=not trust_checkpoint)
    except pickle.UnpicklingError as exc:
        blocked = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        if trust_checkpoint or blocked is None:
            raise CheckpointError(
                f"{path}: not a readable PyTorch checkpoint ({first_line(exc, 200)})"
            ) from exc
        raise CheckpointError(
            f"{path} holds Python objects beyond tensors ({blocked.group(1)}) and was not loaded",
            "if you trust its source, re-run with --trust-checkpoint (unpickling can execute code)",
        ) from exc
    except (ImportError, AttributeError) as exc:  # a whole pickled model whose classes are not importable
        raise CheckpointError(
            f"{path} is a pickled Python object whose code is not importable here ({first_line(exc, 200)})",
            "load it where its training code is importable and re-save the weights with "
            "torch.save({'model': net.state_dict()}, PATH)",
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        raise CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first_line(exc, 200)})") from exc
    except Exception as exc:  # junk bytes reach torch's legacy unpickler: KeyError: 101, struct.error, …
        raise CheckpointError(
            f"{path}: not a PyTorch checkpoint ({type(exc).__name__}: {first_line(exc, 120)})",
            "give a file written by torch.save (.pk/.pt/.pth)",
        ) from exc
    state, meta = _unwrap(obj, path)
    return clean_state_dict(state), meta


def open_checkpoint(
    path: str | os.PathLike, *, trust_checkpoint: bool = False, arch: str | None = None
) -> tuple[Family, torch.nn.Module, dict[str, Any]]:
    """Read ``path`` once, find its family (``arch`` overrides) and build the model in eval mode.

    Returns ``(family, model, meta)``; ``meta`` is the file's ``hdm_deploy`` metadata (may be empty).
    """
    state, meta = read_state_dict(path, trust_checkpoint)
    family, variant = detect_family(state.keys(), arch=arch)
    model = family.resolve("load_checkpoint")(state, meta, variant, source=str(path))
    return family, model, meta


def torch_runner(path: str | os.PathLike | None = None, *, arch: str | None = None, **options: Any):
    """The PyTorch runner of a checkpoint's family (``None``: the default family's bundled sample)."""
    trust = bool(options.get("trust_checkpoint"))
    if path is None:
        family = get_family((arch or DEFAULT_FAMILY).partition(":")[0])
        path = family.resolve("sample_checkpoint")()
    family, model, _ = open_checkpoint(path, trust_checkpoint=trust, arch=arch)
    return family.resolve("torch_runner")(path, model=model, **options)
