"""``hdm-deploy trtexec-args``: the trtexec command line that builds the engine ``build-engine`` would.

Same decisions as the Polygraphy build (:mod:`hdm_deploy.tensorrt.builder`): the profile
(``profiles.compute_profile``), the flags per TensorRT version (``flags.decide_flags``), the FP32
islands (``graph.precision.fp32_layer_names``), the plugin library. Translated to trtexec:

- shapes: ``--minShapes/--optShapes/--maxShapes=image:NxHxWx3`` (NCHW for float graphs); a graph with
  several inputs lists them in one flag, ``--minShapes=x_t:1x3x512x512,feature:…,t:1``;
- TF32 off: ``--noTF32`` (our builder always clears it);
- weakly typed FP16 (TRT 8.5 – 10.x with ``--no-strongly-typed``): ``--fp16
  --precisionConstraints=obey --layerPrecisions=L:fp32,... --layerOutputTypes=L:fp32,...``.
  TensorRT's ONNX parser names a layer after its ONNX node (``ImporterContext::registerLayer``:
  the node name, made unique with a ``_N`` counter). Inside an ONNX local function the layers get
  the *body* node's name, uniquified per call by a parser-global counter, so for a function called
  more than once the names cannot be known from the file: a weakly typed trtexec build needs an
  ``--inline-functions`` export, whose inlined nodes carry unique names (``name__N``) that we pass
  verbatim (the graph is checked: every name given is a node of the file);
- strongly typed (TRT 10.x default): ``--stronglyTyped``; TRT ≥ 11 is always strongly typed;
- plugin: ``--plugins=`` on TRT 8.5/8.6 (``--staticPlugins`` is accepted from 8.6, but ``--plugins``
  works on both), ``--staticPlugins=`` from TRT 10 (``--plugins`` is deprecated there); the library
  registers ``HdmDeformConv`` when loaded;
- ``--timingCacheFile=`` when a cache is given.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from hdm_deploy.core.errors import ExportError, PluginBuildError
from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.tensorrt.builder import (
    artifact_graphs,
    artifact_profiles,
    profile_shapes,
    read_onnx_facts,
    resolve_profile,
)
from hdm_deploy.tensorrt.flags import BuildConfigError, decide_flags, layer_matches, parse_version
from hdm_deploy.tensorrt.plugins import LIB_NAME, find_plugin_library, model_needs_plugin
from hdm_deploy.tensorrt.profiles import Profile, TensorProfile

_FLOAT_ELEM_TYPES = {1, 10}  # onnx.TensorProto.FLOAT, FLOAT16
#: trtexec's spec separators: a layer name containing one cannot be given on the command line.
_SPEC_SEPARATORS = (",", ":")


@dataclass
class TrtexecPlan:
    args: list[str]
    notes: list[str] = field(default_factory=list)
    pinned_layers: list[str] = field(default_factory=list)


def _shape_arg(flag: str, shapes: dict[str, tuple[int, ...]]) -> str:
    """``--minShapes=a:1x3x8x8,b:1`` — one flag, every input comma-separated (trtexec's spec form)."""
    return f"--{flag}=" + ",".join(f"{n}:{'x'.join(str(int(d)) for d in s)}" for n, s in shapes.items())


def plugin_flag(trt_version: str | tuple[int, ...]) -> str:
    """``--plugins`` (TRT 8.5/8.6) or ``--staticPlugins`` (TRT ≥ 10)."""
    v = parse_version(trt_version) if isinstance(trt_version, str) else tuple(trt_version)
    return "--staticPlugins" if v[0] >= 10 else "--plugins"


def island_layers(model, node_names: list[str]) -> tuple[list[str], list[str]]:
    """The top-level nodes of ``model`` that are FP32 islands → (names for ``--layerPrecisions``
    (at least one floating output), names for ``--layerOutputTypes`` (all outputs floating)).

    ``node_names`` come from the policy report; inlined function bodies carry them with the
    inliner's ``__N`` suffix, matched as the builder matches layers (``flags.layer_matches``).
    """

    try:
        inferred = onnx.shape_inference.infer_shapes(model, strict_mode=False)
    except Exception:  # custom-domain ops: keep what the file says
        inferred = model
    types: dict[str, int] = {}
    for vi in [*inferred.graph.value_info, *inferred.graph.output, *inferred.graph.input]:
        if vi.type.HasField("tensor_type"):
            types[vi.name] = vi.type.tensor_type.elem_type
    for init in inferred.graph.initializer:
        types[init.name] = init.data_type
    precisions, output_types = [], []
    for node in inferred.graph.node:
        if node.op_type == "Constant" or not layer_matches(node.name, node_names):
            continue  # Constant: no TensorRT layer is registered under the node's name
        outs = [types.get(o) for o in node.output if o]
        floats = [t in _FLOAT_ELEM_TYPES for t in outs]
        if not any(floats):
            continue
        if not node.name or any(sep in node.name for sep in _SPEC_SEPARATORS):
            raise BuildConfigError(
                f"FP32 island node {node.name!r} cannot be named on trtexec's command line",
                "use `hdm-deploy build-engine` (it pins layers through the API)",
            )
        precisions.append(node.name)
        if all(floats):
            output_types.append((node.name, len(outs)))
    return precisions, [f"{n}:{'+'.join(['fp32'] * k)}" for n, k in output_types]


def trtexec_plan(
    onnx_path: str | os.PathLike,
    trt_version: str,
    *,
    fp16: bool = False,
    engine: str | os.PathLike | None = None,
    plugin_lib: str | os.PathLike | None = None,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    timing_cache: str | os.PathLike | None = None,
    strongly_typed: bool | None = None,
    axes: Sequence[str] = (),
    profile: Profile | TensorProfile | None = None,
) -> TrtexecPlan:
    """The trtexec arguments (and notes) for ``onnx_path`` on TensorRT ``trt_version`` (this graph
    only; :func:`trtexec_plans` adds its companion graphs)."""

    facts = read_onnx_facts(onnx_path)
    if profile is None:  # trtexec_plans resolves the profiles of all the artifact's graphs together
        profile = resolve_profile(facts, min_shape, opt_shape, max_shape, axes)
    flags = decide_flags(trt_version, facts.precision, fp16, strongly_typed)
    v = parse_version(trt_version)
    if facts.has_functions and v[0] < 9:
        raise ExportError(
            "TensorRT 8.x cannot import ONNX local functions",
            "re-export with `hdm-deploy export --inline-functions` (see docs/jetson.md, JetPack 5.1)",
        )
    out = Path(engine) if engine else facts.path.with_suffix(".engine")
    args = [f"--onnx={facts.path}", f"--saveEngine={out}"]
    shapes = profile_shapes(profile)
    args += [
        _shape_arg(flag, {name: s[k] for name, s in shapes.items()})
        for k, flag in enumerate(("minShapes", "optShapes", "maxShapes"))
    ]
    notes = list(flags.notes)
    if "TF32" in flags.clear_flags:
        args.append("--noTF32")
    if "STRONGLY_TYPED" in flags.network_flags:
        args.append("--stronglyTyped")
    pinned: list[str] = []
    if "FP16" in flags.set_flags:
        args.append("--fp16")
    if flags.pin_fp32_layers and facts.fp32_node_names:
        if facts.has_functions:
            raise BuildConfigError(
                "a weakly typed trtexec build cannot pin the FP32 islands inside ONNX local functions: "
                "TensorRT names their layers per call with a parser-global counter",
                "re-export with `hdm-deploy export --inline-functions` (unique node names), "
                "or build strongly typed (TensorRT ≥ 10: drop --no-strongly-typed)",
            )
        model = _graph.load(facts.path, external_data=False)
        pinned, output_types = island_layers(model, facts.fp32_node_names)
        if not pinned:
            raise BuildConfigError(
                f"none of the {len(facts.fp32_node_names)} FP32 island nodes of the policy report is in the graph",
                "re-export the model (its policy report does not match its nodes)",
            )
        args += [
            "--precisionConstraints=obey",
            "--layerPrecisions=" + ",".join(f"{n}:fp32" for n in pinned),
        ]
        if output_types:
            args.append("--layerOutputTypes=" + ",".join(output_types))
        notes.append(
            f"{len(pinned)} FP32 island layers named after their ONNX nodes; helper layers TensorRT adds "
            "for a node get other names and are not pinned (build-engine pins those too)"
        )
    if plugin_lib or model_needs_plugin(facts.op_ids):
        lib = str(plugin_lib) if plugin_lib else find_plugin_library(None, required=False)
        if not lib:
            raise PluginBuildError(
                f"the model uses HdmDeformConv and {LIB_NAME} was not found here",
                "pass --plugin-lib PATH (the library's path on the machine that runs trtexec)",
            )
        args.append(f"{plugin_flag(v)}={lib}")
    if timing_cache:
        args.append(f"--timingCacheFile={timing_cache}")
    return TrtexecPlan(args, notes, pinned)


def trtexec_plans(
    onnx_path: str | os.PathLike,
    trt_version: str,
    *,
    engine: str | os.PathLike | None = None,
    **options,
) -> list[TrtexecPlan]:
    """One plan per graph ``build-engine`` builds: ``onnx_path`` and its companion graphs
    (``companion_graphs`` metadata), each to the engine name ``build-engine`` gives it."""
    path = Path(onnx_path)
    facts = read_onnx_facts(path)
    out = Path(engine) if engine else path.with_suffix(".engine")
    graphs = artifact_graphs(path, out, facts.metadata)
    profiles = artifact_profiles(
        [read_onnx_facts(p) if i else facts for i, (p, _) in enumerate(graphs)],
        *(options.get(k) for k in ("min_shape", "opt_shape", "max_shape")),
        options.get("axes", ()),
    )
    return [
        trtexec_plan(p, trt_version, engine=e, profile=prof, **options)
        for (p, e), prof in zip(graphs, profiles, strict=True)
    ]


def trtexec_args(onnx_path: str | os.PathLike, trt_version: str, **options) -> list[str]:
    """``trtexec`` flags (without the program name) building the engine ``build-engine`` would."""
    return trtexec_plan(onnx_path, trt_version, **options).args
