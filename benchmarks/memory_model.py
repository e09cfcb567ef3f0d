"""Peak RSS of whole-frame vs tiled inference in ONNX Runtime (CPU), and the memory model fitted to it.

Each measurement runs in its own subprocess (``python benchmarks/memory_model.py --child …``), which
loads the model, runs one frame (a bundled photograph resized) and reports its own peak RSS
(``resource.getrusage(RUSAGE_SELF).ru_maxrss``, the same number as ``/usr/bin/time -f %M``), and the
time of the run. Run big measurements one at a time (this script does) and with ``nice``.

    python benchmarks/memory_model.py --model model.onnx --plan table      # the README table
    python benchmarks/memory_model.py --model model.onnx --plan settings   # ORT arena / mem pattern
    python benchmarks/memory_model.py --model model.onnx --plan fit --write src/hdm_deploy/runtime/data/memory_model.json

``model.onnx`` must have been exported with ``--tiled`` (``model.tiled.json`` beside it). The fit:
whole frame ``peak = base + a·P`` (P = padded frame pixels) by least squares; tiled ``peak = base + c·P + d·R``
with R the largest tile region (tile + the largest halo sum of the tiled stages, in frame pixels), minimising
the worst relative error; over the runs with ONNX Runtime's CPU arena and memory pattern off (what the budget
runners use).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = {
    "1080p": (1920, 1080),
    "4K": (3840, 2160),
    "8K": (7680, 4320),
    "720p": (1280, 720),
    "VGA": (640, 480),
}


def child(args: argparse.Namespace) -> None:
    from hdm_deploy.runtime.bench import bench_frames
    from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner, SessionFromOnnx
    from hdm_deploy.runtime.tiled import TiledRunner, manifest_path_for

    w, h = SIZES.get(args.size) or tuple(int(v) for v in args.size.split("x"))
    frames = bench_frames((w, h), args.batch)
    flag = {"on": True, "off": False, "default": None}
    if args.tile:
        runner = TiledRunner(
            manifest_path_for(args.model),
            tile=args.tile,
            arena=flag[args.arena] or False,
            mem_pattern=flag[args.mem_pattern] or False,
            threads=args.threads,
        )
    else:
        runner = OnnxRuntimeRunner(
            SessionFromOnnx(
                args.model,
                device="cpu",
                threads=args.threads,
                arena=flag[args.arena],
                mem_pattern=flag[args.mem_pattern],
            )
        )
    rss_loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    times = []
    for _ in range(args.repeat):
        t0 = time.perf_counter()
        runner(frames)
        times.append(time.perf_counter() - t0)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(json.dumps({"peak_rss": peak, "rss_loaded": rss_loaded, "seconds": times}))


def measure(
    model: str,
    size: str,
    tile: int = 0,
    arena: str = "off",
    mem_pattern: str = "off",
    batch: int = 1,
    repeat: int = 1,
    threads: int | None = None,
) -> dict:
    cmd = [sys.executable, __file__, "--child", "--model", model, "--size", size, "--tile", str(tile),
           "--arena", arena, "--mem-pattern", mem_pattern, "--batch", str(batch), "--repeat", str(repeat)]  # fmt: skip
    if threads:
        cmd += ["--threads", str(threads)]
    t0 = time.time()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    row = {"size": size, "tile": tile, "arena": arena, "mem_pattern": mem_pattern, "batch": batch}
    if proc.returncode != 0:
        row["error"] = (proc.stderr.strip().splitlines() or ["?"])[-1]
    else:
        row.update(json.loads(proc.stdout.strip().splitlines()[-1]))
    row["wall"] = time.time() - t0
    print(json.dumps(row), flush=True)
    return row


def padded_pixels(size: str) -> int:
    w, h = SIZES.get(size) or tuple(int(v) for v in size.split("x"))
    return (-(-w // 4) * 4) * (-(-h // 4) * 4)


def frame_size(size: str) -> tuple[int, int]:
    w, h = SIZES.get(size) or tuple(int(v) for v in size.split("x"))
    return -(-w // 4) * 4, -(-h // 4) * 4


def grow_of(manifest: dict) -> tuple[int, int]:
    """What a tile region adds to a tile (the largest halo sum over the tiled stages), as the planner."""
    tiled = [s["halo"] for s in manifest["stages"] if s["mode"] == "tiled"]
    rows = max(h["rows"]["before_aligned"] + h["rows"]["after_aligned"] for h in tiled)
    cols = max(h["cols"]["before_aligned"] + h["cols"]["after_aligned"] for h in tiled)
    return rows, cols


def minimax_relative(A: np.ndarray, peaks: np.ndarray) -> np.ndarray:
    """Non-negative coefficients x minimising max_i |A_i·x / peak_i − 1| (a linear programme): the
    planner applies a relative margin, so the worst relative error is what matters. (Plain least
    squares on bytes fits the big frames and misses a VGA row by +48 % with the split trunk.)"""
    from scipy.optimize import linprog

    M = A / peaks[:, None]
    scale = np.abs(M).max(axis=0)
    scale[scale == 0] = 1
    Ms = M / scale
    n, k = Ms.shape
    a_ub = np.vstack([np.hstack([Ms, -np.ones((n, 1))]), np.hstack([-Ms, -np.ones((n, 1))])])
    b_ub = np.concatenate([np.ones(n), -np.ones(n)])
    res = linprog(np.r_[np.zeros(k), 1.0], A_ub=a_ub, b_ub=b_ub, bounds=[(0, None)] * (k + 1))
    if not res.success:
        raise RuntimeError(f"minimax fit failed: {res.message}")
    return res.x[:k] / scale


def fit(rows: list[dict], manifest: dict) -> dict:
    """Over the arena-off, mem-pattern-off rows (the settings the budget runners use): whole frame by
    least squares, tiled by the smallest worst relative error (:func:`minimax_relative`)."""
    grow_r, grow_c = grow_of(manifest)
    usable = [r for r in rows if "peak_rss" in r and r["arena"] == "off" and r["mem_pattern"] == "off"]
    whole = [r for r in usable if not r["tile"]]
    tiled = [r for r in usable if r["tile"]]
    out: dict = {"grow": [grow_r, grow_c]}
    if len(whole) >= 2:
        A = np.array([[1.0, padded_pixels(r["size"])] for r in whole])
        b = np.array([r["peak_rss"] for r in whole], dtype=float)
        base, a = np.linalg.lstsq(A, b, rcond=None)[0]
        out["whole"] = {"base": float(base), "per_pixel": float(a)}
    if len(tiled) >= 3:
        A = []
        for r in tiled:
            w, h = frame_size(r["size"])
            region = (min(r["tile"], h) + grow_r) * (min(r["tile"], w) + grow_c)
            A.append([1.0, w * h, region])
        b = np.array([r["peak_rss"] for r in tiled], dtype=float)
        base, c, d = minimax_relative(np.array(A, dtype=float), b)
        out["tiled"] = {"base": float(base), "per_frame_pixel": float(c), "per_region_pixel": float(d)}
    return out


PLANS = {
    # (size, tile, arena, mem_pattern)
    "settings": [("1080p", 0, a, m) for a in ("on", "off") for m in ("on", "off")] + [("1080p", 512, "on", "on"), ("1080p", 512, "off", "off")],
    "fit": [("VGA", 0, "off", "off"), ("720p", 0, "off", "off"), ("1080p", 0, "off", "off"),
            ("720p", 256, "off", "off"), ("1080p", 256, "off", "off"), ("1080p", 512, "off", "off"),
            ("4K", 512, "off", "off"), ("4K", 1024, "off", "off")],
    "table": [("1080p", 0, "off", "off"), ("1080p", 512, "off", "off"), ("4K", 512, "off", "off"),
              ("8K", 512, "off", "off"), ("4K", 0, "off", "off")],
}  # fmt: skip


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True)
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--size", default="1080p")
    p.add_argument("--tile", type=int, default=0, help="0: whole frame")
    p.add_argument("--arena", choices=("on", "off", "default"), default="off")
    p.add_argument("--mem-pattern", choices=("on", "off", "default"), default="off")
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--repeat", type=int, default=1)
    p.add_argument("--threads", type=int, default=None)
    p.add_argument("--plan", choices=sorted(PLANS), help="a set of runs, one subprocess each, one at a time")
    p.add_argument("--runs", help="instead of --plan: SIZE:TILE[:ARENA:MEMPATTERN],… e.g. 1080p:0,1080p:512")
    p.add_argument("--write", help="write the fitted model (with the rows and provenance) to this JSON")
    p.add_argument("--rows", help="append measured rows to / read earlier rows from this JSONL file")
    args = p.parse_args()
    if args.child:
        return child(args)
    runs = PLANS.get(args.plan or "", [])
    if args.runs:
        runs = [tuple(x.split(":")) for x in args.runs.split(",")]
        runs = [(r[0], int(r[1]), *(r[2:] or ("off", "off"))) for r in runs]
    rows = []
    if args.rows and Path(args.rows).exists():
        rows = [json.loads(line) for line in Path(args.rows).read_text().splitlines() if line.strip()]
    for size, tile, arena, mem in runs:
        row = measure(args.model, size, tile, arena, mem, args.batch, args.repeat, args.threads)
        rows.append(row)
        if args.rows:
            with open(args.rows, "a") as f:
                f.write(json.dumps(row) + "\n")
    for r in rows:
        if "peak_rss" in r:
            t = sum(r["seconds"]) / len(r["seconds"])
            print(f"{r['size']:>6} {'tile ' + str(r['tile']) if r['tile'] else 'whole':>9} arena {r['arena']:>3} "
                  f"mem_pattern {r['mem_pattern']:>3}: peak RSS {r['peak_rss'] / 2**30:6.2f} GiB, {t:7.1f} s")  # fmt: skip
        else:
            print(r)
    if args.write:
        import onnxruntime

        from hdm_deploy.runtime.tiled import manifest_path_for

        manifest = json.loads(manifest_path_for(args.model).read_text())
        model = {"family": manifest.get("family", "hdm"), **fit(rows, manifest)}
        model.update(
            provenance={
                "command": "python benchmarks/memory_model.py " + " ".join(sys.argv[1:]),
                "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} logical CPUs",
                "onnxruntime": onnxruntime.__version__,
                "settings": "enable_cpu_mem_arena=False, enable_mem_pattern=False",
                "network": "published width (64), from the sample checkpoint's export",
            },
            rows=rows,
        )
        Path(args.write).parent.mkdir(parents=True, exist_ok=True)
        Path(args.write).write_text(json.dumps(model, indent=1) + "\n")
        print(
            f"wrote {args.write}: {json.dumps({k: v for k, v in model.items() if k in ('whole', 'tiled')})}"
        )


if __name__ == "__main__":
    main()
