"""Checkpoint I/O for HDM: the published format and plain state dicts, loaded strictly.

Published format: ``torch.save({'model': DataParallel(net).state_dict()})`` — every key starts with
``module.``. We also accept plain state dicts, other common wrappers (``state_dict``, ``net``,
``params``) and fp16 storage, and we infer the network size from the tensor shapes so small test
models load without extra flags.
"""

from __future__ import annotations

import math
import os
import pickle
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdm_deploy.core.errors import CheckpointError, first_line
from hdm_deploy.core.fs import atomic_path
from hdm_deploy.families.hdm.model import HDM, HDMConfig

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
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    misshaped = sorted(
        f"{k} {tuple(state[k].shape)}≠{tuple(expected[k].shape)}"
        for k in set(expected) & set(state)
        if state[k].shape != expected[k].shape
    )
    problems = []
    for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)):
        if keys:
            shown = ", ".join(keys[:8]) + (f", … ({len(keys) - 8} more)" if len(keys) > 8 else "")
            problems.append(f"{len(keys)} {label}: {shown}")
    if problems:
        raise CheckpointError(
            f"{source} does not fit HDM{tuple(model.config.as_dict().values())}: " + "; ".join(problems),
            "use the checkpoint of the published DR_Net_phy(3, 3) or one written by hdm-deploy",
        )


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
    model = HDM(config or infer_config(state))
    check_state_dict(model, state, source=str(path))
    model.load_state_dict(state, strict=True)
    return model.eval().to(map_location), meta


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
