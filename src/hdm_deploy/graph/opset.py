"""Lower an exported graph's default-domain opset (19 → 18 or 17) for older parsers (TensorRT 8.5).

The dynamo exporter writes opset ≥ 18 and ONNX's version converter has no 19→17 adapters for some
ops (``Pad``), so this pass handles exactly the ops our graphs contain, checked per node against the
ONNX schemas; anything else is refused with an error rather than converted approximately:

* ``Reduce*`` with ``axes`` as an input (opset 18) → ``axes`` attribute (opset 13 form), the input
  must be a constant;
* ``Split`` with ``num_outputs`` (opset 18) → the opset 13 form (equal split by output count);
* ``Resize`` without the opset 18/19 additions in use (``antialias``, ``axes``,
  ``keep_aspect_ratio_policy`` other than ``stretch``, ``half_pixel_symmetric``) → the opset 13 form
  (those attributes, at their defaults, dropped);
* ops whose newer versions only added types or optional features that the node does not use
  (``Pad`` without ``axes`` and without ``wrap``, ``Cast`` without ``saturate``, ``AveragePool``
  without ``dilations``, ``Reshape``, ``Shape``, ``Constant``, ``Identity``, ``Equal``, …) keep
  their form.

``DeformConv`` exists only from opset 19: lower opsets need ``--deform plugin`` or ``decompose``.
Local functions are not rewritten here: the exporter builds them for the target opset.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import defs, helper, numpy_helper

from hdm_deploy.core.contracts import IR_FOR_OPSET  # noqa: F401 - re-exported for callers
from hdm_deploy.core.errors import ExportError
from hdm_deploy.graph import onnx_io as _graph

#: ops whose versions between 17 and 19 changed only in ways checked by ``_check_compatible``
_SAME_FORM = {
    "AveragePool",
    "Cast",
    "CastLike",
    "Constant",
    "Equal",
    "Identity",
    "If",
    "Loop",
    "Pad",
    "Reshape",
    "Scan",
    "Shape",
    "Size",
}
_REDUCE_18 = {
    "ReduceL1",
    "ReduceL2",
    "ReduceLogSum",
    "ReduceLogSumExp",
    "ReduceMax",
    "ReduceMean",
    "ReduceMin",
    "ReduceProd",
    "ReduceSumSquare",
}


def _constant_values(model: onnx.ModelProto) -> dict[str, np.ndarray]:
    values = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    for n in model.graph.node:
        if n.op_type == "Constant" and n.domain in _graph.ONNX_DOMAINS:
            for a in n.attribute:
                if a.name == "value":
                    values[n.output[0]] = numpy_helper.to_array(a.t)
                elif a.name == "value_ints":
                    values[n.output[0]] = np.array(a.ints, np.int64)
                elif a.name == "value_int":
                    values[n.output[0]] = np.array(a.i, np.int64)
    return values


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def _check_compatible(node: onnx.NodeProto) -> None:
    attrs = _attrs(node)
    problem = None
    if node.op_type == "Pad" and (
        (len(node.input) > 3 and node.input[3]) or attrs.get("mode", b"constant") == b"wrap"
    ):
        problem = "Pad with axes or wrap mode"
    elif node.op_type == "Cast" and "saturate" in attrs:
        problem = "Cast with saturate"
    elif node.op_type == "AveragePool" and any(d != 1 for d in attrs.get("dilations", [])):
        problem = "AveragePool with dilations"
    elif node.op_type == "Resize" and (
        attrs.get("antialias", 0)
        or "axes" in attrs
        or attrs.get("keep_aspect_ratio_policy", b"stretch") != b"stretch"
        or attrs.get("coordinate_transformation_mode") == b"half_pixel_symmetric"
    ):
        problem = "Resize with antialias, axes, keep_aspect_ratio_policy or half_pixel_symmetric"
    if problem:
        raise ExportError(f"node {node.name or node.output[0]}: {problem} has no form in the target opset")


def lower_opset(model: onnx.ModelProto, target: int, passthrough: tuple[str, ...] = ()) -> onnx.ModelProto:
    """A copy of ``model`` whose main graph uses default-domain opset ``target`` (17 or 18).

    ``passthrough`` ops are left alone (``DeformConv`` when a flavour rewrite replaces it next).
    """
    current = _graph.opset_version(model) or _graph.OPSET
    if target >= current:
        return model
    if target < 17:
        raise ExportError(f"opset {target} is not supported", "use --opset 17 or newer")
    out = onnx.ModelProto()
    out.CopyFrom(model)
    consts = _constant_values(out)
    nodes = []
    for node in out.graph.node:
        if node.domain not in _graph.ONNX_DOMAINS or node.op_type in passthrough:
            nodes.append(node)
            continue
        try:
            new_schema = defs.get_schema(node.op_type, target)
        except defs.SchemaError:
            hint = (
                "export with --deform plugin or --deform decompose" if node.op_type == "DeformConv" else None
            )
            raise ExportError(f"{node.op_type} does not exist in opset {target}", hint) from None
        old_schema = defs.get_schema(node.op_type, current)
        if old_schema.since_version == new_schema.since_version:
            nodes.append(node)
        elif node.op_type in _REDUCE_18 and old_schema.since_version >= 18:
            attrs = _attrs(node)
            new_attrs = {k: v for k, v in attrs.items() if k != "noop_with_empty_axes"}
            if len(node.input) > 1 and node.input[1]:
                if node.input[1] not in consts:
                    raise ExportError(
                        f"{node.op_type} {node.name}: axes are not a constant, cannot lower to opset {target}"
                    )
                new_attrs["axes"] = [int(a) for a in np.atleast_1d(consts[node.input[1]])]
            elif attrs.get("noop_with_empty_axes", 0):
                raise ExportError(
                    f"{node.op_type} {node.name}: noop_with_empty_axes has no opset {target} form"
                )
            nodes.append(_replace(node, [node.input[0]], new_attrs))
        elif node.op_type == "Split" and old_schema.since_version >= 18:
            attrs = _attrs(node)
            num = attrs.pop("num_outputs", None)
            if num is not None and len(node.input) < 2 and num != len(node.output):
                raise ExportError(f"Split {node.name}: num_outputs ≠ number of outputs")
            nodes.append(_replace(node, list(node.input), attrs))
        elif node.op_type == "Resize" and old_schema.since_version >= 18:
            _check_compatible(node)  # the opset 18/19 attributes, at their defaults, are dropped
            attrs = {
                k: v for k, v in _attrs(node).items() if k not in ("antialias", "keep_aspect_ratio_policy")
            }
            nodes.append(_replace(node, list(node.input), attrs))
        elif node.op_type in _SAME_FORM:
            _check_compatible(node)
            nodes.append(node)
        else:
            raise ExportError(
                f"{node.op_type} changed between opset {new_schema.since_version} and {old_schema.since_version}; "
                f"lowering it to {target} is not implemented",
                "export with the default opset (19)",
            )
    del out.graph.node[:]
    out.graph.node.extend(nodes)
    _graph.set_opset(out, "", target)
    return out


def _replace(node: onnx.NodeProto, inputs: list[str], attrs: dict) -> onnx.NodeProto:
    new = helper.make_node(
        node.op_type, inputs, list(node.output), name=node.name, domain=node.domain, **attrs
    )
    new.doc_string = node.doc_string
    for p in node.metadata_props:
        new.metadata_props.add(key=p.key, value=p.value)
    return new
