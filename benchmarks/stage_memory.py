"""Peak RSS of one stage graph of a tiled export on random inputs (ONNX Runtime CPU, arena and memory
pattern off), for finding which stage holds the memory:

    python benchmarks/stage_memory.py model.trunk_fab.onnx --size 480x270     # the 1/4 map of 1080p

Inputs are shaped from the stage's manifest entry (``model.tiled.json`` beside it): a ``--size`` W×H of the
stage's own grid for its first input; masks-like 5-D inputs get one-hot regions. Run it in a fresh process
per measurement (peak RSS only grows).
"""

from __future__ import annotations

import argparse
import json
import resource
import time
from pathlib import Path

import numpy as np

from hdm_deploy.runtime.tiled import ort_session


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("stage", help="a stage graph, e.g. model.trunk_fab.onnx")
    p.add_argument("--size", default="480x270", help="W×H on the first input's grid")
    args = p.parse_args()
    stage_file = Path(args.stage)
    whole = stage_file.name.split(".")[0]
    manifest = json.loads((stage_file.parent / f"{whole}.tiled.json").read_text())
    spec = next(s for s in manifest["stages"] if s["file"] == stage_file.name)
    session = ort_session(stage_file)
    loaded = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    w, h = (int(v) for v in args.size.split("x"))
    first_scale = next(iter(spec["inputs"].values()))["scale"]
    rng = np.random.default_rng(0)
    feeds = {}
    for inp in session.get_inputs():
        t = spec["inputs"][inp.name]
        shape = [1 if not isinstance(d, int) else d for d in inp.shape]
        shape[t["axes"][0]] = round(h * t["scale"] / first_scale)
        shape[t["axes"][1]] = round(w * t["scale"] / first_scale)
        if inp.type == "tensor(uint8)":
            feeds[inp.name] = rng.integers(0, 256, shape, dtype=np.uint8)
        elif len(shape) == 5:  # one-hot region masks [N, R, 1, h, w]
            idx = rng.integers(0, shape[1], (shape[0], shape[3], shape[4]))
            feeds[inp.name] = (np.arange(shape[1])[None, :, None, None] == idx[:, None]).astype(np.float32)[
                :, :, None
            ]
        else:
            feeds[inp.name] = rng.standard_normal(shape).astype(np.float32)
    t0 = time.perf_counter()
    session.run(None, feeds)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        f"{stage_file.name} {w}×{h}: loaded {loaded / 2**30:.2f} GiB, peak {peak / 2**30:.2f} GiB, "
        f"run {time.perf_counter() - t0:.1f} s"
    )


if __name__ == "__main__":
    main()
