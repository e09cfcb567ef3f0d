"""Time overhead of the exact tiled path vs the whole frame, ONNX Runtime CPU, in one process.

Both runners use the same session settings (CPU arena and memory pattern off, as the memory budget
does); their calls alternate (whole, tiled, whole, tiled, …) so that load from other processes hits
both alike; the median of each is reported, and the outputs are compared.

    python benchmarks/tiling_overhead.py --model model.onnx --size 1920x1080 --tile 512 --pairs 3
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np

from hdm_deploy.runtime.bench import bench_frames
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner, SessionFromOnnx
from hdm_deploy.runtime.tiled import TiledRunner, manifest_path_for


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", required=True, help="exported with --tiled")
    p.add_argument("--size", default="1920x1080")
    p.add_argument("--tile", type=int, default=512)
    p.add_argument("--pairs", type=int, default=3)
    p.add_argument("--threads", type=int, default=None)
    args = p.parse_args()
    w, h = (int(v) for v in args.size.split("x"))
    frames = bench_frames((w, h), 1)
    whole = OnnxRuntimeRunner(
        SessionFromOnnx(args.model, device="cpu", arena=False, mem_pattern=False, threads=args.threads)
    )
    tiled = TiledRunner(manifest_path_for(args.model), tile=args.tile, threads=args.threads)
    a, b = whole(frames), tiled(frames)  # warm-up, and the comparison
    same = float(np.mean(a.image == b.image))
    times: dict[str, list[float]] = {"whole": [], "tiled": []}
    for _ in range(args.pairs):
        for name, runner in (("whole", whole), ("tiled", tiled)):
            t0 = time.perf_counter()
            runner(frames)
            times[name].append(time.perf_counter() - t0)
    mw, mt = statistics.median(times["whole"]), statistics.median(times["tiled"])
    print(
        f"{w}×{h}, tile {args.tile} ({tiled.tiles_run} tile runs), {args.pairs} pairs after one warm-up each"
    )
    print(f"whole: median {mw:.2f} s  {' '.join(f'{t:.2f}' for t in times['whole'])}")
    print(f"tiled: median {mt:.2f} s  {' '.join(f'{t:.2f}' for t in times['tiled'])}")
    print(f"overhead: {100 * (mt / mw - 1):+.1f} %; identical uint8 values {100 * same:.4f} %")


if __name__ == "__main__":
    main()
