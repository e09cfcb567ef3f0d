"""Latency of the whole frame path: PyTorch vs ONNX Runtime (vs TensorRT engines), one table.

Same measurement as ``hdm-deploy bench`` (runtime/bench.py): a full runner call per iteration on
bundled photographs resized to ``--size`` — input conversion, DCP masks, network, uint8 output —
median and p90 after untimed warm-up calls.

    python benchmarks/bench_backends.py                        # sample checkpoint vs its ONNX export, 640×480
    python benchmarks/bench_backends.py --size 1280x720 --iters 5
    python benchmarks/bench_backends.py --models hdm.pk model.onnx model.engine --json out.json

Without ``--models`` it exports the checkpoint (default: the bundled sample) to a temporary ONNX
file first, then times: torch with torch DCP masks, torch with the published reference masks
(numpy/OpenCV), and ONNX Runtime (DCP masks inside the graph). Torch uses all CPU threads
(``torch.get_num_threads()``), ORT its default intra-op pool.
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    from rich.console import Console

    from hdm_deploy.core.runner import model_kind
    from hdm_deploy.core.sizes import parse_size
    from hdm_deploy.runtime import load_runner
    from hdm_deploy.runtime.bench import bench_frames, benchmark, render_table, write_json

    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--checkpoint", type=Path, default=None, help="checkpoint (default: the bundled sample)"
    )
    parser.add_argument("--models", type=Path, nargs="+", default=None, help="model files to time instead")
    parser.add_argument("--size", default="640x480")
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--deform", default="onnx", help="flavour of the exported ONNX file")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args(argv)
    console = Console()
    size = parse_size(args.size)
    frames = bench_frames(size, args.batch)

    with tempfile.TemporaryDirectory() as tmp:
        if args.models:
            # --masks is a checkpoint's option; ONNX models and engines compute their own
            runs = [(m, {"masks": "torch"} if model_kind(m) == "torch" else {}) for m in args.models]
        else:
            from hdm_deploy.export.exporter import export_onnx

            onnx_path = Path(tmp) / "model.onnx"
            export_onnx(
                args.checkpoint, onnx_path, deform=args.deform, golden=False, verify=False, progress=True
            )
            ckpt = args.checkpoint
            runs = [(ckpt, {"masks": "torch"}), (ckpt, {"masks": "reference"}), (onnx_path, {})]
        results = []
        for path, options in runs:
            with (
                load_runner(path, **options) as runner,
                console.status(f"timing {runner.backend} {options or ''}…"),
            ):
                results.append(benchmark(runner, size, args.batch, args.warmup, args.iters, frames))
    try:
        import torch

        threads = f"torch threads {torch.get_num_threads()}"
    except ImportError:
        threads = "no torch"
    console.print(render_table(results))
    console.print(f"[dim]{threads}; command: python benchmarks/bench_backends.py {' '.join(argv or [])}[/]")
    if args.json:
        write_json(results, args.json)
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))
