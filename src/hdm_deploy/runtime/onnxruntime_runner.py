"""ONNX Runtime backend: runs an exported frame-path graph (``hdm-deploy export``) — no torch.

The graph takes ``image`` (uint8 NHWC, or float32 NCHW in [0,1] for ``--io float``) and returns
``enhanced`` (same layout/dtype) and ``masks``. Which one a file is comes from its metadata
(``io``) or, for foreign files, from the input's element type. ``plugin``-flavour graphs (our
TensorRT plugin op) are rewritten to the standard ``DeformConv`` in memory — a lossless rewrite — so
they can be checked here too.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.errors import (
    HdmDeployError,
    InputImageError,
    ModelFormatError,
    environment_problem,
    first_line,
)
from hdm_deploy.core.runner import Prediction, Runner, check_max_pixels, quantize

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"


def _ort():
    try:
        import onnxruntime
    except ImportError as exc:  # pragma: no cover - a dependency, but Jetson images differ
        raise HdmDeployError(
            "onnxruntime is not installed", "pip install onnxruntime (or onnxruntime-gpu / the Jetson wheel)"
        ) from exc
    return onnxruntime


def default_providers(device: str | None = None) -> list[str]:
    """CUDA (then CPU) when the CUDA EP is installed, else CPU; ``device='cpu'|'cuda'`` forces one."""
    from hdm_deploy.core.device import device_for

    device = device_for("onnx", device)  # HdmDeployError for an unknown device
    available = _ort().get_available_providers()
    if device == "cpu":
        return [CPU]
    if device == "cuda" or (device is None and CUDA in available):
        if CUDA not in available:
            raise HdmDeployError(
                "the CUDA execution provider of onnxruntime is not available",
                "install onnxruntime-gpu, or run on the CPU (--device cpu)",
            )
        return [CUDA, CPU]
    return [CPU]


class OnnxRuntimeRunner(Runner):
    """An exported HDM graph in ONNX Runtime (CPU; CUDA EP when installed)."""

    backend = "onnxruntime"

    def __init__(
        self,
        model_path: str | os.PathLike,
        providers: list[str] | None = None,
        *,
        device: str | None = None,
        device_id: int | None = None,
        threads: int | None = None,
        optimization: str = "all",
    ):
        super().__init__(model_path)
        import onnx

        from hdm_deploy.graph import onnx_io as _graph
        from hdm_deploy.graph.flavours import convert_deform, detect_flavour
        from hdm_deploy.graph.metadata import io_kind

        ort = _ort()
        path = Path(model_path)
        model = _graph.load(path)
        self.metadata = _graph.metadata(model)
        self.max_pixels = int(self.metadata.get("max_pixels") or 0) or None
        self.flavour = detect_flavour(model)
        self.rewritten = self.flavour == "plugin"
        self.rewrite_to: str | None = None
        source: str | bytes = str(path)
        if self.rewritten:  # DeformConv exists from opset 19; below, run the decomposition
            self.rewrite_to = "onnx" if (_graph.opset_version(model) or 19) >= 19 else "decompose"
            source = convert_deform(model, self.rewrite_to, check=False).SerializeToString()
        if not model.graph.input:
            raise ModelFormatError(f"{path} has no inputs")
        first = model.graph.input[0]
        elem = onnx.helper.tensor_dtype_to_np_dtype(first.type.tensor_type.elem_type)
        self.input_name = first.name
        self.io = io_kind(self.metadata, str(elem))
        del model

        options = ort.SessionOptions()
        levels = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }
        options.graph_optimization_level = levels[optimization]
        if threads:
            options.intra_op_num_threads = int(threads)
        options.log_severity_level = 3
        self.providers = list(providers) if providers else default_providers(device)
        session_providers: list = [
            (CUDA, {"device_id": int(device_id)}) if p == CUDA and device_id else p for p in self.providers
        ]
        try:
            self.session = ort.InferenceSession(source, sess_options=options, providers=session_providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            msg = first_line(exc)
            hint = "re-export with `hdm-deploy export`"
            if self.flavour == "decompose" or "DeformConv" in msg:
                hint = "try `hdm-deploy convert MODEL --deform onnx` or a newer onnxruntime"
            raise ModelFormatError(f"ONNX Runtime cannot load {path}: {msg}", hint) from exc
        self.output_names = [o.name for o in self.session.get_outputs()]

    def run(self, frames: np.ndarray) -> Prediction:
        check_max_pixels(frames, self.max_pixels)
        if self.io == "uint8":
            feed = frames
        else:
            feed = np.ascontiguousarray(frames.transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255)
        try:
            values = self.session.run(None, {self.input_name: feed})
        except Exception as exc:
            problem = environment_problem(exc, f"ONNX Runtime on a {list(frames.shape)} batch")
            if problem is not None:  # bad_alloc / "Failed to allocate memory": exit 3, not a bad input
                raise problem from exc
            msg = first_line(exc)
            raise InputImageError(f"ONNX Runtime failed on a {list(frames.shape)} batch: {msg}") from exc
        outputs = dict(zip(self.output_names, values, strict=True))
        enhanced = outputs.get("enhanced", values[0])
        masks = outputs.get("masks")
        if self.io == "uint8":
            return Prediction(image=np.ascontiguousarray(enhanced), image_float=None, masks=masks)
        enhanced = np.asarray(enhanced, dtype=np.float32)
        return Prediction(image=quantize(enhanced), image_float=enhanced, masks=masks)

    def describe(self) -> dict[str, Any]:
        ort = _ort()
        return {
            **super().describe(),
            "device": "cuda" if self.session.get_providers()[0] == CUDA else "cpu",
            "providers": self.session.get_providers(),
            "io": self.io,
            "deform": self.flavour or "none",
            "deform_rewrite": f"plugin→{self.rewrite_to} (in memory)" if self.rewritten else None,
            "precision": self.metadata.get("precision", "fp32"),
            "onnxruntime": ort.__version__,
        }

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
