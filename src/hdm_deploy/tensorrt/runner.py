"""TensorRT runner on Polygraphy: same interface as the ONNX Runtime runner, no torch.

``TensorRTRunner`` wraps Polygraphy's ``TrtRunner(EngineFromBytes(...))`` (``LoadPlugins`` in front
when a plugin library is wanted): Polygraphy owns the TensorRT runtime, the execution context, the
CUDA stream and the device/host buffers (through its ``ctypes`` wrapper of ``libcudart``), so
neither pycuda nor cuda-python is needed. What stays ours:

- the sidecar check (``model.engine.json``, :mod:`hdm_deploy.tensorrt.sidecar`): a mismatch raises
  :class:`~hdm_deploy.core.errors.EngineMismatchError` with the rebuild command, a tolerable one is
  one :class:`~hdm_deploy.core.errors.HdmDeployWarning` line;
- engines without a sidecar (built with ``trtexec``) run after one warning line; their I/O and
  profile are read from the engine (``get_tensor_profile_shape``);
- the plugin library choice (:func:`select_plugin_library`);
- device selection (``cudaSetDevice`` via :mod:`hdm_deploy.tensorrt.cudart`);
- frames validated (``check_frames``) and the shape checked against the profile *before* TensorRT
  sees it (:func:`~hdm_deploy.tensorrt.profiles.check_in_profile`);
- device inputs (``__cuda_array_interface__``: torch CUDA tensors, CuPy arrays) wrapped as
  ``polygraphy.cuda.DeviceView`` without a host copy (:meth:`TensorRTRunner.run_device`).
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.contracts import INPUT_NAME, OUTPUT_NAME
from hdm_deploy.core.device import device_for
from hdm_deploy.core.errors import (
    EngineMismatchError,
    HdmDeployError,
    HdmDeployWarning,
    InputImageError,
    TensorRTUnavailableError,
)
from hdm_deploy.core.fs import sha256_file
from hdm_deploy.core.runner import Prediction, Runner, quantize
from hdm_deploy.tensorrt import cudart
from hdm_deploy.tensorrt.builder import import_polygraphy_trt, import_tensorrt
from hdm_deploy.tensorrt.flags import MIN_TRT, parse_version
from hdm_deploy.tensorrt.plugins import ENV_VAR, find_plugin_library, load_plugin_library
from hdm_deploy.tensorrt.profiles import Profile, check_in_profile
from hdm_deploy.tensorrt.sidecar import RuntimeFacts, raise_on_mismatch, read_sidecar
from hdm_deploy.tensorrt.sidecar import check_sidecar as compare

IMAGE_INPUT = INPUT_NAME

NO_SIDECAR_WARNING = (
    "no sidecar: TensorRT/GPU compatibility not checked; pass --plugin-lib if it uses HdmDeformConv"
)

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


def require_tensor_api(trt_version: str, has_tensor_api: bool) -> None:
    """Polygraphy's ``TrtRunner`` drives TensorRT by tensor name (``num_io_tensors``,
    ``set_input_shape``, ``execute_async_v3``): TensorRT ≥ 8.5. The binding-index API of older
    releases (and the ``HDM_DEPLOY_TRT_IO_API=bindings`` workaround) is gone."""

    if parse_version(trt_version)[:2] < MIN_TRT or not has_tensor_api:
        raise TensorRTUnavailableError(
            f"TensorRT {trt_version} lacks the tensor-name API the runner uses (need ≥ 8.5)",
            "install TensorRT ≥ 8.5 (JetPack ≥ 5.1), or reinstall TensorRT's Python bindings",
        )


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


def to_prediction(outputs: Mapping[str, np.ndarray], layout: str) -> Prediction:
    """Engine outputs → :class:`Prediction` (uint8 I/O gives ``image``; float I/O gives ``image_float`` too)."""
    enhanced = np.asarray(outputs[OUTPUT_NAME])
    extras = {
        k: np.asarray(v).astype(np.float32, copy=False)
        if np.asarray(v).dtype == np.float16
        else np.asarray(v)
        for k, v in outputs.items()
        if k != OUTPUT_NAME
    }
    if layout == "NHWC":
        return Prediction(image=np.ascontiguousarray(enhanced.astype(np.uint8, copy=False)), extras=extras)
    image_float = enhanced.astype(np.float32, copy=False)
    return Prediction(image=quantize(image_float), image_float=image_float, extras=extras)


@dataclass(frozen=True)
class TensorInfo:
    name: str
    is_input: bool
    dtype: np.dtype


def describe_io(engine: Any, input_mode: Any) -> list[TensorInfo]:
    """The engine's I/O tensors (tensor-name API, TRT ≥ 8.5; ``input_mode``: ``trt.TensorIOMode.INPUT``)."""
    out = []
    for i in range(engine.num_io_tensors):
        name = engine.get_tensor_name(i)
        dtype = engine.get_tensor_dtype(name)
        out.append(
            TensorInfo(
                name,
                engine.get_tensor_mode(name) == input_mode,
                numpy_dtype(getattr(dtype, "name", str(dtype))),
            )
        )
    return out


