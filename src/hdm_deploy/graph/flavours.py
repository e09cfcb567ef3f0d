"""The three DeformConv flavours of an exported graph and the lossless rewrites between them.

``onnx``
    the standard ``DeformConv`` (opset 19): ONNX Runtime ≥ 1.31, TensorRT ≥ 10.1 built in.
``plugin``
    ``hdm_deploy::HdmDeformConv``: DeformConv's inputs and attributes (all written explicitly) plus
    ``plugin_version="1"`` and ``plugin_namespace="hdm_deploy"``. TensorRT's ONNX parser falls back
    to the plugin registered under the op name. Never an empty optional input: a zero bias is
    inserted when a mask comes without a bias.
``decompose``
    standard ops only: every node becomes a call of a model-local function in domain
    ``hdm_deploy.deform`` (see :mod:`.deform_decompose`) carrying the same inputs and attributes, so
    it converts back exactly; :func:`inline_functions` removes the calls for TensorRT < 9.

Torch-free: the ONNX Runtime runner uses :func:`convert_deform` to run ``plugin`` graphs.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import onnx.inliner
from onnx import helper, numpy_helper

from hdm_deploy.core.contracts import (
    DECOMPOSE_DOMAIN,
    DECOMPOSE_DOMAIN_VERSION,
    FLAVOURS,
    PLUGIN_ATTRIBUTES,
    PLUGIN_DOMAIN,
    PLUGIN_OP_TYPE,
)
from hdm_deploy.core.errors import ExportError, ModelFormatError
from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.graph.deform_decompose import DeformSpec, build_function, is_decomposed_call

PLUGIN_OP = PLUGIN_OP_TYPE
#: metadata_props keys this module maintains
META_DEFORM = "deform"
META_INLINED = "functions_inlined"


def node_flavour(node: onnx.NodeProto) -> str | None:
    """Which flavour a node is a DeformConv of (None for any other node)."""
    if node.op_type == "DeformConv" and node.domain in _graph.ONNX_DOMAINS:
        return "onnx"
    if node.op_type == PLUGIN_OP and node.domain == PLUGIN_DOMAIN:
        return "plugin"
    if is_decomposed_call(node):
        return "decompose"
    return None


def deform_flavours(model: onnx.ModelProto) -> dict[str, int]:
    """How many DeformConv nodes of each flavour the main graph holds."""
    counts: dict[str, int] = {}
    for node in model.graph.node:
        if (flavour := node_flavour(node)) is not None:
            counts[flavour] = counts.get(flavour, 0) + 1
    return counts


def detect_flavour(model: onnx.ModelProto | str | os.PathLike) -> str | None:
    """'onnx' | 'plugin' | 'decompose' from the nodes (or, once inlined, from the metadata); None if
    the graph has no deformable convolution at all."""
    model = _graph.load(model)
    counts = deform_flavours(model)
    if len(counts) > 1:
        return "mixed"
    if counts:
        return next(iter(counts))
    meta = _graph.metadata(model)
    if meta.get(META_DEFORM) == "decompose":
        return "decompose"
    return None


def _canonical(node: onnx.NodeProto) -> tuple[list[str], dict]:
    """Inputs padded to (X, W, offset, B, mask) with '' for absent ones, and the DeformConv attributes."""
    inputs = list(node.input) + [""] * (5 - len(node.input))
    if is_decomposed_call(node):
        rest = list(node.input[3:])
        bias = rest.pop(0) if spec_has(node, "B") else ""
        mask = rest.pop(0) if spec_has(node, "M") else ""
        inputs = [*node.input[:3], bias, mask]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute if a.name not in PLUGIN_ATTRIBUTES}
    return inputs, attrs


def spec_has(node: onnx.NodeProto, letter: str) -> bool:
    """Whether a decomposition call has the optional input B (bias) or M (mask): encoded in its name."""
    suffix = node.op_type.rsplit("_", 1)[-1]
    return suffix.isupper() and letter in suffix


def _explicit_attrs(attrs: dict, kernel_shape: list[int] | None) -> dict:
    full = {
        "dilations": list(attrs.get("dilations", [1, 1])),
        "group": int(attrs.get("group", 1)),
        "offset_group": int(attrs.get("offset_group", 1)),
        "pads": list(attrs.get("pads", [0, 0, 0, 0])),
        "strides": list(attrs.get("strides", [1, 1])),
    }
    ks = attrs.get("kernel_shape", kernel_shape)
    if ks is not None:
        full["kernel_shape"] = list(ks)
    return full


class _Rewriter:
    def __init__(self, model: onnx.ModelProto):
        self.model = model
        self.inits = {t.name: t for t in model.graph.initializer}
        self.used_names = {o for n in model.graph.node for o in n.output} | set(self.inits)
        self.used_names |= {i.name for i in model.graph.input}
        self.counter = 0

    def unique(self, base: str) -> str:
        name = base
        while name in self.used_names:
            self.counter += 1
            name = f"{base}_{self.counter}"
        self.used_names.add(name)
        return name

    def kernel_shape(self, weight: str) -> list[int] | None:
        t = self.inits.get(weight)
        return list(t.dims[2:]) if t is not None and len(t.dims) == 4 else None

    def zero_bias(self, weight: str, base: str) -> tuple[str, list[onnx.NodeProto]]:
        """A zero bias of length C_out: an initializer if W is one, else computed from W's shape."""
        t = self.inits.get(weight)
        if t is not None:
            dtype = helper.tensor_dtype_to_np_dtype(t.data_type)
            name = self.unique(f"{base}_zero_bias")
            init = numpy_helper.from_array(np.zeros((t.dims[0],), dtype=dtype), name)
            self.model.graph.initializer.append(init)
            self.inits[name] = init
            return name, []
        shape, cout, name = (
            self.unique(f"{base}_w_shape"),
            self.unique(f"{base}_cout"),
            self.unique(f"{base}_zero_bias"),
        )
        starts, ends = self.unique(f"{base}_s0"), self.unique(f"{base}_s1")
        nodes = [
            helper.make_node("Shape", [weight], [shape], name=shape),
            helper.make_node(
                "Constant", [], [starts], value=numpy_helper.from_array(np.array([0], np.int64)), name=starts
            ),
            helper.make_node(
                "Constant", [], [ends], value=numpy_helper.from_array(np.array([1], np.int64)), name=ends
            ),
            helper.make_node("Slice", [shape, starts, ends], [cout], name=cout),
            helper.make_node(
                "ConstantOfShape",
                [cout],
                [name],
                value=numpy_helper.from_array(np.zeros(1, np.float32)),
                name=name,
            ),
        ]
        return name, nodes

    def rewrite(self, node: onnx.NodeProto, flavour: str) -> list[onnx.NodeProto]:
        inputs, attrs = _canonical(node)
        base = node.name or node.output[0]
        extra: list[onnx.NodeProto] = []
        if flavour == "onnx":
            while inputs and not inputs[-1]:
                inputs.pop()
            new = helper.make_node("DeformConv", inputs, list(node.output), name=node.name, **attrs)
        elif flavour == "plugin":
            if inputs[4] and not inputs[3]:
                inputs[3], extra = self.zero_bias(inputs[1], base)
            while inputs and not inputs[-1]:
                inputs.pop()
            full = _explicit_attrs(attrs, self.kernel_shape(inputs[1]))
            new = helper.make_node(
                PLUGIN_OP,
                inputs,
                list(node.output),
                name=node.name,
                domain=PLUGIN_DOMAIN,
                **full,
                **PLUGIN_ATTRIBUTES,
            )
        elif flavour == "decompose":
            probe = helper.make_node("DeformConv", inputs, ["y"], **attrs)
            spec = DeformSpec.from_node(probe)
            args = [i for i in inputs if i]
            new = helper.make_node(
                spec.function_name, args, list(node.output), name=node.name, domain=DECOMPOSE_DOMAIN, **attrs
            )
        else:
            raise ExportError(f"unknown DeformConv flavour {flavour!r}", f"use one of {', '.join(FLAVOURS)}")
        new.doc_string = node.doc_string
        for prop in node.metadata_props:
            new.metadata_props.add(key=prop.key, value=prop.value)
        return [*extra, new]


