"""Runtime backends behind one interface (``base.Runner``); nothing here imports torch.

:func:`load_runner` picks the backend from the file suffix: ``.pk/.pt/.pth`` → PyTorch
(``hdm_deploy.models.runner.TorchRunner``, imported lazily), ``.onnx`` → ONNX Runtime,
``.engine/.plan/.trt`` → TensorRT (``hdm_deploy.runtime.tensorrt_runner``, imported lazily).
"""

from __future__ import annotations

import inspect
import os
from pathlib import Path

from .base import Prediction, Runner, model_kind

__all__ = ["Prediction", "Runner", "device_for", "load_runner", "model_kind", "parse_device", "runner_class"]

DEVICE_HINT = "use --device cpu, cuda, cuda:N or N (a CUDA device index); leave it out for the best available"


def parse_device(device: str | int | None) -> tuple[str, int | None] | None:
    """Validate a ``--device`` value: ``None``/``auto`` → ``None`` (best available), ``cpu`` →
    ``("cpu", None)``, ``cuda`` → ``("cuda", None)``, ``cuda:N`` or ``N`` → ``("cuda", N)``."""
    from ..errors import HdmDeployError

    if device is None:
        return None
    if isinstance(device, bool):  # bool is an int; never a device
        raise HdmDeployError(f"unknown device {device!r}", DEVICE_HINT)
    text = str(device).strip().lower()
    if text in ("", "auto"):
        return None
    if text == "cpu":
        return ("cpu", None)
    if text == "cuda":
        return ("cuda", None)
    index = text[len("cuda:") :] if text.startswith("cuda:") else text
    if index.isascii() and index.isdigit():  # no sign, no other scripts: a CUDA ordinal
        return ("cuda", int(index))
    raise HdmDeployError(f"unknown device {device!r}", DEVICE_HINT)


def device_for(kind: str, device: str | int | None) -> str | int | None:
    """``device`` (validated by :func:`parse_device`) in the form a backend takes: ``torch`` → a torch
    device string (``cpu``/``cuda``/``cuda:N``), ``onnx`` → ``cpu``/``cuda``, ``engine`` (TensorRT) → a
    CUDA index.
    ``None`` means the backend's default."""
    from ..errors import HdmDeployError

    parsed = parse_device(device)
    if parsed is None:
        return None
    name, index = parsed
    if kind in ("engine", "tensorrt"):
        if name == "cpu":
            raise HdmDeployError(
                "TensorRT engines run on a CUDA GPU, not on the CPU",
                "leave --device out or give cuda / cuda:N, or run the .onnx model with --device cpu",
            )
        return index or 0
    if kind == "onnx":
        return name
    return name if index is None else f"cuda:{index}"


def runner_class(path: str | os.PathLike | None) -> type[Runner]:
    """The Runner class for a model file (``None``: the bundled sample checkpoint, in PyTorch)."""
    kind = "torch" if path is None else model_kind(path)
    if kind == "torch":
        try:
            from ..models.runner import TorchRunner
        except ImportError as exc:
            from ..errors import HdmDeployError

            raise HdmDeployError(
                f"PyTorch is needed to run checkpoint {path or '(bundled sample)'} ({exc})",
                "pip install 'hdm-deploy[torch]', or export it to ONNX on a machine that has PyTorch",
            ) from exc
        return TorchRunner
    if kind == "onnx":
        from .onnxruntime_runner import OnnxRuntimeRunner

        return OnnxRuntimeRunner
    # tensorrt_runner imports only numpy and our own modules at the top; TensorRT and cuda-python are
    # imported in TensorRTRunner.__init__, which raises TensorRTUnavailableError when they are missing.
    from .tensorrt_runner import TensorRTRunner

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