def check_hdm_io(tensors: Sequence[TensorInfo]) -> TensorInfo:
    """The image input, after checking this is an hdm-deploy graph's I/O (image → enhanced[, extras])."""
    names = [t.name for t in tensors]
    image = next((t for t in tensors if t.name == IMAGE_INPUT and t.is_input), None)
    if image is None or OUTPUT_NAME not in names:
        raise EngineMismatchError(
            f"engine I/O {names} is not an hdm-deploy graph's (image → enhanced, …)",
            "build the engine from an `hdm-deploy export` ONNX file (trtexec: see `hdm-deploy trtexec-args`)",
        )
    return image


def layout_of(image: TensorInfo) -> str:
    """uint8 input: the NHWC uint8 graph; a float input: the NCHW float graph."""
    return "NHWC" if image.dtype == np.uint8 else "NCHW"


def profile_from_engine(image: TensorInfo, shapes: Sequence[Sequence[int]]) -> Profile:
    """Profile 0 of an engine without sidecar, from ``engine.get_tensor_profile_shape(image, 0)``
    (``[min, opt, max]`` tensor shapes)."""
    layout = layout_of(image)
    if len(shapes) != 3 or any(len(s) != 4 for s in shapes):
        raise EngineMismatchError(f"engine profile of {image.name!r} is not 3 × 4-D shapes: {shapes}")

    def nhw(s: Sequence[int]) -> tuple[int, int, int]:
        s = [int(v) for v in s]
        return (s[0], s[1], s[2]) if layout == "NHWC" else (s[0], s[2], s[3])

    lo, mid, hi = (nhw(s) for s in shapes)
    try:
        return Profile(image.name, layout, lo, mid, hi)
    except ValueError as exc:
        raise EngineMismatchError(f"engine profile {list(shapes)} is unusable: {exc}") from None


def wants_plugin(
    explicit: str | os.PathLike | None, sidecar: Any, env: Mapping[str, str] | None = None
) -> bool:
    """Whether the runner loads a plugin library: ``--plugin-lib`` or ``$HDM_DEPLOY_PLUGIN_LIB``
    (named on purpose), else the sidecar's word (built with one); no sidecar → only when named."""

    env = os.environ if env is None else env
    if explicit or env.get(ENV_VAR):
        return True
    return bool(sidecar is not None and getattr(sidecar, "plugin_sha256", None))


def select_plugin_library(
    explicit: str | os.PathLike | None, sidecar: Any, env: Mapping[str, str] | None = None
) -> Path | None:
    """Which library: ``--plugin-lib`` > ``$HDM_DEPLOY_PLUGIN_LIB`` > the sidecar's ``plugin_file``
    (where it was at build time, if still there) > discovery (package / build directories)."""

    env = os.environ if env is None else env
    if not wants_plugin(explicit, sidecar, env):
        return None
    if explicit or env.get(ENV_VAR):
        return find_plugin_library(explicit or env[ENV_VAR], required=True)
    built_with = getattr(sidecar, "plugin_file", None)
    if built_with and Path(built_with).is_file():
        return Path(built_with)
    return find_plugin_library(None, required=True)


def cuda_array_interface(obj: Any) -> dict | None:
    """``obj.__cuda_array_interface__`` (torch CUDA tensors, CuPy, Numba…), else ``None``."""
    try:
        cai = getattr(obj, "__cuda_array_interface__", None)
    except Exception:  # torch raises for CPU tensors on some versions
        return None
    return cai if isinstance(cai, dict) else None


