"""TensorRT through Polygraphy: every decision we make around its loaders and runner, without TensorRT.

Our functions are tested with small fakes of the TensorRT objects they touch (a network's layers, an
engine's I/O, a builder config's timing cache); Polygraphy's own timing-cache guard — which the
build relies on — is run for real with a stand-in ``tensorrt`` module.
"""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path
from types import SimpleNamespace
from unittest import mock

import numpy as np
import onnx
import pytest

from hdm_deploy.core.errors import (
    EngineMismatchError,
    ExportError,
    InputImageError,
    PluginBuildError,
    TensorRTUnavailableError,
)
from hdm_deploy.tensorrt import cudart
from hdm_deploy.tensorrt.builder import (
    PolygraphyPlan,
    config_with_cache_fallback,
    make_pin_fp32,
    polygraphy_plan,
    profile_shapes,
    save_timing_cache,
    timing_cache_to_load,
)
from hdm_deploy.tensorrt.flags import BuildConfigError, BuildFlags, decide_flags
from hdm_deploy.tensorrt.profiles import Profile, compute_profile
from hdm_deploy.tensorrt.runner import (
    NO_SIDECAR_WARNING,
    TensorInfo,
    check_hdm_io,
    describe_io,
    device_view,
    is_device_array,
    profile_from_engine,
    select_plugin_library,
    wants_plugin,
)
from hdm_deploy.tensorrt.trtexec import plugin_flag, trtexec_args, trtexec_plan

# ---- build: profile and flags → Polygraphy arguments ------------------------------------------------


def test_profile_becomes_polygraphy_profile_args():
    from polygraphy.backend.trt import Profile as PolyProfile

    nhwc = compute_profile({"io": "uint8"}, min_shape="1x16x16", opt_shape="1x32x48", max_shape="2x64x64")
    shapes = profile_shapes(nhwc)
    assert shapes == {"image": ((1, 16, 16, 3), (1, 32, 48, 3), (2, 64, 64, 3))}
    poly = PolyProfile()
    for name, (lo, mid, hi) in shapes.items():
        poly.add(name, lo, mid, hi)
    assert poly["image"].min == (1, 16, 16, 3) and poly["image"].max == (2, 64, 64, 3)
    nchw = compute_profile({"io": "float"}, min_shape="1x16x16", max_shape="1x64x64")
    assert profile_shapes(nchw)["image"][2] == (1, 3, 64, 64)


@pytest.mark.parametrize(
    "version, precision, fp16, strong, expected",
    [
        # weakly typed FP16 (JetPack 5/6): FP16 + obey + our pinning step; EXPLICIT_BATCH is Polygraphy's
        ("8.5.2", "fp16", True, None, PolygraphyPlan(False, True, False, "obey", True)),
        ("8.6.2", "fp16", True, None, PolygraphyPlan(False, True, False, "obey", True)),
        ("10.3.0", "fp16", True, False, PolygraphyPlan(False, True, False, "obey", True)),
        # strongly typed: the graph's casts decide, no precision flags
        ("10.3.0", "fp16", True, None, PolygraphyPlan(True, False, False, None, False)),
        # TRT 11: always strongly typed, the deprecated flag is not set
        ("11.1", "fp16", True, None, PolygraphyPlan(False, False, False, None, False)),
        # FP32: TF32 cleared everywhere
        ("8.5.2", "fp32", False, None, PolygraphyPlan(False, False, False, None, False)),
    ],
)
def test_flags_map_onto_polygraphy_arguments(version, precision, fp16, strong, expected):
    assert polygraphy_plan(decide_flags(version, precision, fp16, strong)) == expected


def test_an_unmapped_flag_is_an_error_not_dropped():
    flags = BuildFlags(("EXPLICIT_BATCH",), ("FP16", "INT8"), ("TF32",), False, False)
    with pytest.raises(BuildConfigError, match="INT8"):
        polygraphy_plan(flags)


