"""Enhance images, folders of images and videos with any runner (torch-free).

Kept apart from the CLI so scripts can call it: ``enhance_path(runner, "in/", "out/")``.
Frames of one batch must share a size, so folders run one image at a time (photos differ in
size) and videos run in batches of ``batch`` frames.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from hdm_deploy.core.errors import InputImageError, OutputPathError
from hdm_deploy.core.fs import probe_writable, refuse_overwrite, same_file
from hdm_deploy.core.runner import Runner
from hdm_deploy.runtime.image_io import (
    DEFAULT_MAX_PIXELS,
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
    #: how many the input held: images in a folder, or a video's frames per its container
    expected: int = 0
    unit: str = "images"  #: "images" | "frames"

    def counts(self) -> str:
        """ "3 of 6 images written, 3 skipped" / "5 of 10 frames written, 5 skipped"."""
        done = self.frames if self.unit == "frames" else len(self.outputs)
        expected = max(self.expected, done)
        line = f"{done} of {expected} {self.unit} written"
        return f"{line}, {expected - done} skipped" if expected > done else line


@dataclass
class OutputPlan:
    """Where ``enhance_path`` will write, decided (and checked) before any model is loaded."""

    kind: str  #: "folder" | "video" | "image"
    output: Path  #: the output file, or the output folder of a folder run
    targets: list[tuple[Path, Path]]  #: (input, output) pairs known up front


def _strip_path(path: Path, message: str) -> str:
    """``'a.jpg: not a readable image'`` → ``'not a readable image'`` (the caller already names the file)."""
    prefix = f"{path}: "
    return message[len(prefix) :] if message.startswith(prefix) else message


def plan_outputs(source: str | Path, output: str | Path | None) -> OutputPlan:
    """Check the output path for ``source`` before any work; create the output folder.

    ``output`` ending in ``/`` (or an existing folder) is a folder: the output keeps the input's
    name there. A file output needs a suffix we can write. An output that is an input (same file
    after links or case folding) is refused: a folder run into its own folder, ``-o`` naming the
    input, ``sub/a.jpg -o sub``. An output folder inside the input folder is fine: only files
    directly inside the input folder are read, so names cannot collide.
    """
    source = Path(source)
    if not source.exists():
        raise InputImageError(f"input not found: {source}", "check the path")
    raw = str(output) if output is not None else None
    if raw is None:
        if source.is_dir():
            folder = source.resolve()  # `infer .` / `infer ..` have no usable name until resolved
            if not folder.name:
                raise OutputPathError(
                    f"cannot name an output folder beside {folder}", "pass the output folder with -o"
                )
            raw = str(folder.with_name(f"{folder.name}_enhanced")) + os.sep
        else:
            raw = str(source.with_name(f"{source.stem}_enhanced{source.suffix}"))
    out = Path(raw)
    as_folder = raw.endswith(("/", os.sep)) or out.is_dir()
    if out.exists() and not out.is_dir() and raw.endswith(("/", os.sep)):
        raise OutputPathError(f"output folder {raw} is a file", "choose another output folder")

    if source.is_dir():
        images = list_images(source)
        if not images:
            raise InputImageError(f"no images in {source}", f"supported: {', '.join(IMAGE_SUFFIXES)}")
        if out.exists() and not out.is_dir():
            raise OutputPathError(
                f"output for folder {source} must be a folder, not the file {out}", "end -o with /"
            )
        if not as_folder and out.suffix:
            raise OutputPathError(
                f"output for folder {source} must be a folder, not {out}",
                f"pass a folder, e.g. -o {out.stem}/",
            )
        if same_file(out, source):
            raise OutputPathError(
                f"refusing to write into the input folder {source}: the outputs would replace the inputs",
                "choose another output folder (-o OUT/); a folder inside the input folder is fine",
            )
        plan = OutputPlan("folder", out, [(p, out / p.name) for p in images])
    else:
        kind = "video" if is_video(source) else "image"
        target = out / source.name if as_folder else out
        allowed = VIDEO_SUFFIXES if kind == "video" else IMAGE_SUFFIXES
        if target.suffix.lower() not in allowed:
            what = f"'{target.suffix}'" if target.suffix else "no extension"
            raise OutputPathError(
                f"cannot write {kind} output {target} ({what})",
                f"name a file ending in one of {', '.join(allowed)}, or a folder ending in /",
            )
        plan = OutputPlan(kind, target, [(source, target)])
    refuse_overwrite([src for src, _ in plan.targets], [dst for _, dst in plan.targets])
    probe_writable(plan.output if plan.kind == "folder" else plan.output.parent)
    return plan


def enhance_image(runner: Runner, image: LoadedImage) -> np.ndarray:
    """Enhanced pixels laid out like the input (grey/alpha/16-bit preserved)."""
    pred = runner(image.rgb8[None])
    rgb_float = None if pred.image_float is None else pred.image_float[0].transpose(1, 2, 0)
    return render_output(image, pred.image[0], rgb_float)


def enhance_path(
    runner: Runner,
    source: str | Path,
    output: str | Path | OutputPlan | None,
    *,
    batch: int = 1,
    progress: Progress | None = None,
    keep_going: bool = True,
    max_pixels: int | None = DEFAULT_MAX_PIXELS,
) -> InferSummary:
    """Enhance ``source`` (image file, folder, or video) into ``output`` (file or folder; a plan from
    :func:`plan_outputs`). Unreadable folder images and undecodable video frames are listed in
    ``summary.skipped`` (``keep_going=False``: raised); nothing is dropped silently."""
    source = Path(source)
    plan = output if isinstance(output, OutputPlan) else plan_outputs(source, output)
    tick = progress or (lambda advance, total: None)
    summary = InferSummary()

    if plan.kind == "folder":
        summary.expected = len(plan.targets)
        tick(0, summary.expected)
        for path, target in plan.targets:
            try:
                data = enhance_image(runner, read_image(path, max_pixels=max_pixels))
                summary.outputs.append(write_image(target, data))
                summary.frames += 1
            except InputImageError as exc:
                if not keep_going:
                    raise
                summary.skipped.append((path, _strip_path(path, str(exc))))
            summary.inputs += 1
            tick(1, summary.expected)
        return summary

    if plan.kind == "video":
        target = plan.output
        cap, info = open_video(source, max_pixels=max_pixels)
        try:
            summary.expected, summary.unit = info.frames, "frames"
            tick(0, info.frames or None)
            with VideoWriter(target, info.fps, (info.width, info.height)) as writer:
                for frames in iter_video_batches(cap, batch):
                    writer.write(runner(frames).image)
                    summary.frames += len(frames)
                    tick(len(frames), max(info.frames, summary.frames) or None)
                if summary.frames == 0:  # raised inside the writer: its empty temp file is discarded
                    raise InputImageError(
                        f"{source}: no frames could be decoded",
                        "check that the file plays (codec installed for OpenCV), or convert it to .mp4/.avi",
                    )
        finally:
            cap.release()
        tick(0, summary.frames)  # the bar ends at the true total
        if info.frames and summary.frames < info.frames:
            summary.skipped.append(
                (source, f"{summary.frames} of {info.frames} frames decoded; stream truncated")
            )
        summary.expected = max(info.frames, summary.frames)
        summary.inputs, summary.outputs = 1, [target]
        return summary

    target = plan.output
    summary.expected = 1
    tick(0, 1)
    summary.outputs.append(
        write_image(target, enhance_image(runner, read_image(source, max_pixels=max_pixels)))
    )
    summary.inputs = summary.frames = 1
    tick(1, 1)
    return summary