def is_device_array(obj: Any) -> bool:
    if cuda_array_interface(obj) is not None:
        return True
    try:
        from polygraphy.cuda import DeviceView
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, DeviceView)


def device_view(obj: Any, expected_dtype: np.dtype | None = None):
    """Wrap a device array as ``polygraphy.cuda.DeviceView`` (no copy): its pointer, shape and dtype
    from ``__cuda_array_interface__``. Must be C-contiguous; ``expected_dtype``: the engine input's."""
    from polygraphy.cuda import DeviceView

    if isinstance(obj, DeviceView):  # already wrapped: its Polygraphy DataType is taken as given
        view, dtype, shape = obj, None, tuple(obj.shape)
    else:
        cai = cuda_array_interface(obj)
        if cai is None:
            raise InputImageError(
                f"{type(obj).__name__} is not a device array (no __cuda_array_interface__)",
                "pass a numpy array to run(), or a torch CUDA tensor / CuPy array to run_device()",
            )
        shape = tuple(int(s) for s in cai["shape"])
        dtype = np.dtype(cai["typestr"])
        strides = cai.get("strides")
        if strides is not None and tuple(strides) != _c_strides(shape, dtype.itemsize):
            raise InputImageError(
                f"device input with strides {tuple(strides)} is not C-contiguous",
                "make it contiguous first (tensor.contiguous() / cupy.ascontiguousarray)",
            )
        ptr = int(cai["data"][0])
        if ptr == 0 and int(np.prod(shape)) > 0:
            raise InputImageError("device input has a null pointer")
        view = DeviceView(ptr, shape, dtype)
    if expected_dtype is not None and dtype is not None and dtype != np.dtype(expected_dtype):
        raise InputImageError(
            f"device input is {dtype}, the engine's input is {np.dtype(expected_dtype)}",
            "uint8 NHWC engines take uint8 [N,H,W,3]; float engines take [N,3,H,W] in 0..1",
        )
    if len(shape) != 4:
        raise InputImageError(f"expected a 4-D device input, got shape {list(shape)}")
    return view


def _c_strides(shape: Sequence[int], itemsize: int) -> tuple[int, ...]:
    out, step = [], itemsize
    for dim in reversed(shape):
        out.append(step)
        step *= int(dim)
    return tuple(reversed(out))