def test_workspace_and_timing_cache_in_the_plan(tmp_path):
    cache = tmp_path / "t.cache"
    plan = polygraphy_plan(decide_flags("10.3", "fp32", False), 1 << 30, cache)
    assert plan.workspace == 1 << 30 and plan.load_timing_cache is None  # no file yet
    cache.write_bytes(b"")
    assert timing_cache_to_load(cache) is None  # empty: nothing to load
    cache.write_bytes(b"blob")
    assert timing_cache_to_load(cache) == str(cache) and timing_cache_to_load(None) is None


# ---- timing cache: a foreign cache never costs the engine (issue 12, item 5) ---------------------------


def test_polygraphy_falls_back_to_an_empty_cache_for_a_foreign_blob(tmp_path, monkeypatch):
    """TensorRT's ``create_timing_cache`` returns None for another version's cache; Polygraphy's
    CreateConfig (which we hand the file) must then install an empty cache instead of failing."""
    fake_trt = mock.MagicMock(name="tensorrt")
    fake_trt.__version__ = "10.3.0"
    fake_trt.__spec__ = None
    monkeypatch.setitem(sys.modules, "tensorrt", fake_trt)
    from polygraphy.backend.trt import CreateConfig
    from polygraphy.backend.trt import Profile as PolyProfile

    path = tmp_path / "foreign.cache"
    path.write_bytes(b"a cache from TensorRT 8.6 on another GPU")
    empty = object()
    builder = mock.MagicMock()
    config = builder.create_builder_config.return_value
    config.create_timing_cache.side_effect = lambda blob: empty if blob == b"" else None
    network = mock.MagicMock(num_inputs=1)
    network.get_input.return_value = SimpleNamespace(
        name="image", shape=(-1, -1, -1, 3), dtype="UINT8", is_shape_tensor=False
    )
    profile = PolyProfile().add("image", (1, 16, 16, 3), (1, 32, 32, 3), (1, 64, 64, 3))
    plan_cache = timing_cache_to_load(path)
    assert CreateConfig(profiles=[profile], load_timing_cache=plan_cache)(builder, network) is config
    assert [c.args[0] for c in config.create_timing_cache.call_args_list] == [path.read_bytes(), b""]
    assert config.set_timing_cache.call_args.args[0] is empty


def test_cache_load_failure_that_raises_builds_without_the_cache():
    calls, logs = [], []

    def create(cache):
        def make(builder, network):
            calls.append(cache)
            if cache is not None:
                raise RuntimeError("deserialize timing cache failed")
            return "config-without-cache"

        return make

    loader = config_with_cache_fallback(create, "old.cache", logs.append)
    assert loader("builder", "network") == "config-without-cache" and loader.config == "config-without-cache"
    assert calls == ["old.cache", None] and "building without it" in logs[0]
    strict = config_with_cache_fallback(create, None, logs.append)
    assert strict("b", "n") == "config-without-cache"

    def broken(cache):
        def make(builder, network):
            raise RuntimeError("no GPU")

        return make

    with pytest.raises(RuntimeError, match="no GPU"):
        config_with_cache_fallback(broken, None)("b", "n")  # without a cache there is nothing to drop


def test_saving_the_timing_cache_never_raises(tmp_path):
    path = tmp_path / "t.cache"
    path.write_bytes(b"previous")
    logs: list[str] = []

    class Cache:
        def serialize(self):
            return memoryview(b"new cache")

    ok = SimpleNamespace(get_timing_cache=lambda: Cache())
    assert save_timing_cache(ok, path, logs.append) and path.read_bytes() == b"new cache"
    none = SimpleNamespace(get_timing_cache=lambda: None)
    assert not save_timing_cache(none, path, logs.append) and path.read_bytes() == b"new cache"

    def boom():
        raise RuntimeError("serialize failed")

    assert not save_timing_cache(SimpleNamespace(get_timing_cache=boom), path, logs.append)
    assert path.read_bytes() == b"new cache" and "the engine is fine" in logs[-1]
    assert not save_timing_cache(None, path, logs.append) and not save_timing_cache(ok, None)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.cache"]  # atomic: no temp files left


