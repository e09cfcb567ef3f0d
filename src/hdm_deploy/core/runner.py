"""One interface for every backend (PyTorch, ONNX Runtime, TensorRT, a server).

A runner takes a batch of RGB uint8 frames ``[N, H, W, 3]`` and returns the enhanced frames in the
same layout, plus the float output when the backend exposes it and the family's extra outputs
(HDM's DCP masks) by name in :attr:`Prediction.extras` — the interface does not know what they are.
Torch-free: Jetsons often have no PyTorch, and an engine or ONNX file must run without it.
"""

from __future__ import annotations

import abc
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, final

import numpy as np

from hdm_deploy.core.errors import InputImageError, ModelFormatError

TORCH_SUFFIXES = (".pk", ".pt", ".pth")
ONNX_SUFFIXES = (".onnx",)
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


@dataclass
class Prediction:
    """What a runner returns for a batch of N frames."""

    image: np.ndarray  #: uint8 [N, H, W, 3] RGB
    image_float: np.ndarray | None = None  #: float32 [N, 3, H, W] in [0, 1], before quantisation
    #: the family's other outputs by graph output name (HDM: ``masks``), batch-first arrays
    extras: dict[str, np.ndarray] = field(default_factory=dict)


def check_frames(frames: np.ndarray, min_side: int = 1) -> np.ndarray:
    """Validate a uint8 [N,H,W,3] batch (a single [H,W,3] frame is promoted) with a clear error;
    ``min_side`` is the model's smallest accepted side (its family's frame contract)."""
    frames = np.asarray(frames)
    if frames.ndim == 3:
        frames = frames[None]
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise InputImageError(
            f"expected RGB frames shaped [N, H, W, 3], got {list(frames.shape)}",
            "convert grey/RGBA images to RGB first (hdm_deploy.runtime.image_io.read_image does)",
        )
    if frames.dtype != np.uint8:
        raise InputImageError(
            f"expected uint8 frames, got {frames.dtype}", "scale to 0..255 and cast to uint8"
        )
    n, h, w, _ = frames.shape
    if n == 0:
        raise InputImageError("empty batch")
    if h < min_side or w < min_side:
        raise InputImageError(
            f"image {w}×{h} is too small: this model needs at least {min_side}×{min_side} pixels",
            "upscale the image or skip it",
        )
    return np.ascontiguousarray(frames)


def check_grey_frames(frames: np.ndarray) -> None:
    """For a one-channel model (metadata ``channels`` 1): frames must have three equal channels (a
    greyscale image as ``image_io`` reads it); a colour frame is a one-line :class:`InputImageError`."""
    if not (
        np.array_equal(frames[..., 0], frames[..., 1]) and np.array_equal(frames[..., 0], frames[..., 2])
    ):
        raise InputImageError(
            "this is a one-channel (greyscale) model and the image is in colour",
            "convert the image to greyscale first (e.g. cv2.cvtColor(img, cv2.COLOR_RGB2GRAY)), "
            "or use a colour model",
        )