def convert_deform(model: onnx.ModelProto, flavour: str, *, check: bool = True) -> onnx.ModelProto:
    """Rewrite every DeformConv node of ``model`` (any flavour) into ``flavour``; returns a new model."""
    if flavour not in FLAVOURS:
        raise ExportError(f"unknown DeformConv flavour {flavour!r}", f"use one of {', '.join(FLAVOURS)}")
    current = detect_flavour(model)
    counts = deform_flavours(model)
    opset = _graph.opset_version(model) or _graph.OPSET
    if flavour == "onnx" and counts and opset < 19:
        raise ExportError(
            f"DeformConv needs opset 19 but this graph uses opset {opset}",
            "convert to plugin or decompose instead (or re-export with --opset 19)",
        )
    meta = _graph.metadata(model)
    if not counts and current == "decompose" and flavour != "decompose":
        raise ExportError(
            "this graph's DeformConv decomposition was inlined and cannot be converted back",
            "re-export without --inline-functions (or convert first, then inline)",
        )
    out = onnx.ModelProto()
    out.CopyFrom(model)
    rewriter = _Rewriter(out)
    nodes: list[onnx.NodeProto] = []
    for node in out.graph.node:
        if node_flavour(node) is None:
            nodes.append(node)
        else:
            nodes.extend(rewriter.rewrite(node, flavour))
    del out.graph.node[:]
    out.graph.node.extend(nodes)

    # Functions: keep the decompositions that are called, add the missing ones.
    called = {n.op_type for n in out.graph.node if is_decomposed_call(n)}
    kept = [f for f in out.functions if f.domain != DECOMPOSE_DOMAIN or f.name in called]
    have = {f.name for f in kept if f.domain == DECOMPOSE_DOMAIN}
    for node in out.graph.node:
        if is_decomposed_call(node) and node.op_type not in have:
            inputs, attrs = _canonical(node)
            spec = DeformSpec.from_node(helper.make_node("DeformConv", inputs, ["y"], **attrs))
            kept.append(build_function(spec, _graph.opset_version(out) or _graph.OPSET))
            have.add(node.op_type)
    del out.functions[:]
    out.functions.extend(kept)

    if any(n.domain == PLUGIN_DOMAIN for n in out.graph.node):
        _graph.set_opset(out, PLUGIN_DOMAIN, 1)
    if called:
        _graph.set_opset(out, DECOMPOSE_DOMAIN, DECOMPOSE_DOMAIN_VERSION)
    _graph.prune_opsets(out)
    if counts or META_DEFORM in meta:
        _graph.set_metadata(out, {META_DEFORM: flavour})
    if check:
        _graph.finalize(out, ir_version=max(model.ir_version, 3) if model.ir_version else _graph.IR_VERSION)
    return out


def inline_functions(model: onnx.ModelProto, *, check: bool = True) -> onnx.ModelProto:
    """Replace every local-function call (DCP masks, DeformConv decompositions) by its body."""
    ir_version = model.ir_version
    inlined = onnx.inliner.inline_local_functions(model)
    del inlined.functions[:]
    _graph.prune_opsets(inlined)
    _graph.set_metadata(inlined, {META_INLINED: "true"})
    inlined.ir_version = ir_version
    if check:
        _graph.finalize(inlined, ir_version=ir_version)
    return inlined


def convert_file(
    source: str | os.PathLike,
    output: str | os.PathLike,
    flavour: str,
    *,
    inline: bool = False,
) -> Path:
    """``hdm-deploy convert``: read, rewrite (and optionally inline), check, write atomically."""
    model = _graph.load(source)
    if detect_flavour(model) is None:  # converting is all this command does: an unchanged copy would hide it
        raise ModelFormatError(
            f"{source}: no DeformConv nodes: nothing to convert",
            "give an ONNX file written by `hdm-deploy export` (or convert of one)",
        )
    converted = convert_deform(model, flavour, check=not inline)
    if inline:
        converted = inline_functions(converted)
    return _graph.save(converted, output)
