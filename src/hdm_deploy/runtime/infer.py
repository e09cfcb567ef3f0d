"""Enhance images, folders of images and videos with any runner (torch-free).

Kept apart from the CLI so scripts can call it: ``enhance_path(runner, "in/", "out/")``.
Frames of one batch must share a size, so folders run one image at a time (photos differ in
size) and videos run in batches of ``batch`` frames.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdm_deploy.core.errors import InputImageError
from hdm_deploy.core.runner import Runner
from hdm_deploy.runtime.image_io import (
    IMAGE_SUFFIXES,
    LoadedImage,
    list_images,
    read_image,
    render_output,
    write_image,
)
from hdm_deploy.runtime.video_io import (
    VIDEO_SUFFIXES,
    VideoWriter,
    is_video,
    iter_video_batches,
    open_video,
)

#: progress(advance, total) — total is None while unknown.
Progress = Callable[[int, int | None], None]


@dataclass
class InferSummary:
    inputs: int = 0
    frames: int = 0
    outputs: list[Path] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)


def enhance_image(runner: Runner, image: LoadedImage) -> np.ndarray:
    """Enhanced pixels laid out like the input (grey/alpha/16-bit preserved)."""
    pred = runner(image.rgb8[None])
    rgb_float = None if pred.image_float is None else pred.image_float[0].transpose(1, 2, 0)
    return render_output(image, pred.image[0], rgb_float)


def _output_for(src: Path, output: Path, output_is_dir: bool) -> Path:
    return output / src.name if output_is_dir else output


def enhance_path(
    runner: Runner,
    source: str | Path,
    output: str | Path,
    *,
    batch: int = 1,
    progress: Progress | None = None,
    keep_going: bool = True,
) -> InferSummary:
    """Enhance ``source`` (image file, folder, or video) into ``output`` (file or folder)."""
    source, output = Path(source), Path(output)
    tick = progress or (lambda advance, total: None)
    summary = InferSummary()
    if not source.exists():
        raise InputImageError(f"input not found: {source}")

    if source.is_dir():
        images = list_images(source)
        if not images:
            raise InputImageError(f"no images in {source}", f"supported: {', '.join(IMAGE_SUFFIXES)}")
        if output.suffix and not output.is_dir():
            raise InputImageError(f"output for folder {source} must be a folder, not {output}")
        output.mkdir(parents=True, exist_ok=True)
        tick(0, len(images))
        for path in images:
            try:
                data = enhance_image(runner, read_image(path))
                summary.outputs.append(write_image(output / path.name, data))
                summary.frames += 1
            except InputImageError as exc:
                if not keep_going:
                    raise
                summary.skipped.append((path, str(exc)))
            summary.inputs += 1
            tick(1, len(images))
        return summary

    if is_video(source):
        target = _output_for(source, output, output.is_dir())
        if target.suffix.lower() not in VIDEO_SUFFIXES:
            raise InputImageError(
                f"output for video {source} must be a video file, not {target}",
                f"use one of {', '.join(VIDEO_SUFFIXES)}",
            )
        cap, info = open_video(source)
        try:
            tick(0, info.frames or None)
            with VideoWriter(target, info.fps, (info.width, info.height)) as writer:
                for frames in iter_video_batches(cap, batch):
                    writer.write(runner(frames).image)
                    summary.frames += len(frames)
                    tick(len(frames), info.frames or None)
                if summary.frames == 0:  # raised inside the writer: its empty temp file is discarded
                    raise InputImageError(
                        f"{source}: no frames could be decoded",
                        "check that the file plays (codec installed for OpenCV), or convert it to .mp4/.avi",
                    )
        finally:
            cap.release()
        summary.inputs, summary.outputs = 1, [target]
        return summary

    target = _output_for(source, output, output.is_dir())
    tick(0, 1)
    summary.outputs.append(write_image(target, enhance_image(runner, read_image(source))))
    summary.inputs = summary.frames = 1
    tick(1, 1)
    return summary
