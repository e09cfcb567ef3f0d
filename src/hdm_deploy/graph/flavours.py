"""The three DeformConv flavours of an exported graph and the lossless rewrites between them.

``onnx``
    the standard ``DeformConv`` (opset 19): ONNX Runtime ≥ 1.25 (measured), TensorRT ≥ 10.1 built in.
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
import onnx_ir as ir
from onnx import TensorProto, helper

from hdm_deploy.core.contracts import (
    DECOMPOSE_DOMAIN,
    DECOMPOSE_DOMAIN_VERSION,
    FLAVOURS,
    META_FAMILY,
    PLUGIN_ATTRIBUTES,
    PLUGIN_DOMAIN,
    PLUGIN_OP_TYPE,
)
from hdm_deploy.core.errors import ExportError, ModelFormatError
from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.graph.deform_decompose import DeformSpec, decompose_function, is_decomposed_call
from hdm_deploy.graph.ir_build import Builder

PLUGIN_OP = PLUGIN_OP_TYPE
#: metadata_props keys this module maintains
META_DEFORM = "deform"
#: ``deform`` metadata of a graph without deformable convolutions (every flavour is the same graph)
NO_DEFORM = "none"
META_INLINED = "functions_inlined"


def node_flavour(node: onnx.NodeProto | ir.Node) -> str | None:
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


def spec_has(node: onnx.NodeProto | ir.Node, letter: str) -> bool:
    """Whether a decomposition call has the optional input B (bias) or M (mask): encoded in its name."""
    suffix = node.op_type.rsplit("_", 1)[-1]
    return suffix.isupper() and letter in suffix


def _canonical(node: ir.Node) -> tuple[list[ir.Value | None], dict]:
    """Inputs padded to (X, W, offset, B, mask) with None for absent ones, and the DeformConv attributes."""
    inputs = list(node.inputs) + [None] * (5 - len(node.inputs))
    if is_decomposed_call(node):
        rest = list(node.inputs[3:])
        bias = rest.pop(0) if spec_has(node, "B") else None
        mask = rest.pop(0) if spec_has(node, "M") else None
        inputs = [*node.inputs[:3], bias, mask]
    attrs = {k: a.value for k, a in node.attributes.items() if k not in PLUGIN_ATTRIBUTES}
    return inputs, attrs


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


def _trim(inputs: list[ir.Value | None]) -> list[ir.Value | None]:
    """Without trailing absent inputs."""
    while inputs and inputs[-1] is None:
        inputs = inputs[:-1]
    return inputs


class ConvertDeformPass(ir.passes.InPlacePass):
    """Rewrite every DeformConv node (any flavour) of the main graph into ``flavour``.

    Rule: pattern :func:`node_flavour` is not None → :meth:`check` (a reason to refuse, else None) →
    :meth:`rewrite` (one new node, preceded by the nodes of a zero bias where the plugin needs one). The
    new node keeps the outputs, name, doc string and metadata (scopes) of the one it replaces. Calls of
    the ``decompose`` flavour get their functions (:func:`.deform_decompose.decompose_function`).
    """

    def __init__(self, flavour: str):
        super().__init__()
        if flavour not in FLAVOURS:
            raise ExportError(f"unknown DeformConv flavour {flavour!r}", f"use one of {', '.join(FLAVOURS)}")
        self.flavour = flavour

    def check(self, node: ir.Node) -> str | None:
        """Why ``node`` cannot be rewritten (None: it can)."""
        if self.flavour == "onnx" and self._opset < 19:
            return f"DeformConv needs opset 19 but this graph uses opset {self._opset}"
        return None

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        self._names = {v.name for n in graph for v in n.outputs} | set(graph.initializers)
        self._names |= {v.name for v in graph.inputs}
        self._counter = 0
        self._opset = model.opset_imports.get("", _graph.OPSET)
        modified = False
        for node in list(graph):
            if node_flavour(node) is None:
                continue
            if reason := self.check(node):
                raise ExportError(
                    reason, "convert to plugin or decompose instead (or re-export with --opset 19)"
                )
            nodes = self.rewrite(graph, node)
            new = nodes[-1]
            new.name, new.doc_string = node.name, node.doc_string
            new.metadata_props.update(node.metadata_props)
            ir.convenience.replace_nodes_and_values(graph, node, [node], nodes, node.outputs, new.outputs)
            if is_decomposed_call(new) and new.op_identifier() not in model.functions:
                model.functions[new.op_identifier()] = decompose_function(self._spec(new), self._opset)
            modified = True
        domains = {n.domain for n in graph}
        if PLUGIN_DOMAIN in domains:
            model.opset_imports[PLUGIN_DOMAIN] = 1
        if DECOMPOSE_DOMAIN in domains:
            model.opset_imports[DECOMPOSE_DOMAIN] = DECOMPOSE_DOMAIN_VERSION
        return ir.passes.PassResult(model, modified)

    @staticmethod
    def _spec(node: ir.Node) -> DeformSpec:
        inputs, attrs = _canonical(node)
        return DeformSpec.from_attrs(attrs, has_bias=inputs[3] is not None, has_mask=inputs[4] is not None)

    def _unique(self, base: str) -> str:
        name = base
        while name in self._names:
            self._counter += 1
            name = f"{base}_{self._counter}"
        self._names.add(name)
        return name

    def _zero_bias(self, graph: ir.Graph, weight: ir.Value, base: str) -> tuple[ir.Value, list[ir.Node]]:
        """A zero bias of length C_out: an initializer if W is one, else computed from W's shape."""
        t = weight.const_value if weight.name in graph.initializers else None
        if t is not None:
            name = self._unique(f"{base}_zero_bias")
            value = ir.Value(
                name=name, const_value=ir.tensor(np.zeros((t.shape[0],), t.dtype.numpy()), name=name)
            )
            value.shape, value.dtype = value.const_value.shape, value.const_value.dtype
            graph.register_initializer(value)
            return value, []
        b = Builder(self._opset)  # with the names below (from _unique), as before
        shape = b.op("Shape", weight, outputs=[self._unique(f"{base}_w_shape")])
        starts = b.op(
            "Constant", value=ir.tensor(np.array([0], np.int64)), outputs=[self._unique(f"{base}_s0")]
        )
        ends = b.op(
            "Constant", value=ir.tensor(np.array([1], np.int64)), outputs=[self._unique(f"{base}_s1")]
        )
        cout = b.op("Slice", shape, starts, ends, outputs=[self._unique(f"{base}_cout")])
        zero = b.op(
            "ConstantOfShape",
            cout,
            value=ir.tensor(np.zeros(1, np.float32)),
            outputs=[self._unique(f"{base}_zero_bias")],
        )
        for node in b.nodes:
            node.name = node.outputs[0].name
        return zero, list(b.nodes)

    def rewrite(self, graph: ir.Graph, node: ir.Node) -> list[ir.Node]:
        inputs, attrs = _canonical(node)
        outputs = [ir.Value() for _ in node.outputs]
        if self.flavour == "onnx":
            return [ir.Node("", "DeformConv", _trim(inputs), _convert(attrs), outputs=outputs)]
        if self.flavour == "plugin":
            extra: list[ir.Node] = []
            if inputs[4] is not None and inputs[3] is None:
                inputs[3], extra = self._zero_bias(graph, inputs[1], node.name or node.outputs[0].name)
            w = inputs[1].const_value if inputs[1].name in graph.initializers else None
            kernel_shape = list(w.shape[2:]) if w is not None and len(w.shape) == 4 else None
            full = {**_explicit_attrs(attrs, kernel_shape), **PLUGIN_ATTRIBUTES}
            return [*extra, ir.Node(PLUGIN_DOMAIN, PLUGIN_OP, _trim(inputs), _convert(full), outputs=outputs)]
        args = [i for i in inputs if i is not None]
        name = self._spec(node).function_name
        return [ir.Node(DECOMPOSE_DOMAIN, name, args, _convert(attrs), outputs=outputs)]


