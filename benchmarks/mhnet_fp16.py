"""MHNet FP16 policy, measured without TensorRT: where FP16 hurts, against FP32 PyTorch.

Rows (PSNR of the final-stage float output, in dB, vs the FP32 PyTorch network; higher is better):

* **PyTorch FP16 emulation**: FP16 weights and every op's output rounded to FP16 (as an FP16 engine
  stores activations; overflow becomes inf), arithmetic inside each op in FP32 (as TensorRT's FP16
  kernels accumulate), with LayerNorm2d and/or the MDTA attention kept FP32 (nothing rounded
  inside them) — the islands under study;
* **ONNX Runtime**: the exported FP16 graph (``export --precision fp16``, float I/O). ORT CPU runs
  FP16 nodes without CPU kernels in FP32 behind casts, so this row shows the graph is sound and
  what rounding between nodes costs, not FP16 arithmetic.

Also printed: the largest sum of squares the MDTA ``F.normalize`` sees (over the H/16·W/16 positions)
and that value extrapolated to a 1088×1920 frame, against FP16's maximum 65504.

Weights: the published sizes with plausible random weights (``hdm_deploy_dev.mhnet_weights``) —
no trained checkpoint is available here; activation ranges of trained weights may differ.

    python benchmarks/mhnet_fp16.py                       # deblur, 4 photographs at 256×192
    python benchmarks/mhnet_fp16.py --variant derain --size 320x240
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
TARGET_DB = 45.0
FP16_MAX = 65504.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


class Fp16Storage:
    """Emulates an FP16 engine in FP32 PyTorch: every float op output is rounded to FP16 (overflow →
    inf), arithmetic inside an op stays FP32 (TensorRT's FP16 kernels accumulate in FP32); inside the
    island modules nothing is rounded (their output is, on the way out). Weights: rounded once."""

    def __init__(self, model, islands: tuple[type, ...]):
        self.model = model
        self.islands = islands
        self.depth = 0

    def __enter__(self):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        outer = self

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                out = func(*args, **(kwargs or {}))
                if outer.depth:
                    return out
                return torch.utils._pytree.tree_map(
                    lambda t: t.half().float() if torch.is_tensor(t) and t.dtype == torch.float32 else t, out
                )

        def enter(*_):
            self.depth += 1

        def leave(_m, _i, out):
            self.depth -= 1
            return out.half().float() if self.depth == 0 else out

        self.hooks = []
        for module in self.model.modules():
            if isinstance(module, self.islands):
                self.hooks.append(module.register_forward_pre_hook(enter))
                self.hooks.append(module.register_forward_hook(leave))
        self.mode = Mode()
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)
        for h in self.hooks:
            h.remove()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="deblur", choices=("deblur", "derain"))
    parser.add_argument("--size", default="256x192", help="WxH of the photographs")
    parser.add_argument("--no-onnx", action="store_true", help="skip the ONNX Runtime row")
    args = parser.parse_args(argv)
    w, h = (int(v) for v in args.size.lower().split("x"))

    import copy

    import torch

    from hdm_deploy.families.mhnet.model import Attention, LayerNorm2d
    from hdm_deploy_dev.mhnet_weights import published
    from hdm_deploy_dev.photos import photo_at

    torch.set_num_threads(2)
    model = published(args.variant)
    frames = np.stack([photo_at(p, (w, h)) for p in PHOTOS])
    padded = np.pad(frames, ((0, 0), (0, -h % 16), (0, -w % 16), (0, 0)), mode="reflect")
    x = torch.from_numpy(padded).permute(0, 3, 1, 2).float() / 255

    sums = []
    hook = model.stage1.middle_blks[0].qkv_dwconv.register_forward_hook(
        lambda m, i, o: sums.append(float(o.float().pow(2).sum(dim=(2, 3)).max()))
    )
    with torch.no_grad():
        ref = model.restore(x)[:, :, :h, :w].clamp(0, 1).numpy()
    hook.remove()
    positions = (padded.shape[1] // 16) * (padded.shape[2] // 16)
    at_1080p = max(sums) / positions * (1088 // 16) * (1920 // 16)

    rows: list[tuple[str, float]] = []
    half = copy.deepcopy(model).half().float()  # FP16 weights
    for label, classes in (
        ("PyTorch FP16, no FP32 islands", ()),
        ("PyTorch FP16, FP32 LayerNorm2d", (LayerNorm2d,)),
        ("PyTorch FP16, FP32 MDTA attention", (Attention,)),
        ("PyTorch FP16, FP32 LayerNorm2d + attention", (LayerNorm2d, Attention)),
    ):
        with torch.no_grad(), Fp16Storage(half, classes):
            y = half.restore(x.half().float())[:, :, :h, :w].clamp(0, 1).numpy()
        rows.append((label, psnr(y, ref) if np.isfinite(y).all() else float("nan")))

    if not args.no_onnx:
        import tempfile
        from pathlib import Path

        from hdm_deploy.export.exporter import build_onnx
        from hdm_deploy.graph import onnx_io
        from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner

        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "fp16.onnx"
            onnx_io.save(build_onnx(model, io="float", precision="fp16"), path)
            with OnnxRuntimeRunner(path, device="cpu") as runner:
                y = runner.run(frames).image_float
        rows.append(("ONNX Runtime, exported FP16 graph (float I/O)", psnr(y, ref)))

    print(f"MHNet-{args.variant} (random published-size weights), {len(PHOTOS)} photographs at {w}×{h}")
    print(
        f"MDTA sum of squares: max {max(sums):.1f} over {positions} positions; "
        f"extrapolated to 1088×1920: {at_1080p:.0f} (FP16 max {FP16_MAX:.0f})"
    )
    print(f"{'configuration':52s} PSNR vs FP32 PyTorch (dB)")
    for label, value in rows:
        flag = "" if value >= TARGET_DB else f"  < {TARGET_DB:g} dB"
        print(f"{label:52s} {value:7.2f}{flag}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
