"""DiffHDR checkpoints (torch): the published ``Hdr_ddpm3000000.pth.tar`` format, loaded strictly.

The file (``utils.logging.save_checkpoint``) is a dict with ``ddpm_state_dict`` (UNet) and
``cnn_state_dict`` (AHDR), both ``module.``-prefixed (``nn.DataParallel``), ``ema_helper`` (the UNet's
EMA shadow, un-prefixed names), ``optimizer``, ``epoch``, ``step`` and two pickled
``argparse.Namespace`` objects (``params``, ``config`` — the latter holding a ``torch.device``). It is
read with ``weights_only=True`` and those two classes allow-listed
(:attr:`~hdm_deploy.families.base.Family.checkpoint_globals`); anything else pickled needs
``--trust-checkpoint``.

Weights: the published test (``load_ddm_ckpt_test``) loads the *raw* weights and ignores its ``ema``
argument, so raw is the default here; ``ema=True`` (variant ``"ema"``) puts the EMA shadow into the UNet.
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
from hdm_deploy.families.checkpoint_io import META_KEY, key_mismatch, read_state_dict
from hdm_deploy.families.diffhdr.family import AHDR_ENTRY, EMA_ENTRY, UNET_ENTRY, strip
from hdm_deploy.families.diffhdr.model import DiffHDR, DiffHDRConfig

__all__ = ["infer_config", "load_for_family", "load_published", "resave_tensors_only", "split_state"]


def split_state(state: Mapping[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """Merged keys (``ddpm_state_dict.module.x``) → ``{entry: {x: tensor}}`` with prefixes stripped."""
    parts: dict[str, dict[str, torch.Tensor]] = {UNET_ENTRY: {}, AHDR_ENTRY: {}, EMA_ENTRY: {}}
    for key, value in state.items():
        entry, name = strip(key)
        if entry:
            parts[entry][name] = value.float() if value.is_floating_point() else value
    return parts


def infer_config(unet: Mapping[str, torch.Tensor], ahdr: Mapping[str, torch.Tensor]) -> DiffHDRConfig:
    """Network sizes read off the tensor shapes (published size, or the small test configs)."""
    try:
        ch = unet["conv_in.weight"].shape[0]
        levels = 1 + max(int(m.group(1)) for k in unet if (m := re.match(r"down\.(\d+)\.", k)))
        mult = tuple(unet[f"down.{i}.block.0.conv1.weight"].shape[0] // ch for i in range(levels))
        nrb = 1 + max(int(m.group(1)) for k in unet if (m := re.match(r"down\.0\.block\.(\d+)\.", k)))
        attn = tuple(i for i in range(levels) if f"down.{i}.attn.0.q.weight" in unet)
        feat, n_in = ahdr["conv1.weight"].shape[:2]
        sft_nf = unet["SFT_layer.SFT_scale_conv0.weight"].shape[0]
        out_ch = unet["conv_out.weight"].shape[0]
    except (KeyError, ValueError) as exc:
        raise CheckpointError(
            f"not a DiffHDR checkpoint: cannot find {exc} in its UNet/AHDR state dicts",
            "pass the published Hdr_ddpm*.pth.tar or a file re-saved by `hdm-deploy hdr-resave`",
        ) from None
    return DiffHDRConfig(
        ch=ch,
        ch_mult=mult,
        num_res_blocks=nrb,
        attn_levels=attn,
        out_ch=out_ch,
        ahdr_in=n_in,
        ahdr_feat=feat,
        sft_nf=sft_nf,
    )


def _strict(module: torch.nn.Module, state: Mapping[str, torch.Tensor], what: str, source: str) -> None:
    problems = key_mismatch(module.state_dict(), state)
    if problems:
        raise CheckpointError(f"{source}: {what} does not fit: {problems}")
    module.load_state_dict(state, strict=True)


def build(
    parts: Mapping[str, Mapping[str, torch.Tensor]], *, ema: bool = False, source: str = "checkpoint"
) -> DiffHDR:
    """Both networks in eval mode from split state dicts (strict; ``ema``: the UNet's EMA shadow)."""
    unet, ahdr = dict(parts[UNET_ENTRY]), dict(parts[AHDR_ENTRY])
    if not unet or not ahdr:
        raise CheckpointError(
            f"{source}: no {UNET_ENTRY if not unet else AHDR_ENTRY} in it",
            "a DiffHDR checkpoint holds both ddpm_state_dict (UNet) and cnn_state_dict (AHDR)",
        )
    if ema:
        shadow = parts.get(EMA_ENTRY) or {}
        if not shadow:
            raise CheckpointError(
                f"{source} has no {EMA_ENTRY}", "drop --ema: this file holds raw weights only"
            )
        missing = sorted(set(unet) - set(shadow))
        if missing:
            raise CheckpointError(f"{source}: {EMA_ENTRY} lacks {len(missing)} UNet keys ({missing[0]}, …)")
        unet = {k: shadow[k] for k in unet}
    model = DiffHDR(infer_config(unet, ahdr))
    _strict(model.unet, unet, f"{UNET_ENTRY} (UNet)", source)
    _strict(model.ahdr, ahdr, f"{AHDR_ENTRY} (AHDR)", source)
    return model.eval()


def load_for_family(
    state: Mapping[str, torch.Tensor], meta: Any, variant: str | None, *, source: str = "checkpoint"
) -> DiffHDR:
    """The registry's loader: ``variant`` ``"ema"`` takes the EMA weights, anything else the raw ones."""
    return build(split_state(state), ema=variant == "ema", source=source)


def load_published(
    path: str | os.PathLike, *, trust_checkpoint: bool = False, ema: bool = False
) -> tuple[DiffHDR, dict[str, Any]]:
    """(model, our metadata) of a published-format (or re-saved) DiffHDR checkpoint."""
    state, meta = read_state_dict(path, trust_checkpoint)
    return build(split_state(state), ema=ema, source=str(path)), meta


def resave_tensors_only(
    src: str | os.PathLike, dst: str | os.PathLike, *, trust_checkpoint: bool = False, ema: bool = False
) -> Path:
    """Write ``dst``: the published layout with tensors only (``ddpm_state_dict``/``cnn_state_dict``,
    ``module.`` prefixes kept so the published loader still reads it; ``ema_helper`` kept when present).

    ``ema=True`` writes the EMA shadow *as* ``ddpm_state_dict`` (and drops ``ema_helper``), so any
    loader — ours by default, or the published one — runs the EMA weights. Loads with plain
    ``torch.load(weights_only=True)``.
    """
    model, _ = load_published(src, trust_checkpoint=trust_checkpoint, ema=ema)
    state, _ = read_state_dict(src, trust_checkpoint)
    parts = split_state(state)
    out: dict[str, Any] = {
        UNET_ENTRY: {f"module.{k}": v.contiguous() for k, v in model.unet.state_dict().items()},
        AHDR_ENTRY: {f"module.{k}": v.contiguous() for k, v in model.ahdr.state_dict().items()},
    }
    if parts[EMA_ENTRY] and not ema:
        out[EMA_ENTRY] = {k: v.contiguous() for k, v in parts[EMA_ENTRY].items()}
    out[META_KEY] = {"source": Path(src).name, "weights": "ema" if ema else "raw"}
    with atomic_path(dst) as tmp:
        torch.save(out, tmp)
    return Path(dst)
