"""What a larger DCP TopK constant costs: ONNX Runtime CPU time of the DCP function per frame size and K.

The exported DCP function finds the atmospheric-light quantile with a constant-K ``TopK`` sized by
``--max-size`` (``K = ⌈max_pixels / 16 / 1000⌉``; TensorRT 8.5 needs K < 3840, i.e. ≤ ~61 MP).
This times the function (inlined, ORT CPU) on the same photograph for several ``max_pixels`` bounds:

    python benchmarks/dcp_topk.py [--sizes 1920x1080,3840x2160] [--bounds 3840x2160,4032x3024,...]
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np

PHOTO = Path(__file__).resolve().parents[1] / "examples" / "hazy_motorcycle.jpg"


def main() -> None:
    import onnxruntime as ort
    from PIL import Image

    from hdm_deploy.families.hdm.dcp import onnx_function

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="1920x1080,3840x2160", help="frame sizes WxH timed")
    ap.add_argument(
        "--bounds", default="3840x2160,4032x3024,5120x3840,7680x4320", help="max sizes WxH (set K)"
    )
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    parse = lambda text: [tuple(int(v) for v in s.split("x")) for s in text.split(",")]  # noqa: E731
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    sessions = {}
    for bw, bh in parse(args.bounds):
        k = onnx_function.topk_for(bw * bh)
        model = onnx_function.dcp_masks_model(inline=True, max_pixels=bw * bh)
        sessions[(bw, bh, k)] = ort.InferenceSession(
            model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
    print(f"{'frame':>10}  {'bound':>10}  {'K':>5}  {'median ms':>9}  {'min ms':>7}")
    for w, h in parse(args.sizes):
        rgb = np.asarray(Image.open(PHOTO).convert("RGB").resize((w, h), Image.BICUBIC))
        batch = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None])
        times = {key: [] for key in sessions}
        for s in sessions.values():  # warm-up
            s.run(None, {"images": batch})
        for _ in range(args.iters):  # interleaved so background load hits every K alike
            for key, s in sessions.items():
                t0 = time.perf_counter()
                s.run(None, {"images": batch})
                times[key].append((time.perf_counter() - t0) * 1e3)
        for (bw, bh, k), ts in times.items():
            print(f"{w}x{h:<5}  {bw}x{bh:<5}  {k:>5}  {statistics.median(ts):9.1f}  {min(ts):7.1f}")


if __name__ == "__main__":
    main()
