"""Benchmark the HdmDeformConv CUDA kernel against torchvision's CUDA deform_conv2d.

Default case: HDM's deformable conv at 1/4 of 1080p - 64 -> 64 channels, 3x3, pad 1, one offset
group, sigmoid mask, 270 x 480, FP16 (target: >= 2x faster than torchvision FP16). Also FP32, and
the accuracy of each against an FP32 reference on the same (FP16-rounded) inputs.

    python benchmarks/bench_deform_plugin.py                 # builds the kernels for this GPU
    python benchmarks/bench_deform_plugin.py --lib build/libhdm_deploy_plugins.so --json out.json
    python benchmarks/bench_deform_plugin.py --cpu           # no GPU: time the CPU twin instead

Without a CUDA device (and without --cpu) it says so and exits 0.
"""

from __future__ import annotations

import argparse
import json
import sys
import time


def _time_cuda(fn, torch, warmup: int, iters: int) -> float:
    for _ in range(warmup):
        fn()
    torch.cuda.synchronize()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
    start.record()
    for _ in range(iters):
        fn()
    end.record()
    torch.cuda.synchronize()
    return start.elapsed_time(end) / iters  # ms


def _rel(a, ref) -> float:
    return float((a.float() - ref).abs().max()) / max(float(ref.abs().max()), 1e-6)


def run_gpu(args) -> dict:
    import torch
    from torchvision.ops import deform_conv2d

    from hdm_deploy.plugins import (
        DeformAttrs,
        build_plugin_cached,
        cuda_deform_conv_tensors,
        native_library,
    )

    dev = torch.device("cuda")
    major, minor = torch.cuda.get_device_capability()
    if args.lib:
        lib_path = args.lib
    else:
        print(f"building kernels for sm_{major}{minor} ...", file=sys.stderr)
        lib_path = str(build_plugin_cached(f"{major}{minor}", with_tensorrt=False).library)
    lib = native_library(lib_path)

    n, c, h, w, k = args.batch, args.channels, args.height, args.width, 3
    gen = torch.Generator(device=dev).manual_seed(0)
    x32 = torch.randn(n, c, h, w, device=dev, generator=gen)
    w32 = torch.randn(c, c, k, k, device=dev, generator=gen) / (k * c**0.5)
    b32 = torch.randn(c, device=dev, generator=gen)
    off32 = (
        torch.rand(n, 2 * k * k, h, w, device=dev, generator=gen) * 2 * args.offset_range - args.offset_range
    )
    m32 = torch.sigmoid(torch.randn(n, k * k, h, w, device=dev, generator=gen))
    attrs = DeformAttrs((k, k), pads=(1, 1, 1, 1))
    stream = torch.cuda.current_stream().cuda_stream
    results: dict[str, dict] = {}

    for dtype_name, dt in (("fp16", torch.float16), ("fp32", torch.float32)):
        x, wt, b, off, m = (t.to(dt) for t in (x32, w32, b32, off32, m32))
        ref = deform_conv2d(x.float(), off.float(), wt.float(), b.float(), padding=1, mask=m.float())
        out = torch.empty(n, c, h, w, device=dev, dtype=dt)

        def ours(x=x, wt=wt, off=off, b=b, m=m, out=out):
            cuda_deform_conv_tensors(lib, attrs, x, wt, off, b, m, out, stream)

        def tv(x=x, wt=wt, off=off, b=b, m=m):
            return deform_conv2d(x, off, wt, b, padding=1, mask=m)

        with torch.no_grad():
            ours()
            torch.cuda.synchronize()
            err_ours = _rel(out, ref)
            err_tv = _rel(tv(), ref)
            t_ours = _time_cuda(ours, torch, args.warmup, args.iters)
            t_tv = _time_cuda(tv, torch, args.warmup, args.iters)
        results[dtype_name] = {
            "hdm_ms": round(t_ours, 4),
            "torchvision_ms": round(t_tv, 4),
            "speedup": round(t_tv / t_ours, 3),
            "hdm_rel_max_err": err_ours,
            "torchvision_rel_max_err": err_tv,
        }
    return {
        "device": torch.cuda.get_device_name(),
        "compute_capability": f"{major}.{minor}",
        "shape": {"n": n, "c": c, "h": h, "w": w, "kernel": k},
        "offset_range_px": args.offset_range,
        "library": lib_path,
        "results": results,
        "target_fp16_speedup": 2.0,
        "meets_target": results["fp16"]["speedup"] >= 2.0,
    }


def run_cpu(args) -> dict:
    import numpy as np

    from hdm_deploy.plugins import cpu_deform_conv

    rng = np.random.default_rng(0)
    n, c, h, w = args.batch, args.channels, args.height, args.width
    x = rng.standard_normal((n, c, h, w)).astype(np.float32)
    wt = (rng.standard_normal((c, c, 3, 3)) / (3 * c**0.5)).astype(np.float32)
    off = rng.uniform(-args.offset_range, args.offset_range, (n, 18, h, w)).astype(np.float32)
    m = rng.uniform(0, 1, (n, 9, h, w)).astype(np.float32)
    b = rng.standard_normal(c).astype(np.float32)
    cpu_deform_conv(x, wt, off, b, m, padding=1)
    t0 = time.perf_counter()
    reps = max(1, args.iters // 20)
    for _ in range(reps):
        cpu_deform_conv(x, wt, off, b, m, padding=1)
    return {"device": "cpu (CPU twin)", "shape": [n, c, h, w], "ms": (time.perf_counter() - t0) / reps * 1e3}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batch", type=int, default=1)
    p.add_argument("--channels", type=int, default=64)
    p.add_argument("--height", type=int, default=270)
    p.add_argument("--width", type=int, default=480)
    p.add_argument("--offset-range", type=float, default=20.0, help="offsets uniform in +-this many pixels")
    p.add_argument("--iters", type=int, default=100)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--lib", help="libhdm_deploy_plugins.so to use (default: build for this GPU)")
    p.add_argument("--cpu", action="store_true", help="time the CPU twin (no GPU needed)")
    p.add_argument("--json", help="also write the results to this JSON file")
    args = p.parse_args(argv)

    if args.cpu:
        report = run_cpu(args)
    else:
        try:
            import torch
        except ImportError:
            print("torch is not installed: the GPU benchmark needs torch + torchvision", file=sys.stderr)
            return 0
        if not torch.cuda.is_available():
            print("no CUDA device: GPU benchmark skipped (use --cpu to time the CPU twin)", file=sys.stderr)
            return 0
        report = run_gpu(args)
    text = json.dumps(report, indent=2)
    print(text)
    if args.json:
        from hdm_deploy.core.fs import atomic_write_text

        atomic_write_text(args.json, text + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
