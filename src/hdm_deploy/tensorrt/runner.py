"""TensorRT runner: same interface as the ONNX Runtime runner, no torch.

Loads ``model.engine`` and its sidecar (``model.engine.json``), checks the sidecar against the
running TensorRT and GPU (:class:`~hdm_deploy.errors.EngineMismatchError` with the rebuild
command), loads the plugin library when the engine needs it, and runs batches on one CUDA stream
with pinned host buffers (cuda-python's runtime API; ``cuda.bindings.runtime`` in cuda-python ≥ 12.6,
``cuda.cudart`` before). Input shapes are checked against the optimisation profile *before*
TensorRT is touched (:func:`hdm_deploy.engines.profiles.check_in_profile`).

I/O API: TensorRT ≥ 8.5 has the tensor-name API (``num_io_tensors``, ``set_input_shape``,
``set_tensor_address``, ``execute_async_v3``); the binding-index API (``num_bindings``,
``set_binding_shape``, ``execute_async_v2``) is deprecated in 8.5/8.6 and removed in 10.
:func:`select_io_api` picks per version; ``HDM_DEPLOY_TRT_IO_API=bindings`` forces the old path on
8.5/8.6 (a workaround, should a JetPack 5 build misbehave with v3).
"""

from __future__ import annotations

import ctypes
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.contracts import INPUT_NAME, OUTPUT_NAME
from hdm_deploy.core.errors import (
    EngineMismatchError,
    HdmDeployError,
    HdmDeployWarning,
    TensorRTUnavailableError,
)
from hdm_deploy.core.runner import Prediction, Runner, quantize

IMAGE_INPUT = INPUT_NAME

_NUMPY_OF_TRT = {
    "FLOAT": np.float32,
    "HALF": np.float16,
    "INT8": np.int8,
    "INT32": np.int32,
    "INT64": np.int64,
    "BOOL": np.bool_,
    "UINT8": np.uint8,
    "BF16": None,
}


# ---- pure decisions (tested without TensorRT) ------------------------------------------------------


def select_io_api(trt_version: str, has_tensor_api: bool, env: dict[str, str] | None = None) -> str:
    """'tensors' (name-based, TRT ≥ 8.5) or 'bindings' (index-based, TRT < 10 only)."""
    from hdm_deploy.tensorrt.flags import parse_version

    env = os.environ if env is None else env
    v = parse_version(trt_version)
    forced = env.get("HDM_DEPLOY_TRT_IO_API", "").strip().lower()
    if forced == "bindings" and v[0] < 10:
        return "bindings"
    if has_tensor_api and v[:2] >= (8, 5):
        return "tensors"
    if v[0] >= 10:
        raise TensorRTUnavailableError(
            f"TensorRT {trt_version} lacks the tensor-name API", "reinstall TensorRT's Python bindings"
        )
    return "bindings"


def numpy_dtype(trt_dtype_name: str) -> np.dtype:
    """``trt.DataType`` member name → numpy dtype."""
    name = trt_dtype_name.split(".")[-1].upper()
    dt = _NUMPY_OF_TRT.get(name)
    if dt is None:
        raise HdmDeployError(f"TensorRT tensor type {trt_dtype_name} has no numpy equivalent here")
    return np.dtype(dt)


def prepare_input(frames: np.ndarray, layout: str, dtype: np.dtype) -> np.ndarray:
    """uint8 [N,H,W,3] frames → the engine's input: as-is for NHWC uint8, float [N,3,H,W]/255 for NCHW float."""
    if layout == "NHWC":
        if dtype != np.uint8:
            raise HdmDeployError(f"engine input is NHWC {dtype}, expected uint8")
        return np.ascontiguousarray(frames)
    x = frames.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255.0)
    return np.ascontiguousarray(x.astype(dtype, copy=False))


