"""DiffHDR cost in ONNX Runtime CPU: ms per UNet step per patch, AHDR per patch, projected 1080p seconds.

Published-size networks (random weights — no trained weights are available here; cost does not depend
on the values), exported once to ``--work`` (reused when present), run at batch 1 on ``--patch``²
patches (published 512). Prints and optionally writes JSON:

- ms per UNet step per patch, ms per AHDR call per patch (median of ``--iters`` after one warm-up);
- patches per 1080p frame at stride 64 (published) and 256, from the published grid rule;
- projected seconds per 1080p frame at T = 25: T × patches × UNet + patches × AHDR (features cached) and
  T × patches × (UNet + AHDR) (published: AHDR every step).

    nice -n 19 python benchmarks/diffhdr_cost.py --work /tmp/diffhdr_pub --json cost.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path


def export_published(work: Path) -> tuple[Path, Path]:
    unet, cond = work / "diffhdr_published.onnx", work / "diffhdr_published.cond.onnx"
    if unet.is_file() and cond.is_file():
        return unet, cond
    import onnx
    import torch

    from hdm_deploy.families.diffhdr.export import export_graphs
    from hdm_deploy.families.diffhdr.model import DiffHDR, DiffHDRConfig

    torch.manual_seed(0)
    work.mkdir(parents=True, exist_ok=True)
    u, c = export_graphs(DiffHDR(DiffHDRConfig.published()).eval())
    onnx.save(u, unet)
    onnx.save(c, cond)
    return unet, cond


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/diffhdr_published"))
    ap.add_argument("--patch", type=int, default=512)
    ap.add_argument("--iters", type=int, default=2)
    ap.add_argument("--steps", type=int, default=25)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    import numpy as np
    import onnxruntime as ort

    from hdm_deploy.families.diffhdr.inputs import padded_size
    from hdm_deploy.families.diffhdr.sampler import grid

    unet_path, cond_path = export_published(args.work)
    unet = ort.InferenceSession(str(unet_path), providers=["CPUExecutionProvider"])
    cond = ort.InferenceSession(str(cond_path), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(0)
    p = args.patch
    x_t = rng.standard_normal((1, 3, p, p), dtype=np.float32)
    c = rng.random((1, 18, p, p), dtype=np.float32)

    def timed(fn) -> float:
        fn()  # warm-up
        runs = []
        for _ in range(args.iters):
            start = time.perf_counter()
            fn()
            runs.append((time.perf_counter() - start) * 1e3)
        return statistics.median(runs)

    feature = cond.run(None, {"cond": c})[0]
    ms_ahdr = timed(lambda: cond.run(None, {"cond": c}))
    ms_unet = timed(
        lambda: unet.run(None, {"x_t": x_t, "feature": feature, "t": np.array([960.0], np.float32)})
    )
    patches = {r: len(grid(*padded_size(1080, 1920, 512, r), 512, r)) for r in (64, 256)}
    scale = (512 / p) ** 2  # cost per pixel ~ constant (attention grows with p: a lower bound when p < 512)
    proj = {
        f"r{r}": {
            "patches": n,
            "seconds_ahdr_cached": args.steps * n * ms_unet * scale / 1e3 + n * ms_ahdr * scale / 1e3,
            "seconds_published": args.steps * n * (ms_unet + ms_ahdr) * scale / 1e3,
        }
        for r, n in patches.items()
    }
    report = {
        "machine": os.environ.get("MACHINE", "unspecified"),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "onnxruntime": ort.__version__,
        "patch": p,
        "ms_unet_step_per_patch": ms_unet,
        "ms_ahdr_per_patch": ms_ahdr,
        "ahdr_share_of_a_published_step": ms_ahdr / (ms_unet + ms_ahdr),
        "steps": args.steps,
        "projection_1080p": proj,
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
