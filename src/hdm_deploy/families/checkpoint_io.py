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
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch

from hdm_deploy.core.errors import CheckpointError, HdmDeployError, first_line
from hdm_deploy.families.base import Family, resolve
from hdm_deploy.families.registry import DEFAULT_FAMILY, detect_family, get_family, names

__all__ = [
    "META_KEY",
    "STRIP_PREFIXES",
    "WRAPPER_KEYS",
    "clean_state_dict",
    "key_mismatch",
    "open_checkpoint",
    "read_state_dict",
]

#: Keys under which training scripts commonly nest the state dict (first match wins).
WRAPPER_KEYS = ("model", "state_dict", "net", "params", "model_state_dict")
#: Prefixes that wrappers (DataParallel, DDP, torch.compile) add to every key.
STRIP_PREFIXES = ("module.", "_orig_mod.")
#: Options every family's PyTorch runner takes (others: the family's ``torch_options``).
COMMON_TORCH_OPTIONS = frozenset({"device", "trust_checkpoint"})
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
        else:
            obj = _merge_side_by_side(obj)
    if isinstance(obj, torch.nn.Module):
        obj = obj.state_dict()
    if not isinstance(obj, Mapping) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise CheckpointError(
            f"{path}: no state dict found (expected a dict of tensors, or one under {WRAPPER_KEYS})",
            "pass a checkpoint saved with torch.save({'model': net.state_dict()})",
        )
    return obj, meta


def _is_tensor_dict(obj: Any) -> bool:
    return isinstance(obj, Mapping) and bool(obj) and all(isinstance(v, torch.Tensor) for v in obj.values())


def _merge_side_by_side(obj: Mapping) -> Any:
    """A checkpoint holding several state dicts side by side (a diffusion model, its condition network
    and an EMA copy: ``{'ddpm_state_dict': …, 'cnn_state_dict': …, 'ema_helper': …, 'step': …}``) as one
    dict whose keys are prefixed by their entry (``ddpm_state_dict.module.conv_in.weight``); anything
    else is returned unchanged."""
    if _is_tensor_dict(obj):
        return obj
    nested = {str(k): v for k, v in obj.items() if _is_tensor_dict(v)}
    if not nested:
        return obj
    return {f"{outer}.{key}": value for outer, sd in nested.items() for key, value in sd.items()}


def declared_globals() -> dict[str, tuple[Any, tuple[str, ...]]]:
    """``"module.Qualname"`` → (the class, the families declaring it): the plain classes registered
    families say their published checkpoints pickle (:attr:`Family.checkpoint_globals`)."""
    found: dict[str, tuple[Any, tuple[str, ...]]] = {}
    for name in names():
        for ref in get_family(name).checkpoint_globals:
            dotted = ref.replace(":", ".")
            obj, fams = found.get(dotted, (None, ()))
            found[dotted] = (obj if obj is not None else resolve(ref), (*fams, name))
    return found


def _torch_load(path: Path, trust_checkpoint: bool, allowed: list[Any]) -> Any:
    with warnings.catch_warnings():  # torch warns on some junk files before failing on them
        warnings.simplefilter("ignore")
        if trust_checkpoint:
            return torch.load(path, map_location="cpu", weights_only=False)
        with torch.serialization.safe_globals(allowed):
            return torch.load(path, map_location="cpu", weights_only=True)


def _refuse_code(path: Path, blocked: str) -> CheckpointError:
    return CheckpointError(
        f"{path} was not loaded: it holds Python objects beyond tensors ({blocked}), and unpickling "
        "it could run code",
        "only if you trust its source, re-run with --trust-checkpoint (that unpickles it in full)",
    )


def key_mismatch(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor]) -> str:
    """Every missing, unexpected and mis-shaped key of ``state`` against ``expected`` (a model's
    ``state_dict()``), as one phrase for a strict-load error; ``""`` when they fit."""
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
    return "; ".join(problems)


def clean_state_dict(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Strip wrapper prefixes and cast floating tensors to fp32 (fp16/bf16 storage is allowed)."""
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        for prefix in STRIP_PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        out[key] = value.float() if value.is_floating_point() else value
    return out


#: How torch's weights-only unpickler names what it refused (torch ≥ 2.4), newest wording first:
#: "Trying to load unsupported GLOBAL posix.system whose module posix is blocked" (module blocklist),
#: "Unsupported global: GLOBAL mod.fn was not an allowed global by default" (2.4+),
#: "Unsupported class mod.Cls" (older), "Trying to call reduce for unrecognized function fn",
#: "Can only create new object for nn.Parameter or classes allowlisted … but got <class …>".
_REFUSED_GLOBAL = (
    re.compile(r"unsupported GLOBAL ([\w.]+)", re.IGNORECASE),
    re.compile(r"GLOBAL ([\w.]+) was not an allowed global"),
    re.compile(r"Unsupported class ([\w.]+)"),
    re.compile(r"unrecognized function ([^\s]+(?: of [^\s]+)?)"),
    re.compile(r"Can only create new object for .* but got (<class '[\w.]+'>|\S+)"),
    re.compile(r"Can only build .* but got (<class '[\w.]+'>|\S+)"),
)


def code_in_pickle(message: str) -> str | None:
    """What torch's weights-only unpickler refused because it is code or an arbitrary object (a
    global, a class, a function to call) — ``None`` when the message is about something else (a
    corrupt or truncated file)."""
    for pattern in _REFUSED_GLOBAL:
        found = pattern.search(message)
        if found:
            return found.group(1).strip("<>'").removeprefix("class '")
    return None


def _torch_reason(exc: BaseException) -> str:
    """torch's reason without its advice to re-run with ``weights_only=False``."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1]
    lines = [x.strip() for x in text.splitlines() if x.strip() and "weights_only" not in x]
    reason = next(
        (x for x in lines if not x.startswith("Weights only load failed")), lines[0] if lines else ""
    )
    return reason.removeprefix("Weights only load failed.").strip()[:200] or type(exc).__name__


