"""ADFNet FP16 policy, measured without TensorRT: a PyTorch FP16 emulation against FP32 PyTorch.

The emulation (as ``benchmarks/fp16_policy.py`` for HDM and ``benchmarks/mhnet_fp16.py`` for MHNet):
FP16 weights, the input and every op's output rounded to FP16 (as an FP16 engine stores activations;
overflow becomes inf), arithmetic inside each op in FP32 (TensorRT's FP16 kernels accumulate in FP32).
Rows (PSNR of the clamped float output vs the FP32 network, in dB; the target is ≥ 45 dB):

* **policy**: the shipped policy — every DeformConv computes its sampling coordinates (pixel position
  + FP16 offset) in FP32 inside the op (the ``deform_onnx`` island / our plugin); everything else FP16;
* **DCN coordinates FP16 too**: the sampling coordinates themselves rounded to FP16 (as TensorRT's
  built-in DeformConv plugin with FP16 tensors), measured on the photographs and on a strip
  ``--wide`` px wide where the full-resolution DCNs (``fe1``, ``dfe1``) sample x beyond 1024, where
  FP16 spacing is 1 px; the PSNR over the columns x ≥ 1024 alone is printed too.

Also printed: the ranges of the unnormalised dynamic filters (max |kernel|, max |9-tap sum|, forward
hooks on every ``DyConv``/``DepthDC`` of the FP32 network) on the photographs, against FP16's 65504.

Models: the published-size RGB ADFNet with random published-format weights (non-zero offsets) and the
bundled trained sample ``assets/adfnet_sample_sigma25.pt`` (width 8, σ = 25), whose activations are
real trained ones; ``--checkpoint`` adds any ADFNet checkpoint. Inputs: the bundled photographs at
``--short-side`` with Gaussian noise σ = 25 (fixed seed; the denoisers' task), reflect-padded to ×8.

    nice -n 19 python benchmarks/adfnet_fp16.py                 # ≈ 5 min on 2 shared cores
    python benchmarks/adfnet_fp16.py --checkpoint adfnet_n50.pt --no-random --no-sample
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import time
from pathlib import Path

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
WIDE_PHOTO = "rocket"
TARGET_DB = 45.0
FP16_MAX = 65504.0
SIGMA = 25.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    if not np.isfinite(a).all():
        return float("nan")
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


class Fp16Storage:
    """Emulates an FP16 engine in FP32 PyTorch: every float32 op output is rounded to FP16 (overflow →
    inf), arithmetic inside an op stays FP32. Weights are rounded by the caller (``half().float()``)."""

    def __enter__(self):
        import torch
        from torch.utils._python_dispatch import TorchDispatchMode

        def round_out(t):
            return t.half().float() if torch.is_tensor(t) and t.dtype == torch.float32 else t

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):
                return torch.utils._pytree.tree_map(round_out, func(*args, **(kwargs or {})))

        self.mode = Mode()
        self.mode.__enter__()
        return self

    def __exit__(self, *exc):
        self.mode.__exit__(*exc)


@contextlib.contextmanager
def fp16_coordinates():
    """Every ADFNet DCN samples at coordinates (y + i − 1 + dy, x + j − 1 + dx) rounded to FP16, as
    TensorRT's built-in DeformConv plugin computes them with FP16 tensors. Offset channel 2·(g·9+k) is
    dy, 2·(g·9+k)+1 dx (8 offset groups)."""
    import torch
    from torchvision.ops import deform_conv2d

    from hdm_deploy.families.adfnet.model import DCN

    def forward(self, inputs):
        x, feature = inputs
        o1, o2, m = torch.chunk(self.conv_offset_mask(feature), 3, dim=1)
        offset = torch.cat((o1, o2), dim=1)
        n, c2, h, w = offset.shape
        k = torch.arange(c2 // 2) % 9
        base_y = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1) + (k // 3 - 1).float().view(
            1, -1, 1, 1
        )
        base_x = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w) + (k % 3 - 1).float().view(1, -1, 1, 1)
        dy = (base_y + offset[:, 0::2]).half().float() - base_y
        dx = (base_x + offset[:, 1::2]).half().float() - base_x
        snapped = torch.stack((dy, dx), dim=2).reshape(n, c2, h, w)
        return deform_conv2d(x, snapped, self.weight, self.bias, padding=(1, 1), mask=torch.sigmoid(m))

    original = DCN.forward
    DCN.forward = forward
    try:
        yield
    finally:
        DCN.forward = original


def fp16_emulated(model, x, *, coordinates_fp16: bool):
    """The FP16 emulation of ``model`` on ``x`` ([N, C, H, W] in [0, 1], H, W multiples of 8)."""
    import torch

    half = copy.deepcopy(model).half().float()
    coords = fp16_coordinates() if coordinates_fp16 else contextlib.nullcontext()
    with torch.no_grad(), coords, Fp16Storage():
        y = half(x.half().float())
    return y.clamp(0, 1)


def filter_ranges(model, x) -> dict[str, float]:
    """FP32 forward of ``model`` on ``x``; max |kernel| and max |9-tap sum| over every dynamic filter."""
    import torch

    from hdm_deploy.families.adfnet.model import DepthDC, DyConv

    worst = {"kernel": 0.0, "sum": 0.0}

    def hook(m, inp, out):
        kernel = inp[1] if isinstance(m, DepthDC) else m.afg(inp[0])
        worst["kernel"] = max(worst["kernel"], float(kernel.abs().max()))
        worst["sum"] = max(worst["sum"], float(out.abs().max()))

    hooks = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (DyConv, DepthDC))]
    with torch.no_grad():
        y = model(x).clamp(0, 1)
    for h in hooks:
        h.remove()
    worst["out"] = y
    return worst


def noisy_input(img: np.ndarray, seed: int):
    """uint8 RGB [H, W, 3] → noisy [1, 3, H8, W8] float tensor (σ = 25/255, reflect-padded to ×8)."""
    import torch
    import torch.nn.functional as F

    h, w = img.shape[:2]
    noise = np.random.default_rng(seed).normal(0, SIGMA / 255, img.shape).astype(np.float32)
    x = torch.from_numpy(img.astype(np.float32) / 255 + noise).permute(2, 0, 1)[None]
    return F.pad(x, (0, -w % 8, 0, -h % 8), mode="reflect")


def inputs(short_side: int, wide: int, wide_rows: int) -> list[tuple[str, np.ndarray]]:
    from hdm_deploy_dev.photos import photo, resize

    out = []
    for name in PHOTOS:
        img = photo(name)
        h, w = img.shape[:2]
        s = short_side / min(h, w)
        out.append((name, resize(img, (round(w * s), round(h * s)))))
    if wide:
        img = photo(WIDE_PHOTO)
        h, w = img.shape[:2]
        big = resize(img, (wide, round(h * wide / w)))
        top = (big.shape[0] - wide_rows) // 2
        out.append((f"{WIDE_PHOTO} strip", np.ascontiguousarray(big[top : top + wide_rows])))
    return out


def models(args) -> list[tuple[str, object]]:
    import torch

    from hdm_deploy.families.adfnet.checkpoint import load_for_family
    from hdm_deploy.families.adfnet.model import VARIANTS, ADFNet
    from hdm_deploy.families.checkpoint_io import read_state_dict

    def load(path: Path):
        state, meta = read_state_dict(path)
        return load_for_family(state, meta, None).eval()

    out = []
    if not args.no_random:
        torch.manual_seed(0)
        net = ADFNet(VARIANTS["rgb"])
        with torch.no_grad():
            for name, p in net.named_parameters():
                if "conv_offset_mask" in name:
                    p.normal_(0, 0.02 if name.endswith("weight") else 0.5)
                elif name.endswith("bias"):
                    p.normal_(0, 0.02)
        out.append(("ADFNet RGB width 32, random published-format weights", net.eval()))
    if not args.no_sample:
        import hdm_deploy

        sample = Path(hdm_deploy.__file__).parent / "assets" / "adfnet_sample_sigma25.pt"
        out.append(("bundled sample (width 8, trained σ=25)", load(sample)))
    if args.checkpoint:
        out.append((args.checkpoint.name, load(args.checkpoint)))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, help="an ADFNet checkpoint to measure as well (RGB)")
    parser.add_argument("--short-side", type=int, default=192, help="photographs' short side (px)")
    parser.add_argument("--wide", type=int, default=1200, help="width of the wide strip (0: none)")
    parser.add_argument("--wide-rows", type=int, default=48, help="height of the wide strip")
    parser.add_argument("--no-random", action="store_true", help="skip the random published-size network")
    parser.add_argument("--no-sample", action="store_true", help="skip the bundled trained sample")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(args.threads)
    images = inputs(args.short_side, args.wide, args.wide_rows)
    t0 = time.perf_counter()
    print(
        f"ADFNet PyTorch FP16 emulation vs FP32 PyTorch; inputs: {', '.join(n for n, _ in images)} "
        f"(short side {args.short_side}; strip {args.wide}×{args.wide_rows}), Gaussian noise σ={SIGMA:g}; "
        f"torch {torch.__version__}, {args.threads} threads\n"
    )
    print(
        "| model | input | W×H | policy (FP32 DCN coordinates) dB | DCN coordinates FP16 dB | … columns x ≥ 1024 |"
    )
    print("|---|---|---|---|---|---|")
    worst_policy = float("inf")
    for label, model in models(args):
        if model.config.n_colors != 3:
            raise SystemExit(
                f"{label}: this benchmark feeds RGB photographs; the model takes {model.config.n_colors}"
            )
        ranges = {"kernel": 0.0, "sum": 0.0}
        for i, (name, img) in enumerate(images):
            h, w = img.shape[:2]
            x = noisy_input(img, seed=i)
            ref = filter_ranges(model, x)
            if not name.endswith("strip"):  # filter ranges on the photographs proper
                ranges = {k: max(ranges[k], ref[k]) for k in ranges}
            ref_np = ref["out"][:, :, :h, :w].numpy()
            policy = fp16_emulated(model, x, coordinates_fp16=False)[:, :, :h, :w].numpy()
            coords = fp16_emulated(model, x, coordinates_fp16=True)[:, :, :h, :w].numpy()
            worst_policy = min(worst_policy, psnr(policy, ref_np))
            far = f"{psnr(coords[..., 1024:], ref_np[..., 1024:]):.1f}" if w > 1024 else "—"
            print(
                f"| {label} | {name} | {w}×{h} | {psnr(policy, ref_np):.1f} | {psnr(coords, ref_np):.1f} | {far} |",
                flush=True,
            )
        print(
            f"| {label} | dynamic filters on the {len(PHOTOS)} photographs | | max \\|kernel\\| "
            f"{ranges['kernel']:.3g} | max \\|9-tap sum\\| {ranges['sum']:.3g} | FP16 max {FP16_MAX:.0f} |",
            flush=True,
        )
    verdict = "≥" if worst_policy >= TARGET_DB else "<"
    print(
        f"\nworst policy row {worst_policy:.1f} dB {verdict} {TARGET_DB:g} dB; {time.perf_counter() - t0:.0f} s"
    )
    return 0 if worst_policy >= TARGET_DB else 1


if __name__ == "__main__":
    sys.exit(main())
