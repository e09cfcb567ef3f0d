"""``hdm-deploy build-engine``: ONNX → TensorRT engine + JSON sidecar, built through Polygraphy.

Polygraphy does the TensorRT plumbing: ``NetworkFromOnnxPath`` (network creation flags, parser,
parser errors), ``PostprocessNetwork`` (our FP32-island pinning runs on the parsed network),
``CreateConfig`` (profiles, FP16, TF32 off, ``OBEY_PRECISION_CONSTRAINTS``, workspace, the timing
cache with its own guards, the progress monitor), ``EngineBytesFromNetwork`` (the build) and
``LoadPlugins`` (our plugin library before parsing). What stays ours is every decision — flags per
TensorRT version (``flags.py``), the profile (``profiles.py``), which layers to pin
(``graph.precision.fp32_layer_names`` + ``flags.layers_to_pin``), plugin discovery
(``plugins.py``), the sidecar and the atomic publication (``sidecar.py``, ``core.fs``) — as plain
functions tested without TensorRT (``tests/trt/test_decisions.py``, ``tests/trt/test_polygraphy.py``).
``tensorrt`` and ``polygraphy`` are imported inside functions only.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from hdm_deploy import __version__
from hdm_deploy.core.errors import (
    ExportError,
    HdmDeployError,
    InputImageError,
    ModelFormatError,
    TensorRTUnavailableError,
)
from hdm_deploy.core.fs import atomic_write_bytes, sha256_file
from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.graph.precision import fp32_layer_names
from hdm_deploy.tensorrt import cudart
from hdm_deploy.tensorrt.flags import (
    BuildConfigError,
    BuildFlags,
    decide_flags,
    layers_to_pin,
    parse_version,
    workspace_bytes,
)
from hdm_deploy.tensorrt.plugins import find_plugin_library, load_plugin_library, model_needs_plugin
from hdm_deploy.tensorrt.profiles import (
    PROFILE_AXES_KEY,
    Profile,
    TensorProfile,
    companion_graphs,
    compute_profile,
    compute_tensor_profile,
)
from hdm_deploy.tensorrt.sidecar import EngineSidecar, publish_engine

Log = Callable[[str], None]

#: Sidecar ``model_metadata`` key: file names of the companion graphs' engines built beside this one.
COMPANION_ENGINES_KEY = "companion_engines"


@dataclass
class OnnxFacts:
    """What the builder needs to know about the ONNX file, read without TensorRT."""

    path: Path
    metadata: dict[str, str]
    input_name: str
    input_dims: list[int | str | None]
    op_ids: set[tuple[str, str]]
    precision: str
    fp32_node_names: list[str] = field(default_factory=list)
    #: every graph input as ``(name, dims)`` (dims: int, ``dim_param`` name or None)
    inputs: list[tuple[str, list[int | str | None]]] = field(default_factory=list)
    has_functions: bool = False


def read_onnx_facts(path: str | Path) -> OnnxFacts:
    """Metadata, the image input's signature, the ops (incl. inside local functions), the FP32 islands."""

    path = Path(path)
    model = _graph.load(path, external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    if not model.graph.input:
        raise ModelFormatError(f"{path} has no graph input")
    inits = {i.name for i in model.graph.initializer}
    inputs = [
        (
            i.name,
            [
                d.dim_value if d.HasField("dim_value") else (d.dim_param or None)
                for d in i.type.tensor_type.shape.dim
            ],
        )
        for i in model.graph.input
        if i.name not in inits
    ]
    inp = model.graph.input[0]
    dims = inputs[0][1] if inputs and inputs[0][0] == inp.name else []
    ops = {(n.domain, n.op_type) for n in model.graph.node}
    for f in model.functions:
        ops |= {(n.domain, n.op_type) for n in f.node}
    return OnnxFacts(
        path=path,
        metadata=meta,
        input_name=inp.name,
        input_dims=dims,
        op_ids=ops,
        precision=meta.get("precision", "fp32"),
        fp32_node_names=fp32_layer_names(model),
        has_functions=bool(model.functions),
        inputs=inputs,
    )


def resolve_profile(
    facts: OnnxFacts,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    axes: Sequence[str] = (),
    strict: bool = True,
) -> Profile | TensorProfile:
    """The build profile of a graph: one image input → the frame profile (``--min/--opt/--max NxHxW``);
    several inputs, or an exporter that wrote ``profile_axes`` → one range per named dynamic axis
    (``--axis NAME=MIN:OPT:MAX`` or that metadata). Options of the other kind are refused, naming the
    right ones."""
    try:
        if len(facts.inputs) > 1 or facts.metadata.get(PROFILE_AXES_KEY):
            if any(s is not None for s in (min_shape, opt_shape, max_shape)):
                names = ", ".join(n for n, _ in facts.inputs)
                raise ValueError(
                    f"{facts.path.name} has named input axes ({names}): --min/--opt/--max describe "
                    "one image input; give --axis NAME=MIN:OPT:MAX for its named axes"
                )
            return compute_tensor_profile(facts.inputs, facts.metadata, axes, strict)
        if axes:
            raise ValueError(
                f"{facts.path.name} has one image input: use --min/--opt/--max NxHxW, not --axis"
            )
        return compute_profile(
            facts.metadata, facts.input_name, facts.input_dims, min_shape, opt_shape, max_shape
        )
    except (ValueError, InputImageError) as exc:  # InputImageError: the profile exceeds max_pixels
        raise HdmDeployError(
            f"invalid optimisation profile: {exc}", "check --min/--opt/--max (image graphs) or --axis"
        ) from None


def artifact_profiles(
    graphs: Sequence[OnnxFacts],
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    axes: Sequence[str] = (),
) -> list[Profile | TensorProfile]:
    """The profile of each graph of an artifact; an ``--axis`` must name an axis of at least one."""
    out = [resolve_profile(f, min_shape, opt_shape, max_shape, axes, strict=len(graphs) == 1) for f in graphs]
    if len(graphs) > 1 and axes:
        named = {k for p in out if isinstance(p, TensorProfile) for k in p.axes}
        unknown = sorted({s.partition("=")[0].strip() for s in axes} - named)
        if unknown:
            raise HdmDeployError(
                f"invalid optimisation profile: --axis {', '.join(unknown)} is not an axis of these graphs "
                f"(axes: {', '.join(sorted(named)) or 'none'})",
                "check --axis",
            )
    return out


def companion_engine_path(onnx_path: str | Path, engine: str | Path, companion: str) -> Path:
    """Where the engine of a companion graph goes: ``diffhdr.onnx`` → ``out.engine`` makes
    ``diffhdr.cond.onnx`` → ``out.cond.engine`` (the part after the main graph's stem is kept)."""
    main, comp, engine = Path(onnx_path), Path(companion), Path(engine)
    tail = comp.stem[len(main.stem) :] if comp.stem.startswith(main.stem + ".") else "." + comp.stem
    return engine.with_name(f"{engine.stem}{tail}{engine.suffix}")


def artifact_graphs(
    onnx_path: str | Path, engine: str | Path, metadata: dict[str, str]
) -> list[tuple[Path, Path]]:
    """``(onnx, engine)`` of every graph the build writes: the given one first, then its companions
    (``companion_graphs`` metadata, files beside it); a missing companion is a one-line error."""
    onnx_path, engine = Path(onnx_path), Path(engine)
    pairs = [(onnx_path, engine)]
    for name in companion_graphs(metadata):
        comp = onnx_path.with_name(name)
        if not comp.is_file():
            raise ModelFormatError(
                f"{onnx_path.name} names the companion graph {name}, which is not beside it",
                f"copy {name} next to {onnx_path.name} (export writes both)",
            )
        pairs.append((comp, companion_engine_path(onnx_path, engine, name)))
    return pairs


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            "TensorRT's Python package is not installed",
            "on Jetson it comes with JetPack (python3-libnvinfer); on x86: pip install tensorrt",
        ) from exc
    return trt


