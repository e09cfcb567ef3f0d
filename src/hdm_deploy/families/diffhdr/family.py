"""DiffHDR as a :class:`~hdm_deploy.families.base.Family` (torch-free facts + lazy torch references).

DiffHDR is not a single-frame network: three LDR exposures go in, and a host-side DDIM loop drives a
condition network (AHDR) and a noise-prediction UNet over overlapping patches. Its export therefore
writes two graphs (``artifact_exporter``), and it runs through ``hdm-deploy hdr`` (:mod:`.sampler`),
not through the frame runners.
"""

from __future__ import annotations

from collections.abc import Iterable

from hdm_deploy.families.base import Family, FrameContract

#: Published checkpoint entries (``Hdr_ddpm3000000.pth.tar``): UNet, AHDR, EMA shadow of the UNet
#: (un-prefixed names). The generic reader merges them as ``<entry>.<key>``.
UNET_ENTRY = "ddpm_state_dict"
AHDR_ENTRY = "cnn_state_dict"
EMA_ENTRY = "ema_helper"
#: Key suffixes only DiffHDR's networks have (after entry and ``module.`` prefixes are stripped).
UNET_SIGNATURE = frozenset({"SFT_layer.SFT_scale_conv0.weight", "temb.dense.0.weight", "conv_in.weight"})
AHDR_SIGNATURE = frozenset({"att11.weight", "att31.weight", "conv1.weight", "conv2.weight"})
_PREFIXES = ("module.", "_orig_mod.")
#: Published sampler facts (eval_diffusion.py, configs/hdr.yml).
PATCH = 512
STRIDE = 64
STEPS_PUBLISHED = 25
STEPS_CODE_DEFAULT = 200
SEED = 61
MU = 5000.0
#: Graph I/O names of the two exported graphs.
COND_INPUT, FEATURE, XT_INPUT, T_INPUT, EPS_OUTPUT = "cond", "feature", "x_t", "t", "eps"
#: ONNX metadata key naming the condition graph beside the UNet graph.
CONDITION_GRAPH_KEY = "condition_graph"


def strip(key: str) -> tuple[str, str]:
    """``"ddpm_state_dict.module.conv_in.weight"`` → ``("ddpm_state_dict", "conv_in.weight")``."""
    entry = ""
    for candidate in (UNET_ENTRY, AHDR_ENTRY, EMA_ENTRY):
        if key.startswith(candidate + "."):
            entry, key = candidate, key[len(candidate) + 1 :]
            break
    changed = True
    while changed:
        changed = False
        for prefix in _PREFIXES:
            if key.startswith(prefix):
                key, changed = key[len(prefix) :], True
    return entry, key


def detect(keys: Iterable[str]) -> str | None:
    """``"published"`` when the keys hold DiffHDR's UNet (``ddpm_state_dict``) and AHDR (``cnn_state_dict``)."""
    unet, ahdr = set(), set()
    for key in keys:
        entry, name = strip(key)
        if entry == UNET_ENTRY:
            unet.add(name)
        elif entry == AHDR_ENTRY:
            ahdr.add(name)
    return "published" if unet >= UNET_SIGNATURE and ahdr >= AHDR_SIGNATURE else None


FAMILY = Family(
    name="diffhdr",
    title="DiffHDR (Hu et al., TCSVT 2023)",
    task="hdr",
    # Not used by a frame path (DiffHDR has none); the patch side must be a multiple of 32.
    frame=FrameContract(pad_multiple=32, pad_mode="constant", min_side=32),
    detect=detect,
    load_checkpoint="hdm_deploy.families.diffhdr.checkpoint:load_for_family",
    torch_runner="hdm_deploy.families.diffhdr.reference:NoFrameRunner",
    exporter="hdm_deploy.families.diffhdr.export:EXPORT",
    artifact_exporter="hdm_deploy.families.diffhdr.export:export_artifact",
    artifact_parity="hdm_deploy.families.diffhdr.parity:check_artifact",
    checkpoint_globals=("argparse:Namespace", "torch:device"),
    weight_variants=("ema",),  # export --ema: the UNet's EMA shadow (default: raw, as the published test)
)
