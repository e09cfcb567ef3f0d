"""MHNet numbers for README/docs: MACs per pixel, PyTorch vs ONNX Runtime ms/frame, parity table.

For each variant (published sizes, plausible random weights from ``hdm_deploy_dev.mhnet_weights``:
no trained checkpoint can be downloaded here, and speed/parity do not depend on the weights' values):

1. MACs/pixel: ``torch.utils.flop_counter`` (convolutions and matmuls, MAC = FLOP/2) of the final
   stage (``restored[0]``; stage 1's auxiliary image included, as the network computes it) at 256×256;
2. the checkpoint written in the published format, exported with ``export_onnx`` (uint8 I/O, opset 19,
   FP32): the export's own check — ONNX Runtime vs PyTorch on the bundled photographs at 7 sizes
   (not multiples of 16) and a batch of 2 — is the parity table;
3. ``bench_models`` on the checkpoint (PyTorch CPU) and the ONNX file (ONNX Runtime CPU) at 640×480,
   batch 1: median ms/frame.

    python benchmarks/mhnet_numbers.py                          # deblur + derain (~15 min on 2 cores)
    python benchmarks/mhnet_numbers.py --variants deblur --iters 3 --json out.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path


def macs_per_pixel(model, size: int = 256) -> float:
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.rand(1, 3, size, size)
    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        model.restore(x)
    return counter.get_total_flops() / 2 / (size * size)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variants", nargs="+", default=["deblur", "derain"], choices=("deblur", "derain"))
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    import torch

    from hdm_deploy.export.exporter import export_onnx
    from hdm_deploy.families.mhnet.checkpoint import save_checkpoint
    from hdm_deploy.runtime.bench import bench_models, machine
    from hdm_deploy_dev.mhnet_weights import published

    results = {"machine": machine(), "torch_threads": torch.get_num_threads(), "variants": {}}
    with tempfile.TemporaryDirectory() as tmp:
        for variant in args.variants:
            model = published(variant)
            row: dict = {"params": sum(p.numel() for p in model.parameters())}
            row["macs_per_pixel"] = macs_per_pixel(model)
            ckpt = save_checkpoint(model, Path(tmp) / f"mhnet_{variant}.pth")
            onnx_path = Path(tmp) / f"mhnet_{variant}.onnx"
            result = export_onnx(ckpt, onnx_path, progress=True)
            row["parity"] = [
                {
                    "case": c.name,
                    "identical_raw": c.identical_raw,
                    "identical": c.identical,
                    "max_abs_u8": c.max_abs_u8,
                    "psnr_db": c.psnr_db,
                }
                for c in result.verification.cases
            ]
            row["parity_passed"] = result.verification.passed
            timings = bench_models([ckpt, onnx_path], (w, h), 1, args.warmup, args.iters)
            row["ms_per_frame"] = {t.backend: t.median_ms for t in timings}
            results["variants"][variant] = row
            print(json.dumps({variant: row}, indent=1, default=str), flush=True)

    print(
        f"\n{results['machine']}; {args.size}, batch 1, {args.iters} timed calls after {args.warmup} warm-up\n"
    )
    print("| variant | params | MACs/pixel | PyTorch ms/frame | ONNX Runtime ms/frame |")
    print("|---|---:|---:|---:|---:|")
    for variant, row in results["variants"].items():
        ms = row["ms_per_frame"]
        print(
            f"| {variant} | {row['params']:,} | {row['macs_per_pixel']:,.0f} | "
            f"{ms.get('torch', float('nan')):,.0f} | {ms.get('onnxruntime', float('nan')):,.0f} |"
        )
    print("\n| variant | case | identical uint8 % | max |Δ| (levels) | PSNR dB |")
    print("|---|---|---:|---:|---:|")
    for variant, row in results["variants"].items():
        for c in row["parity"]:
            print(
                f"| {variant} | {c['case']} | {c['identical_raw']:.3f} | {c['max_abs_u8']} | {c['psnr_db']:.1f} |"
            )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
