"""ADFNet as a :class:`~hdm_deploy.families.base.Family` (torch-free facts + lazy torch references).

The three published variants (RGB — also the Real/SIDD code —, Gray, and the wide ADFNet-L) share
every key name; they differ in tensor shapes only, so :func:`detect` recognises the family from the
names and the loader reads the variant off the shapes (``--arch adfnet:L`` etc. names one, and the
strict load then reports every mis-shaped key).
"""

from __future__ import annotations

from collections.abc import Iterable

from hdm_deploy.core.errors import ModelFormatError
from hdm_deploy.families.base import Family, FrameContract

#: Three stride-2 levels: H and W must be multiples of 8 (reflect-padded bottom/right, cropped back).
PAD_MULTIPLE = 8
#: Reflection needs pad < side; 8 px keeps every pad (≤ 7) legal.
MIN_SIDE = 8
#: Variant names accepted after ``adfnet:`` (``real`` is the RGB network of ADFNet_Real).
VARIANT_NAMES = ("rgb", "gray", "L", "real")
_ALIASES = {"rgb": "rgb", "real": "rgb", "gray": "gray", "grey": "gray", "l": "L", "adfnet-l": "L"}
#: Keys (wrapper prefixes stripped) that only ADFNet's ``Net`` has.
SIGNATURE_KEYS = frozenset(
    {
        "head.weight",
        "fe1.fe.1.dcn.0.conv_offset_mask.weight",
        "cfe.fe.1.fusion.weight",
        "dfe1.fe.0.dyconv.afg.conv.weight",
        "dfe1.fe.1.generate_kernel.3.weight",
        "tail.weight",
    }
)
_PREFIXES = ("module.", "_orig_mod.")
#: thop ``profile`` leaves these buffers behind in old checkpoints (published test.py runs it).
THOP_SUFFIXES = ("total_ops", "total_params")


def strip_prefixes(key: str) -> str:
    for prefix in _PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def is_thop_key(key: str) -> bool:
    return key.rsplit(".", 1)[-1] in THOP_SUFFIXES


def canonical_variant(name: str | None) -> str | None:
    """``rgb`` | ``gray`` | ``L`` for a user-given variant name (``None`` passes through)."""
    if name is None:
        return None
    found = _ALIASES.get(str(name).strip().lower())
    if found is None:
        raise ModelFormatError(
            f"unknown ADFNet variant {name!r}", f"use --arch adfnet:{' or adfnet:'.join(VARIANT_NAMES)}"
        )
    return found


def detect(keys: Iterable[str]) -> str | None:
    """``"published"`` when the key names are ADFNet's (prefixes and thop keys ignored); the variant
    (rgb / gray / L) is read from the tensor shapes when the model is built."""
    stripped = {strip_prefixes(k) for k in keys if not is_thop_key(k)}
    return "published" if stripped >= SIGNATURE_KEYS else None


FAMILY = Family(
    name="adfnet",
    title="ADFNet (Shen et al., AAAI 2023)",
    task="denoise",
    frame=FrameContract(pad_multiple=PAD_MULTIPLE, pad_mode="reflect", min_side=MIN_SIDE),
    extras={},
    tiling="overlap",  # row/column/global pooling at full resolution: overlap tiles, PSNR measured
    fp32_functions=(),
    detect=detect,
    load_checkpoint="hdm_deploy.families.adfnet.checkpoint:load_for_family",
    torch_runner="hdm_deploy.families.adfnet.torch_runner:TorchRunner",
    exporter="hdm_deploy.families.adfnet.export:EXPORT",
    sample_checkpoint="hdm_deploy.families.adfnet.checkpoint:sample_checkpoint_path",
    torch_options=frozenset({"protocol", "self_ensemble"}),
)