def import_polygraphy_trt():
    """``polygraphy.backend.trt`` (the loaders and ``TrtRunner``); Polygraphy imports TensorRT lazily."""
    try:
        from polygraphy.backend import trt as poly_trt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            "Polygraphy is not installed (hdm-deploy builds and runs TensorRT engines through it)",
            "pip install 'hdm-deploy[trt]' (or: pip install polygraphy)",
        ) from exc
    return poly_trt


def gpu_facts(device: int = 0) -> tuple[str | None, str | None, str | None]:  # pragma: no cover - needs a GPU
    """(GPU name, compute capability "8.7", CUDA runtime version) via libcudart, else (None,)*3."""
    try:
        lib = cudart.cudart()
        name, cc = cudart.device_properties(device, lib)
        return name, cc, cudart.runtime_version(lib)
    except Exception:
        return None, None, None


# ---- decisions → Polygraphy arguments (pure, tested without TensorRT) ---------------------------------


def profile_shapes(
    profile: Profile | TensorProfile,
) -> dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]:
    """Our profile → ``{input: (min, opt, max)}`` tensor shapes, the arguments of
    ``polygraphy.backend.trt.Profile().add(name, min, opt, max)`` (and of trtexec's ``--*Shapes``)."""
    if isinstance(profile, TensorProfile):
        return {n: (tuple(lo), tuple(mid), tuple(hi)) for n, (lo, mid, hi) in profile.inputs.items()}
    lo, mid, hi = profile.shapes()
    return {profile.input_name: (tuple(lo), tuple(mid), tuple(hi))}


