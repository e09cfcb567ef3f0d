"""DCP region masks: numpy reference vs torch (CPU, CUDA) vs ONNX Runtime (CPU), one table.

    .venv/bin/python benchmarks/bench_dcp.py [--sizes 640x480,1280x720,1920x1080,3840x2160]
        [--threads 2] [--iters 15] [--json out.json]

Every implementation runs on the same real photograph (scikit-image's astronaut, resized with Pillow)
in one process; the timed calls are interleaved round-robin so that background load hits all of them
alike. Reported: median and minimum wall time per call (one frame), and the speed-up of each
implementation over the reference (reference median / its median). Targets (issue 3): at 1920×1080
ONNX Runtime CPU ≥ 2× faster than the reference; torch CUDA ≥ 20× (when a GPU is present; timed with
the frame already on the device).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np


def _parse_sizes(text: str) -> list[tuple[int, int]]:
    return [tuple(int(v) for v in s.lower().split("x")) for s in text.split(",")]  # type: ignore[misc]


def _implementations(rgb: np.ndarray, threads: int, spin: bool) -> dict[str, Callable[[], object]]:
    import cv2
    import onnxruntime as ort
    import torch

    from hdm_deploy.families.hdm.dcp import onnx_function, reference, torch_masks

    cv2.setNumThreads(threads)
    torch.set_num_threads(threads)
    batch = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    if not spin:
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    session = ort.InferenceSession(
        onnx_function.dcp_masks_model(inline=True).SerializeToString(),
        options,
        providers=["CPUExecutionProvider"],
    )
    cpu = torch.from_numpy(batch)
    impls: dict[str, Callable[[], object]] = {
        "reference": lambda: reference.tran_mask(rgb),
        "torch CPU": lambda: torch_masks.dcp_masks(cpu),
        "ORT CPU": lambda: session.run(None, {"images": batch}),
    }
    if torch.cuda.is_available():
        gpu = cpu.cuda()

        def cuda() -> object:
            masks = torch_masks.dcp_masks(gpu)
            torch.cuda.synchronize()
            return masks

        impls["torch CUDA"] = cuda
    return impls


def bench_size(
    size: tuple[int, int], threads: int, iters: int, warmup: int, spin: bool
) -> dict[str, list[float]]:
    from hdm_deploy_dev.photos import photo_at

    rgb = photo_at("astronaut", size)
    impls = _implementations(rgb, threads, spin)
    # One block per implementation, as each would run in deployment: interleaving them lets the thread
    # pool that ran last (torch's OpenMP workers keep spinning after an op) steal cores from the next one.
    times: dict[str, list[float]] = {name: [] for name in impls}
    for name, fn in impls.items():
        for _ in range(warmup):
            fn()
        for _ in range(iters):
            start = time.perf_counter()
            fn()
            times[name].append((time.perf_counter() - start) * 1e3)
    return times


def render(results: dict[str, dict[str, list[float]]], threads: int) -> None:
    from rich.console import Console
    from rich.table import Table

    names = list(next(iter(results.values())))
    table = Table(title=f"DCP masks per frame, ms (median / min), {threads} thread(s); speed-up vs reference")
    table.add_column("size")
    for name in names:
        table.add_column(name, justify="right")
    for size, times in results.items():
        ref = statistics.median(times["reference"])
        cells = []
        for name in names:
            med, low = statistics.median(times[name]), min(times[name])
            ratio = "" if name == "reference" else f"  [bold]{ref / med:.2f}×[/]"
            cells.append(f"{med:.1f} / {low:.1f}{ratio}")
        table.add_row(size, *cells)
    Console().print(table)
    if "1920x1080" in results:
        times = results["1920x1080"]
        ratio = statistics.median(times["reference"]) / statistics.median(times["ORT CPU"])
        verdict = "meets" if ratio >= 2 else "MISSES"
        print(f"1920x1080: ORT CPU is {ratio:.2f}× the reference ({verdict} the ≥ 2× target)")
        if "torch CUDA" in times:
            ratio = statistics.median(times["reference"]) / statistics.median(times["torch CUDA"])
            print(
                f"1920x1080: torch CUDA is {ratio:.1f}× the reference ({'meets' if ratio >= 20 else 'MISSES'} ≥ 20×)"
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="640x480,1280x720,1920x1080,3840x2160")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--iters", type=int, default=15)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--no-spin", action="store_true", help="ORT threads sleep instead of spinning")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    results = {}
    for w, h in _parse_sizes(args.sizes):
        results[f"{w}x{h}"] = bench_size((w, h), args.threads, args.iters, args.warmup, not args.no_spin)
        print(f"{w}x{h} done", file=sys.stderr)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average (1 min) after the run: {load:.2f} on {os.cpu_count()} CPUs")
    render(results, args.threads)
    if args.json:
        args.json.write_text(json.dumps({"threads": args.threads, "times_ms": results}, indent=1))


if __name__ == "__main__":
    main()
