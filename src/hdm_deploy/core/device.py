"""``--device`` values, validated once for every backend."""

from __future__ import annotations

from hdm_deploy.core.errors import HdmDeployError

__all__ = ["DEVICE_HINT", "device_for", "parse_device"]

DEVICE_HINT = "use --device cpu, cuda, cuda:N or N (a CUDA device index); leave it out for the best available"


def parse_device(device: str | int | None) -> tuple[str, int | None] | None:
    """Validate a ``--device`` value: ``None``/``auto`` → ``None`` (best available), ``cpu`` →
    ``("cpu", None)``, ``cuda`` → ``("cuda", None)``, ``cuda:N`` or ``N`` → ``("cuda", N)``."""
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
