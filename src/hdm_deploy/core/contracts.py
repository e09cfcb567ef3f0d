"""Every fact two packages must agree on, in one place (no imports of hdm_deploy).

ONNX op types and domains we emit, the TensorRT plugin's identity, the DeformConv flavours, the
ONNX opset ↔ IR version table, the exported graph's I/O names and the metadata keys a runner reads.
A family's own contracts (HDM's DCP function) live with the family.
"""

from __future__ import annotations

from typing import Final

# ---------------------------------------------------------------- ONNX opsets and IR versions
#: The opset we export by default, and the IR version our files carry at that opset.
DEFAULT_OPSET: Final = 19
DEFAULT_IR_VERSION: Final = 10
#: Opsets ``export --opset`` accepts (17: TensorRT 8.5/8.6 parsers).
SUPPORTED_OPSETS: Final = (17, 18, 19)
#: The lowest IR version that allows each opset (ONNX's versioning table), for files old parsers
#: must read. (onnx 1.23 writes IR 14 by default, which ONNX Runtime 1.31 rejects.)
IR_FOR_OPSET: Final = {17: 8, 18: 8, 19: 9, 20: 9, 21: 10, 22: 10}
#: The default ONNX domain's two spellings.
ONNX_DOMAINS: Final = ("", "ai.onnx")


def ir_version_for(opset: int) -> int:
    """The lowest IR version that allows ``opset`` (see :data:`IR_FOR_OPSET`)."""
    if opset in IR_FOR_OPSET:
        return IR_FOR_OPSET[opset]
    return max(v for k, v in IR_FOR_OPSET.items() if k <= opset) if opset > 17 else 8


# ---------------------------------------------------------------- DeformConv
#: How DeformConv appears in an exported graph (``export --deform``, ``convert``).
FLAVOURS: Final = ("onnx", "plugin", "decompose")
#: Our TensorRT plugin op: op type and domain in ONNX, creator name/version/namespace in TensorRT.
PLUGIN_OP_TYPE: Final = "HdmDeformConv"
PLUGIN_DOMAIN: Final = "hdm_deploy"
PLUGIN_VERSION: Final = "1"
PLUGIN_NAMESPACE: Final = "hdm_deploy"
#: Attributes the plugin node carries beside DeformConv's own (onnx-tensorrt reads them to find the creator).
PLUGIN_ATTRIBUTES: Final = {"plugin_version": PLUGIN_VERSION, "plugin_namespace": PLUGIN_NAMESPACE}
#: ``(domain, op_type)`` of every op that needs our plugin library in TensorRT.
PLUGIN_OPS: Final = frozenset({(PLUGIN_DOMAIN, PLUGIN_OP_TYPE)})
#: The ``decompose`` flavour's local functions: domain, version and name prefix.
DECOMPOSE_DOMAIN: Final = "hdm_deploy.deform"
DECOMPOSE_DOMAIN_VERSION: Final = 1
DECOMPOSE_NAME_PREFIX: Final = "DeformConv_"
#: Environment variable naming the plugin library (``libhdm_deploy_plugins.so``).
PLUGIN_LIB_ENV: Final = "HDM_DEPLOY_PLUGIN_LIB"
PLUGIN_LIB_NAME: Final = "libhdm_deploy_plugins.so"

# ---------------------------------------------------------------- exported graph I/O
INPUT_NAME: Final = "image"
OUTPUT_NAME: Final = "enhanced"
#: ``--io``: uint8 NHWC RGB in/out (the whole frame path), or float32 NCHW in [0, 1].
IO_KINDS: Final = ("uint8", "float")

# ---------------------------------------------------------------- precision
PRECISIONS: Final = ("fp32", "fp16")

# ---------------------------------------------------------------- metadata_props keys
META_FAMILY: Final = "family"  #: registry name (``hdm``)
META_FLAVOUR: Final = "deform"
META_PRECISION: Final = "precision"
META_MAX_PIXELS: Final = "max_pixels"
META_PAD_MULTIPLE: Final = "pad_multiple"
META_PAD_MODE: Final = "pad_mode"
META_MIN_SIDE: Final = "min_side"
#: Graphs with several inputs (an artifact of several graphs driven by a host loop): the ranges of
#: the named dynamic axes for the TensorRT profile (JSON ``{"axis": [min, opt, max]}``), and the file
#: names (beside this graph, comma-separated) of the other graphs built and run with it.
META_PROFILE_AXES: Final = "profile_axes"
META_COMPANION_GRAPHS: Final = "companion_graphs"
