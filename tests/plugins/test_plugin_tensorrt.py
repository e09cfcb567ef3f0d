"""HdmDeformConv inside TensorRT: registration, a one-node ONNX network through TensorRT's ONNX
parser, engine serialization round trip, compared with the CPU twin.

Needs `tensorrt` (Python), a CUDA GPU, nvcc and TensorRT headers (TENSORRT_ROOT or a system
install) to build the plugin; skipped with the reason otherwise.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

trt = pytest.importorskip("tensorrt", reason="TensorRT (python package `tensorrt`) is not installed")
torch = pytest.importorskip("torch", reason="torch provides CUDA buffers for running the engine")

from hdm_deploy.plugins import (  # noqa: E402
    PLUGIN_DOMAIN,
    PLUGIN_NAMESPACE,
    PLUGIN_OP_TYPE,
    PLUGIN_VERSION,
    DeformAttrs,
    build_plugin_cached,
    cpu_deform_conv,
    load_plugin_library,
)
from hdm_deploy.plugins._build import _find_nvcc  # noqa: E402

pytestmark = [
    pytest.mark.tensorrt,
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(_find_nvcc() is None, reason="nvcc not installed (needed to build the plugin)"),
]
TRT_MAJOR = int(trt.__version__.split(".")[0])


def _tensorrt_root() -> str | None:
    for root in filter(
        None, [os.environ.get("TENSORRT_ROOT"), "/usr", "/usr/local/TensorRT", "/opt/tensorrt"]
    ):
        for sub in ("include", "include/x86_64-linux-gnu", "include/aarch64-linux-gnu"):
            if (Path(root) / sub / "NvInfer.h").exists():
                return str(Path(root) / sub) if sub != "include" else root
    return None


@pytest.fixture(scope="module")
def plugin_lib():
    root = _tensorrt_root()
    if root is None:
        pytest.skip("TensorRT headers (NvInfer.h) not found; set TENSORRT_ROOT to build the plugin")
    major, minor = torch.cuda.get_device_capability()
    result = build_plugin_cached(f"{major}{minor}", root)
    if not result.has_tensorrt:
        pytest.skip(f"CMake did not find TensorRT headers under {root}")
    if int(result.tensorrt_version.split(".")[0]) != TRT_MAJOR:
        pytest.skip(f"headers are TensorRT {result.tensorrt_version}, python package is {trt.__version__}")
    load_plugin_library(result.library)
    return result.library


def _creator():
    reg = trt.get_plugin_registry()
    if hasattr(reg, "get_creator"):
        return reg.get_creator(PLUGIN_OP_TYPE, PLUGIN_VERSION, PLUGIN_NAMESPACE)
    return reg.get_plugin_creator(PLUGIN_OP_TYPE, PLUGIN_VERSION, PLUGIN_NAMESPACE)


def test_creator_is_registered(plugin_lib):
    creator = _creator()
    assert creator is not None
    names = {f.name for f in creator.field_names}
    assert names == {"dilations", "group", "kernel_shape", "offset_group", "pads", "strides"}
    load_plugin_library(plugin_lib)  # idempotent


def _model(attrs: DeformAttrs, x, w, off, b, m) -> onnx.ModelProto:
    inputs = [
        helper.make_tensor_value_info("X", TensorProto.FLOAT, x.shape),
        helper.make_tensor_value_info("offset", TensorProto.FLOAT, off.shape),
    ]
    inits = [numpy_helper.from_array(w, "W")]
    node_inputs = ["X", "W", "offset"]
    if b is not None:
        inits.append(numpy_helper.from_array(b, "B"))
        node_inputs.append("B")
    if m is not None:
        inputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, m.shape))
        node_inputs.append("mask")
    node = helper.make_node(
        PLUGIN_OP_TYPE, node_inputs, ["Y"], domain=PLUGIN_DOMAIN, **attrs.onnx_attributes()
    )
    graph = helper.make_graph(
        [node], "hdm_deform", inputs, [helper.make_tensor_value_info("Y", TensorProto.FLOAT, None)], inits
    )
    return helper.make_model(
        graph,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(PLUGIN_DOMAIN, 1)],
        ir_version=8,
    )


def _build_engine(model: onnx.ModelProto, fp16: bool) -> bytes:
    logger = trt.Logger(trt.Logger.WARNING)
    builder = trt.Builder(logger)
    flags = 0 if TRT_MAJOR >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
    network = builder.create_network(flags)
    parser = trt.OnnxParser(network, logger)
    if not parser.parse(model.SerializeToString()):
        errors = [str(parser.get_error(i)) for i in range(parser.num_errors)]
        raise AssertionError("ONNX parse failed: " + "; ".join(errors))
    config = builder.create_builder_config()
    if fp16:
        config.set_flag(trt.BuilderFlag.FP16)
    blob = builder.build_serialized_network(network, config)
    assert blob is not None, "engine build failed"
    return bytes(blob)


def _run(engine_bytes: bytes, feeds: dict[str, np.ndarray]) -> np.ndarray:
    runtime = trt.Runtime(trt.Logger(trt.Logger.WARNING))
    engine = runtime.deserialize_cuda_engine(engine_bytes)  # exercises plugin deserialization
    ctx = engine.create_execution_context()
    bufs = {k: torch.from_numpy(v).cuda() for k, v in feeds.items()}
    out_shape = tuple(ctx.get_tensor_shape("Y"))
    out = torch.empty(out_shape, dtype=torch.float32, device="cuda")
    for name, t in bufs.items():
        ctx.set_tensor_address(name, t.data_ptr())
    ctx.set_tensor_address("Y", out.data_ptr())
    stream = torch.cuda.Stream()
    assert ctx.execute_async_v3(stream.cuda_stream)
    stream.synchronize()
    return out.cpu().numpy()


@pytest.mark.parametrize("with_mask", [True, False])
@pytest.mark.parametrize("fp16", [False, True])
def test_one_node_network_matches_cpu_twin(plugin_lib, with_mask, fp16):
    rng = np.random.default_rng(0)
    attrs = DeformAttrs((3, 3), pads=(1, 1, 1, 1))
    x = rng.standard_normal((1, 64, 34, 60)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    off = rng.uniform(-20, 20, (1, 18, 34, 60)).astype(np.float32)
    m = rng.uniform(0, 1, (1, 9, 34, 60)).astype(np.float32) if with_mask else None
    engine = _build_engine(_model(attrs, x, w, off, b, m), fp16)
    feeds = {"X": x, "offset": off} | ({"mask": m} if m is not None else {})
    y = _run(engine, feeds)
    ref = cpu_deform_conv(x, w, off, b, m, padding=1)
    tol = 2e-3 if fp16 else 1e-4
    assert np.abs(y - ref).max() / np.abs(ref).max() <= tol
