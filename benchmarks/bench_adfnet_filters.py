"""ADFNet's per-pixel dynamic filters in ONNX Runtime: published ``unfold`` vs 9 shifted slices with a
multiply-accumulate (what ``export`` emits), timed and compared numerically.

Two measurements, each exported with the same dynamo exporter as ``hdm-deploy export``:

* **op**: one dynamic filter alone (C channels, 3×3 kernel of dilation 1, 3 and 5; the kernel tensor
  [N, 9·C, H, W] is an input), the op the two formulations differ in;
* **network**: the whole published-size ADFNet RGB (random published-format weights with non-zero
  offsets, or ``--checkpoint``), float I/O, at ``--size``.

Each row: ORT CPU median ms over ``--iters`` runs (after one warm-up), and the max relative
difference (max |Δ| / max |ref|) of the shifted graph against the unfold graph.

    python benchmarks/bench_adfnet_filters.py                    # op at 160×120, network at 320×240
    python benchmarks/bench_adfnet_filters.py --size 640x480 --threads 2
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch

from hdm_deploy.export.exporter import build_onnx
from hdm_deploy.families.adfnet.checkpoint import load_for_family
from hdm_deploy.families.adfnet.model import VARIANTS, ADFNet, dynamic_filter
from hdm_deploy.families.checkpoint_io import read_state_dict
from hdm_deploy.graph import onnx_io


def session(path: Path, threads: int) -> ort.InferenceSession:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.log_severity_level = 3
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


def timed(sess: ort.InferenceSession, feed: dict, iters: int) -> tuple[float, np.ndarray]:
    out = sess.run(None, feed)[0]
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        sess.run(None, feed)
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times), out


class Filter(torch.nn.Module):
    def __init__(self, dilation: int, impl: str):
        super().__init__()
        self.dilation, self.impl = dilation, impl

    def forward(self, x, kernel):
        return dynamic_filter(x, kernel, self.dilation, self.impl)


def bench_op(folder: Path, channels: int, w: int, h: int, threads: int, iters: int) -> list[str]:
    rows = []
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, channels, h, w, generator=g)
    k = torch.randn(1, 9 * channels, h, w, generator=g)
    feed = {"x": x.numpy(), "kernel": k.numpy()}
    for d in (1, 3, 5):
        res = {}
        for impl in ("unfold", "shifted"):
            path = folder / f"op_{impl}_{d}.onnx"
            dims = {
                0: torch.export.Dim("N"),
                2: torch.export.Dim("H", min=8),
                3: torch.export.Dim("W", min=8),
            }
            prog = torch.onnx.export(
                Filter(d, impl),
                (x, k),
                dynamo=True,
                input_names=["x", "kernel"],
                dynamic_shapes={"x": dims, "kernel": dims},
                opset_version=19,
                verbose=False,
            )
            prog.save(str(path))
            res[impl] = timed(session(path, threads), feed, iters)
        rel = np.abs(res["shifted"][1] - res["unfold"][1]).max() / np.abs(res["unfold"][1]).max()
        rows.append(
            f"| op, C={channels}, d={d}, {w}×{h} | {res['unfold'][0]:.2f} | {res['shifted'][0]:.2f} | "
            f"{res['unfold'][0] / res['shifted'][0]:.2f}× | {rel:.1e} |"
        )
    return rows


def bench_network(folder: Path, model: ADFNet, w: int, h: int, threads: int, iters: int) -> list[str]:
    x = np.random.default_rng(0).random((1, 3, h, w), dtype=np.float32)
    res = {}
    for impl in ("unfold", "shifted"):
        path = folder / f"net_{impl}.onnx"
        onnx_io.save(build_onnx(model, io="float", dynamic_filter=impl), path)
        res[impl] = timed(session(path, threads), {"image": x}, iters)
    rel = np.abs(res["shifted"][1] - res["unfold"][1]).max() / np.abs(res["unfold"][1]).max()
    return [
        f"| network ADFNet({model.config.n_colors}, width {model.config.width}), {w}×{h} | "
        f"{res['unfold'][0]:.0f} | {res['shifted'][0]:.0f} | {res['unfold'][0] / res['shifted'][0]:.2f}× | {rel:.1e} |"
    ]


def random_published(seed: int = 0) -> ADFNet:
    torch.manual_seed(seed)
    model = ADFNet(VARIANTS["rgb"])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "conv_offset_mask" in name:
                p.normal_(0, 0.02 if name.endswith("weight") else 0.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.02)
    return model.eval()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", default="320x240", help="network frame size WxH")
    ap.add_argument("--op-size", default="160x120")
    ap.add_argument("--channels", type=int, default=64)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument(
        "--checkpoint", type=Path, default=None, help="ADFNet checkpoint (default: random weights)"
    )
    ap.add_argument("--skip-network", action="store_true")
    args = ap.parse_args()
    ow, oh = (int(v) for v in args.op_size.lower().split("x"))
    nw, nh = (int(v) for v in args.size.lower().split("x"))
    print(f"onnxruntime {ort.__version__}, torch {torch.__version__}, {args.threads} threads")
    print("| what | unfold ms | shifted ms | speed-up | max rel Δ |\n|---|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for row in bench_op(folder, args.channels, ow, oh, args.threads, args.iters):
            print(row, flush=True)
        if not args.skip_network:
            if args.checkpoint:
                state, meta = read_state_dict(args.checkpoint)
                model = load_for_family(state, meta, None)
            else:
                model = random_published()
            for row in bench_network(folder, model, nw, nh, args.threads, args.iters):
                print(row, flush=True)


if __name__ == "__main__":
    main()
