"""FP16 precision policy for exported graphs: FP16 everywhere except named FP32 *islands*.

The conversion is our own pass on onnx-ir (:class:`Fp16IslandsPass`). Outside the islands, every
float32 value of the main graph becomes float16: float32 initializers are converted (clipped to
FP16's range), and so are the ops whose attributes carry a type (``Cast(to=FLOAT)``, ``Constant``,
``ConstantOfShape``, random generators); every other op follows its inputs' type. Island nodes keep
computing in FP32, and the pass puts an explicit ``Cast`` on every island boundary (and on the graph
outputs: the float I/O contract stays FP32). Integer and bool tensors are never touched; inputs the
ONNX spec types as float32 whatever ``T`` is (``Resize`` scales) stay FP32. Explicit casts are what a
*strongly typed* TensorRT network (TRT ≥ 10 with the flag, always in TRT 11) obeys; for a weakly
typed network (TRT 8.5–10) the engine builder additionally pins the island layers to FP32 with
``OBEY_PRECISION_CONSTRAINTS`` (:mod:`hdm_deploy.tensorrt.builder`), using the node names this module
records in the model's metadata (:data:`METADATA_KEY`, see :func:`fp32_layer_names`). ONNX Runtime
runs FP16 nodes that lack CPU kernels by inserting casts itself.

Local functions. The pass rewrites only the main graph, never a function body. A function whose
calls are an island (``fp32_functions``: the caller's, e.g. the HDM family's DCP masks function; the
decomposed DeformConv functions of the ``decompose`` flavour) stays FP32 inside and gets casts
around its calls. Any *other* local function would silently stay FP32 with FP16 values flowing in,
so :func:`apply_fp16_policy` refuses models with such calls unless ``inline_other_functions=True``
inlines them first. Control-flow subgraphs outside islands are refused too (none in our exports).

Which network islands are on by default is decided by measurement: ``benchmarks/fp16_policy.py``
prints PSNR against FP32 PyTorch with each island removed in turn (numbers in README).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import onnx
import onnx_ir as ir
from onnx import inliner

from hdm_deploy.core.contracts import DECOMPOSE_DOMAIN, FLAVOURS, PLUGIN_DOMAIN, PLUGIN_OP_TYPE
from hdm_deploy.core.errors import ExportError
from hdm_deploy.graph.flavours import detect_flavour

#: ``metadata_props`` key under which the island description (JSON) is stored.
METADATA_KEY = "hdm_deploy.fp16_islands"
#: Our DeformConv plugin op; computes coordinates in FP32 itself.
PLUGIN_DEFORM_OP = (PLUGIN_DOMAIN, PLUGIN_OP_TYPE)

_F32, _F16 = ir.DataType.FLOAT, ir.DataType.FLOAT16
_FP16_MAX = float(np.finfo(np.float16).max)
#: Inputs the ONNX spec types ``tensor(float)`` whatever the op's ``T`` is: they stay FP32.
_FP32_INPUTS: dict[tuple[str, str], frozenset[int]] = {
    ("", "Resize"): frozenset({2}),  # scales
    ("", "Upsample"): frozenset({1}),  # scales
}
#: Ops that accept any input type (no boundary cast needed in front of them).
_ANY_INPUT_OPS = frozenset({"Cast", "Shape", "Size"})
#: Ops whose output type comes from a ``dtype`` attribute (default FLOAT for the generators).
_DTYPE_OPS = {"RandomNormal": True, "RandomUniform": True, "RandomNormalLike": False}
_DTYPE_OPS |= {"RandomUniformLike": False, "EyeLike": False, "Bernoulli": False}


def _props(node: onnx.NodeProto | ir.Node) -> dict[str, str]:
    if isinstance(node, ir.Node):
        return dict(node.metadata_props)
    return {p.key: p.value for p in node.metadata_props}


def node_scope(node: onnx.NodeProto | ir.Node) -> str:
    """The PyTorch module path of a node from the dynamo exporter's metadata, e.g.
    ``"drconv_phy/drconv_phy.conv_kernel/drconv_phy.conv_kernel.2/sigmoid_3"`` ('' if absent)."""
    value = _props(node).get("namespace")
    if value is None:
        return ""
    parts = [seg.split(":", 1)[0].strip() for seg in value.split("/")]
    return "/".join(p for p in parts if p)


@dataclass(frozen=True)
class Island:
    """A set of main-graph nodes that must stay FP32, and why.

    A node belongs to the island when any selector matches it:

    - ``ops``: ``(domain, op_type)`` pairs (``""`` is the ONNX domain; local-function calls are
      ops too, selected by their function's domain and name); ``domains``: every op of a domain;
    - ``scopes``: regular expressions searched in the node's PyTorch module scope (the dynamo
      exporter's ``namespace`` metadata, reduced to ``"conv0/conv1.0/…"``) — with the op type
      restriction ``scope_ops`` if given;
    - ``names``: regular expressions searched in the node name.
    """

    name: str
    reason: str
    ops: tuple[tuple[str, str], ...] = ()
    domains: tuple[str, ...] = ()
    scopes: tuple[str, ...] = ()
    scope_ops: tuple[str, ...] = ()
    names: tuple[str, ...] = ()
    flavours: tuple[str, ...] = FLAVOURS

    def matches(self, node: onnx.NodeProto | ir.Node) -> bool:
        if (node.domain, node.op_type) in self.ops or node.domain in self.domains:
            return True
        if self.scopes and (not self.scope_ops or node.op_type in self.scope_ops):
            scope = node_scope(node)
            if scope and any(re.search(p, scope) for p in self.scopes):
                return True
        return any(re.search(p, node.name or "") for p in self.names)


def function_island(domain: str, name: str) -> Island:
    """The island of a local function kept FP32: its calls (body untouched, casts around them)."""
    return Island(f"{domain}::{name}", "local function kept FP32 by the caller", ops=((domain, name),))


#: Every island we know (the network scopes are the HDM module paths). ``DEFAULT_ISLANDS`` says which
#: ones the policy uses; the caller adds its own FP32 local functions (``fp32_functions``).
ISLANDS: dict[str, Island] = {
    island.name: island
    for island in (
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
            "the coordinates snap like above (the decomposition functions stay FP32)",
            domains=(DECOMPOSE_DOMAIN,),
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

#: Network islands on by default, per DeformConv flavour (chosen by measurement, see the module docstring).
DEFAULT_ISLANDS: dict[str, tuple[str, ...]] = {
    "onnx": ("deform_onnx",),
    "plugin": (),
    "decompose": ("deform_decompose",),
}


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


def select_fp32_nodes(graph: onnx.GraphProto | ir.Graph, islands: Sequence[Island]) -> dict[str, list[str]]:
    """Island name → names of the main-graph nodes it keeps in FP32 (first matching island wins)."""
    nodes = graph.node if isinstance(graph, onnx.GraphProto) else graph
    picked: dict[str, list[str]] = {i.name: [] for i in islands}
    for node in nodes:
        island = next((i for i in islands if i.matches(node)), None)
        if island is not None:
            picked[island.name].append(node.name)
    return picked


@dataclass
class PolicyReport:
    """What :func:`apply_fp16_policy` did; stored as JSON in ``metadata_props[METADATA_KEY]``."""

    flavour: str | None
    islands: dict[str, list[str]] = field(default_factory=dict)  #: island → FP32 node names (main graph)
    reasons: dict[str, str] = field(default_factory=dict)
    fp32_functions: list[str] = field(default_factory=list)  #: local functions left FP32 inside
    function_nodes: list[str] = field(default_factory=list)  #: their body node names (kept through inlining)
    fp16_nodes: int = 0
    cast_nodes: int = 0  #: casts the policy inserted
    clipped_constants: int = 0  #: float constants outside the islands beyond FP16's range (clipped)

    def fp32_node_names(self) -> list[str]:
        return [n for names in self.islands.values() for n in names]

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> PolicyReport:
        data = json.loads(text)
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})


def _to_fp16(array: np.ndarray) -> tuple[np.ndarray, int]:
    """float32 → float16, values beyond FP16's range clipped to it (and counted)."""
    over = int(np.count_nonzero(np.isfinite(array) & (np.abs(array) > _FP16_MAX)))
    return np.clip(array, -_FP16_MAX, _FP16_MAX).astype(np.float16), over


class Fp16IslandsPass(ir.passes.InPlacePass):
    """Main graph to FP16 outside the ``fp32_nodes`` (node names), explicit casts on their boundary.

    ``types``: element types by value name (from ONNX shape inference) for values the IR has no type
    for. ``keep_io_types``: float graph inputs/outputs stay FP32 (casts inside the graph).
    """

    def __init__(
        self, fp32_nodes: Iterable[str], types: dict[str, int] | None = None, keep_io_types: bool = True
    ):
        super().__init__()
        self.fp32_nodes = frozenset(fp32_nodes)
        self.types = types or {}
        self.keep_io_types = keep_io_types
        self.casts = 0
        self.clipped = 0

    def call(self, model: ir.Model) -> ir.passes.PassResult:
        graph = model.graph
        self._names = {v.name for v in _graph_values(graph)} | {n.name for n in graph}
        self._float = {id(v) for v in _graph_values(graph) if self._is_float(v)}
        island = {id(n) for n in graph if n.name in self.fp32_nodes}
        for node in graph:
            if id(node) not in island and any(
                a.type in (ir.AttributeType.GRAPH, ir.AttributeType.GRAPHS) for a in node.attributes.values()
            ):
                raise ExportError(
                    f"the FP16 policy does not convert control flow ({node.op_type} node {node.name!r})",
                    "put the node in an FP32 island or export with --precision fp32",
                )
        # Constants and casts to FLOAT whose every consumer needs FP32 stay FP32 (no FP16 round trip).
        for node in graph:
            if (
                node.op_type in ("Constant", "ConstantOfShape", "Cast")
                and node.domain == ""
                and id(node) not in island
            ):
                uses = [u for out in node.outputs for u in out.uses()]
                if uses and all(self._needs(u.node, u.idx, island) == _F32 for u in uses):
                    island.add(id(node))
        precision: dict[int, ir.DataType] = {}  # id(value) → its type after the pass (float values)
        for v in graph.inputs:
            if id(v) in self._float:
                precision[id(v)] = _F32 if self.keep_io_types else _F16
                v.dtype = precision[id(v)]
        for v in list(graph.initializers.values()):
            if id(v) in self._float and all(v is not i for i in graph.inputs):
                self._initializer(graph, v, island, precision)
        for node in list(graph):
            if id(node) in island:
                for out in node.outputs:
                    if id(out) in self._float:
                        precision[id(out)] = _F32
                continue
            self._retype_attributes(node)
            for out in node.outputs:
                if id(out) in self._float:
                    precision[id(out)] = _F16
                    if out.type is not None:
                        out.dtype = _F16
        self._insert_boundary_casts(graph, island, precision)
        self._fix_outputs(graph, precision)
        return ir.passes.PassResult(model, modified=True)

    # -- types -------------------------------------------------------------------------------------

    def _is_float(self, v: ir.Value) -> bool:
        if v.dtype is not None:
            return v.dtype == _F32
        if v.name in self.types:
            return self.types[v.name] == onnx.TensorProto.FLOAT
        producer = v.producer()  # unknown type (custom op): float if a float flows in
        return producer is not None and any(i is not None and self._is_float(i) for i in producer.inputs)

    def _needs(self, node: ir.Node, idx: int, island: set[int]) -> ir.DataType | None:
        """The float type ``node`` needs at input ``idx`` (``None``: any)."""
        if idx in _FP32_INPUTS.get((node.domain, node.op_type), ()):
            return _F32
        if node.domain == "" and node.op_type in _ANY_INPUT_OPS:
            return None
        return _F32 if id(node) in island else _F16

    # -- rewriting ---------------------------------------------------------------------------------

    def _initializer(self, graph: ir.Graph, v: ir.Value, island: set[int], precision: dict) -> None:
        uses = list(v.uses())
        fp16_uses = [u for u in uses if self._needs(u.node, u.idx, island) == _F16]
        if not fp16_uses or v.const_value is None:
            precision[id(v)] = _F32
            return
        array, clipped = _to_fp16(v.const_value.numpy())
        self.clipped += clipped
        if len(fp16_uses) == len(uses) and not v.is_graph_output():
            v.const_value = ir.tensor(array, name=v.name)
            v.dtype = _F16
            precision[id(v)] = _F16
            return
        copy = ir.Value(
            name=self._unique(f"{v.name}_fp16"), shape=_copy(v.shape), const_value=ir.tensor(array)
        )
        copy.dtype = _F16
        graph.register_initializer(copy)
        self._float.add(id(copy))
        precision[id(v)], precision[id(copy)] = _F32, _F16
        for u in fp16_uses:
            u.node.replace_input_with(u.idx, copy)

    def _retype_attributes(self, node: ir.Node) -> None:
        """Ops outside the islands whose attributes say 'float32' produce float16 instead."""
        if node.domain != "":
            return
        attrs = node.attributes
        to, value, dtype = (attrs[k].value if k in attrs else None for k in ("to", "value", "dtype"))
        if node.op_type == "Cast" and to == _F32:
            attrs["to"] = ir.AttrInt64("to", _F16)
        elif node.op_type == "ConstantOfShape":
            if value is None or value.dtype == _F32:
                array = value.numpy() if value is not None else np.zeros(1, np.float32)
                attrs["value"] = ir.AttrTensor("value", ir.tensor(self._clip(array)))
        elif node.op_type == "Constant":
            for key in ("value_float", "value_floats"):
                if key in attrs:
                    array = np.asarray(attrs[key].value, np.float32)
                    del attrs[key]
                    value = ir.tensor(array)
            if value is not None and value.dtype == _F32:
                attrs["value"] = ir.AttrTensor("value", ir.tensor(self._clip(value.numpy())))
        elif node.op_type in _DTYPE_OPS and (dtype == _F32 or (dtype is None and _DTYPE_OPS[node.op_type])):
            attrs["dtype"] = ir.AttrInt64("dtype", _F16)

    def _clip(self, array: np.ndarray) -> np.ndarray:
        out, clipped = _to_fp16(array)
        self.clipped += clipped
        return out

    def _unique(self, base: str) -> str:
        name, k = base, 0
        while name in self._names:
            k += 1
            name = f"{base}_{k}"
        self._names.add(name)
        return name

    def _cast(self, graph: ir.Graph, v: ir.Value, to: ir.DataType, name: str | None = None) -> ir.Value:
        suffix = "fp32" if to == _F32 else "fp16"
        out = ir.Value(name=name or self._unique(f"{v.name}_{suffix}"), shape=_copy(v.shape))
        out.dtype = to
        node = ir.Node(
            "",
            "Cast",
            [v],
            [ir.AttrInt64("to", to)],
            outputs=[out],
            name=self._unique(f"{v.name}_to_{suffix}"),
        )
        producer = v.producer()
        if producer is not None:
            graph.insert_after(producer, node)
        else:
            graph.insert_before(graph[0], node)
        self.casts += 1
        return out

    def _insert_boundary_casts(self, graph: ir.Graph, island: set[int], precision: dict) -> None:
        values = [*graph.inputs, *graph.initializers.values(), *(o for n in list(graph) for o in n.outputs)]
        for v in values:
            have = precision.get(id(v))
            if have is None:
                continue
            casts: dict[ir.DataType, ir.Value] = {}
            for use in list(v.uses()):
                need = self._needs(use.node, use.idx, island)
                if need is None or need == have:
                    continue
                if need not in casts:
                    casts[need] = self._cast(graph, v, need)
                use.node.replace_input_with(use.idx, casts[need])

    def _fix_outputs(self, graph: ir.Graph, precision: dict) -> None:
        """Float graph outputs keep their type: an FP16 value gets a cast that takes over its name."""
        for k, v in enumerate(graph.outputs):
            have = precision.get(id(v))
            want = _F32 if self.keep_io_types else _F16
            if have is None or have == want or v.producer() is None:
                continue
            name = v.name
            v.name = self._unique(f"{name}_{'fp16' if have == _F16 else 'fp32'}")
            graph.outputs[k] = self._cast(graph, v, want, name=name)


def _copy(shape: ir.Shape | None) -> ir.Shape | None:
    return None if shape is None else shape.copy()


def _graph_values(graph: ir.Graph) -> list[ir.Value]:
    return [*graph.inputs, *graph.initializers.values(), *(o for n in graph for o in n.outputs)]


def _inferred_types(model: onnx.ModelProto) -> dict[str, int]:
    """Element types of the main graph's values by name (ONNX shape inference, best effort)."""
    inferred = onnx.shape_inference.infer_shapes(model)
    g = inferred.graph
    return {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}


def _reachable_function_nodes(model: ir.Model, roots: set[tuple[str, str]]) -> list[str]:
    """Body node names of ``roots`` and of every local function they call (helpers), depth first."""
    funcs = {(f.domain, f.name): f for f in model.functions.values()}
    seen: set[tuple[str, str]] = set()
    names: list[str] = []
    stack = sorted(roots)
    while stack:
        fid = stack.pop()
        if fid in seen or fid not in funcs:
            continue
        seen.add(fid)
        for node in funcs[fid]:
            if node.name:
                names.append(node.name)
            if (node.domain, node.op_type) in funcs:
                stack.append((node.domain, node.op_type))
    return names


def _ensure_node_names(graph: ir.Graph) -> None:
    """Islands are recorded by node name, so every node needs a unique one."""
    seen: set[str] = set()
    for i, node in enumerate(graph):
        if not node.name or node.name in seen:
            node.name = f"{node.op_type}_{i}" if not node.name else f"{node.name}_{i}"
        seen.add(node.name)


def apply_fp16_policy(
    model: onnx.ModelProto,
    islands: Iterable[str | Island] | None = None,
    *,
    flavour: str | None = None,
    fp32_functions: Iterable[tuple[str, str]] = (),
    keep_io_types: bool = True,
    inline_other_functions: bool = False,
) -> onnx.ModelProto:
    """Return an FP16 copy of ``model`` whose island nodes compute in FP32 behind explicit casts.

    ``islands``: island names from :data:`ISLANDS` or :class:`Island` objects (default:
    :data:`DEFAULT_ISLANDS` for ``flavour``, read from the model's ``flavour`` metadata when not
    given). ``fp32_functions``: ``(domain, name)`` of local functions whose calls are islands too
    (bodies stay FP32), e.g. a family's numerically fragile preprocessing. ``keep_io_types`` keeps
    float graph inputs/outputs FP32 (uint8 I/O is untouched either way). The island description is
    recorded in ``metadata_props[METADATA_KEY]`` and ``precision`` is set to ``fp16``; see
    :func:`policy_report`.
    """
    meta = {p.key: p.value for p in model.metadata_props}
    if meta.get("precision") == "fp16" or METADATA_KEY in meta:
        raise ExportError("the model is already FP16", "apply the FP16 policy to the FP32 export")
    flavour = flavour or meta.get("flavour") or meta.get("deform") or detect_flavour(model) or "decompose"
    chosen = [*resolve_islands(islands, flavour), *(function_island(d, n) for d, n in fp32_functions)]
    active = [i for i in chosen if flavour is None or flavour in i.flavours]

    function_ids = {(f.domain, f.name) for f in model.functions}
    called = {(n.domain, n.op_type) for n in model.graph.node} & function_ids
    blocked = {(d, n) for d, n in called if any((d, n) in i.ops or d in i.domains for i in active)}
    unblocked = called - blocked
    if unblocked:
        if not inline_other_functions:
            raise ExportError(
                "local functions "
                + ", ".join(f"{d}::{n}" for d, n in sorted(unblocked))
                + " would stay FP32 inside while FP16 values flow in",
                "inline them first (inline_other_functions=True / --inline-functions) or add them to an island",
            )

        # Inline only the functions nobody blocked: FP32 functions stay functions.
        model = inliner.inline_selected_functions(model, sorted(unblocked), exclude=False)

    types = _inferred_types(model)
    ir_model = ir.from_proto(model)  # a copy: the caller's proto is untouched
    _ensure_node_names(ir_model.graph)
    picked = select_fp32_nodes(ir_model.graph, active)
    fp32_nodes = {n for names in picked.values() for n in names}
    pass_ = Fp16IslandsPass(fp32_nodes, types, keep_io_types)
    pass_(ir_model)

    report = PolicyReport(
        flavour=flavour,
        islands=picked,
        reasons={i.name: i.reason for i in active},
        fp32_functions=sorted(f"{d}::{n}" for d, n in blocked),
        function_nodes=_reachable_function_nodes(ir_model, blocked),
        fp16_nodes=sum(1 for n in ir_model.graph if n.name not in fp32_nodes and n.op_type != "Cast"),
        cast_nodes=pass_.casts,
        clipped_constants=pass_.clipped,
    )
    ir_model.metadata_props.update({"precision": "fp16", METADATA_KEY: report.to_json()})
    return ir.to_proto(ir_model)


def apply_precision(
    model: onnx.ModelProto,
    precision: str,
    flavour: str | None = None,
    fp32_functions: Iterable[tuple[str, str]] = (),
    extra_islands: Iterable[Island] = (),
) -> onnx.ModelProto:
    """Exporter entry point (``export --precision``): ``fp32`` → unchanged, ``fp16`` →
    :func:`apply_fp16_policy` with the flavour's default islands plus the caller's FP32 local
    functions and ``extra_islands`` (a family's own network islands). Apply it *before*
    ``--inline-functions`` (function bodies then stay FP32 through inlining)."""
    if precision == "fp32":
        return model
    if precision == "fp16":
        extra = list(extra_islands)
        islands = [*resolve_islands(None, flavour), *extra] if extra else None
        return apply_fp16_policy(model, islands, flavour=flavour, fp32_functions=fp32_functions)
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
    keeps body names with a ``__N`` suffix, which :func:`hdm_deploy.tensorrt.flags.layer_matches`
    accepts)."""
    report = policy_report(model)
    if report is None:
        return []
    return list(dict.fromkeys([*report.fp32_node_names(), *report.function_nodes]))