def _convert(attrs: dict) -> list[ir.Attr]:
    return ir.convenience.convert_attributes(
        {k: list(v) if isinstance(v, tuple) else v for k, v in attrs.items()}
    )


def convert_deform(model: onnx.ModelProto, flavour: str, *, check: bool = True) -> onnx.ModelProto:
    """Rewrite every DeformConv node of ``model`` (any flavour) into ``flavour``; returns a new model."""
    if flavour not in FLAVOURS:
        raise ExportError(f"unknown DeformConv flavour {flavour!r}", f"use one of {', '.join(FLAVOURS)}")
    current = detect_flavour(model)
    counts = deform_flavours(model)
    meta = _graph.metadata(model)
    if not counts and current == "decompose" and flavour != "decompose":
        raise ExportError(
            "this graph's DeformConv decomposition was inlined and cannot be converted back",
            "re-export without --inline-functions (or convert first, then inline)",
        )
    out = _graph.apply(
        ir.passes.PassManager([ConvertDeformPass(flavour), *_graph.tidy_passes().passes]), model
    )
    if counts or meta.get(META_DEFORM) not in (None, NO_DEFORM):
        _graph.set_metadata(out, {META_DEFORM: flavour})
    if check:
        _graph.finalize(out, ir_version=max(model.ir_version, 3) if model.ir_version else _graph.IR_VERSION)
    return out