@dataclass(frozen=True)
class PolygraphyPlan:
    """How :class:`~hdm_deploy.tensorrt.flags.BuildFlags` map onto Polygraphy's loaders.

    ``NetworkFromOnnxPath(strongly_typed=)``; ``CreateConfig(fp16=, tf32=, precision_constraints=,
    memory_pool_limits=, load_timing_cache=)``; ``pin_fp32`` adds our ``PostprocessNetwork`` step.
    ``EXPLICIT_BATCH`` needs no argument: Polygraphy's ``CreateNetwork`` sets it before TRT 10.
    """

    strongly_typed: bool
    fp16: bool
    tf32: bool
    precision_constraints: str | None
    pin_fp32: bool
    workspace: int | None = None
    load_timing_cache: str | None = None


def polygraphy_plan(
    flags: BuildFlags, workspace: int | None = None, timing_cache: str | Path | None = None
) -> PolygraphyPlan:
    """Translate our flags; a flag without a Polygraphy equivalent is an error, never dropped silently."""
    network = set(flags.network_flags)
    unknown = network - {"EXPLICIT_BATCH", "STRONGLY_TYPED"}
    unknown |= set(flags.set_flags) - {"FP16", "OBEY_PRECISION_CONSTRAINTS"}
    unknown |= set(flags.clear_flags) - {"TF32"}
    if unknown:
        raise BuildConfigError(f"no Polygraphy mapping for TensorRT flag(s) {sorted(unknown)}")
    return PolygraphyPlan(
        strongly_typed="STRONGLY_TYPED" in network,  # TRT 11: always strong, the flag is not set
        fp16="FP16" in flags.set_flags,
        tf32="TF32" not in flags.clear_flags,
        precision_constraints="obey" if "OBEY_PRECISION_CONSTRAINTS" in flags.set_flags else None,
        pin_fp32=flags.pin_fp32_layers,
        workspace=workspace,
        load_timing_cache=timing_cache_to_load(timing_cache),
    )


def timing_cache_to_load(path: str | Path | None) -> str | None:
    """The cache file to hand to ``CreateConfig(load_timing_cache=)``: only an existing, non-empty file.

    Polygraphy's loader falls back to an empty cache when TensorRT cannot read the blob
    (``create_timing_cache`` returns ``None`` for a cache of another TensorRT/GPU), so a foreign
    cache costs build time, never the engine; a missing/empty file is simply not loaded.
    """
    if not path:
        return None
    p = Path(path)
    return str(p) if p.is_file() and p.stat().st_size > 0 else None