# ---- precision placement: the PostprocessNetwork step -----------------------------------------------


class _DType:
    def __init__(self, name):
        self.name = name


FLOAT, HALF, INT32, BOOL = _DType("FLOAT"), _DType("HALF"), _DType("INT32"), _DType("BOOL")


class _Tensor:
    def __init__(self, dtype):
        self.dtype = dtype


class _Layer:
    def __init__(self, name, dtypes, metadata=None):
        self.name, self.metadata = name, metadata
        self._outs = [_Tensor(d) for d in dtypes]
        self.precision = None
        self.output_types: dict[int, object] = {}

    @property
    def num_outputs(self):
        return len(self._outs)

    def get_output(self, j):
        return self._outs[j]

    def set_output_type(self, j, dtype):
        self.output_types[j] = dtype


class _Network:
    def __init__(self, layers):
        self.layers = layers

    @property
    def num_layers(self):
        return len(self.layers)

    def get_layer(self, i):
        return self.layers[i]


def test_pin_fp32_step_pins_float_island_layers_only():
    net = _Network(
        [
            _Layer("dcp_min", [HALF]),
            _Layer("dcp_min_3", [FLOAT, INT32]),  # a helper layer the parser added for the node
            _Layer("dcp_ge", [BOOL]),  # no float output: left alone (pinning it fails the build)
            _Layer("conv_in", [HALF]),  # not an island
            _Layer("Shuffle_17", [HALF], metadata="[ONNX Layer: dcp_pool]"),  # TRT ≥ 10 metadata
        ]
    )
    pinned: list[str] = []
    step = make_pin_fp32(["dcp_min", "dcp_ge", "dcp_pool"], FLOAT, (FLOAT, HALF), pinned.extend)
    step(network=net)  # PostprocessNetwork passes the network by keyword
    by_name = {layer.name: layer for layer in net.layers}
    assert pinned == ["Shuffle_17", "dcp_min", "dcp_min_3"]
    assert by_name["dcp_min"].precision is FLOAT and by_name["dcp_min"].output_types == {0: FLOAT}
    assert by_name["dcp_min_3"].output_types == {0: FLOAT}  # the INT32 output keeps its type
    assert by_name["dcp_ge"].precision is None and by_name["conv_in"].precision is None


def test_pin_step_is_accepted_by_polygraphy_postprocess_network():
    from polygraphy.backend.trt import PostprocessNetwork

    net = _Network([_Layer("dcp_min", [HALF])])
    step = make_pin_fp32(["dcp_min"], FLOAT, (FLOAT, HALF))
    _builder, network = PostprocessNetwork(lambda: ("builder", net), step)()[:2]
    assert network is net and net.layers[0].precision is FLOAT


# ---- runner: I/O, profile, plugin choice, device arrays ----------------------------------------------


class _Engine:
    def __init__(self, io):
        self.io = io  # name → (is_input, dtype name)

    num_io_tensors = property(lambda self: len(self.io))

    def get_tensor_name(self, i):
        return list(self.io)[i]

    def get_tensor_mode(self, name):
        return "INPUT" if self.io[name][0] else "OUTPUT"

    def get_tensor_dtype(self, name):
        return _DType(self.io[name][1])


