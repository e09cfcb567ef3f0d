"""Typed errors. Every error a user can cause carries a hint that says what to do next.

The CLI prints ``str(error)`` as one line (message plus hint) and exits with ``exit_code``;
``--debug`` shows the traceback instead.
"""

from __future__ import annotations


class HdmDeployError(Exception):
    """Base class: an error with an actionable hint, shown to users without a traceback."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class CheckpointError(HdmDeployError):
    """A checkpoint file cannot be read or does not fit the network."""


class InputImageError(HdmDeployError):
    """An input image/video cannot be read or is of a kind we refuse."""


class ExportError(HdmDeployError):
    """ONNX export or graph rewriting failed."""


class ModelFormatError(HdmDeployError):
    """A model file has an unknown suffix or is not what its suffix says."""


class ParityError(HdmDeployError):
    """Outputs differ from the reference beyond the configured tolerances."""

    exit_code = 1


class EnvironmentProblem(HdmDeployError):
    """The machine, not the input: permissions, a read-only or full disk, memory, a missing runtime
    (CUDA, TensorRT, ONNX Runtime, a compiler). Exit code 3."""

    exit_code = 3


class PluginBuildError(EnvironmentProblem):
    """The C++/CUDA plugin library could not be built or found (compiler, CUDA or headers missing)."""


class TensorRTUnavailableError(EnvironmentProblem):
    """TensorRT (or CUDA) is not installed where it is needed."""


class EngineMismatchError(HdmDeployError):
    """An engine was built for another TensorRT version or GPU than the one running it."""


class ShapeOutOfProfileError(HdmDeployError):
    """An input shape lies outside the engine's optimisation profile."""


class HdmDeployWarning(UserWarning):
    """Something the user should know that does not stop the run (the CLI prints it as one line)."""


def first_line(exc: BaseException, limit: int = 300) -> str:
    """The first non-empty line of an exception's message (its type name when the message is empty)."""
    for line in str(exc).strip().splitlines():
        if line.strip():
            return line.strip()[:limit]
    return type(exc).__name__


TORCH_HINT = "pip install 'hdm-deploy[torch]'"


def missing_dependency(what: str, exc: ImportError) -> HdmDeployError:
    """The one-line error for ``what`` (``"export"``, ``"--impl torch"``) when an import failed:
    "needs PyTorch" when torch/torchvision is missing, else a broken-install message naming the module."""
    root = (getattr(exc, "name", None) or "").split(".")[0]
    if root in ("torch", "torchvision"):
        return HdmDeployError(f"{what} needs PyTorch ({first_line(exc)})", TORCH_HINT)
    return HdmDeployError(
        f"{what} cannot import {root or 'a module'} ({first_line(exc)})",
        "reinstall hdm-deploy with its dependencies: " + TORCH_HINT,
    )
