"""Video reading/writing with OpenCV (torch-free): RGB uint8 frames in batches."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

with contextlib.suppress(AttributeError):  # our errors say it in one line; no FFmpeg chatter
    cv2.setLogLevel(2)  # LOG_LEVEL_ERROR; 0 = silent would hide real crashes

from hdm_deploy.core.errors import InputImageError
from hdm_deploy.core.fs import discard, temp_path_beside

VIDEO_SUFFIXES = (".mp4", ".avi", ".mov", ".mkv", ".m4v", ".webm")
#: FourCC per output container; mp4v is the codec every OpenCV build can write.
_FOURCC = {".mp4": "mp4v", ".m4v": "mp4v", ".mov": "mp4v", ".avi": "MJPG", ".mkv": "MJPG", ".webm": "VP80"}


@dataclass
class VideoInfo:
    width: int
    height: int
    fps: float
    frames: int  #: container's frame count; may be 0 or approximate for some streams


def is_video(path: str | Path) -> bool:
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def open_video(path: str | Path, max_pixels: int | None = None) -> tuple[cv2.VideoCapture, VideoInfo]:
    """Open a video and read its properties (no frame decoded); frames larger than ``max_pixels`` are refused."""
    path = Path(path)
    if not path.is_file():
        raise InputImageError(f"video not found: {path}")
    if path.stat().st_size == 0:
        raise InputImageError(f"{path}: empty file (0 bytes)", "the file was not written completely")
    cap = cv2.VideoCapture(str(path))
    if not cap.isOpened():
        raise InputImageError(
            f"{path}: OpenCV cannot open this video", "re-encode it to H.264/MJPEG .mp4 or .avi"
        )
    info = VideoInfo(
        width=int(cap.get(cv2.CAP_PROP_FRAME_WIDTH)),
        height=int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT)),
        fps=float(cap.get(cv2.CAP_PROP_FPS)) or 25.0,
        frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT)), 0),
    )
    if max_pixels and info.width * info.height > max_pixels:
        cap.release()
        raise InputImageError(
            f"{path}: video frames {info.width}×{info.height} are larger than --max-pixels {max_pixels / 1e6:g} MP",
            "downscale the video, or raise --max-pixels if the machine has the memory",
        )
    return cap, info


def iter_video_batches(cap: cv2.VideoCapture, batch: int = 1) -> Iterator[np.ndarray]:
    """Yield uint8 RGB batches [n ≤ batch, H, W, 3] until the stream ends."""
    frames: list[np.ndarray] = []
    while True:
        ok, bgr = cap.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
        if len(frames) == batch:
            yield np.stack(frames)
            frames = []
    if frames:
        yield np.stack(frames)


class VideoWriter:
    """Writes RGB frames to a temporary file that replaces ``path`` only when closed without error."""

    def __init__(self, path: str | Path, fps: float, size: tuple[int, int]):
        self.path = Path(path)
        suffix = self.path.suffix.lower()
        if suffix not in _FOURCC:
            raise InputImageError(f"cannot write '{suffix}' videos", f"use one of {', '.join(_FOURCC)}")
        self._tmp = temp_path_beside(self.path)
        self._writer = cv2.VideoWriter(str(self._tmp), cv2.VideoWriter_fourcc(*_FOURCC[suffix]), fps, size)
        if not self._writer.isOpened():
            discard(self._tmp)
            raise InputImageError(f"OpenCV cannot write {suffix} video here", "try an .avi output (MJPEG)")

    def write(self, frames_rgb: np.ndarray) -> None:
        for frame in frames_rgb:
            self._writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))

    def close(self, error: BaseException | None = None) -> None:
        self._writer.release()
        if error is None:
            os.replace(self._tmp, self.path)
        else:
            discard(self._tmp)

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        self.close(exc)