def test_engine_io_and_profile_without_sidecar():
    engine = _Engine({"image": (True, "UINT8"), "enhanced": (False, "UINT8"), "masks": (False, "HALF")})
    tensors = describe_io(engine, "INPUT")
    image = check_hdm_io(tensors)
    assert image == TensorInfo("image", True, np.dtype(np.uint8))
    prof = profile_from_engine(image, [(1, 64, 64, 3), (1, 720, 1280, 3), (2, 1080, 1920, 3)])
    assert prof == Profile("image", "NHWC", (1, 64, 64), (1, 720, 1280), (2, 1080, 1920))
    float_io = TensorInfo("image", True, np.dtype(np.float16))
    assert profile_from_engine(float_io, [(1, 3, 32, 32), (1, 3, 64, 64), (1, 3, 96, 128)]).max == (
        1,
        96,
        128,
    )
    with pytest.raises(EngineMismatchError):
        profile_from_engine(image, [(1, 64, 64, 3)])
    with pytest.raises(EngineMismatchError, match="not an hdm-deploy graph"):
        check_hdm_io(describe_io(_Engine({"input": (True, "FLOAT"), "output": (False, "FLOAT")}), "INPUT"))
    assert NO_SIDECAR_WARNING.startswith("no sidecar:") and "--plugin-lib" in NO_SIDECAR_WARNING


def test_plugin_library_selection_order(tmp_path):
    from _engine_helpers import make_sidecar
    from hdm_deploy.tensorrt.plugins import ENV_VAR

    given, from_env, built_with = (tmp_path / n for n in ("given.so", "env.so", "built.so"))
    for p in (given, from_env, built_with):
        p.write_bytes(b"\x7fELF")
    with_plugin = make_sidecar(plugin_sha256="cd" * 32, plugin_file=str(built_with))
    without = make_sidecar()
    env = {ENV_VAR: str(from_env)}
    assert select_plugin_library(given, with_plugin, env) == given  # --plugin-lib first
    assert select_plugin_library(None, with_plugin, env) == from_env  # then the variable
    assert select_plugin_library(None, with_plugin, {}) == built_with  # then where it was built
    assert select_plugin_library(None, without, {}) is None  # the engine needs none
    assert select_plugin_library(None, None, {}) is None  # trtexec engine: only when named
    assert (
        select_plugin_library(given, None, {}) == given and select_plugin_library(None, None, env) == from_env
    )
    assert not wants_plugin(None, None, {}) and wants_plugin(None, with_plugin, {})
    with pytest.raises(PluginBuildError, match="not found"):
        select_plugin_library(tmp_path / "missing.so", None, {})  # named on purpose: must exist


class _FakeCudaArray:
    """What torch CUDA tensors and CuPy arrays expose (no GPU needed to read it)."""

    def __init__(self, shape, typestr="|u1", strides=None, ptr=0x7F0000000000):
        self.__cuda_array_interface__ = {
            "shape": shape,
            "typestr": typestr,
            "data": (ptr, False),
            "strides": strides,
            "version": 3,
        }


def test_device_arrays_are_wrapped_without_copies():
    from polygraphy.cuda import DeviceView

    x = _FakeCudaArray((1, 32, 48, 3))
    assert is_device_array(x) and not is_device_array(np.zeros((1, 32, 48, 3), np.uint8))
    view = device_view(x, np.uint8)
    assert isinstance(view, DeviceView) and view.ptr == 0x7F0000000000 and tuple(view.shape) == (1, 32, 48, 3)
    assert view.nbytes == 32 * 48 * 3
    c_strides = _FakeCudaArray((1, 3, 8, 8), "<f2", strides=(384, 128, 16, 2))
    assert tuple(device_view(c_strides, np.float16).shape) == (1, 3, 8, 8)  # explicit C strides are fine
    assert device_view(view, np.uint8) is view  # already a DeviceView
    with pytest.raises(InputImageError, match="C-contiguous"):
        device_view(_FakeCudaArray((1, 8, 8, 3), strides=(192, 3, 24, 1)), np.uint8)  # transposed H/W
    with pytest.raises(InputImageError, match="engine's input is uint8"):
        device_view(_FakeCudaArray((1, 8, 8, 3), "<f4"), np.uint8)
    with pytest.raises(InputImageError, match="4-D"):
        device_view(_FakeCudaArray((8, 8, 3)), np.uint8)
    with pytest.raises(InputImageError, match="not a device array"):
        device_view(np.zeros((1, 8, 8, 3), np.uint8), np.uint8)


