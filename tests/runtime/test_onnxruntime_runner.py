"""runtime/: torch-free imports, ``load_runner`` dispatch, the ONNX Runtime runner."""

from __future__ import annotations

import pkgutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

import hdm_deploy.runtime as runtime_pkg
from hdm_deploy.core.errors import InputImageError, ModelFormatError
from hdm_deploy.runtime import load_runner, runner_class
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner

RUNTIME_MODULES = sorted(f"hdm_deploy.runtime.{m.name}" for m in pkgutil.iter_modules(runtime_pkg.__path__))
#: torch-free modules outside runtime/ that runtime code and devices use
TORCH_FREE_EXTRA = [
    "hdm_deploy.graph.onnx_io",
    "hdm_deploy.graph.flavours",
    "hdm_deploy.graph.deform_decompose",
    "hdm_deploy.graph.golden",
    "hdm_deploy.core.photos",
    "hdm_deploy.graph.metadata",
]


def test_every_runtime_module_imports_without_torch():
    assert "hdm_deploy.runtime.onnxruntime_runner" in RUNTIME_MODULES
    code = textwrap.dedent(
        f"""
        import importlib, sys
        sys.modules["torch"] = None  # any `import torch` now raises ImportError
        sys.modules["torchvision"] = None
        for name in {RUNTIME_MODULES + TORCH_FREE_EXTRA!r}:
            importlib.import_module(name)
        import hdm_deploy.runtime as rt
        from hdm_deploy.core.photos import golden_cases
        from hdm_deploy.graph.golden import load_golden
        assert golden_cases()
        rt.runner_class("model.onnx")
        print("ok")
        """
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.strip().endswith("ok")


def test_runner_class_dispatch_by_suffix():
    assert runner_class("m.onnx") is OnnxRuntimeRunner
    assert runner_class("m.pk").__name__ == "torch_runner"  # dispatches on the checkpoint's family
    assert runner_class("m.PTH").__name__ == "torch_runner"
    assert runner_class(None).__name__ == "torch_runner"
    with pytest.raises(ModelFormatError, match="unknown model file type"):
        runner_class("m.tflite")


def test_engine_suffix_goes_to_tensorrt_runner_or_a_clear_error():
    from hdm_deploy.core.errors import TensorRTUnavailableError

    try:
        cls = runner_class("m.engine")
    except TensorRTUnavailableError:
        return
    assert cls.__name__ == "TensorRTRunner"


@pytest.mark.slow
def test_load_runner_onnx_refuses_options_it_cannot_use():
    from _export_helpers import photo_frames, small_export
    from hdm_deploy.core.errors import HdmDeployError

    path = small_export("uint8").path
    with pytest.raises(HdmDeployError, match="--masks does not apply to an ONNX model"):
        load_runner(path, masks="reference", device="cpu")
    with load_runner(path, masks=None, device="cpu", trust_checkpoint=None) as runner:
        assert isinstance(runner, OnnxRuntimeRunner)
        info = runner.describe()
        assert info["backend"] == "onnxruntime" and info["device"] == "cpu" and info["io"] == "uint8"
        pred = runner(photo_frames(30, 22)[0])  # one [H,W,3] frame is promoted to a batch
    assert pred.image.shape == (1, 22, 30, 3) and pred.image_float is None
    assert pred.extras["masks"].shape == (1, 5, 1, 6, 8)


@pytest.mark.slow
def test_float_io_runner_returns_float_and_quantised_output():
    from _export_helpers import photo_frames, small_export
    from hdm_deploy.core.runner import quantize

    with OnnxRuntimeRunner(small_export("float").path) as runner:
        assert runner.io == "float"
        pred = runner(photo_frames(24, 20, batch=2))
    assert pred.image_float.shape == (2, 3, 20, 24) and pred.image_float.dtype == np.float32
    assert pred.image_float.min() >= 0.0 and pred.image_float.max() <= 1.0
    np.testing.assert_array_equal(pred.image, quantize(pred.image_float))


@pytest.mark.slow
def test_bad_frames_are_input_errors():
    from _export_helpers import small_export

    with OnnxRuntimeRunner(small_export("uint8").path) as runner:
        with pytest.raises(InputImageError, match="uint8"):
            runner(np.zeros((1, 8, 8, 3), np.float32))
        with pytest.raises(InputImageError, match="too small"):
            runner(np.zeros((1, 3, 8, 3), np.uint8))
        with pytest.raises(InputImageError, match=r"\[N, H, W, 3\]"):
            runner(np.zeros((1, 8, 8, 4), np.uint8))


def test_unreadable_model_is_a_model_format_error(tmp_path):
    bad = tmp_path / "bad.onnx"
    bad.write_bytes(b"not a protobuf at all")
    with pytest.raises(ModelFormatError):
        OnnxRuntimeRunner(bad)
    with pytest.raises(ModelFormatError, match="not found"):
        OnnxRuntimeRunner(tmp_path / "missing.onnx")


def test_providers_default_to_cpu_without_cuda():
    import onnxruntime as ort

    from hdm_deploy.runtime.onnxruntime_runner import CPU, CUDA, default_providers

    assert default_providers("cpu") == [CPU]
    if CUDA in ort.get_available_providers():
        assert default_providers() == [CUDA, CPU]
    else:
        assert default_providers() == [CPU]
