"""ONNX Runtime backend — no torch. Modelled on Polygraphy's ``backend/onnxrt``: a small loader
(:class:`SessionFromOnnx`) makes the ``InferenceSession`` and reads the model's facts, and the
runner (:class:`OnnxRuntimeRunner`) takes a session with its facts, or a loader.

The graph takes ``image`` (uint8 NHWC, or float32 NCHW in [0,1] for ``--io float``) and returns
``enhanced`` (same layout/dtype) plus the family's extra outputs (HDM: ``masks``), returned by name
in ``Prediction.extras``. The file is read once: the loader parses it for the metadata and gives ORT
the parsed bytes. ``plugin``-flavour graphs (our TensorRT plugin op) are rewritten to the standard
``DeformConv`` (or the decomposition below opset 19) in memory — a lossless rewrite — so they can be
checked here too.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np
import onnx

from hdm_deploy.core.contracts import INPUT_NAME, OUTPUT_NAME
from hdm_deploy.core.device import device_for, parse_device
from hdm_deploy.core.errors import (
    EnvironmentProblem,
    InputImageError,
    ModelFormatError,
    environment_problem,
    first_line,
)
from hdm_deploy.core.runner import Prediction, Runner, check_max_pixels, quantize
from hdm_deploy.graph import onnx_io
from hdm_deploy.graph.flavours import convert_deform, decompose_calls_in_fp32, detect_flavour
from hdm_deploy.graph.metadata import ModelFacts, model_facts

__all__ = [
    "CPU",
    "CUDA",
    "OnnxRuntimeRunner",
    "SessionFromOnnx",
    "default_providers",
    "onnxruntime_module",
    "recognise",
]

CPU = "CPUExecutionProvider"
CUDA = "CUDAExecutionProvider"
OPTIMIZATION_LEVELS = ("all", "extended", "basic", "none")
ORT_HINT = "pip install '.[cpu]' (or '.[gpu]' for onnxruntime-gpu, or your platform's ONNX Runtime wheel)"


def onnxruntime_module():
    """``import onnxruntime`` with a one-line error (exit 3) when it is not installed."""
    try:
        import onnxruntime
    except ImportError as exc:  # an extra: [cpu] or [gpu]; Jetson images bring their own
        raise EnvironmentProblem("onnxruntime is not installed", ORT_HINT) from exc
    return onnxruntime


def default_providers(device: str | int | None = None) -> list[str]:
    """CUDA (then CPU) when the CUDA EP is installed, else CPU; ``device='cpu'|'cuda'`` forces one."""
    device = device_for("onnx", device)  # HdmDeployError for an unknown device
    available = onnxruntime_module().get_available_providers()
    if device == "cpu":
        return [CPU]
    if device == "cuda" or (device is None and CUDA in available):
        if CUDA not in available:
            raise EnvironmentProblem(
                "the CUDA execution provider of onnxruntime is not available",
                "install onnxruntime-gpu (pip install '.[gpu]'), or run on the CPU (--device cpu)",
            )
        return [CUDA, CPU]
    return [CPU]


def recognise(facts: ModelFacts, where: str, allow_foreign: bool = False) -> None:
    """Refuse (one line, exit 2) a graph that is not an hdm-deploy model: its I/O must be
    ``image`` → ``enhanced`` (+ extras) and its metadata must name a family (``family``, or the
    legacy ``model=HDM``). ``allow_foreign`` (CLI ``--foreign-model``) waives only the metadata:
    a file with the right I/O whose metadata was stripped then runs with the neutral frame contract."""
    if facts.input_name != INPUT_NAME or OUTPUT_NAME not in facts.output_names:
        raise ModelFormatError(
            f"{where} is not an hdm-deploy model: its I/O is {facts.input_name} → "
            f"{', '.join(facts.output_names) or '(none)'}, not {INPUT_NAME} → {OUTPUT_NAME}",
            "give an ONNX file written by `hdm-deploy export`",
        )
    if facts.family is None and not allow_foreign:
        raise ModelFormatError(
            f"{where} has the I/O of an hdm-deploy model but no hdm-deploy metadata (family)",
            "re-export it with `hdm-deploy export`, or pass --foreign-model to run it anyway",
        )


def read_facts(model: onnx.ModelProto) -> ModelFacts:
    """The runner-relevant facts of a parsed model (metadata, I/O names, input element type)."""
    if not model.graph.input:
        raise ModelFormatError("the ONNX model has no inputs")
    first = model.graph.input[0]
    elem = onnx.helper.tensor_dtype_to_np_dtype(first.type.tensor_type.elem_type)
    return model_facts(onnx_io.metadata(model), first.name, str(elem), [o.name for o in model.graph.output])


class SessionFromOnnx:
    """Loader: ``SessionFromOnnx(path, device=…)()`` → ``(InferenceSession, ModelFacts, flavour note)``.

    ``threads`` sets intra-op threads; ``optimization`` is ORT's graph optimisation level
    (``all``/``extended``/``basic``/``none``); ``device_id`` picks the CUDA device;
    ``allow_foreign`` runs a graph with hdm-deploy I/O names but no hdm-deploy metadata (see
    :func:`recognise`; anything else is refused).
    """

    def __init__(
        self,
        model: str | os.PathLike | onnx.ModelProto,
        *,
        providers: list[str] | None = None,
        device: str | int | None = None,
        threads: int | None = None,
        optimization: str = "all",
        allow_foreign: bool = False,
        arena: bool | None = None,
        mem_pattern: bool | None = None,
    ):
        if optimization not in OPTIMIZATION_LEVELS:
            raise ModelFormatError(
                f"unknown ONNX Runtime optimisation level {optimization!r}",
                f"use one of {', '.join(OPTIMIZATION_LEVELS)}",
            )
        parsed = parse_device(device)  # validated before anything is loaded
        self.model = model
        self.device_id = parsed[1] if parsed is not None else None
        self.providers = list(providers) if providers else default_providers(device)
        self.threads = threads
        self.optimization = optimization
        self.allow_foreign = bool(allow_foreign)
        #: ORT's CPU memory arena and memory-pattern planning (None: ORT's default, both on);
        #: turning both off lowers the peak (docs/memory.md)
        self.arena, self.mem_pattern = arena, mem_pattern

    def __call__(self):
        ort = onnxruntime_module()
        model = onnx_io.load(self.model)
        where = str(self.model) if not isinstance(self.model, onnx.ModelProto) else "the model"
        facts = read_facts(model)
        recognise(facts, where, self.allow_foreign)
        flavour = detect_flavour(model)
        rewrite = None
        if flavour == "plugin":  # DeformConv exists from opset 19; below, run the decomposition
            rewrite = "onnx" if (onnx_io.opset_version(model) or 19) >= 19 else "decompose"
            model = convert_deform(model, rewrite, check=False)
            if rewrite == "decompose" and facts.precision == "fp16":
                decompose_calls_in_fp32(model)  # the plugin samples in FP32; so must its stand-in
        source = model.SerializeToString()
        del model
        options = ort.SessionOptions()
        options.graph_optimization_level = {
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "none": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        }[self.optimization]
        if self.threads:
            options.intra_op_num_threads = int(self.threads)
        if self.arena is not None:
            options.enable_cpu_mem_arena = bool(self.arena)
        if self.mem_pattern is not None:
            options.enable_mem_pattern = bool(self.mem_pattern)
        options.log_severity_level = 3
        providers: list = [
            (CUDA, {"device_id": int(self.device_id)}) if p == CUDA and self.device_id else p
            for p in self.providers
        ]
        try:
            session = ort.InferenceSession(source, sess_options=options, providers=providers)
        except Exception as exc:  # ORT raises its own Fail/InvalidGraph/NotImplemented types
            msg = first_line(exc)
            hint = "re-export with `hdm-deploy export`"
            if "DeformConv" in msg and "implementation" in msg:  # ORT < 1.25 has no DeformConv kernel
                hint = "onnxruntime >= 1.25 runs DeformConv; or `hdm-deploy convert MODEL --deform decompose`"
            elif flavour == "decompose" or "DeformConv" in msg:
                hint = "try `hdm-deploy convert MODEL --deform onnx` or a newer onnxruntime"
            raise ModelFormatError(f"ONNX Runtime cannot load {where}: {msg}", hint) from exc
        return session, facts, (flavour, rewrite)


class OnnxRuntimeRunner(Runner):
    """An exported graph in ONNX Runtime (CPU; the CUDA EP when installed).

    ``OnnxRuntimeRunner(SessionFromOnnx(path, device="cpu"))``; a path (with the loader's keyword
    options) is accepted as a shortcut.
    """

    backend = "onnxruntime"

    def __init__(self, session_or_loader: Any, **loader_options: Any):
        if isinstance(session_or_loader, (str, os.PathLike, onnx.ModelProto)):
            session_or_loader = SessionFromOnnx(session_or_loader, **loader_options)
        elif loader_options:
            raise TypeError(f"options {sorted(loader_options)} go to SessionFromOnnx, not the runner")
        if isinstance(session_or_loader, SessionFromOnnx):
            path = session_or_loader.model
            self.session, self.facts, (self.flavour, self.rewrite_to) = session_or_loader()
        else:  # (session, facts) from the caller
            self.session, self.facts = session_or_loader
            self.flavour, self.rewrite_to, path = self.facts.flavour, None, None
        super().__init__(path if isinstance(path, (str, os.PathLike)) else None)
        self.min_side = self.facts.min_side
        self.grey_only = self.facts.metadata.get("channels") == "1"
        self.output_names = [o.name for o in self.session.get_outputs()]

    # compatibility with callers that read these directly
    @property
    def metadata(self) -> dict[str, str]:
        return self.facts.metadata

    @property
    def io(self) -> str:
        return self.facts.io

    def validate(self, frames: Any) -> np.ndarray:
        frames = super().validate(frames)
        check_max_pixels(frames, self.facts.max_pixels, pad_multiple=self.facts.pad_multiple)
        return frames

    def _run(self, frames: np.ndarray) -> Prediction:
        if self.facts.io == "uint8":
            feed = frames
        else:
            feed = np.ascontiguousarray(frames.transpose(0, 3, 1, 2)).astype(np.float32) / np.float32(255)
        try:
            values = self.session.run(None, {self.facts.input_name: feed})
        except Exception as exc:
            problem = environment_problem(exc, f"ONNX Runtime on a {list(frames.shape)} batch")
            if problem is not None:  # bad_alloc / "Failed to allocate memory": exit 3, not a bad input
                raise problem from exc
            msg = first_line(exc)
            raise InputImageError(f"ONNX Runtime failed on a {list(frames.shape)} batch: {msg}") from exc
        outputs = dict(zip(self.output_names, values, strict=True))
        enhanced = outputs.pop("enhanced", values[0])
        extras = {k: np.asarray(v) for k, v in outputs.items() if v is not enhanced}
        if self.facts.io == "uint8":
            return Prediction(image=np.ascontiguousarray(enhanced), image_float=None, extras=extras)
        enhanced = np.asarray(enhanced, dtype=np.float32)
        return Prediction(image=quantize(enhanced), image_float=enhanced, extras=extras)

    def describe(self) -> dict[str, Any]:
        ort = onnxruntime_module()
        return {
            **super().describe(),
            "device": "cuda" if self.session.get_providers()[0] == CUDA else "cpu",
            "providers": self.session.get_providers(),
            "family": self.facts.family,
            "io": self.facts.io,
            "deform": self.flavour or "none",
            "deform_rewrite": f"plugin→{self.rewrite_to} (in memory)" if self.rewrite_to else None,
            "precision": self.facts.precision,
            "onnxruntime": ort.__version__,
        }

    def close(self) -> None:
        self.session = None  # type: ignore[assignment]