# ---- libcudart through Polygraphy's handle ----------------------------------------------------------


class _FakeCudart:
    """ctypes-level stand-in: writes through the pointers our helpers pass, like libcudart."""

    def __init__(self, error=0):
        self.error = error
        self.device = None

    @staticmethod
    def _set(ref, value):
        ctypes.cast(ref, ctypes.POINTER(ctypes.c_int))[0] = value

    def cudaRuntimeGetVersion(self, ref):
        self._set(ref, 12060)
        return self.error

    def cudaDriverGetVersion(self, ref):
        self._set(ref, 0)
        return 0

    def cudaGetDeviceCount(self, ref):
        self._set(ref, 2)
        return 0

    def cudaSetDevice(self, dev):
        self.device = dev.value
        return self.error

    def cudaDeviceGetAttribute(self, ref, attr, dev):
        self._set(ref, {cudart.ATTR_CC_MAJOR: 8, cudart.ATTR_CC_MINOR: 7}[attr.value])
        return 0

    def cudaGetDeviceProperties_v2(self, buf, dev):
        ctypes.memmove(buf, b"Orin\x00garbage", 12)
        return 0


def test_cudart_helpers_decode_what_libcudart_writes():
    lib = _FakeCudart()
    assert cudart.runtime_version(lib) == "12.6" and cudart.driver_version(lib) is None
    assert cudart.device_count(lib) == 2 and cudart.device_properties(1, lib) == ("Orin", "8.7")
    cudart.set_device(1, lib)
    assert lib.device == 1
    with pytest.raises(TensorRTUnavailableError, match="CUDA error 35"):
        cudart.runtime_version(_FakeCudart(error=35))
    assert cudart.version_text(11040) == "11.4"


def test_cudart_on_this_machine_if_libcudart_loads():
    try:
        lib = cudart.cudart()
    except TensorRTUnavailableError:
        pytest.skip("no libcudart here")
    assert cudart.runtime_version(lib).count(".") == 1
    for name in ("cudaSetDevice", "cudaGetDeviceCount", "cudaDeviceGetAttribute", "cudaGetDeviceProperties"):
        assert hasattr(lib, name), name


# ---- trtexec-args ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def fp16_graphs(tmp_path_factory):
    from _onnx_graphs import DCP_FUNCTION, hdm_like
    from hdm_deploy.graph import flavours
    from hdm_deploy.graph.precision import apply_fp16_policy

    d = tmp_path_factory.mktemp("trtexec")
    model = apply_fp16_policy(hdm_like("plugin"), fp32_functions=[DCP_FUNCTION])
    functions, inlined = d / "fn.onnx", d / "inl.onnx"
    onnx.save(model, functions)
    onnx.save(flavours.inline_functions(model, check=False), inlined)
    return functions, inlined


def _arg(args, flag):
    hits = [a.split("=", 1)[1] for a in args if a.startswith(flag + "=")]
    return hits[0] if hits else None


def test_trtexec_args_per_version(fp16_graphs):
    functions, inlined = fp16_graphs
    lib = "/opt/hdm/libhdm_deploy_plugins.so"
    shapes = dict(min_shape="1x16x16", opt_shape="1x32x32", max_shape="2x64x64")
    # TRT 10.x default: strongly typed, static plugin, shapes from the profile decision
    a10 = trtexec_args(functions, "10.3", plugin_lib=lib, engine="m.engine", timing_cache="t.cache", **shapes)
    assert a10[:2] == [f"--onnx={functions}", "--saveEngine=m.engine"]
    assert _arg(a10, "--minShapes") == "image:1x16x16x3" and _arg(a10, "--maxShapes") == "image:2x64x64x3"
    assert {"--stronglyTyped", "--noTF32", f"--staticPlugins={lib}", "--timingCacheFile=t.cache"} <= set(a10)
    assert "--fp16" not in a10 and not any(a.startswith("--layerPrecisions") for a in a10)
    # TRT 11: strong typing is implicit
    assert "--stronglyTyped" not in trtexec_args(functions, "11", plugin_lib=lib)
    # TRT 8.5/8.6: local functions are refused (as build-engine does); the inlined export works
    with pytest.raises(ExportError, match="--inline-functions"):
        trtexec_args(functions, "8.6", plugin_lib=lib)
    a85 = trtexec_args(inlined, "8.5", plugin_lib=lib, **shapes)
    assert {"--fp16", "--precisionConstraints=obey", "--noTF32", f"--plugins={lib}"} <= set(a85)
    assert "--stronglyTyped" not in a85 and plugin_flag("8.6") == "--plugins"


