"""MHNet as a :class:`~hdm_deploy.families.base.Family` (torch-free facts + lazy torch references).

MHNet (Mixed Hierarchy Network, Gao et al., arXiv 2302.09554; ``github:Tombs98/MHNet``) exists in
three incompatible forms. The 2023 code (``Deblur/MHNet.py`` and ``Derain/MHNet.py``, last present
at commit ``46ba1eb``) is what the published train/test scripts call; the two differ only in
``n_feat`` (64 deblur, 40 derain) and are told apart by the shape of ``stage2.info.weight``. The 2024
root file (``MHNet.py`` at HEAD) does not instantiate (``super(SKFF, self)`` in ``AFFM``,
``super(CASNet, self)`` in ``FRSNet``) and has no published checkpoints: its keys are recognised so
that such a file is refused with that reason instead of "unknown family".
"""

from __future__ import annotations

from collections.abc import Iterable

from hdm_deploy.families.base import Family, FrameContract

#: Stage 1 is a 4-level U-Net: its own ``check_image_size`` zero-pads to 2**4, and the
#: ``concat12`` of the unpadded shallow features with the padded decoder output needs H, W % 16 == 0.
PAD_MULTIPLE = 16
#: Reflection padding needs pad < side (≥ 16); the traced graph also needs the 1/16 bottleneck to be at
#: least 2 px (torch.export specialises size-1 dims: it guards ceil(H/16) > 1), so 17 for every backend.
MIN_SIDE = 17
PAD_MODE = "reflect"

#: Variant names (``--arch mhnet:VARIANT``); detection says ``2023`` and the loader picks deblur or
#: derain from the tensor shapes.
GENERATION_2023 = "2023"
GENERATION_2024 = "2024"
VARIANTS = ("deblur", "derain", GENERATION_2023, GENERATION_2024)

#: Keys (wrapper prefixes stripped) only the 2023 MHNet has.
SIGNATURE_2023 = frozenset(
    {
        "shallow_feat1.0.weight",
        "stage2.info.weight",
        "stage2.CABG1.body.0.body.0.depth_conv.weight",
        "stage1.middle_blks.0.qkv.weight",
        "concat12.weight",
        "tail.weight",
    }
)
#: Keys only the 2024 root file has.
SIGNATURE_2024 = frozenset(
    {
        "intro.weight",
        "intro2.weight",
        "stage2.skff1.conv_du.0.weight",
        "stage1.middle_blks.0.attn1",
        "stage1.middle_blks.0.qkv.weight",
    }
)
_PREFIXES = ("module.", "_orig_mod.")


def _strip(key: str) -> str:
    for prefix in _PREFIXES:
        while key.startswith(prefix):
            key = key[len(prefix) :]
    return key


def detect(keys: Iterable[str]) -> str | None:
    """``"2023"`` or ``"2024"`` when the state-dict keys are MHNet's (any ``module.`` prefix)."""
    stripped = {_strip(k) for k in keys}
    if stripped >= SIGNATURE_2023:
        return GENERATION_2023
    if stripped >= SIGNATURE_2024:
        return GENERATION_2024
    return None


FAMILY = Family(
    name="mhnet",
    title="MHNet (Gao et al., 2023; deblur/derain)",
    task="deblur",
    frame=FrameContract(pad_multiple=PAD_MULTIPLE, pad_mode=PAD_MODE, min_side=MIN_SIDE),
    # FP16 policy (benchmarks/mhnet_fp16.py, docs/mhnet.md): the MDTA block at 1/16 resolution stays
    # FP32 — F.normalize sums squares over H/16·W/16 positions (8160 at 1080p), which overflows FP16
    # once the RMS activation exceeds ~2.8; it is 0.4 % of the MACs. LayerNorm2d stays FP16
    # (measured: +0.9 dB in FP32, the FP16 network is ≥ 70 dB either way).
    fp32_scopes=(
        (
            "mdta",
            "MDTA attention: L2 norms over all H/16·W/16 positions overflow FP16 beyond RMS ≈ 2.8",
            r"(^|/)net\.stage1\.middle_blks\.0(/|$)",
        ),
    ),
    tiling="overlap",  # global attention: overlap tiles, PSNR measured
    detect=detect,
    load_checkpoint="hdm_deploy.families.mhnet.checkpoint:load_for_family",
    torch_runner="hdm_deploy.families.mhnet.torch_runner:TorchRunner",
    exporter="hdm_deploy.families.mhnet.export:EXPORT",
)
