"""Typed errors. Every error a user can cause carries a hint that says what to do next.

The CLI prints ``str(error)`` as one line (message plus hint) and exits with ``exit_code``;
``--debug`` shows the traceback instead. Exit codes mean one thing each:

====  ===================================================================================
0     success
1     a check failed (:class:`ParityError`: parity, the export self-check)
2     bad usage, input or model (:class:`HdmDeployError` and most subclasses)
3     the environment (:class:`EnvironmentProblem`: permissions, read-only or full disk,
      out of memory, missing CUDA/TensorRT/compiler)
4     completed, but some inputs were skipped (folder, video, animated GIF)
130   interrupted (Ctrl-C); 143 terminated (SIGTERM)
====  ===================================================================================
"""

from __future__ import annotations

import errno


class HdmDeployError(Exception):
    """Base class: an error with an actionable hint, shown to users without a traceback."""

    exit_code = 2

    def __init__(self, message: str, hint: str | None = None, *, exit_code: int | None = None):
        super().__init__(message)
        self.message = message
        self.hint = hint
        if exit_code is not None:  # one instance of a class that is mostly the other kind
            self.exit_code = exit_code

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


class OutputPathError(HdmDeployError):
    """An output path cannot be used: it would overwrite an input, or its kind/suffix is wrong."""


class EnvironmentProblem(HdmDeployError):
    """The machine, not the user's input: permissions, read-only or full disk, memory, missing tools."""

    exit_code = 3


class PluginBuildError(EnvironmentProblem):
    """The C++/CUDA plugin library could not be built or found (compiler, CUDA, TensorRT headers)."""


class TensorRTUnavailableError(EnvironmentProblem):
    """TensorRT (or its CUDA bindings) is not installed where it is needed."""


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


#: Substrings of framework allocator failures (PyTorch CPU/CUDA, ONNX Runtime, TensorRT).
ALLOCATOR_MARKERS = (
    "not enough memory",
    "defaultcpuallocator",
    "out of memory",
    "bad_alloc",
    "failed to allocate memory",
    "cannot allocate memory",
)

_OS_HINTS = {
    errno.EACCES: "permission denied: choose a folder you can write to, or fix its permissions",
    errno.EPERM: "operation not permitted (an immutable or protected file?): choose another path",
    errno.EROFS: "the file system is read-only: write the output somewhere else",
    errno.ENOSPC: "the disk is full: free space or write the output somewhere else",
    errno.EDQUOT: "the disk quota is exhausted: free space or write the output somewhere else",
    errno.ENOMEM: "out of memory: close other programs or use a smaller input",
    errno.EISDIR: "a folder is in the way of a file: choose another output name",
    errno.ENOTDIR: "a file is in the way of a folder: choose another output path",
    errno.ENAMETOOLONG: "the file name is too long: choose a shorter one",
}


def is_allocator_error(exc: BaseException) -> bool:
    """True for a framework's out-of-memory error (torch ``OutOfMemoryError``, ORT ``bad_alloc``, ...)."""
    if isinstance(exc, MemoryError) or type(exc).__name__ == "OutOfMemoryError":
        return True
    text = str(exc).lower()
    return any(marker in text for marker in ALLOCATOR_MARKERS)


def environment_problem(exc: BaseException, doing: str | None = None) -> HdmDeployError | None:
    """The one-line error for an ``OSError``, ``MemoryError`` or allocator error, else None.

    Most become :class:`EnvironmentProblem` (exit 3); a missing file (``FileNotFoundError``) is a bad
    path (exit 2). ``doing`` ("writing out/a.png") prefixes the message.
    """
    prefix = f"{doing}: " if doing else ""
    if isinstance(exc, OSError):
        where = getattr(exc, "filename", None)
        reason = exc.strerror or first_line(exc)
        text = f"{prefix}{reason}" + (f": {where}" if where and str(where) not in prefix else "")
        if isinstance(exc, FileNotFoundError):
            return HdmDeployError(text, "check the path")
        hint = _OS_HINTS.get(exc.errno or -1, "check the path, its permissions and the free disk space")
        return EnvironmentProblem(text, hint)
    if is_allocator_error(exc):
        return EnvironmentProblem(
            f"{prefix}out of memory ({first_line(exc, 160)})",
            "use a smaller input, the ONNX model, or --device cuda; close other programs",
        )
    return None


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