def test_trtexec_layer_names_are_the_inlined_node_names(fp16_graphs):
    _functions, inlined = fp16_graphs
    model = onnx.load(inlined)
    node_names = {n.name for n in model.graph.node}
    plan = trtexec_plan(inlined, "8.6", plugin_lib="/x.so")
    precisions = [s.rsplit(":", 1) for s in _arg(plan.args, "--layerPrecisions").split(",")]
    names = [n for n, _ in precisions]
    assert {p for _, p in precisions} == {"fp32"} and names == plan.pinned_layers
    assert set(names) <= node_names  # TensorRT's parser names each layer after its node
    assert {"dcp_min", "dcp_pool", "dcp_div"} <= set(names)  # inlined DCP body (float outputs)
    assert not {"dcp_ge", "dcp_and"} & set(names)  # bool outputs: not pinned
    assert not any(n.startswith("dcp_ax") for n in names)  # Constants: no layer of that name
    outputs = dict(s.rsplit(":", 1) for s in _arg(plan.args, "--layerOutputTypes").split(","))
    assert set(outputs) <= set(names) and outputs["dcp_min"] == "fp32"


def test_trtexec_refuses_what_it_cannot_express(fp16_graphs, tmp_path, monkeypatch):
    functions, inlined = fp16_graphs
    with pytest.raises(BuildConfigError, match="--inline-functions"):  # weakly typed + functions
        trtexec_args(functions, "10.3", plugin_lib="/x.so", strongly_typed=False)
    with pytest.raises(BuildConfigError, match="TensorRT ≥ 10"):
        trtexec_args(inlined, "8.6", plugin_lib="/x.so", strongly_typed=True)
    monkeypatch.setattr("hdm_deploy.tensorrt.trtexec.find_plugin_library", lambda *a, **k: None)
    with pytest.raises(PluginBuildError, match="--plugin-lib"):
        trtexec_args(inlined, "10.3")


def test_trtexec_args_cli(fp16_graphs):
    from typer.testing import CliRunner

    from hdm_deploy.cli.commands import app

    _functions, inlined = fp16_graphs
    result = CliRunner().invoke(
        app, ["trtexec-args", str(inlined), "--trt", "8.6", "--plugin-lib", "/opt/p.so", "--max", "1x64x64"]
    )
    assert result.exit_code == 0, result.output
    line = [ln for ln in result.output.splitlines() if ln.startswith("trtexec ")]
    assert line and "--plugins=/opt/p.so" in line[0] and "--maxShapes=image:1x64x64x3" in line[0]


@pytest.mark.slow
def test_trtexec_args_on_a_real_fp16_plugin_export(tmp_path):
    """The realistic case: a tiny HDM exported FP16 with the plugin DeformConv and the real DCP
    function, inlined for TensorRT 8.x: every FP32 layer name is a node of the file."""
    pytest.importorskip("torch")
    from _export_helpers import small_model
    from hdm_deploy.export.exporter import export_onnx

    path = tmp_path / "m.onnx"
    export_onnx(
        small_model(),
        path,
        deform="plugin",
        precision="fp16",
        inline_functions=True,
        golden=False,
        verify=False,
    )
    plan = trtexec_plan(Path(path), "8.6", plugin_lib="/x.so")
    names = {n.name for n in onnx.load(path, load_external_data=False).graph.node}
    assert len(plan.pinned_layers) > 100 and set(plan.pinned_layers) <= names
    assert all(n.startswith("dcp_") for n in plan.pinned_layers)


