"""``hdm-deploy build-engine``: ONNX → TensorRT engine + JSON sidecar.

The TensorRT-touching code here is deliberately thin: every decision (flags per version, the
profile, which layers to pin, the sidecar) is a plain function in ``flags.py``, ``profiles.py``,
``sidecar.py`` and ``plugins.py``, tested without TensorRT. ``tensorrt`` and ``cuda`` are imported
inside functions only.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from hdm_deploy.core.errors import (
    ExportError,
    HdmDeployError,
    InputImageError,
    ModelFormatError,
    TensorRTUnavailableError,
)
from hdm_deploy.core.fs import atomic_write_bytes, sha256_file
from hdm_deploy.tensorrt.flags import (
    BuildFlags,
    decide_flags,
    layers_to_pin,
    parse_version,
    workspace_bytes,
)
from hdm_deploy.tensorrt.plugins import find_plugin_library, load_plugin_library, model_needs_plugin
from hdm_deploy.tensorrt.profiles import Profile, compute_profile
from hdm_deploy.tensorrt.sidecar import EngineSidecar, publish_engine

Log = Callable[[str], None]


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
    has_functions: bool = False


def read_onnx_facts(path: str | Path) -> OnnxFacts:
    """Metadata, the image input's signature, the ops (incl. inside local functions), the FP32 islands."""
    from hdm_deploy.graph import onnx_io as _graph
    from hdm_deploy.graph.precision import fp32_layer_names

    path = Path(path)
    model = _graph.load(path, external_data=False)
    meta = {p.key: p.value for p in model.metadata_props}
    if not model.graph.input:
        raise ModelFormatError(f"{path} has no graph input")
    inp = model.graph.input[0]
    dims: list[int | str | None] = []
    for d in inp.type.tensor_type.shape.dim:
        dims.append(d.dim_value if d.HasField("dim_value") else (d.dim_param or None))
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
    )


def import_tensorrt():
    try:
        import tensorrt as trt
    except ImportError as exc:
        raise TensorRTUnavailableError(
            "TensorRT's Python package is not installed",
            "on Jetson it comes with JetPack (python3-libnvinfer); on x86: pip install tensorrt",
        ) from exc
    return trt


def gpu_facts() -> tuple[str | None, str | None, str | None]:  # pragma: no cover - needs a GPU
    """(GPU name, compute capability "8.7", CUDA runtime version) via cuda-python, else (None,)*3."""
    try:
        from hdm_deploy.tensorrt.runner import cudart_module, device_properties, runtime_version

        cudart = cudart_module()
        name, cc = device_properties(cudart)
        return name, cc, runtime_version(cudart)
    except Exception:
        return None, None, None


@dataclass
class BuildResult:
    engine_path: Path
    sidecar_path: Path
    sidecar: EngineSidecar
    flags: BuildFlags
    profile: Profile
    pinned_layers: list[str]


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
) -> BuildResult:
    """Build and write ``output`` (atomically) plus ``output.json``. See ``docs/jetson.md``."""
    facts = read_onnx_facts(onnx_path)
    try:  # before importing TensorRT: a bad profile is the user's to fix, wherever they are
        profile = compute_profile(
            facts.metadata, facts.input_name, facts.input_dims, min_shape, opt_shape, max_shape
        )
    except (ValueError, InputImageError) as exc:  # InputImageError: the profile exceeds max_pixels
        raise HdmDeployError(f"invalid optimisation profile: {exc}", "check --min/--opt/--max") from None
    trt = import_tensorrt()
    flags = decide_flags(trt.__version__, facts.precision, fp16, strongly_typed)
    for note in flags.notes:
        log(note)

    plugin_path: Path | None = None
    if plugin_lib or model_needs_plugin(facts.op_ids):
        plugin_path = find_plugin_library(plugin_lib, required=True)
        load_plugin_library(plugin_path)
        log(f"plugin library: {plugin_path}")
    if facts.has_functions and parse_version(trt.__version__)[0] < 9:
        raise ExportError(
            "TensorRT 8.x cannot import ONNX local functions (the DCP masks)",
            "re-export with `hdm-deploy export --inline-functions` (see docs/jetson.md, JetPack 5.1)",
        )

    logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
    trt.init_libnvinfer_plugins(logger, "")
    builder = trt.Builder(logger)
    net_flags = 0
    for name in flags.network_flags:
        net_flags |= 1 << int(getattr(trt.NetworkDefinitionCreationFlag, name))
    network = builder.create_network(net_flags)
    parser = trt.OnnxParser(network, logger)
    log(f"parsing {facts.path} …")
    if not parser.parse_from_file(str(facts.path)):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise ExportError(
            f"TensorRT {trt.__version__}'s ONNX parser rejected {facts.path.name}: " + " | ".join(errors[:5]),
            f"run `hdm-deploy doctor {facts.path} --trt {'.'.join(trt.__version__.split('.')[:2])}` for the fix",
        )

    config = builder.create_builder_config()
    for name in flags.set_flags:
        config.set_flag(getattr(trt.BuilderFlag, name))
    for name in flags.clear_flags:
        config.clear_flag(getattr(trt.BuilderFlag, name))
    ws = workspace_bytes(workspace_gb)
    if ws is not None:
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, ws)

    pinned: list[str] = []
    if flags.pin_fp32_layers and facts.fp32_node_names:
        described = []
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            dtypes = [layer.get_output(j).dtype.name for j in range(layer.num_outputs)]
            described.append((layer.name, getattr(layer, "metadata", None), dtypes))
        pinned = layers_to_pin(described, facts.fp32_node_names)
        wanted = set(pinned)
        for i in range(network.num_layers):
            layer = network.get_layer(i)
            if layer.name in wanted:
                layer.precision = trt.float32
                for j in range(layer.num_outputs):
                    if layer.get_output(j).dtype in (trt.float32, trt.float16):
                        layer.set_output_type(j, trt.float32)
        log(f"pinned {len(pinned)} layers to FP32 (islands of the FP16 policy)")

    prof = builder.create_optimization_profile()
    lo, mid, hi = profile.shapes()
    prof.set_shape(profile.input_name, lo, mid, hi)
    config.add_optimization_profile(prof)
    log(profile.describe())

    cache_path = Path(timing_cache) if timing_cache else None
    if cache_path is not None:
        blob = cache_path.read_bytes() if cache_path.is_file() else b""
        cache = config.create_timing_cache(blob)
        config.set_timing_cache(cache, ignore_mismatch=False)
    if progress is not None and hasattr(trt, "IProgressMonitor"):
        config.progress_monitor = progress

    t0 = time.perf_counter()
    log("building (minutes on a Jetson) …")
    serialized = builder.build_serialized_network(network, config)
    if serialized is None:
        raise ExportError("TensorRT failed to build the engine (see the log above)", "re-run with --verbose")
    seconds = time.perf_counter() - t0
    if cache_path is not None:
        atomic_write_bytes(cache_path, bytes(config.get_timing_cache().serialize()))

    output = Path(output)
    name, cc, cuda_version = gpu_facts()
    from hdm_deploy import __version__

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
        model_metadata={k: v for k, v in facts.metadata.items() if not k.startswith("hdm_deploy.fp16")},
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
    return BuildResult(output, side, sidecar, flags, profile, pinned)


def make_progress_monitor(
    on_phase: Callable[[str, int, int], None],
):  # pragma: no cover - needs TensorRT ≥ 10
    """A ``trt.IProgressMonitor`` that reports (phase, step, steps) to ``on_phase`` (rich progress)."""
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
