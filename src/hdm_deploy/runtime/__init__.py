"""Runtime backends behind one interface (``base.Runner``); nothing here imports torch.

:func:`load_runner` picks the backend from the file suffix: ``.pk/.pt/.pth`` → PyTorch
(``hdm_deploy.models.runner.TorchRunner``, imported lazily), ``.onnx`` → ONNX Runtime,
``.engine/.plan/.trt`` → TensorRT (``hdm_deploy.runtime.tensorrt_runner``, imported lazily).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from hdm_deploy.core.device import device_for, parse_device
from hdm_deploy.core.runner import Prediction, Runner, model_kind

__all__ = ["Prediction", "Runner", "device_for", "load_runner", "model_kind", "parse_device", "runner_class"]


def runner_class(path: str | os.PathLike | None) -> type[Runner]:
    """The Runner class for a model file (``None``: the bundled sample checkpoint, in PyTorch)."""
    kind = "torch" if path is None else model_kind(path)
    if kind == "torch":
        try:
            from hdm_deploy.families.hdm.torch_runner import TorchRunner
        except ImportError as exc:
            from hdm_deploy.core.errors import HdmDeployError

            raise HdmDeployError(
                f"PyTorch is needed to run checkpoint {path or '(bundled sample)'} ({exc})",
                "pip install 'hdm-deploy[torch]', or export it to ONNX on a machine that has PyTorch",
            ) from exc
        return TorchRunner
    if kind == "onnx":
        from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner
    # tensorrt.runner imports only numpy and our own modules at the top; TensorRT and Polygraphy are
    # imported in TensorRTRunner.__init__, which raises TensorRTUnavailableError when they are missing.
    from hdm_deploy.tensorrt.runner import TensorRTRunner

    return TensorRTRunner


def load_runner(path: str | os.PathLike | None = None, **options) -> Runner:
    """Open a model file with the backend its suffix calls for.

    ``options`` go to the runner's constructor; options that this backend does not take (say
    ``masks=`` for an ONNX file, whose graph holds its own masks) are dropped, and ``None`` values
    mean "the backend's default", so a CLI can pass one set of options to any model file.
    ``device`` is validated here, once, and given to each backend in the form it takes (see
    :func:`device_for`).
    """
    kind = "torch" if path is None else model_kind(path)
    device = options.get("device")
    if device is not None:
        options = dict(options, device=device_for(kind, device))  # validated before any heavy import
        parsed = parse_device(device)
        if kind == "onnx" and parsed is not None and parsed[1]:
            options.setdefault("device_id", parsed[1])
    cls = runner_class(path)
    params = inspect.signature(cls.__init__).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = {k: v for k, v in options.items() if v is not None and (takes_any or k in params)}
    return cls(Path(path) if path is not None else None, **kwargs)