# ---- runner guarantees that hold before TensorRT is reached ----------------------------------------


def test_engine_without_sidecar_warns_once_then_needs_tensorrt(tmp_path, monkeypatch):
    import importlib.util
    import warnings

    from _engine_helpers import make_sidecar
    from hdm_deploy.core.errors import HdmDeployWarning
    from hdm_deploy.tensorrt.runner import TensorRTRunner
    from hdm_deploy.tensorrt.sidecar import write_sidecar

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed: the runner would go on to load the engine")
    engine = tmp_path / "trtexec.engine"
    engine.write_bytes(b"plan")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(TensorRTUnavailableError):
            TensorRTRunner(engine)
    texts = [str(w.message) for w in seen if issubclass(w.category, HdmDeployWarning)]
    assert texts == [f"trtexec.engine: {NO_SIDECAR_WARNING}"]
    write_sidecar(engine, make_sidecar())
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(TensorRTUnavailableError):
            TensorRTRunner(engine)
    assert not [w for w in seen if issubclass(w.category, HdmDeployWarning)]


def _bare_runner(profile: Profile, image: TensorInfo):
    """A TensorRTRunner past its constructor, with a Polygraphy runner that must not be reached."""
    from hdm_deploy.tensorrt.runner import TensorRTRunner

    runner = object.__new__(TensorRTRunner)
    runner.profile, runner.image = profile, image

    class Untouchable:
        def infer(self, *a, **k):
            raise AssertionError("TensorRT was reached")

    runner._runner = Untouchable()
    runner._severity = 0
    return runner


def test_frames_and_profile_are_checked_before_tensorrt():
    from hdm_deploy.core.errors import ShapeOutOfProfileError

    prof = compute_profile({"io": "uint8"}, min_shape="1x16x16", opt_shape="1x32x32", max_shape="1x64x64")
    runner = _bare_runner(prof, TensorInfo("image", True, np.dtype(np.uint8)))
    with pytest.raises(ShapeOutOfProfileError, match="width 80 not in"):
        runner.run(np.zeros((1, 32, 80, 3), np.uint8))
    with pytest.raises(InputImageError, match="uint8"):
        runner.run(np.zeros((1, 32, 32, 3), np.float32))  # check_frames
    with pytest.raises(InputImageError, match="run_device"):
        runner.run(_FakeCudaArray((1, 32, 32, 3)))
    with pytest.raises(ShapeOutOfProfileError):
        runner.run_device(_FakeCudaArray((2, 32, 32, 3)))  # batch 2 > max 1, on the device path too


def test_predictions_do_not_alias_polygraphys_reused_host_buffers():
    prof = compute_profile({"io": "uint8"}, min_shape="1x16x16", opt_shape="1x16x16", max_shape="1x16x16")
    runner = _bare_runner(prof, TensorInfo("image", True, np.dtype(np.uint8)))
    enhanced = np.zeros((1, 16, 16, 3), np.uint8)  # the one host buffer Polygraphy hands back each call
    masks = np.zeros((1, 5, 1, 1, 1), np.float32)

    class Reusing:
        def infer(self, feed, copy_outputs_to_host):
            assert copy_outputs_to_host and feed["image"].shape == (1, 16, 16, 3)
            enhanced[...] += 1
            masks[...] += 1
            return {"enhanced": enhanced, "masks": masks}

    runner._runner = Reusing()
    frames = np.zeros((1, 16, 16, 3), np.uint8)
    first = runner.run(frames)
    second = runner.run(frames)
    assert first.image.max() == 1 and second.image.max() == 2
    assert first.extras["masks"].max() == 1 and second.extras["masks"].max() == 2