def save_timing_cache(config: Any, path: str | Path | None, log: Log = print) -> bool:
    """After the engine is published: write the build's timing cache atomically. Never raises —
    the engine is the product, the cache an optimisation (issue 12, item 5)."""
    if not path or config is None:
        return False
    try:
        cache = config.get_timing_cache()
        if cache is None:
            log(f"timing cache not updated: TensorRT returned no cache (kept {path})")
            return False
        atomic_write_bytes(Path(path), bytes(cache.serialize()))
    except Exception as exc:  # reported; the engine is already written
        log(f"timing cache not updated ({type(exc).__name__}: {exc}); the engine is fine")
        return False
    return True


def make_pin_fp32(
    node_names: Iterable[str],
    fp32: Any,
    float_types: Iterable[Any],
    on_pinned: Callable[[list[str]], None] | None = None,
) -> Callable[..., None]:
    """The ``PostprocessNetwork`` callable pinning the FP32 islands of a weakly typed FP16 build:
    every layer from an island node with a floating output gets ``precision = fp32`` and its float
    outputs ``set_output_type(j, fp32)`` (with ``OBEY_PRECISION_CONSTRAINTS`` from CreateConfig).

    ``fp32`` / ``float_types``: ``trt.float32`` / ``(trt.float32, trt.float16)``, passed in so the
    callable is tested with a fake network.
    """
    names = list(node_names)
    floats = tuple(float_types)

    def pin_fp32_islands(network) -> None:
        layers = [network.get_layer(i) for i in range(network.num_layers)]
        described = [
            (
                layer.name,
                getattr(layer, "metadata", None),
                [
                    getattr(layer.get_output(j).dtype, "name", str(layer.get_output(j).dtype))
                    for j in range(layer.num_outputs)
                ],
            )
            for layer in layers
        ]
        wanted = set(layers_to_pin(described, names))
        for layer in layers:
            if layer.name not in wanted:
                continue
            layer.precision = fp32
            for j in range(layer.num_outputs):
                if layer.get_output(j).dtype in floats:
                    layer.set_output_type(j, fp32)
        if on_pinned is not None:
            on_pinned(sorted(wanted))

    return pin_fp32_islands


def config_with_cache_fallback(
    create: Callable[[str | None], Callable], cache: str | None, log: Log = print
) -> Callable:
    """A ``config`` loader for ``EngineBytesFromNetwork``: ``create(cache)(builder, network)``; should
    loading the cache fail in a way Polygraphy does not absorb (a TensorRT that raises instead of
    returning ``None``), build without it. Remembers the config it returned (``.config``) so the
    timing cache can be saved after the engine is published."""

    def loader(builder, network):
        try:
            cfg = create(cache)(builder, network)
        except Exception as exc:
            if cache is None:
                raise
            log(f"timing cache {cache} not usable here ({type(exc).__name__}); building without it")
            cfg = create(None)(builder, network)
        loader.config = cfg
        return cfg

    loader.config = None
    return loader


# ---- the build (needs TensorRT) -------------------------------------------------------------------------


@dataclass
class BuildResult:
    engine_path: Path
    sidecar_path: Path
    sidecar: EngineSidecar
    flags: BuildFlags
    profile: Profile | TensorProfile
    pinned_layers: list[str]
    #: engines of the artifact's companion graphs built with this one
    companions: list[BuildResult] = field(default_factory=list)


