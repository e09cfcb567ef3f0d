"""Peak memory of the PyTorch CPU path per frame pixel (sizes ``TorchRunner``'s memory guard).

Each (width, size) runs in a fresh process: peak RSS after one frame minus the RSS after loading the
model, divided by the frame's pixels. ``python benchmarks/torch_memory.py`` (≈ 1 min on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys


def _child(width: int, w: int, h: int) -> None:
    import numpy as np
    import torch

    from hdm_deploy.families.hdm.model import HDM, HDMConfig
    from hdm_deploy.families.hdm.torch_runner import TorchRunner

    torch.manual_seed(0)
    runner = TorchRunner(model=HDM(HDMConfig(width=width)), device="cpu", masks="torch")
    runner.memory_guard = False
    warm = np.random.default_rng(0).integers(0, 256, (1, 16, 16, 3), dtype=np.uint8)
    runner(warm)
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    frame = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
    runner(frame)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    print(
        json.dumps(
            {"width": width, "size": f"{w}x{h}", "bytes": peak - base, "per_pixel": (peak - base) / (w * h)}
        )
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--widths", default="8,64", help="network widths (64 = published)")
    ap.add_argument("--sizes", default="320x240,640x480", help="frame sizes WxH")
    ap.add_argument("--child", nargs=3, type=int, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        _child(*args.child)
        return
    for width in map(int, args.widths.split(",")):
        for size in args.sizes.split(","):
            w, h = map(int, size.split("x"))
            out = subprocess.run(
                [sys.executable, __file__, "--child", str(width), str(w), str(h)],
                capture_output=True,
                text=True,
                check=True,
            )
            row = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"width {row['width']:>3}  {row['size']:>9}  peak +{row['bytes'] / 1e6:8.1f} MB  {row['per_pixel']:8.0f} B/pixel"
            )


if __name__ == "__main__":
    main()
