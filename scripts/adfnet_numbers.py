#!/usr/bin/env python
"""The ADFNet numbers in ``docs/adfnet.md`` and the README, re-measured on this machine.

* MACs per output pixel of each variant (forward hooks on every conv, transposed conv, DCN and
  dynamic filter; DCN = its 9·C² main conv, dynamic filters = 9 multiply-adds per channel and tap);
* PyTorch (clean protocol, ``unfold`` filters) vs ONNX Runtime (``export`` default graph: shifted
  filters, uint8 I/O) ms/frame at ``--size`` (default 640×480), median of ``--iters``;
* parity of the exported graph with PyTorch on the bundled photographs (the export's own check);
* FP16: the FP16-policy graph (float I/O) in ONNX Runtime vs FP32 PyTorch, PSNR per photograph, and
  the range of the unnormalised dynamic filters and their 9-tap sums on those photographs.

The network is ``--checkpoint`` (any ADFNet) or, by default, the published-size RGB ADFNet with
random published-format weights (non-zero offsets).

    nice -n 19 python scripts/adfnet_numbers.py --threads 2
    python scripts/adfnet_numbers.py --skip-speed --skip-fp16        # MACs + parity only
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from torch import nn

from hdm_deploy.export.exporter import build_onnx, export_onnx
from hdm_deploy.families.adfnet.checkpoint import load_for_family
from hdm_deploy.families.adfnet.model import DCN, VARIANTS, ADFNet, DepthDC, DyConv
from hdm_deploy.families.adfnet.pipeline import enhance, pad_crop_forward
from hdm_deploy.families.checkpoint_io import read_state_dict
from hdm_deploy.graph import onnx_io
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner


def macs_per_pixel(model: ADFNet, size: int = 256) -> float:
    total = 0.0

    def conv_hook(m, inp, out):
        nonlocal total
        if isinstance(m, nn.ConvTranspose2d):
            total += inp[0].numel() * m.out_channels * m.kernel_size[0] * m.kernel_size[1] / m.groups
        elif isinstance(m, (nn.Conv2d, nn.Conv1d)):
            k = int(np.prod(m.kernel_size))
            total += out.numel() * (m.in_channels // m.groups) * k

    def dcn_hook(m, inp, out):
        nonlocal total
        total += out.numel() * m.weight.shape[1] * 9

    def filter_hook(m, inp, out):
        nonlocal total
        total += out.numel() * 9

    hooks = []
    for m in model.modules():
        if isinstance(m, (nn.Conv2d, nn.Conv1d, nn.ConvTranspose2d)):
            hooks.append(m.register_forward_hook(conv_hook))
        elif isinstance(m, DCN):
            hooks.append(m.register_forward_hook(dcn_hook))
        elif isinstance(m, (DyConv, DepthDC)):  # 9 multiply-adds per output value
            hooks.append(m.register_forward_hook(filter_hook))
    with torch.no_grad():
        model(torch.zeros(1, model.config.n_colors, size, size))
    for h in hooks:
        h.remove()
    return total / (size * size)


def random_published(variant: str = "rgb", seed: int = 0) -> ADFNet:
    torch.manual_seed(seed)
    model = ADFNet(VARIANTS[variant])
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "conv_offset_mask" in name:
                p.normal_(0, 0.02 if name.endswith("weight") else 0.5)
            elif name.endswith("bias"):
                p.normal_(0, 0.02)
    return model.eval()


def median_ms(fn, iters: int) -> float:
    fn()
    times = []
    for _ in range(iters):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1e3)
    return statistics.median(times)


def photos(short: int) -> list[tuple[str, np.ndarray]]:
    from hdm_deploy_dev.photos import photo, resize

    out = []
    for name in ("astronaut", "coffee", "chelsea", "rocket"):
        img = photo(name)
        h, w = img.shape[:2]
        s = short / min(h, w)
        out.append((name, resize(img, (round(w * s), round(h * s)))))
    return out


def filter_ranges(model: ADFNet, images) -> dict[str, float]:
    """max |kernel| and max |9-tap sum| over every dynamic filter on these images."""
    worst = {"kernel": 0.0, "sum": 0.0}

    def hook(m, inp, out):
        kernel = inp[1] if isinstance(m, DepthDC) else m.afg(inp[0])
        worst["kernel"] = max(worst["kernel"], float(kernel.abs().max()))
        worst["sum"] = max(worst["sum"], float(out.abs().max()))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (DyConv, DepthDC))]
    with torch.no_grad():
        for _, img in images:
            pad_crop_forward(model, torch.from_numpy(img).permute(2, 0, 1)[None].float() / 255)
    for h in hooks:
        h.remove()
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--checkpoint", type=Path)
    ap.add_argument("--size", default="640x480")
    ap.add_argument("--iters", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--fp16-short-side", type=int, default=192)
    ap.add_argument("--skip-speed", action="store_true")
    ap.add_argument("--skip-fp16", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    print("## MACs per output pixel\n\n| variant | params | MACs/px |\n|---|---|---|")
    for v in ("rgb", "gray", "L"):
        m = ADFNet(VARIANTS[v]).eval()
        print(f"| {v} | {sum(p.numel() for p in m.parameters()):,} | {macs_per_pixel(m):,.0f} |", flush=True)

    if args.checkpoint:
        state, meta = read_state_dict(args.checkpoint)
        model = load_for_family(state, meta, None)
        what = f"{args.checkpoint.name} (ADFNet n_colors={model.config.n_colors}, width={model.config.width})"
    else:
        model = random_published()
        what = "published-size ADFNet RGB, random published-format weights (non-zero offsets)"
    print(f"\nnetwork: {what}; torch {torch.__version__}, {args.threads} threads")

    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = Path(tmp) / "adfnet.onnx"
        t0 = time.perf_counter()
        result = export_onnx(model, onnx_path)
        print(
            f"\n## Parity (export {time.perf_counter() - t0:.0f} s): ONNX Runtime vs PyTorch, bundled photographs\n"
        )
        print(
            "| case | N | W×H | identical % | max |Δ| (uint8 levels) | PSNR dB |\n|---|---|---|---|---|---|"
        )
        for c in result.verification.cases:
            print(
                f"| {c.name} | {c.batch} | {c.width}×{c.height} | {c.identical:.3f} | {c.max_abs_u8} | {c.psnr_db:.1f} |"
            )

        if not args.skip_speed:
            w, h = (int(v) for v in args.size.lower().split("x"))
            frame = np.random.default_rng(0).integers(0, 256, (1, h, w, 3), dtype=np.uint8)
            torch_ms = median_ms(lambda: enhance(model, frame), args.iters)
            with OnnxRuntimeRunner(onnx_path, device="cpu", threads=args.threads) as runner:
                ort_ms = median_ms(lambda: runner.run(frame), args.iters)
            print(f"\n## Speed at {w}×{h} (median of {args.iters}, after one warm-up)\n")
            print(
                f"| backend | ms/frame |\n|---|---|\n| PyTorch (CPU) | {torch_ms:.0f} |\n| ONNX Runtime (CPU) | {ort_ms:.0f} |"
            )

        if not args.skip_fp16:
            images = photos(args.fp16_short_side)
            fp16_path = Path(tmp) / "adfnet_fp16.onnx"
            onnx_io.save(build_onnx(model, io="float", precision="fp16"), fp16_path)
            print(
                f"\n## FP16 policy graph (float I/O) in ONNX Runtime vs FP32 PyTorch, short side {args.fp16_short_side}\n"
            )
            print("| photo | PSNR dB | max |Δ| |\n|---|---|---|")
            with OnnxRuntimeRunner(fp16_path, device="cpu", threads=args.threads) as runner:
                for name, img in images:
                    ref = enhance(model, img).image_float
                    got = runner.run(img).image_float
                    mse = float(np.mean((got.astype(np.float64) - ref) ** 2))
                    psnr = 10 * np.log10(1 / mse) if mse else float("inf")
                    print(
                        f"| {name} {img.shape[1]}×{img.shape[0]} | {psnr:.1f} | {np.abs(got - ref).max():.2e} |"
                    )
            r = filter_ranges(model, images)
            print(
                f"\ndynamic filters on these photographs: max |kernel| {r['kernel']:.3g}, "
                f"max |9-tap sum| {r['sum']:.3g} (FP16 max 65504)"
            )


if __name__ == "__main__":
    main()
