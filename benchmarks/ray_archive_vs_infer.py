"""Throughput of examples/ray_archive.py (Ray Data, one actor) vs plain `hdm-deploy infer DIR`.

    python benchmarks/ray_archive_vs_infer.py model.onnx [--images 24] [--batch 4] [--concurrency 1]

Writes a flat archive of bundled photographs at two resolutions (2/3 landscape 160×120, 1/3 portrait
120×160), enhances it with both (each a fresh process, wall time including start-up: model load, and
for Ray its cluster start), checks that the outputs are identical, and prints images/s. Needs the `ray`
extra in this interpreter's environment.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from hdm_deploy.runtime.bench import bench_frames
from hdm_deploy.runtime.image_io import read_image, write_image

ROOT = Path(__file__).resolve().parents[1]


def timed(cmd: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True)
    seconds = time.perf_counter() - t0
    if proc.returncode:
        raise SystemExit(f"{' '.join(cmd)} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    return seconds, proc.stdout


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("model")
    ap.add_argument("--images", type=int, default=24)
    ap.add_argument("--batch", type=int, default=4)
    ap.add_argument("--concurrency", type=int, default=1)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory(prefix="hdm-deploy-ray-bench-") as tmp:
        work = Path(tmp)
        archive = work / "archive"
        archive.mkdir()
        land = (2 * args.images) // 3
        for i, f in enumerate(bench_frames((160, 120), land)):
            write_image(archive / f"land_{i:03d}.png", f)
        for i, f in enumerate(bench_frames((120, 160), args.images - land)):
            write_image(archive / f"port_{i:03d}.png", f)
        hdm = [sys.executable, "-m", "hdm_deploy.cli"]
        infer_s, _ = timed([*hdm, "infer", str(archive), "-m", args.model, "-o", f"{work / 'infer'}{os.sep}"])
        ray_s, ray_out = timed(
            [
                sys.executable, str(ROOT / "examples" / "ray_archive.py"), str(archive), str(work / "ray"),
                "--model", args.model, "--batch", str(args.batch), "--concurrency", str(args.concurrency),
            ]
        )  # fmt: skip
        same = all(
            np.array_equal(read_image(p).rgb8, read_image(work / "ray" / p.name).rgb8)
            for p in sorted((work / "infer").iterdir())
        )
    n = args.images
    print(f"{n} images (160×120 and 120×160), {os.cpu_count()} logical CPUs, model {Path(args.model).name}")
    print(f"hdm-deploy infer DIR         {infer_s:6.1f} s  {n / infer_s:5.2f} images/s")
    print(
        f"ray_archive.py (batch {args.batch}, {args.concurrency} actor)  {ray_s:6.1f} s  {n / ray_s:5.2f} images/s"
        f"   ({ray_out.strip().splitlines()[-1]})"
    )
    print(f"outputs identical: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
