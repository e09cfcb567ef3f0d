"""Runners behind one interface (:class:`~hdm_deploy.core.runner.Runner`); nothing here imports torch.

:func:`load_runner` picks the backend from the file suffix: ``.pk/.pt/.pth`` → the PyTorch runner of
the checkpoint's family (found from its state-dict keys; torch is imported only then), ``.onnx`` →
ONNX Runtime, ``.engine/.plan/.trt`` → TensorRT (Polygraphy), ``http://host:port/model`` or
``grpc://host:port/model`` → a model served by Triton (:mod:`hdm_deploy.runtime.triton_client`). Each backend takes its own options;
an option given to a backend that cannot use it is refused (never silently dropped).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from hdm_deploy.core.device import device_for, parse_device
from hdm_deploy.core.errors import HdmDeployError, missing_dependency
from hdm_deploy.core.runner import Prediction, Runner, model_kind, server_url
from hdm_deploy.families.base import resolve
from hdm_deploy.families.registry import get_family, names
from hdm_deploy.runtime.budget import BudgetRunner, OverlapRunner
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
from hdm_deploy.runtime.triton_client import TritonClientRunner
from hdm_deploy.tensorrt.runner import TensorRTRunner

__all__ = [
    "BACKEND_OPTIONS",
    "Prediction",
    "Runner",
    "check_options",
    "device_for",
    "load_runner",
    "model_kind",
    "parse_device",
    "runner_class",
]

#: The options each kind of model file takes (``device`` everywhere, validated once here).
BACKEND_OPTIONS: dict[str, frozenset[str]] = {
    # plus what any family's PyTorch runner takes (HDM: masks)
    "torch": frozenset({"device", "trust_checkpoint", "arch"}).union(
        *(get_family(n).torch_options for n in names())
    ),
    "onnx": frozenset(
        {"device", "threads", "optimization", "providers", "allow_foreign", "max_memory", "tile", "overlap"}
    ),
    "engine": frozenset({"device", "plugin_lib"}),
    # a model served by Triton (http://host:port/model, grpc://…): the server owns device and plugins
    "server": frozenset(),
}
#: options whose command-line flag is not the option name with dashes
_FLAG_NAMES = {"allow_foreign": "--foreign-model"}
#: options that make an ONNX model run under a memory budget / tiled (runtime.budget)
_BUDGET_OPTIONS = ("max_memory", "tile", "overlap")
_KIND_NAMES = {
    "torch": "a PyTorch checkpoint",
    "onnx": "an ONNX model",
    "engine": "a TensorRT engine",
    "server": "a served model (URL)",
}


def check_options(kind: str, options: dict[str, Any]) -> dict[str, Any]:
    """The options that were given (not ``None``/``False``), after refusing those ``kind`` cannot use."""
    given = {k: v for k, v in options.items() if v is not None and v is not False}
    unusable = sorted(set(given) - BACKEND_OPTIONS[kind])
    if unusable:
        flags = ", ".join(_FLAG_NAMES.get(k, "--" + k.replace("_", "-")) for k in unusable)
        users = [n for n, opts in BACKEND_OPTIONS.items() if set(unusable) <= opts]
        raise HdmDeployError(
            f"{flags} does not apply to {_KIND_NAMES[kind]}",
            f"it applies to {' or '.join(_KIND_NAMES[u] for u in users)}; leave it out"
            if users
            else "leave it out",
        )
    return given


def runner_class(path: str | os.PathLike | None) -> Any:
    """What opens a model file: the ONNX Runtime or TensorRT runner class, or for a checkpoint the
    family-dispatching PyTorch factory (torch imported only then)."""
    kind = "torch" if path is None else model_kind(path)
    if kind == "onnx":
        return OnnxRuntimeRunner
    if kind == "engine":
        return TensorRTRunner
    if kind == "server":
        return TritonClientRunner
    try:
        return resolve("hdm_deploy.families.checkpoint_io:torch_runner")
    except ImportError as exc:
        raise missing_dependency(f"running checkpoint {path or '(bundled sample)'}", exc) from exc


def load_runner(path: str | os.PathLike | None = None, **options: Any) -> Runner:
    """Open a model file with the backend its suffix calls for (``None``: the bundled sample
    checkpoint in PyTorch). ``device`` is validated here, once, and given to each backend in the
    form it takes; ``None`` values mean "the backend's default"."""
    kind = "torch" if path is None else model_kind(path)
    given = check_options(kind, options)
    if kind == "server":  # a URL: never a Path (which would collapse its "//")
        return TritonClientRunner(server_url(path) or str(path))
    if "device" in given:
        device = given["device"]
        given["device"] = device_for(kind, device)  # validated before any heavy import
        if kind == "onnx":
            given["device"] = device  # the loader keeps the CUDA index itself
    if kind == "onnx" and any(k in given for k in _BUDGET_OPTIONS):
        return _budget_runner(Path(path), given)
    return runner_class(path)(Path(path) if path is not None else None, **given)


def _budget_runner(path: Path, given: dict[str, Any]) -> Runner:
    """``max_memory``/``tile``: the whole frame or the exact tiled path (:class:`BudgetRunner`);
    ``overlap``: approximate overlap tiling of the whole graph, PSNR measured (:class:`OverlapRunner`)."""
    budget = {k: given.pop(k) for k in _BUDGET_OPTIONS if k in given}
    if "overlap" in budget:
        if "max_memory" in budget:
            raise HdmDeployError(
                "--overlap and --max-memory do not combine", "give --tile and --overlap for overlap tiling"
            )
        inner = OnnxRuntimeRunner(path, **given)
        return OverlapRunner(inner, tile=int(budget.get("tile") or 512), overlap=int(budget["overlap"]))
    return BudgetRunner(path, max_memory=budget.get("max_memory"), tile=budget.get("tile"), **given)