# ---- the runner (needs TensorRT and a GPU) ------------------------------------------------------------


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

        device = int(device_for("tensorrt", device) or 0)  # "cuda:1" / "1" → 1; "cpu" is refused
        path = Path(model_path)
        if not path.is_file():
            raise EngineMismatchError(
                f"engine not found: {path}", "build one with `hdm-deploy build-engine MODEL.onnx`"
            )
        self.sidecar = read_sidecar(path, required=False)  # trtexec engines have none
        self.warnings: list[str] = []
        if self.sidecar is None and check_sidecar:
            self.warnings.append(NO_SIDECAR_WARNING)
            warnings.warn(f"{path.name}: {NO_SIDECAR_WARNING}", HdmDeployWarning, stacklevel=2)
        trt = import_tensorrt()
        poly = import_polygraphy_trt()
        self.trt = trt
        lib = cudart.cudart()
        cudart.set_device(device, lib)  # before Polygraphy creates its stream and buffers
        self.device = device

        self.plugin_path = select_plugin_library(plugin_lib, self.sidecar)
        if self.plugin_path is not None:
            load_plugin_library(self.plugin_path)  # validates the file, registers HdmDeformConv
        self.gpu_name, self.compute_capability = cudart.device_properties(device, lib)
        if self.sidecar is not None and check_sidecar:
            facts = RuntimeFacts(
                trt.__version__,
                self.gpu_name,
                self.compute_capability,
                sha256_file(self.plugin_path) if self.plugin_path else None,
            )
            mismatches = [str(m) for m in raise_on_mismatch(path, compare(self.sidecar, facts))]
            for text in mismatches:  # e.g. another GPU of the same architecture: it runs, maybe slower
                warnings.warn(f"{path.name}: {text}", HdmDeployWarning, stacklevel=2)
            self.warnings += mismatches

        from polygraphy.exception import PolygraphyException
        from polygraphy.logger import G_LOGGER

        engine_loader = poly.EngineFromBytes(path.read_bytes())
        if self.plugin_path is not None:
            engine_loader = poly.LoadPlugins(plugins=[str(self.plugin_path)], obj=engine_loader)
        self._severity = G_LOGGER.VERBOSE if verbose else G_LOGGER.WARNING
        try:
            with G_LOGGER.verbosity(self._severity):
                self._runner = poly.TrtRunner(engine_loader)
                self._runner.activate()
        except PolygraphyException:
            raise EngineMismatchError(
                f"TensorRT {trt.__version__} could not deserialize {path.name}",
                "it was built by another TensorRT version/GPU or needs the plugin library "
                "(--plugin-lib); rebuild it here",
            ) from None
        engine = self._runner.engine
        require_tensor_api(trt.__version__, hasattr(engine, "num_io_tensors"))
        self.tensors = describe_io(engine, trt.TensorIOMode.INPUT)
        self.image = check_hdm_io(self.tensors)
        if self.sidecar is not None:
            self.profile = self.sidecar.profile(0)
            self.min_side = int(self.sidecar.model_metadata.get("min_side") or 1)
            self.grey_only = self.sidecar.model_metadata.get("channels") == "1"
        else:
            shapes = [tuple(s) for s in engine.get_tensor_profile_shape(IMAGE_INPUT, 0)]
            self.profile = profile_from_engine(self.image, shapes)
        if layout_of(self.image) != self.profile.layout:
            raise EngineMismatchError(
                f"engine input is {self.image.dtype} but the sidecar says {self.profile.layout}",
                "the sidecar belongs to another engine; rebuild with `hdm-deploy build-engine`",
            )

    def validate(self, frames: Any) -> np.ndarray:
        """Host frames only (device arrays go to :meth:`run_device`), checked, and inside the profile."""
        if is_device_array(frames):
            raise InputImageError(
                "run() takes host frames; this is a device array",
                "use runner.run_device(x) for torch CUDA tensors / CuPy arrays (outputs stay on the GPU)",
            )

        frames = super().validate(frames)
        n, h, w, _ = frames.shape
        check_in_profile((n, h, w, 3) if self.profile.layout == "NHWC" else (n, 3, h, w), self.profile)
        return frames

    def _run(self, frames: np.ndarray) -> Prediction:
        """uint8 [N,H,W,3] host frames → :class:`Prediction` (host)."""
        x = prepare_input(frames, self.profile.layout, self.image.dtype)
        outputs = self._infer({IMAGE_INPUT: x}, copy_outputs_to_host=True)
        # Polygraphy's host outputs view buffers it reuses on the next call: the Prediction owns copies.
        return to_prediction({k: np.array(v, copy=True) for k, v in outputs.items()}, self.profile.layout)

    def run_device(self, image: Any) -> dict[str, Any]:
        """A device input already in the engine's layout and dtype (uint8 NHWC, or float NCHW in 0..1)
        → ``{"enhanced": DeviceView, "masks": DeviceView}`` without host copies. The views point
        into the runner's output buffers: valid until the next call. Synchronise the producing
        stream first (e.g. ``torch.cuda.synchronize()``): the runner uses its own stream."""

        view = device_view(image, self.image.dtype)
        check_in_profile(view.shape, self.profile)
        return self._infer({IMAGE_INPUT: view}, copy_outputs_to_host=False)

    def _infer(self, feed: dict[str, Any], copy_outputs_to_host: bool) -> dict[str, Any]:
        from polygraphy.exception import PolygraphyException
        from polygraphy.logger import G_LOGGER

        try:
            with G_LOGGER.verbosity(self._severity):
                return dict(self._runner.infer(feed, copy_outputs_to_host=copy_outputs_to_host))
        except PolygraphyException as exc:
            raise HdmDeployError(
                f"TensorRT execution failed: {exc}", "re-run with verbose=True for TensorRT's log"
            ) from None

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d.update(
            device=f"{self.gpu_name} (sm_{self.compute_capability})",
            provider=f"TensorRT {self.trt.__version__} (Polygraphy)",
            precision=self.sidecar.precision if self.sidecar else "?",
            profile=self.profile.describe(),
        )
        return d

    def close(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None and runner.is_active:
            runner.deactivate()
        self._runner = None