def decompose_calls_in_fp32(model: onnx.ModelProto) -> onnx.ModelProto:
    """In place, for an FP16 graph whose DeformConv became ``decompose`` calls (e.g. the plugin flavour
    run in ONNX Runtime below opset 19): the decomposition's functions are FP32, so each call gets its
    inputs cast to FP32 and its output cast back to FP16 — what the plugin does inside (FP32 sampling)."""
    nodes = []
    for node in model.graph.node:
        if not is_decomposed_call(node):
            nodes.append(node)
            continue
        for k, name in enumerate(node.input):
            if name:
                cast = f"{name}__fp32_for_{node.name or node.output[0]}"
                nodes.append(
                    helper.make_node("Cast", [name], [cast], to=TensorProto.FLOAT, name=f"{cast}_cast")
                )
                node.input[k] = cast
        out = node.output[0]
        node.output[0] = f"{out}__fp32"
        nodes.append(node)
        nodes.append(
            helper.make_node("Cast", [node.output[0]], [out], to=TensorProto.FLOAT16, name=f"{out}__to_fp16")
        )
    del model.graph.node[:]
    model.graph.node.extend(nodes)
    return model


def inline_functions(model: onnx.ModelProto, *, check: bool = True) -> onnx.ModelProto:
    """Replace every local-function call (DCP masks, DeformConv decompositions) by its body."""
    inlined = _graph.apply(_graph.inline_passes(), model)
    _graph.set_metadata(inlined, {META_INLINED: "true"})
    if check:
        _graph.finalize(inlined, ir_version=model.ir_version)
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
        family = _graph.metadata(model).get(META_FAMILY)
        if family is None:
            raise ModelFormatError(
                f"{source}: no DeformConv nodes: nothing to convert",
                "give an ONNX file written by `hdm-deploy export` (or convert of one)",
            )
        if not (inline and model.functions):
            raise ModelFormatError(
                f"{source}: this {family} model has no deformable convolutions, so every --deform "
                "flavour is this same graph: nothing to convert",
                "use the file as it is (ONNX Runtime and TensorRT need no plugin for it)",
            )
    converted = convert_deform(model, flavour, check=not inline)
    if inline:
        converted = inline_functions(converted)
    return _graph.save(converted, output)
