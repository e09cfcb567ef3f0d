"""Host memory and host time of the torch-free DiffHDR sampler at 4K, with stand-in graphs.

The graphs are replaced by numpy stand-ins (AHDR → lazily allocated zeros, UNet → 0.5·x_t), so what is
measured is the sampler itself: peak RSS growth (state + one patch batch) and host seconds per patch
per step (crop, condition lookup, accumulate) over the published 512²/64 grid of a padded 4K frame
(1431 patches), one step.

    nice -n 19 python benchmarks/diffhdr_sampler_memory.py [--size 3840x2160]
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np

from hdm_deploy.families.diffhdr.inputs import padded_size
from hdm_deploy.families.diffhdr.sampler import initial_noise, sample


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--size", default="3840x2160")
    args = ap.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))
    ldrs = [np.full((h, w, 3), 96 + 32 * i, np.uint8) for i in range(3)]
    hp, wp = padded_size(h, w, 512, 64)
    noise = initial_noise((hp, wp), seed=61)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

    def feature(cond: np.ndarray) -> np.ndarray:
        return np.zeros((cond.shape[0], 64, *cond.shape[2:]), np.float32)

    start = time.perf_counter()
    _, stats = sample(
        ldrs,
        (0.0, 2.0, 4.0),
        noise,
        feature,
        lambda x, f, t: 0.5 * x,
        steps=1,
        patch=512,
        stride=64,
        feature_cache_bytes=0,
    )
    seconds = time.perf_counter() - start
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(
        f"{w}x{h} (padded {wp}x{hp}): {stats.patches} patches, peak RSS growth {(peak - base) / 1024:.0f} MB, "
        f"host {1e3 * seconds / stats.patches:.1f} ms per patch per step"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
