"""FP16 precision policy for exported HDM graphs: FP16 everywhere except named FP32 *islands*.

The conversion itself is onnxconverter-common's ``convert_float_to_float16`` (a maintained
converter): every island node goes into its ``node_block_list`` / ``op_block_list``, so the
converter keeps it in FP32 and puts explicit ``Cast`` nodes on its boundary. Explicit casts are
what a *strongly typed* TensorRT network (TRT ≥ 10 with the flag, always in TRT 11) obeys; for a
weakly typed network (TRT 8.5–10) the engine builder additionally pins the island layers to FP32
with ``OBEY_PRECISION_CONSTRAINTS`` (:mod:`hdm_deploy.engines.builder`), using the node names this
module records in the model's metadata (:data:`METADATA_KEY`).

Local functions. The converter only walks the main graph and control-flow subgraphs, never
``model.functions``. That is what we want for the DCP function (``hdm_deploy.dcp::DCPMasks``):
its body stays FP32 untouched, and its call node is blocked so the converter casts around it. Any
*other* local function (none in our graphs today) would silently stay FP32 with FP16 values
flowing in, so :func:`apply_fp16_policy` refuses models with unblocked local-function calls unless
``inline_other_functions=True`` inlines them first. Inlined DCP nodes (``--inline-functions``
before the policy) are found by their node names / scope metadata instead.

Which islands are on by default is decided by measurement: ``benchmarks/fp16_policy.py`` prints
PSNR against FP32 PyTorch with each island removed in turn (numbers in README).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import onnx

from hdm_deploy.core.contracts import FLAVOURS, PLUGIN_DOMAIN, PLUGIN_OP_TYPE
from hdm_deploy.core.errors import ExportError

#: ``metadata_props`` key under which the island description (JSON) is stored.
METADATA_KEY = "hdm_deploy.fp16_islands"
#: Domain and name of the DCP mask local function (contract with ``dcp/onnx_function.py``).
DCP_FUNCTION = ("hdm_deploy.dcp", "DCPMasks")
#: Our DeformConv plugin op; computes coordinates in FP32 itself.
PLUGIN_DEFORM_OP = (PLUGIN_DOMAIN, PLUGIN_OP_TYPE)


@dataclass(frozen=True)
class Island:
    """A set of nodes that must stay FP32, and why.

    A node belongs to the island when any selector matches it:

    - ``ops``: ``(domain, op_type)`` pairs (``""`` is the ONNX domain; local-function calls are
      ops too, selected by their function's domain and name);
    - ``scopes``: regular expressions searched in the node's PyTorch module scope (the dynamo
      exporter's ``namespace`` metadata, reduced to ``"conv0/conv1.0/…"``) — with the op type
      restriction ``scope_ops`` if given;
    - ``names``: regular expressions searched in the node name (inlined functions keep the
      function name in their node names).
    """

    name: str
    reason: str
    ops: tuple[tuple[str, str], ...] = ()
    scopes: tuple[str, ...] = ()
    scope_ops: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    flavours: tuple[str, ...] = FLAVOURS

    def matches(self, node: onnx.NodeProto) -> bool:
        if (node.domain, node.op_type) in self.ops:
            return True
        if self.scopes and (not self.scope_ops or node.op_type in self.scope_ops):
            scope = node_scope(node)
            if scope and any(re.search(p, scope) for p in self.scopes):
                return True
        return any(re.search(p, node.name) for p in self.names)


#: Every island we know. ``DEFAULT_ISLANDS`` says which ones the policy uses.
ISLANDS: dict[str, Island] = {
    island.name: island
    for island in (
        Island(
            "dcp",
            "DCP masks: guided-filter variances cancel catastrophically in FP16 and the region "
            "thresholds (0.2/0.4/0.6/0.8 of the normalised transmission) flip; masks must be 100 % equal",
            ops=(DCP_FUNCTION,),
            scopes=(r"(^|/)dcp(/|$)", r"DCPMasks", r"(^|/)masks?(/|$)"),
            names=(r"DCPMasks", r"dcp_masks"),
        ),
        Island(
            "deform_onnx",
            "standard DeformConv: TensorRT's ModulatedDeformConv2d (TRT ≥ 10.1) keeps sampling "
            "coordinates in the tensor type — FP16 snaps coordinates ≥ 512 px to 0.5 px and ≥ 1024 px to 1 px",
            ops=(("", "DeformConv"),),
            flavours=("onnx",),
        ),
        Island(
            "deform_decompose",
            "decomposed DeformConv: base grid + offsets and bilinear weights are plain ops; in FP16 "
            "the coordinates snap like above",
            scopes=(r"(^|/)dcn_block\.dcn(/|$)",),
            scope_ops=(
                "Add",
                "Sub",
                "Mul",
                "Div",
                "Floor",
                "Ceil",
                "Clip",
                "Where",
                "Less",
                "Greater",
                "GreaterOrEqual",
                "LessOrEqual",
                "Equal",
                "And",
                "Or",
                "Not",
                "Cast",
                "GatherElements",
                "GatherND",
                "Gather",
                "GridSample",
                "Range",
                "Expand",
                "ConstantOfShape",
                "Concat",
                "Reshape",
                "Unsqueeze",
                "MatMul",
                "ReduceSum",
                "Einsum",
                "Tile",
                "Transpose",
                "Slice",
                "Split",
            ),
            flavours=("decompose",),
        ),
        Island(
            "offset_conv",
            "conv_offset_mask: predicts the deformable offsets (pixels) and modulation logits",
            scopes=(r"(^|/)dcn_block\.dcn\.conv_offset_mask(/|$)",),
        ),
        Island(
            "kernel_generator",
            "region-conv kernel generator (pool → 1×1 conv → sigmoid → grouped 1×1 conv): its output "
            "are the weights of five 3×3 convolutions per sample",
            scopes=(r"(^|/)drconv_phy\.conv_kernel(/|$)",),
        ),
        Island(
            "attention",
            "channel/pixel attention gates (sigmoid of a 1×1-conv bottleneck)",
            scopes=(r"\.(calayer|palayer)(/|$)", r"\.(calayer|palayer)\.(ca|pa)(\.\d+)?(/|$)"),
        ),
        Island(
            "output_head",
            "last 5×5 convs and tanh: what is quantised to uint8",
            scopes=(r"(^|/)output(\.\d+)?(/|$)",),
        ),
    )
}

#: Islands on by default, per DeformConv flavour (see the module docstring for how they were chosen).
DEFAULT_ISLANDS: dict[str, tuple[str, ...]] = {
    "onnx": ("dcp", "deform_onnx"),
    "plugin": ("dcp",),
    "decompose": ("dcp", "deform_decompose"),
}


def node_scope(node: onnx.NodeProto) -> str:
    """The PyTorch module path of a node from the dynamo exporter's metadata, e.g.
    ``"drconv_phy/drconv_phy.conv_kernel/drconv_phy.conv_kernel.2/sigmoid_3"`` ('' if absent)."""
    for prop in node.metadata_props:
        if prop.key == "namespace":
            parts = [seg.split(":", 1)[0].strip() for seg in prop.value.split("/")]
            return "/".join(p for p in parts if p)
    return ""


def default_islands(flavour: str | None) -> tuple[str, ...]:
    """The island names the policy uses for a DeformConv flavour (``None``: any flavour → union)."""
    if flavour is None:
        return tuple(dict.fromkeys(i for f in FLAVOURS for i in DEFAULT_ISLANDS[f]))
    if flavour not in DEFAULT_ISLANDS:
        raise ExportError(f"unknown DeformConv flavour {flavour!r}", f"use one of {', '.join(FLAVOURS)}")
    return DEFAULT_ISLANDS[flavour]


def resolve_islands(islands: Iterable[str | Island] | None, flavour: str | None = None) -> list[Island]:
    """Names or :class:`Island` objects → islands (``None``: the flavour's defaults)."""
    chosen = default_islands(flavour) if islands is None else islands
    out: list[Island] = []
    for item in chosen:
        if isinstance(item, Island):
            out.append(item)
        elif item in ISLANDS:
            out.append(ISLANDS[item])
        else:
            raise ExportError(f"unknown FP32 island {item!r}", f"known islands: {', '.join(ISLANDS)}")
    return out


def select_fp32_nodes(graph: onnx.GraphProto, islands: Sequence[Island]) -> dict[str, list[str]]:
    """Island name → names of the main-graph nodes it keeps in FP32 (first matching island wins)."""
    picked: dict[str, list[str]] = {i.name: [] for i in islands}
    for node in graph.node:
        for island in islands:
            if island.matches(node):
                picked[island.name].append(node.name)
                break
    return picked


def _reachable_function_nodes(model: onnx.ModelProto, roots: set[tuple[str, str]]) -> list[str]:
    """Body node names of ``roots`` and of every local function they call (helpers), depth first."""
    funcs = {(f.domain, f.name): f for f in model.functions}
    seen: set[tuple[str, str]] = set()
    names: list[str] = []
    stack = sorted(roots)
    while stack:
        fid = stack.pop()
        if fid in seen or fid not in funcs:
            continue
        seen.add(fid)
        for node in funcs[fid].node:
            if node.name:
                names.append(node.name)
            if (node.domain, node.op_type) in funcs:
                stack.append((node.domain, node.op_type))
    return names


def _function_ids(model: onnx.ModelProto) -> set[tuple[str, str]]:
    return {(f.domain, f.name) for f in model.functions}


def _ensure_node_names(graph: onnx.GraphProto) -> None:
    """The converter blocks by node name, so every node needs a unique one."""
    seen: set[str] = set()
    for i, node in enumerate(graph.node):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}" if not node.name else f"{node.name}_{i}"
        seen.add(node.name)


@dataclass
class PolicyReport:
    """What :func:`apply_fp16_policy` did; stored as JSON in ``metadata_props[METADATA_KEY]``."""

    flavour: str | None
    islands: dict[str, list[str]] = field(default_factory=dict)  #: island → FP32 node names (main graph)
    reasons: dict[str, str] = field(default_factory=dict)
    fp32_functions: list[str] = field(default_factory=list)  #: local functions left FP32 inside
    function_nodes: list[str] = field(default_factory=list)  #: their body node names (kept through inlining)
    fp16_nodes: int = 0
    cast_nodes: int = 0

    def fp32_node_names(self) -> list[str]:
        return [n for names in self.islands.values() for n in names]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PolicyReport:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def apply_fp16_policy(
    model: onnx.ModelProto,
    islands: Iterable[str | Island] | None = None,
    *,
    flavour: str | None = None,
    keep_io_types: bool = True,
    inline_other_functions: bool = False,
) -> onnx.ModelProto:
    """Return an FP16 copy of ``model`` whose island nodes compute in FP32 behind explicit casts.

    ``islands``: island names from :data:`ISLANDS` (default: :data:`DEFAULT_ISLANDS` for
    ``flavour``, read from the model's ``flavour`` metadata when not given). ``keep_io_types``
    keeps float graph inputs/outputs FP32 (uint8 I/O is untouched either way). The island
    description is recorded in ``metadata_props[METADATA_KEY]`` and ``precision`` is set to
    ``fp16``; see :func:`policy_report`.
    """
    try:
        from onnxconverter_common import float16
    except ImportError as exc:  # pragma: no cover - dependency of the [fp16] extra
        raise ExportError("FP16 export needs onnxconverter-common", "pip install 'hdm-deploy[fp16]'") from exc

    model_copy = onnx.ModelProto()
    model_copy.CopyFrom(model)
    meta = {p.key: p.value for p in model_copy.metadata_props}
    if meta.get("precision") == "fp16" or METADATA_KEY in meta:
        raise ExportError("the model is already FP16", "apply the FP16 policy to the FP32 export")
    flavour = flavour or meta.get("flavour") or meta.get("deform") or infer_flavour(model_copy)
    chosen = resolve_islands(islands, flavour)
    active = [i for i in chosen if flavour is None or flavour in i.flavours]

    blocked_functions = {op for i in active for op in i.ops if op in _function_ids(model_copy)}
    called = {(n.domain, n.op_type) for n in model_copy.graph.node} & _function_ids(model_copy)
    unblocked = called - blocked_functions
    if unblocked:
        if not inline_other_functions:
            raise ExportError(
                "local functions "
                + ", ".join(f"{d}::{n}" for d, n in sorted(unblocked))
                + " would stay FP32 inside while FP16 values flow in",
                "inline them first (inline_other_functions=True / --inline-functions) or add them to an island",
            )
        from onnx import inliner

        # Inline only the functions nobody blocked: the DCP function stays a function.
        model_copy = inliner.inline_selected_functions(
            model_copy, [(d, n) for d, n in unblocked], exclude=False
        )

    _ensure_node_names(model_copy.graph)
    picked = select_fp32_nodes(model_copy.graph, active)
    node_block = sorted(n for names in picked.values() for n in names)

    original_casts = {n.name for n in model_copy.graph.node if n.op_type == "Cast"} - set(node_block)
    float_outputs = {
        o.name for o in model_copy.graph.output if o.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    }
    # onnxconverter-common 1.14–1.16 ``remove_unnecessary_cast_node`` drops the FP16 cast after a
    # blocked node whose output has several consumers (leaving FP32 flowing into FP16 weights), so
    # we run the converter without it and remove redundant cast pairs ourselves (_fold_cast_pairs).
    original_cleanup = float16.remove_unnecessary_cast_node
    float16.remove_unnecessary_cast_node = lambda graph: None
    try:
        converted = float16.convert_float_to_float16(
            model_copy,
            keep_io_types=keep_io_types,
            op_block_list=[],  # not the converter's default list: it is about ORT CPU kernels, not numerics
            node_block_list=node_block,
            check_fp16_ready=False,  # we refuse FP16 input ourselves (metadata); our retyped casts would trip it
        )
    finally:
        float16.remove_unnecessary_cast_node = original_cleanup
    # The converter runs shape inference and keeps the inferred value_info; drop it so the
    # file stays what the exporter wrote plus casts (ORT/TRT re-infer anyway).
    del converted.graph.value_info[:]
    _retype_float_casts(converted.graph, original_casts)
    if keep_io_types:
        _restore_float_outputs(converted.graph, float_outputs)
    _fold_cast_pairs(converted.graph)

    report = PolicyReport(
        flavour=flavour,
        islands=picked,
        reasons={i.name: i.reason for i in active},
        fp32_functions=sorted(f"{d}::{n}" for d, n in blocked_functions),
        function_nodes=_reachable_function_nodes(converted, blocked_functions),
        cast_nodes=sum(1 for n in converted.graph.node if n.op_type == "Cast")
        - sum(1 for n in model.graph.node if n.op_type == "Cast"),
    )
    fp32 = set(node_block)
    report.fp16_nodes = sum(1 for n in converted.graph.node if n.op_type != "Cast" and n.name not in fp32)
    _set_meta(converted, {"precision": "fp16", METADATA_KEY: report.to_json()})
    return converted


def _retype_float_casts(graph: onnx.GraphProto, names: set[str]) -> None:
    """The converter rewrites value types but not ``Cast(to=FLOAT)`` attributes; outside the
    islands such a cast of the original graph (e.g. uint8 pixels → float) must produce FP16 like
    everything around it. (Done after conversion: before it, shape inference would stop there.)"""
    for node in graph.node:
        if node.op_type == "Cast" and node.name in names:
            for attr in node.attribute:
                if attr.name == "to" and attr.i == onnx.TensorProto.FLOAT:
                    attr.i = onnx.TensorProto.FLOAT16


def _restore_float_outputs(graph: onnx.GraphProto, names: set[str]) -> None:
    """keep_io_types: a blocked node feeding a graph output gets its output typed FP16 by the
    converter (it retypes the output's value_info); make such outputs FP32 again."""
    producers = {out: node for node in graph.node for out in node.output}
    for output in graph.output:
        if output.name not in names or output.type.tensor_type.elem_type == onnx.TensorProto.FLOAT:
            continue
        node = producers.get(output.name)
        if node is not None and node.op_type == "Cast":  # the converter's cast after a blocked node
            for attr in node.attribute:
                if attr.name == "to":
                    attr.i = onnx.TensorProto.FLOAT
        else:
            inner = f"{output.name}_fp16"
            for n in graph.node:
                n.output[:] = [inner if o == output.name else o for o in n.output]
                n.input[:] = [inner if i == output.name else i for i in n.input]
            graph.node.append(
                onnx.helper.make_node(
                    "Cast", [inner], [output.name], to=onnx.TensorProto.FLOAT, name=f"{inner}_to_fp32"
                )
            )
        output.type.tensor_type.elem_type = onnx.TensorProto.FLOAT


def _fold_cast_pairs(graph: onnx.GraphProto) -> None:
    """Remove ``Cast(to=fp16) → Cast(to=fp32)`` chains between two islands (the FP16 value is used
    by nothing else), so adjacent islands stay FP32 end to end instead of rounding in between."""
    consumers: dict[str, list[onnx.NodeProto]] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    outputs = {o.name for o in graph.output}

    def cast_to(node: onnx.NodeProto) -> int | None:
        if node.op_type != "Cast":
            return None
        return next((a.i for a in node.attribute if a.name == "to"), None)

    drop: set[int] = set()
    rename: dict[str, str] = {}
    for node in graph.node:
        if cast_to(node) != onnx.TensorProto.FLOAT16 or node.output[0] in outputs:
            continue
        users = consumers.get(node.output[0], [])
        if users and all(cast_to(u) == onnx.TensorProto.FLOAT for u in users):
            drop.add(id(node))
            for u in users:
                drop.add(id(u))
                rename[u.output[0]] = node.input[0]
    if not drop:
        return
    keep = [n for n in graph.node if id(n) not in drop]
    for n in keep:
        n.input[:] = [rename.get(i, i) for i in n.input]
    for o in graph.output:  # a folded FP32 value that is a graph output keeps its name
        if o.name in rename:
            keep.append(
                onnx.helper.make_node("Identity", [rename[o.name]], [o.name], name=f"{o.name}_identity")
            )
    del graph.node[:]
    graph.node.extend(keep)


def _set_meta(model: onnx.ModelProto, values: Mapping[str, str]) -> None:
    keep = [p for p in model.metadata_props if p.key not in values]
    del model.metadata_props[:]
    for p in keep:
        model.metadata_props.add(key=p.key, value=p.value)
    for k, v in values.items():
        model.metadata_props.add(key=k, value=v)


def infer_flavour(model: onnx.ModelProto) -> str:
    """DeformConv flavour from the graph's ops (for graphs whose metadata is not written yet)."""
    ops = {(n.domain, n.op_type) for n in model.graph.node}
    if PLUGIN_DEFORM_OP in ops:
        return "plugin"
    if ("", "DeformConv") in ops:
        return "onnx"
    return "decompose"


def apply_precision(model: onnx.ModelProto, precision: str, flavour: str | None = None) -> onnx.ModelProto:
    """Exporter entry point (``export --precision``): ``fp32`` → unchanged, ``fp16`` → :func:`apply_fp16_policy`
    with the flavour's default islands. Apply it *before* ``--inline-functions`` (the DCP function body
    then stays FP32 through inlining)."""
    if precision == "fp32":
        return model
    if precision == "fp16":
        return apply_fp16_policy(model, flavour=flavour)
    raise ExportError(f"unknown precision {precision!r}", "use fp32 or fp16")


def policy_report(model: onnx.ModelProto) -> PolicyReport | None:
    """The island description stored by :func:`apply_fp16_policy` (``None`` for FP32 models)."""
    for p in model.metadata_props:
        if p.key == METADATA_KEY:
            return PolicyReport.from_json(p.value)
    return None


def fp32_layer_names(model: onnx.ModelProto) -> list[str]:
    """ONNX node names the weakly typed TensorRT build must pin to FP32: the island nodes and the
    body nodes of FP32 local functions (TensorRT's parser names layers after nodes; ONNX's inliner
    keeps body names with a ``__N`` suffix, which :func:`hdm_deploy.engines.flags.layer_matches`
    accepts)."""
    report = policy_report(model)
    if report is None:
        return []
    return list(dict.fromkeys([*report.fp32_node_names(), *report.function_nodes]))