def read_state_dict(
    path: str | os.PathLike, trust_checkpoint: bool = False
) -> tuple[dict[str, torch.Tensor], dict]:
    """Load tensors (and our metadata, if any) from ``path`` without building a model."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}", "give the path of a .pk/.pt/.pth file")
    # Plain weights-only first; a refused class that a family declares its published checkpoints
    # pickle (argparse.Namespace …) is allowed on a retry, and the file must then be that family's.
    declared = {} if trust_checkpoint else declared_globals()
    allowed: list[str] = []
    while True:
        try:
            obj = _torch_load(path, trust_checkpoint, [declared[n][0] for n in allowed])
            break
        except pickle.UnpicklingError as exc:
            blocked = None if trust_checkpoint else code_in_pickle(str(exc))
            if blocked is None:
                raise CheckpointError(
                    f"{path}: not a readable PyTorch checkpoint ({_torch_reason(exc)})"
                ) from None
            if blocked in declared and blocked not in allowed:
                allowed.append(blocked)
                continue
            raise _refuse_code(path, blocked) from None
        except (ImportError, AttributeError) as exc:  # a whole pickled model whose code is not importable
            raise CheckpointError(
                f"{path} is a pickled Python object whose code is not importable here ({first_line(exc, 200)})",
                "load it where its training code is importable and re-save the weights with "
                "torch.save({'model': net.state_dict()}, PATH)",
            ) from exc
        except MemoryError:
            raise
        except Exception as exc:  # EOF, bad zip, KeyError from a text file … : not a checkpoint
            raise CheckpointError(
                f"{path}: not a readable PyTorch checkpoint ({type(exc).__name__}: {first_line(exc, 160)})",
                "pass a file written by torch.save",
            ) from None
    state, meta = _unwrap(obj, path)
    for name in allowed:  # allowed only in the checkpoints of a family that declares it
        if not any(get_family(f).detect(state.keys()) is not None for f in declared[name][1]):
            raise _refuse_code(path, name)
    return clean_state_dict(state), meta


def open_checkpoint(
    path: str | os.PathLike,
    *,
    trust_checkpoint: bool = False,
    arch: str | None = None,
    weights: str | None = None,
) -> tuple[Family, torch.nn.Module, dict[str, Any]]:
    """Read ``path`` once, find its family (``arch`` overrides) and build the model in eval mode.

    ``weights``: one of the family's ``weight_variants`` (e.g. ``"ema"``) instead of its default
    weights; refused with one line for a family without it. Returns ``(family, model, meta)``;
    ``meta`` is the file's ``hdm_deploy`` metadata (may be empty).
    """
    state, meta = read_state_dict(path, trust_checkpoint)
    family, variant = detect_family(state.keys(), arch=arch)
    if weights is not None:
        if weights not in family.weight_variants:
            raise CheckpointError(
                f"--{weights}: {family.title} checkpoints have no {weights.upper()} weights ({Path(path).name})",
                f"drop --{weights}",
            )
        variant = weights
    model = family.resolve("load_checkpoint")(state, meta, variant, source=str(path))
    return family, model, meta


def sample_checkpoint(family: Family) -> Path:
    """The family's bundled demonstration checkpoint, or a one-line error when it ships none."""
    if not family.sample_checkpoint:
        raise CheckpointError(
            f"the {family.name} family has no bundled sample checkpoint", "pass the checkpoint file to use"
        )
    return Path(family.resolve("sample_checkpoint")())


def torch_runner(path: str | os.PathLike | None = None, *, arch: str | None = None, **options: Any):
    """The PyTorch runner of a checkpoint's family (``None``: the default family's bundled sample)."""
    trust = bool(options.get("trust_checkpoint"))
    if path is None:
        path = sample_checkpoint(get_family((arch or DEFAULT_FAMILY).partition(":")[0]))
    family, model, _ = open_checkpoint(path, trust_checkpoint=trust, arch=arch)
    given = {k: v for k, v in options.items() if v is not None}
    foreign = sorted(set(given) - COMMON_TORCH_OPTIONS - family.torch_options)
    if foreign:
        raise HdmDeployError(
            f"{', '.join('--' + k.replace('_', '-') for k in foreign)} does not apply to "
            f"{family.title.split(' (')[0]} checkpoints ({path})",
            "leave it out",
        )
    return family.resolve("torch_runner")(path, model=model, **given)