def build_engine(  # pragma: no cover - needs TensorRT; decisions are tested in tests/test_engines_*.py
    onnx_path: str | Path,
    output: str | Path,
    *,
    fp16: bool = False,
    min_shape: str | None = None,
    opt_shape: str | None = None,
    max_shape: str | None = None,
    plugin_lib: str | Path | None = None,
    workspace_gb: float | None = None,
    timing_cache: str | Path | None = None,
    strongly_typed: bool | None = None,
    verbose: bool = False,
    log: Log = print,
    progress: object | None = None,
    axes: Sequence[str] = (),
) -> BuildResult:
    """Build and write ``output`` (atomically) plus ``output.json``, then the engines of the graph's
    companions (``companion_graphs`` metadata: e.g. a diffusion model's condition network) with the
    same options. See ``docs/jetson.md``."""
    facts = read_onnx_facts(onnx_path)
    graphs = artifact_graphs(facts.path, output, facts.metadata)
    # Every profile before importing TensorRT: a bad one is the user's to fix, wherever they are.
    plans = [(read_onnx_facts(p) if i else facts, e) for i, (p, e) in enumerate(graphs)]
    profiles = artifact_profiles([f for f, _ in plans], min_shape, opt_shape, max_shape, axes)
    results = [
        _build_one(
            f,
            e,
            profile,
            fp16=fp16,
            plugin_lib=plugin_lib,
            workspace_gb=workspace_gb,
            timing_cache=timing_cache,
            strongly_typed=strongly_typed,
            verbose=verbose,
            log=log,
            progress=progress,
            companions=[str(c.name) for _, c in graphs[1:]] if i == 0 else [],
        )
        for i, ((f, e), profile) in enumerate(zip(plans, profiles, strict=True))
    ]
    results[0].companions = results[1:]
    return results[0]


