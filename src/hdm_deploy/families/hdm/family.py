"""HDM as a :class:`~hdm_deploy.families.base.Family` (torch-free facts + lazy torch references)."""

from __future__ import annotations

from collections.abc import Iterable

from hdm_deploy.families.base import Family, FrameContract
from hdm_deploy.families.hdm.dcp import DCP_DOMAIN, DCP_FUNCTION

#: Smallest frame side: two stride-2 convs and the ÷4 DCP resize need 4 px.
MIN_SIDE = 4
PAD_MULTIPLE = 4
#: Keys (wrapper prefixes stripped) only HDM's ``DR_Net_phy`` has.
SIGNATURE_KEYS = frozenset(
    {"dcn_block.dcn.weight", "drconv_phy.conv_kernel.1.weight", "mix1.w", "conv0.0.weight"}
)
_PREFIXES = ("module.", "_orig_mod.")


def detect(keys: Iterable[str]) -> str | None:
    """``"published"`` when the state-dict keys are HDM's (any ``module.``/``_orig_mod.`` prefix)."""
    stripped = set()
    for key in keys:
        for prefix in _PREFIXES:
            while key.startswith(prefix):
                key = key[len(prefix) :]
        stripped.add(key)
    return "published" if stripped >= SIGNATURE_KEYS else None


FAMILY = Family(
    name="hdm",
    title="HDM (Liang et al., ACM MM 2022)",
    task="dehaze",
    frame=FrameContract(pad_multiple=PAD_MULTIPLE, pad_mode="reflect", min_side=MIN_SIDE),
    extras={"masks": "equal"},
    # An FP16 export keeps the DCP function FP32 inside: the guided-filter variances cancel
    # catastrophically in FP16, the region thresholds flip, and several constants (Lanczos weights
    # up to 2^22, −FLT_MAX) exceed FP16's range; masks must be 100 % equal.
    fp32_functions=((DCP_DOMAIN, DCP_FUNCTION),),
    detect=detect,
    load_checkpoint="hdm_deploy.families.hdm.checkpoint:load_for_family",
    torch_runner="hdm_deploy.families.hdm.torch_runner:TorchRunner",
    exporter="hdm_deploy.families.hdm.export:EXPORT",
    sample_checkpoint="hdm_deploy.families.hdm.sample:sample_checkpoint_path",
    torch_options=frozenset({"masks"}),
    # everything global lives in the DCP prior or at 1/4 resolution: stem and head tile exactly
    tiling="exact",
    tiled_stages="hdm_deploy.families.hdm.tiled:tiled_stages",
)
