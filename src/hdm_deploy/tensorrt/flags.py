"""Builder decisions per TensorRT version, as plain data (tested without TensorRT).

Facts used (read from the TensorRT headers ``NvInfer.h`` of releases 8.5, 8.6, 10.3, 10.13, 11.1):

- ``NetworkDefinitionCreationFlag::kEXPLICIT_BATCH`` is required for ONNX before TRT 10, deprecated
  (ignored) in 10.x and gone in 11.
- ``kSTRONGLY_TYPED`` exists from TRT 10.0 (we do not target 9.x); in TRT 11 strong typing is
  always on and the flag is a deprecated no-op.
- ``BuilderFlag::kTF32`` exists in every version and is **on by default**: FP32 convolutions and
  matrix products may round their inputs to 10-bit mantissas on Ampere and newer. The DCP graph
  relies on near-exact FP32 (integer-valued window sums, thresholds), so we always clear it.
- ``kFP16`` / ``kOBEY_PRECISION_CONSTRAINTS`` drive weak typing; deprecated in TRT 10.12 and
  removed in TRT 11. Setting precision flags on a strongly typed network is an error, so they are
  only used for weakly typed builds, where the FP32 island layers are pinned with
  ``layer.precision`` / ``set_output_type`` and ``OBEY_PRECISION_CONSTRAINTS``.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from hdm_deploy.core.errors import HdmDeployError, TensorRTUnavailableError

MIN_TRT = (8, 5)


def parse_version(text: str) -> tuple[int, ...]:
    """``"10.13.3.9"`` / ``"8.5"`` → ``(10, 13, 3, 9)`` / ``(8, 5)``; garbage → :class:`HdmDeployError`."""
    nums = re.findall(r"\d+", str(text))
    if not nums:
        raise HdmDeployError(
            f"not a TensorRT version: {text!r}", "give a version such as 8.5, 8.6, 10.3, 10.13 or 10.13.3.9"
        )
    return tuple(int(n) for n in nums)


@dataclass(frozen=True)
class BuildFlags:
    """What the builder sets, by enum member name (``trt.NetworkDefinitionCreationFlag.X`` etc.)."""

    network_flags: tuple[str, ...]
    set_flags: tuple[str, ...]
    clear_flags: tuple[str, ...]
    strongly_typed: bool
    pin_fp32_layers: bool  #: weakly typed FP16: set precision on island layers
    notes: tuple[str, ...] = field(default=())


class BuildConfigError(HdmDeployError):
    """An engine build option that this TensorRT version or this model cannot honour."""


def decide_flags(
    trt_version: str | tuple[int, ...],
    graph_precision: str,
    fp16: bool,
    strongly_typed: bool | None = None,
) -> BuildFlags:
    """Decide network-creation and builder flags.

    ``graph_precision``: the ONNX model's ``precision`` metadata ('fp32' or 'fp16' — the latter
    carries explicit FP32 islands). ``fp16``: the user asked for an FP16 engine. ``strongly_typed``:
    ``None`` chooses (strong typing wherever available, i.e. TRT ≥ 10).
    """
    v = parse_version(trt_version) if isinstance(trt_version, str) else tuple(trt_version)
    if v[:2] < MIN_TRT:
        raise TensorRTUnavailableError(
            f"TensorRT {'.'.join(map(str, v))} is too old (need ≥ 8.5)",
            "install TensorRT ≥ 8.5 (JetPack ≥ 5.1)",
        )
    has_strong = v[0] >= 10
    always_strong = v[0] >= 11
    if graph_precision == "fp16" and not fp16:
        fp16 = True  # the graph's types are FP16 already; the engine is what the graph says
    if fp16 and graph_precision != "fp16":
        raise BuildConfigError(
            "--fp16 needs a graph exported with the FP16 precision policy (FP32 islands for the family's "
            "FP32 functions and DeformConv sampling); this model's precision is " + repr(graph_precision),
            "re-export with `hdm-deploy export --precision fp16` (builder-side FP16 would put the islands in FP16)",
        )
    if strongly_typed is None:
        strongly_typed = has_strong
    if strongly_typed and not has_strong:
        raise BuildConfigError(
            f"strongly typed networks need TensorRT ≥ 10 (found {'.'.join(map(str, v))})",
            "drop --strongly-typed: the builder pins the FP32 islands with layer precisions instead",
        )
    if not strongly_typed and always_strong:
        raise BuildConfigError(
            "TensorRT ≥ 11 has no weakly typed networks",
            "drop --no-strongly-typed (the ONNX casts carry the precision)",
        )

    network: list[str] = []
    if v[0] < 10:
        network.append("EXPLICIT_BATCH")
    if strongly_typed and not always_strong:
        network.append("STRONGLY_TYPED")
    set_flags: list[str] = []
    notes: list[str] = ["TF32 cleared: FP32 layers (the islands) compute in true FP32"]
    pin = False
    if fp16 and not strongly_typed:
        set_flags += ["FP16", "OBEY_PRECISION_CONSTRAINTS"]
        pin = True
        notes.append("weakly typed FP16: island layers pinned to FP32 with OBEY_PRECISION_CONSTRAINTS")
    elif fp16:
        notes.append("strongly typed: precisions come from the graph's casts")
    return BuildFlags(tuple(network), tuple(set_flags), ("TF32",), strongly_typed, pin, tuple(notes))


def _layer_suffix_ok(rest: str) -> bool:
    return rest == "" or re.fullmatch(r"(_\d+|__\d+(_\d+)?)", rest) is not None


def layer_matches(layer_name: str, node_names: Iterable[str], metadata: str | None = None) -> bool:
    """Whether a TensorRT layer came from one of ``node_names``.

    The ONNX parser names a layer after its node, uniquified with ``_N``; ONNX's inliner names
    function-body nodes ``name__N``. TRT ≥ 10 also stores the node name in ``layer.metadata``.
    """
    for name in node_names:
        if layer_name.startswith(name) and _layer_suffix_ok(layer_name[len(name) :]):
            return True
        if metadata and re.search(r"(^|[\[\s:/,])" + re.escape(name) + r"($|[\]\s/,])", metadata):
            return True
    return False


FLOAT_TYPES = ("FLOAT", "HALF", "float32", "float16", "DataType.FLOAT", "DataType.HALF")


def layers_to_pin(
    layers: Iterable[tuple[str, str | None, Iterable[str]]], node_names: Iterable[str]
) -> list[str]:
    """Names of the layers to pin to FP32: from an island node, with at least one floating output.

    ``layers``: ``(name, metadata, output dtype names)`` per layer. Shape/int/bool layers are left
    alone (setting a float precision on them fails the build).
    """
    names = list(node_names)
    out = []
    for layer_name, meta, dtypes in layers:
        if any(str(d) in FLOAT_TYPES for d in dtypes) and layer_matches(layer_name, names, meta):
            out.append(layer_name)
    return out


def workspace_bytes(gigabytes: float | None) -> int | None:
    """``--workspace GB`` → bytes for ``MemoryPoolType.WORKSPACE`` (None: TensorRT's default, the device memory)."""
    if gigabytes is None:
        return None
    if gigabytes <= 0:
        raise BuildConfigError(f"--workspace must be positive, got {gigabytes}")
    return int(gigabytes * (1 << 30))