def check_max_pixels(
    frames: np.ndarray | Sequence[int],
    max_pixels: int | str | None,
    *,
    what: str = "frame",
    fix: str = "downscale the input",
    pad_multiple: int = 1,
) -> None:
    """Refuse frames whose padded size exceeds what an exported graph supports (metadata ``max_pixels``).

    Some graphs are sized at export time for a largest frame (HDM's DCP finds a quantile with a
    constant-K TopK, which TensorRT needs); a larger frame would be computed wrongly, so it is an error.

    ``frames`` is a batch ``[N, H, W, 3]`` or just its size ``(N, H, W)`` (the engine builder checks
    a profile's largest shape); ``what`` names it and ``fix`` is the second remedy in the hint.
    """
    limit = int(max_pixels or 0)
    if not limit:
        return
    dims = frames.shape if isinstance(frames, np.ndarray) else tuple(frames)
    h, w = int(dims[1]), int(dims[2])
    m = max(1, int(pad_multiple))
    padded = (-(-h // m) * m) * (-(-w // m) * m)
    if padded > limit:
        raise InputImageError(
            f"{what} {w}×{h} is larger than this model supports ({limit} pixels after padding to ×{m})",
            f"re-export with a larger --max-size (e.g. --max-size 7680x4320), or {fix}",
        )


def pad_to_multiple(frames: np.ndarray, multiple: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Reflect-pad [N,H,W,C] (bottom/right) to multiples of ``multiple``; returns (padded, (H, W)).

    Reflection without repeating the edge pixel (numpy 'reflect' = PyTorch/ONNX 'reflect'), which
    needs pad < side: guaranteed when every side is at least ``multiple - 1``.
    """
    h, w = frames.shape[1:3]
    ph, pw = (-h) % multiple, (-w) % multiple
    if ph or pw:
        frames = np.pad(frames, ((0, 0), (0, ph), (0, pw), (0, 0)), mode="reflect")
    return frames, (h, w)


def quantize(image_float: np.ndarray) -> np.ndarray:
    """float [N,3,H,W] in [0,1] → uint8 [N,H,W,3]; round half to even, like ONNX ``Round``/``torch.round``."""
    q = np.rint(np.clip(image_float, 0.0, 1.0) * np.float32(255.0))
    return np.ascontiguousarray(q.astype(np.uint8).transpose(0, 2, 3, 1))


class Runner(abc.ABC):
    """A loaded model that enhances frames. Use as a context manager to release device memory."""

    backend: str = "?"
    #: smallest frame side the model accepts (from its family / metadata); checked before running
    min_side: int = 1
    #: a one-channel model (metadata ``channels`` 1): colour frames are refused before running
    grey_only: bool = False

    def __init__(self, model_path: str | Path | None):
        self.model_path = Path(model_path) if model_path is not None else None

    @final
    def run(self, frames: np.ndarray) -> Prediction:
        """Enhance uint8 RGB frames [N,H,W,3] (all the same size; one [H,W,3] frame is promoted).

        Concrete on purpose (Polygraphy's ``infer`` → ``infer_impl``): every call is validated by
        :meth:`validate` before the backend's :meth:`_run` sees it, so no runner can be called
        with unchecked frames. Subclasses implement :meth:`_run`, and extend :meth:`validate`.
        """
        return self._run(self.validate(frames))

    def validate(self, frames: Any) -> np.ndarray:
        """The frames as a contiguous uint8 [N,H,W,3] batch, or a one-line :class:`InputImageError`:
        :func:`check_frames` with this model's ``min_side``. Backends add their own checks (largest
        frame, engine profile) by overriding and calling ``super().validate(frames)`` first."""
        frames = check_frames(frames, self.min_side)
        if self.grey_only:
            check_grey_frames(frames)
        return frames

    @abc.abstractmethod
    def _run(self, frames: np.ndarray) -> Prediction:
        """The backend's inference on frames :meth:`validate` accepted."""

    def __call__(self, frames: np.ndarray) -> Prediction:
        return self.run(frames)

    def describe(self) -> dict[str, Any]:
        """Facts for reports and tables: backend, device/provider, precision, model file."""
        return {"backend": self.backend, "model": str(self.model_path) if self.model_path else None}

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release sessions, engines and device buffers."""

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


SERVER_SCHEMES = ("http", "https", "grpc")


def server_url(model: str | os.PathLike | None) -> str | None:
    """``http://host:port/model[/version]`` (or ``grpc://…``) when ``model`` names a served model, else
    None. A URL that went through :class:`~pathlib.Path` (``http:/host:port/m``: the double slash
    collapsed) is recognised too, so command-line ``Path`` arguments can carry URLs."""
    if model is None:
        return None
    text = os.fspath(model)
    scheme, sep, rest = text.partition(":/")
    if not sep or scheme.lower() not in SERVER_SCHEMES:
        return None
    return f"{scheme.lower()}://{rest.lstrip('/')}"


def model_kind(path: str | Path) -> str:
    """'torch' | 'onnx' | 'engine' by suffix ('server' for a URL), with a clear error for anything else."""
    if server_url(path) is not None:
        return "server"
    suffix = Path(path).suffix.lower()
    if suffix in TORCH_SUFFIXES:
        return "torch"
    if suffix in ONNX_SUFFIXES:
        return "onnx"
    if suffix in ENGINE_SUFFIXES:
        return "engine"
    raise ModelFormatError(
        f"unknown model file type '{suffix}' ({path})",
        f"use a PyTorch checkpoint {TORCH_SUFFIXES}, an ONNX model {ONNX_SUFFIXES}, a TensorRT engine "
        f"{ENGINE_SUFFIXES} or a served model (http://host:port/model, grpc://host:port/model)",
    )