def _build_one(  # pragma: no cover - needs TensorRT
    facts: OnnxFacts,
    output: str | Path,
    profile: Profile | TensorProfile,
    *,
    fp16: bool,
    plugin_lib: str | Path | None,
    workspace_gb: float | None,
    timing_cache: str | Path | None,
    strongly_typed: bool | None,
    verbose: bool,
    log: Log,
    progress: object | None,
    companions: list[str],
) -> BuildResult:
    trt = import_tensorrt()
    poly = import_polygraphy_trt()
    from polygraphy.exception import PolygraphyException
    from polygraphy.logger import G_LOGGER

    flags = decide_flags(trt.__version__, facts.precision, fp16, strongly_typed)
    for note in flags.notes:
        log(note)
    plan = polygraphy_plan(flags, workspace_bytes(workspace_gb), timing_cache)

    plugin_path: Path | None = None
    if plugin_lib or model_needs_plugin(facts.op_ids):
        plugin_path = find_plugin_library(plugin_lib, required=True)
        load_plugin_library(plugin_path)  # validates the file, registers HdmDeformConv (idempotent)
        log(f"plugin library: {plugin_path}")
    if facts.has_functions and parse_version(trt.__version__)[0] < 9:
        raise ExportError(
            "TensorRT 8.x cannot import ONNX local functions",
            "re-export with `hdm-deploy export --inline-functions` (see docs/jetson.md, JetPack 5.1)",
        )

    network = poly.NetworkFromOnnxPath(str(facts.path), strongly_typed=plan.strongly_typed)
    if plugin_path is not None:
        network = poly.LoadPlugins(plugins=[str(plugin_path)], obj=network)
    pinned: list[str] = []
    if plan.pin_fp32 and facts.fp32_node_names:
        network = poly.PostprocessNetwork(
            network,
            make_pin_fp32(facts.fp32_node_names, trt.float32, (trt.float32, trt.float16), pinned.extend),
            name="pin FP32 islands",
        )

    shapes = profile_shapes(profile)
    poly_profile = poly.Profile()
    for name, (lo, mid, hi) in shapes.items():
        poly_profile.add(name, lo, mid, hi)
    log(profile.describe())

    def create(cache: str | None):
        return poly.CreateConfig(
            profiles=[poly_profile],
            fp16=plan.fp16,
            tf32=plan.tf32,
            precision_constraints=plan.precision_constraints,
            memory_pool_limits=(
                {trt.MemoryPoolType.WORKSPACE: plan.workspace} if plan.workspace is not None else None
            ),
            load_timing_cache=cache,
            progress_monitor=progress if progress is not None and hasattr(trt, "IProgressMonitor") else None,
        )

    config = config_with_cache_fallback(create, plan.load_timing_cache, log)
    t0 = time.perf_counter()
    log(f"parsing {facts.path} and building (minutes on a Jetson) …")
    try:
        with G_LOGGER.verbosity(G_LOGGER.VERBOSE if verbose else G_LOGGER.WARNING):
            serialized = poly.EngineBytesFromNetwork(network, config=config)()
    except PolygraphyException as exc:
        text = str(exc)
        if "pars" in text.lower() or "onnx" in text.lower():
            raise ExportError(
                f"TensorRT {trt.__version__}'s ONNX parser rejected {facts.path.name}: {text.splitlines()[0] if text else ''}",
                f"run `hdm-deploy doctor {facts.path} --trt {'.'.join(trt.__version__.split('.')[:2])}` for the fix",
            ) from None
        raise ExportError(f"TensorRT failed to build the engine: {text}", "re-run with --verbose") from None
    if not serialized:
        raise ExportError("TensorRT failed to build the engine (see the log above)", "re-run with --verbose")
    seconds = time.perf_counter() - t0
    if plan.pin_fp32 and facts.fp32_node_names:
        log(f"pinned {len(pinned)} layers to FP32 (islands of the FP16 policy)")

    output = Path(output)
    name, cc, cuda_version = gpu_facts()

    sidecar = EngineSidecar(
        trt_version=trt.__version__,
        gpu_name=name or None,  # None: unknown, so not checked when the engine is loaded
        compute_capability=cc or None,
        precision="fp16" if fp16 or facts.precision == "fp16" else "fp32",
        strongly_typed=flags.strongly_typed,
        tf32=False,
        profiles=[profile.as_dict()],
        onnx_sha256=sha256_file(facts.path),
        onnx_file=facts.path.name,
        plugin_sha256=sha256_file(plugin_path) if plugin_path else None,
        plugin_file=str(plugin_path) if plugin_path else None,
        cuda_version=cuda_version,
        hdm_deploy_version=__version__,
        model_metadata={
            **{k: v for k, v in facts.metadata.items() if not k.startswith("hdm_deploy.fp16")},
            **({COMPANION_ENGINES_KEY: ",".join(companions)} if companions else {}),
        },
        build_flags={
            "network": list(flags.network_flags),
            "set": list(flags.set_flags),
            "clear": list(flags.clear_flags),
        },
        fp32_layers=len(pinned),
        build_seconds=round(seconds, 1),
    )
    side = publish_engine(output, bytes(serialized), sidecar)  # sidecar first, then the engine
    log(f"wrote {output} ({output.stat().st_size / 1e6:.1f} MB) and {side.name} in {seconds:.0f} s")
    if timing_cache:
        save_timing_cache(config.config, timing_cache, log)  # after the engine: it can only cost the cache
    return BuildResult(output, side, sidecar, flags, profile, pinned)


def make_progress_monitor(
    on_phase: Callable[[str, int, int], None],
):  # pragma: no cover - needs TensorRT ≥ 10
    """A ``trt.IProgressMonitor`` that reports (phase, step, steps) to ``on_phase`` (rich progress);
    handed to Polygraphy's ``CreateConfig(progress_monitor=)``."""
    trt = import_tensorrt()
    if not hasattr(trt, "IProgressMonitor"):
        return None

    class _Monitor(trt.IProgressMonitor):
        def __init__(self):
            trt.IProgressMonitor.__init__(self)
            self.steps: dict[str, int] = {}

        def phase_start(self, phase_name, parent_phase, num_steps):
            self.steps[phase_name] = num_steps
            on_phase(phase_name, 0, num_steps)

        def step_complete(self, phase_name, step):
            on_phase(phase_name, step + 1, self.steps.get(phase_name, 0))
            return True  # False would cancel the build

        def phase_finish(self, phase_name):
            n = self.steps.pop(phase_name, 0)
            on_phase(phase_name, n, n)

    return _Monitor()
