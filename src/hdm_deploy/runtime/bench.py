"""Latency and throughput of any runner (torch checkpoint, ONNX, TensorRT engine) — torch-free.

Each iteration is one full runner call on a batch of frames: input conversion, DCP masks (in the
graph for ONNX/TensorRT; on the CPU or device for torch), the network and the uint8 output. The
warm-up iterations (session/engine initialisation, allocator growth, cuDNN/ORT tuning) are excluded.
Frames are a bundled photograph resized to the requested size, so the DCP masks see a real scene.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.table import Table

from hdm_deploy.core.errors import InputImageError
from hdm_deploy.core.fs import atomic_write_text
from hdm_deploy.core.photos import PHOTOS, read_photo
from hdm_deploy.core.runner import Runner, model_kind
from hdm_deploy.runtime import BACKEND_OPTIONS, load_runner


@dataclass
class BenchResult:
    model: str
    backend: str
    device: str
    width: int
    height: int
    batch: int
    warmup: int
    iters: int
    times_ms: list[float] = field(default_factory=list)
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def median_ms(self) -> float:
        return statistics.median(self.times_ms)

    @property
    def p90_ms(self) -> float:
        return float(np.percentile(self.times_ms, 90))

    @property
    def mean_ms(self) -> float:
        return statistics.fmean(self.times_ms)

    @property
    def fps(self) -> float:
        """Frames per second at the median latency (batch / median)."""
        return 1000.0 * self.batch / self.median_ms

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out.update(median_ms=self.median_ms, p90_ms=self.p90_ms, mean_ms=self.mean_ms, fps=self.fps)
        return out


def bench_frames(size: tuple[int, int], batch: int = 1) -> np.ndarray:
    """uint8 [batch, H, W, 3]: bundled photographs resized (cycled over the batch)."""

    keys = list(PHOTOS)
    frames = [
        cv2.resize(read_photo(keys[i % len(keys)]), size, interpolation=cv2.INTER_LINEAR)
        for i in range(batch)
    ]
    return np.ascontiguousarray(np.stack(frames))


def benchmark(
    runner: Runner,
    size: tuple[int, int] = (640, 480),
    batch: int = 1,
    warmup: int = 3,
    iters: int = 10,
    frames: np.ndarray | None = None,
    on_iter: Callable[[int], None] | None = None,
) -> BenchResult:
    """Time ``iters`` calls of ``runner`` on one batch after ``warmup`` untimed calls."""
    if iters < 1 or warmup < 0 or batch < 1:
        raise InputImageError("need iters ≥ 1, warmup ≥ 0 and batch ≥ 1")
    frames = bench_frames(size, batch) if frames is None else frames
    for i in range(warmup):
        runner(frames)
        if on_iter:
            on_iter(i)
    times = []
    for i in range(iters):
        t0 = time.perf_counter()
        runner(frames)
        times.append((time.perf_counter() - t0) * 1000.0)
        if on_iter:
            on_iter(warmup + i)
    info = runner.describe()
    return BenchResult(
        model=str(runner.model_path) if runner.model_path else "(bundled sample)",
        backend=runner.backend,
        device=str(info.get("device", "cpu")),
        width=int(frames.shape[2]),
        height=int(frames.shape[1]),
        batch=int(frames.shape[0]),
        warmup=warmup,
        iters=iters,
        times_ms=times,
        info=info,
    )


def bench_models(
    models: Sequence[str | os.PathLike | None],
    size: tuple[int, int] = (640, 480),
    batch: int = 1,
    warmup: int = 3,
    iters: int = 10,
    runner_options: dict[str, Any] | None = None,
    progress: Any = None,
) -> list[BenchResult]:
    """Benchmark several model files one after the other (same frames for all)."""
    frames = bench_frames(size, batch)
    results = []
    for path in models:
        # options for one kind of model (e.g. a checkpoint's --masks) apply to the models of that kind
        kind = "torch" if path is None else model_kind(path)
        options = {k: v for k, v in (runner_options or {}).items() if k in BACKEND_OPTIONS[kind]}
        with load_runner(path, **options) as runner:
            results.append(benchmark(runner, size, batch, warmup, iters, frames, progress))
    return results


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    return f"{platform.system()} {cpu}, {os.cpu_count()} logical CPUs"


def render_table(results: Sequence[BenchResult], title: str | None = None):

    first = results[0] if results else None
    title = title or (
        f"bench {first.width}×{first.height}, batch {first.batch}, {first.iters} iterations after {first.warmup} warm-up"
        if first
        else "bench"
    )
    table = Table(title=title, title_justify="left", caption=machine(), caption_justify="left")
    for col, justify in (
        ("model", "left"),
        ("backend", "left"),
        ("device", "left"),
        ("options", "left"),
        ("median ms", "right"),
        ("p90 ms", "right"),
        ("frames/s", "right"),
        ("speed-up vs first", "right"),
    ):
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for r in results:
        options = ", ".join(f"{k}={v}" for k, v in sorted((r.info.get("options") or {}).items())) or "-"
        ratio = f"{first.median_ms / r.median_ms:.2f}×" if first else ""
        table.add_row(
            Path(r.model).name,
            r.backend,
            r.device,
            options,
            f"{r.median_ms:.1f}",
            f"{r.p90_ms:.1f}",
            f"{r.fps:.2f}",
            ratio,
        )
    return table


def write_json(results: Sequence[BenchResult], path: str | os.PathLike) -> Path:
    data = {"machine": machine(), "results": [r.as_json() for r in results]}
    return atomic_write_text(path, json.dumps(data, indent=2, default=str) + "\n")
