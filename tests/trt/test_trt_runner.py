"""TensorRT runner: pure parts here; the real engine round trip needs TensorRT and a GPU (skipped)."""

from __future__ import annotations

import numpy as np
import pytest

from hdm_deploy.core.errors import TensorRTUnavailableError
from hdm_deploy.tensorrt.runner import (
    numpy_dtype,
    prepare_input,
    require_tensor_api,
    to_prediction,
)


def test_runner_module_imports_no_torch():
    import subprocess
    import sys

    code = (
        "import sys, hdm_deploy.tensorrt.runner, hdm_deploy.tensorrt.doctor, hdm_deploy.tensorrt.builder, "
        "hdm_deploy.tensorrt.trtexec, hdm_deploy.tensorrt.cudart; print('torch' in sys.modules)"
    )
    assert (
        subprocess.run(
            [sys.executable, "-c", code], capture_output=True, text=True, check=True
        ).stdout.strip()
        == "False"
    )


def test_runner_needs_the_tensor_name_api():
    """Polygraphy's TrtRunner uses the tensor-name API only (the bindings path is gone)."""
    require_tensor_api("8.5.2", True)
    require_tensor_api("10.3.0", True)
    with pytest.raises(TensorRTUnavailableError, match=r"≥ 8\.5"):
        require_tensor_api("8.4.3", True)
    with pytest.raises(TensorRTUnavailableError):
        require_tensor_api("10.3", False)


def test_dtypes_and_input_preparation():
    assert numpy_dtype("DataType.UINT8") == np.uint8 and numpy_dtype("HALF") == np.float16
    frames = np.random.default_rng(0).integers(0, 256, (2, 8, 12, 3), dtype=np.uint8)
    assert prepare_input(frames, "NHWC", np.dtype(np.uint8)) is not None
    x = prepare_input(frames, "NCHW", np.dtype(np.float32))
    assert x.shape == (2, 3, 8, 12) and x.flags.c_contiguous and np.isclose(x.max(), frames.max() / 255)


def test_to_prediction_layouts():
    enh = np.full((1, 4, 4, 3), 7, np.uint8)
    masks = np.zeros((1, 5, 1, 1, 1), np.float32)
    p = to_prediction({"enhanced": enh, "masks": masks}, "NHWC")
    assert p.image.dtype == np.uint8 and p.image_float is None and p.extras["masks"].shape == (1, 5, 1, 1, 1)
    f = np.full((1, 3, 4, 4), 0.5, np.float16)
    q = to_prediction({"enhanced": f}, "NCHW")
    assert q.image.shape == (1, 4, 4, 3) and q.image[0, 0, 0, 0] == 128 and q.image_float.dtype == np.float32


def test_runner_needs_neither_pycuda_nor_cuda_python():
    """Device memory, streams and copies are Polygraphy's; device facts come from libcudart via ctypes."""
    import inspect

    from hdm_deploy.tensorrt import builder, cudart, doctor, runner

    for module in (runner, builder, doctor, cudart):
        source = inspect.getsource(module)
        assert "import pycuda" not in source and "from cuda import" not in source
        assert "cuda.bindings" not in source and "cudart_module" not in source


def test_engine_round_trip_parity(tmp_path):
    """Build a tiny engine from an FP16-policy graph and run it (needs TensorRT + GPU)."""
    trt = pytest.importorskip("tensorrt", reason="TensorRT is not installed here (no GPU machine in CI)")
    pytest.importorskip("polygraphy", reason="Polygraphy is not installed")
    del trt
    import onnx

    from _onnx_graphs import DCP_FUNCTION, hdm_like, random_frames
    from hdm_deploy.graph.precision import apply_fp16_policy
    from hdm_deploy.tensorrt.builder import build_engine
    from hdm_deploy.tensorrt.runner import TensorRTRunner

    model = apply_fp16_policy(hdm_like("onnx"), fp32_functions=[DCP_FUNCTION])
    path = tmp_path / "m.onnx"
    onnx.save(model, path)
    result = build_engine(
        path, tmp_path / "m.engine", fp16=True, min_shape="1x16x16", opt_shape="1x32x32", max_shape="2x64x64"
    )
    frames = random_frames(2, 32, 32)
    with TensorRTRunner(result.engine_path) as runner:
        pred = runner.run(frames)
    import onnxruntime as ort

    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    _enh, masks = sess.run(None, {"image": frames})
    assert np.array_equal(pred.extras["masks"], masks)


def test_build_engine_cli_without_tensorrt(tmp_path):
    """Without TensorRT, build-engine fails with one actionable line (exit 2), after reading the model."""
    import importlib.util

    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed: the real build is covered by test_engine_round_trip_parity")
    import onnx

    from _onnx_graphs import hdm_like
    from hdm_deploy.tensorrt.builder import build_engine

    path = tmp_path / "m.onnx"
    onnx.save(hdm_like(), path)
    with pytest.raises(TensorRTUnavailableError, match="not installed"):
        build_engine(path, tmp_path / "m.engine")
    assert not (tmp_path / "m.engine").exists()


def test_load_runner_gives_tensorrt_a_device_index(monkeypatch, tmp_path):
    """`--device cuda` used to reach cudaSetDevice("cuda"); the engine runner now gets an int."""
    import hdm_deploy.runtime as runtime
    from hdm_deploy.core.errors import HdmDeployError

    seen = {}

    class FakeEngineRunner:
        def __init__(self, path, device: int = 0, **_):
            seen["device"] = device

    monkeypatch.setattr(runtime, "runner_class", lambda path: FakeEngineRunner)
    for given, index in (("cuda", 0), ("cuda:1", 1), ("3", 3)):
        runtime.load_runner(tmp_path / "m.engine", device=given)
        assert seen["device"] == index and isinstance(seen["device"], int)
    with pytest.raises(HdmDeployError, match="CUDA GPU"):
        runtime.load_runner(tmp_path / "m.engine", device="cpu")