def to_prediction(outputs: dict[str, np.ndarray], layout: str) -> Prediction:
    """Engine outputs → :class:`Prediction` (uint8 I/O gives ``image``; float I/O gives ``image_float`` too)."""
    enhanced = outputs[OUTPUT_NAME]
    extras = {
        k: v.astype(np.float32, copy=False) if v.dtype == np.float16 else v
        for k, v in outputs.items()
        if k != OUTPUT_NAME
    }
    if layout == "NHWC":
        return Prediction(image=np.ascontiguousarray(enhanced.astype(np.uint8, copy=False)), extras=extras)
    image_float = enhanced.astype(np.float32, copy=False)
    return Prediction(image=quantize(image_float), image_float=image_float, extras=extras)


def grow_capacity(current: int, needed: int) -> int:
    """Buffer size policy: reuse while big enough, else grow to the need (rounded up to 1 MiB)."""
    if needed <= current:
        return current
    mib = 1 << 20
    return ((needed + mib - 1) // mib) * mib


# ---- cuda-python (imported lazily) ------------------------------------------------------------------


def cudart_module():
    """cuda-python's runtime module: ``cuda.bindings.runtime`` (≥ 12.6) or ``cuda.cudart`` (older)."""
    try:
        from cuda.bindings import runtime as cudart
    except ImportError:
        try:
            from cuda import cudart  # type: ignore[no-redef]
        except ImportError as exc:
            raise TensorRTUnavailableError(
                "cuda-python is not installed (needed to feed TensorRT)",
                "pip install cuda-python (match the CUDA major version of your TensorRT)",
            ) from exc
    return cudart


def check_cuda(result: Any) -> Any:
    """Unpack a cuda-python ``(err, *values)`` tuple, raising on error."""
    err, *values = result if isinstance(result, tuple) else (result,)
    code = int(getattr(err, "value", err))
    if code != 0:
        raise TensorRTUnavailableError(f"CUDA error {err}", "check the GPU driver (nvidia-smi / tegrastats)")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def device_properties(cudart, device: int = 0) -> tuple[str, str]:  # pragma: no cover - needs a GPU
    props = check_cuda(cudart.cudaGetDeviceProperties(device))
    name = props.name.decode() if isinstance(props.name, bytes) else str(props.name)
    return name.strip("\x00 "), f"{props.major}.{props.minor}"


def runtime_version(cudart) -> str:  # pragma: no cover - needs the CUDA runtime library
    v = check_cuda(cudart.cudaRuntimeGetVersion())
    return f"{v // 1000}.{(v % 1000) // 10}"


class _Buffer:  # pragma: no cover - needs a GPU
    """A device buffer and its pinned host twin, grown on demand."""

    def __init__(self, cudart):
        self.cudart = cudart
        self.capacity = 0
        self.device = 0
        self.host = 0

    def ensure(self, nbytes: int) -> None:
        size = grow_capacity(self.capacity, max(nbytes, 1))
        if size == self.capacity:
            return
        self.free()
        self.device = check_cuda(self.cudart.cudaMalloc(size))
        self.host = check_cuda(self.cudart.cudaMallocHost(size))
        self.capacity = size

    def host_array(self, shape: Sequence[int], dtype: np.dtype) -> np.ndarray:
        count = int(np.prod(shape)) * np.dtype(dtype).itemsize
        raw = (ctypes.c_uint8 * count).from_address(self.host)
        return np.frombuffer(raw, dtype=np.uint8).view(dtype).reshape(shape)

    def free(self) -> None:
        if self.device:
            self.cudart.cudaFree(self.device)
        if self.host:
            self.cudart.cudaFreeHost(self.host)
        self.device = self.host = 0
        self.capacity = 0


@dataclass
class _Tensor:
    name: str
    is_input: bool
    dtype: np.dtype
    index: int  #: binding index (bindings API) or position


class TensorRTRunner(Runner):  # pragma: no cover - needs TensorRT and a GPU; decisions tested above
    """``TensorRTRunner("model.engine")(frames_uint8_NHWC) -> Prediction``."""

    backend = "tensorrt"

    def __init__(
        self,
        model_path: str | Path,
        plugin_lib: str | Path | None = None,
        check_sidecar: bool = True,
        device: int | str | None = 0,
        verbose: bool = False,
        **_: Any,
    ):
        super().__init__(model_path)
        from hdm_deploy.core.device import device_for

        device = int(device_for("tensorrt", device) or 0)  # "cuda:1" / "1" → 1; "cpu" is refused
        from hdm_deploy.core.fs import sha256_file
        from hdm_deploy.tensorrt.builder import import_tensorrt
        from hdm_deploy.tensorrt.plugins import find_plugin_library, load_plugin_library
        from hdm_deploy.tensorrt.profiles import Profile
        from hdm_deploy.tensorrt.sidecar import RuntimeFacts, raise_on_mismatch, read_sidecar
        from hdm_deploy.tensorrt.sidecar import check_sidecar as compare

        path = Path(model_path)
        if not path.is_file():
            raise EngineMismatchError(
                f"engine not found: {path}", "build one with `hdm-deploy build-engine MODEL.onnx`"
            )
        self.sidecar = read_sidecar(path, required=check_sidecar)
        trt = import_tensorrt()
        self.trt = trt
        self.cudart = cudart_module()
        check_cuda(self.cudart.cudaSetDevice(device))

        plugin_path = None
        wants_plugin = plugin_lib or (self.sidecar is not None and self.sidecar.plugin_sha256)
        if wants_plugin:
            plugin_path = find_plugin_library(plugin_lib, required=True)
            load_plugin_library(plugin_path)
        self.plugin_path = plugin_path
        gpu_name, cc = device_properties(self.cudart, device)
        self.gpu_name, self.compute_capability = gpu_name, cc
        self.warnings: list[str] = []
        if self.sidecar is not None:
            facts = RuntimeFacts(
                trt.__version__, gpu_name, cc, sha256_file(plugin_path) if plugin_path else None
            )
            self.warnings = [str(m) for m in raise_on_mismatch(path, compare(self.sidecar, facts))]
            for text in self.warnings:  # e.g. another GPU of the same architecture: it runs, maybe slower
                warnings.warn(f"{path.name}: {text}", HdmDeployWarning, stacklevel=2)

        self.logger = trt.Logger(trt.Logger.VERBOSE if verbose else trt.Logger.WARNING)
        trt.init_libnvinfer_plugins(self.logger, "")
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(path.read_bytes())
        if self.engine is None:
            raise EngineMismatchError(
                f"TensorRT {trt.__version__} could not deserialize {path.name}",
                "it was built by another TensorRT version/GPU or needs the plugin library; rebuild it here",
            )
        self.context = self.engine.create_execution_context()
        self.io_api = select_io_api(trt.__version__, hasattr(self.engine, "num_io_tensors"))
        self.tensors = self._describe_io()
        names = [t.name for t in self.tensors]
        if IMAGE_INPUT not in names or OUTPUT_NAME not in names:
            raise EngineMismatchError(
                f"engine I/O {names} is not an hdm-deploy graph's (image → enhanced, …)"
            )
        image = next(t for t in self.tensors if t.name == IMAGE_INPUT)
        if self.sidecar is not None:
            self.profile = self.sidecar.profile(0)
        else:
            lo, mid, hi = self._engine_profile(image)
            layout = "NHWC" if image.dtype == np.uint8 else "NCHW"
            nhw = (lambda s: (s[0], s[1], s[2])) if layout == "NHWC" else (lambda s: (s[0], s[2], s[3]))
            self.profile = Profile(IMAGE_INPUT, layout, nhw(lo), nhw(mid), nhw(hi))
        self.stream = check_cuda(self.cudart.cudaStreamCreate())
        self.buffers = {t.name: _Buffer(self.cudart) for t in self.tensors}

    def _describe_io(self) -> list[_Tensor]:
        trt, e = self.trt, self.engine
        out = []
        if self.io_api == "tensors":
            for i in range(e.num_io_tensors):
                name = e.get_tensor_name(i)
                is_input = e.get_tensor_mode(name) == trt.TensorIOMode.INPUT
                out.append(_Tensor(name, is_input, numpy_dtype(e.get_tensor_dtype(name).name), i))
        else:
            for i in range(e.num_bindings):
                out.append(
                    _Tensor(
                        e.get_binding_name(i),
                        e.binding_is_input(i),
                        numpy_dtype(e.get_binding_dtype(i).name),
                        i,
                    )
                )
        return out

    def _engine_profile(self, image: _Tensor):
        if self.io_api == "tensors":
            return [tuple(s) for s in self.engine.get_tensor_profile_shape(image.name, 0)]
        return [tuple(s) for s in self.engine.get_profile_shape(0, image.index)]

    def run(self, frames: np.ndarray) -> Prediction:
        from hdm_deploy.tensorrt.profiles import check_in_profile

        image = next(t for t in self.tensors if t.name == IMAGE_INPUT)
        x = prepare_input(frames, self.profile.layout, image.dtype)
        check_in_profile(x.shape, self.profile)  # before TensorRT sees the shape
        cudart, ctx = self.cudart, self.context
        h2d = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        d2h = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost

        if self.io_api == "tensors":
            ctx.set_input_shape(IMAGE_INPUT, x.shape)
            shapes = {t.name: tuple(ctx.get_tensor_shape(t.name)) for t in self.tensors}
        else:
            ctx.set_binding_shape(image.index, x.shape)
            shapes = {t.name: tuple(ctx.get_binding_shape(t.index)) for t in self.tensors}
        shapes[IMAGE_INPUT] = x.shape

        for t in self.tensors:
            nbytes = int(np.prod(shapes[t.name])) * t.dtype.itemsize
            self.buffers[t.name].ensure(nbytes)
        buf_in = self.buffers[IMAGE_INPUT]
        buf_in.host_array(x.shape, x.dtype)[...] = x
        check_cuda(cudart.cudaMemcpyAsync(buf_in.device, buf_in.host, x.nbytes, h2d, self.stream))

        if self.io_api == "tensors":
            for t in self.tensors:
                ctx.set_tensor_address(t.name, self.buffers[t.name].device)
            ok = ctx.execute_async_v3(int(self.stream))
        else:
            bindings = [0] * len(self.tensors)
            for t in self.tensors:
                bindings[t.index] = self.buffers[t.name].device
            ok = ctx.execute_async_v2(bindings, int(self.stream))
        if not ok:
            raise HdmDeployError("TensorRT execution failed", "re-run with verbose=True for TensorRT's log")

        outputs: dict[str, np.ndarray] = {}
        for t in self.tensors:
            if t.is_input:
                continue
            buf = self.buffers[t.name]
            nbytes = int(np.prod(shapes[t.name])) * t.dtype.itemsize
            check_cuda(cudart.cudaMemcpyAsync(buf.host, buf.device, nbytes, d2h, self.stream))
        check_cuda(cudart.cudaStreamSynchronize(self.stream))
        for t in self.tensors:
            if not t.is_input:
                outputs[t.name] = self.buffers[t.name].host_array(shapes[t.name], t.dtype).copy()
        return to_prediction(outputs, self.profile.layout)

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            device=f"{self.gpu_name} (sm_{self.compute_capability})",
            provider=f"TensorRT {self.trt.__version__}",
            precision=self.sidecar.precision if self.sidecar else "?",
            profile=self.profile.describe(),
            io_api=self.io_api,
        )
        return d

    def close(self) -> None:
        for buf in getattr(self, "buffers", {}).values():
            buf.free()
        if getattr(self, "stream", None) is not None:
            self.cudart.cudaStreamDestroy(self.stream)
            self.stream = None
        self.context = None
        self.engine = None
