"""FP16 precision policy, measured without TensorRT: the table that justifies the FP32 islands.

Two kinds of rows, against FP32 PyTorch with the torch DCP masks (``models.pipeline.enhance``):

* **ONNX Runtime**: the whole frame path exported once (``build_onnx``: DCP function + network, float
  I/O so PSNR is not limited by uint8 rounding), the DCP masks exposed as a second output, the FP16
  policy applied (``apply_fp16_policy``) as shipped, without the DCP island (its function inlined and
  converted) and without any island; each graph runs in ONNX Runtime CPU. This proves the shipped FP16
  graph runs and keeps the masks 100 % equal. ORT computes FP16 nodes that lack CPU kernels in FP32 and
  folds the casts between them, so it cannot tell the network islands apart;
* **PyTorch FP16 emulation** of the network: weights and every module output outside the islands
  rounded to FP16, arithmetic in FP32 (TensorRT's FP16 convolutions accumulate in FP32); without the
  ``deform_onnx`` island the DeformConv sampling coordinates are FP16 as in TensorRT's built-in plugin.
  One row per island removed or added.

    python benchmarks/fp16_policy.py                 # bundled sample model, short side 256 px
    python benchmarks/fp16_policy.py --size 384 --checkpoint my_hdm.pk
"""

from __future__ import annotations

import argparse
import contextlib
import re
import sys
import time

import numpy as np

PHOTOS = ("astronaut", "coffee", "chelsea", "rocket")
TARGET_DB = 45.0


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return float("inf") if mse == 0 else 10 * np.log10(1.0 / mse)


def load_photos(short_side: int) -> list[tuple[str, np.ndarray]]:
    from hdm_deploy_dev.photos import photo, resize

    out = []
    for name in PHOTOS:
        img = photo(name)
        h, w = img.shape[:2]
        scale = short_side / min(h, w)
        out.append((name, resize(img, (round(w * scale), round(h * scale)))))
    return out


def variants(default: tuple[str, ...]) -> list[tuple[str, tuple[str, ...]]]:
    base = set(default)
    extra = ("offset_conv", "kernel_generator", "attention", "output_head")
    rows = [(f"policy: FP32 {' + '.join(default)}", default)]
    for island in default:
        rows.append((f"− {island}", tuple(sorted(base - {island}))))
    rows.append(("no FP32 islands", ()))
    for island in extra:
        rows.append((f"+ {island}", (*default, island)))
    return rows


def with_masks_output(model):
    """The FP32 export plus the DCP call's output as graph output ``dcp_masks``."""
    import onnx

    from hdm_deploy.families.hdm.dcp.export_op import DOMAIN, FUNCTION

    out = onnx.ModelProto()
    out.CopyFrom(model)
    call = next(n for n in out.graph.node if (n.domain, n.op_type) == (DOMAIN, FUNCTION))
    node = onnx.helper.make_node("Identity", [call.output[0]], ["dcp_masks"], name="expose_dcp_masks")
    out.graph.node.append(node)
    out.graph.output.append(onnx.helper.make_tensor_value_info("dcp_masks", onnx.TensorProto.FLOAT, None))
    return out


def fp16_unsafe_constants(model) -> dict[str, int]:
    """Float constants of the DCP function(s) that FP16 cannot represent (out of range / inexactly)."""
    from onnx import numpy_helper

    values = []
    for fn in model.functions:
        for node in fn.node:
            for attr in node.attribute:
                if attr.type == attr.TENSOR and attr.t.data_type == 1:
                    values.append(numpy_helper.to_array(attr.t).ravel())
    flat = np.concatenate(values) if values else np.zeros(0, np.float32)
    with np.errstate(over="ignore"):
        half = flat.astype(np.float16).astype(np.float32)
    overflow = ~np.isfinite(half) & np.isfinite(flat) | (np.abs(flat) > 65504)
    inexact = ~overflow & (half != flat)
    return {"total": int(flat.size), "overflow": int(overflow.sum()), "inexact": int(inexact.sum())}


def session(model):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 2
    return ort.InferenceSession(model.SerializeToString(), opts, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def fp16_coordinates(model):
    """DeformConv sampling coordinates (base + offset) rounded to FP16, as TensorRT's built-in plugin does."""
    import torch
    from torchvision.ops import deform_conv2d

    dcn = model.dcn_block.dcn

    def forward(inp):
        offset, mask = dcn.offsets_and_mask(inp)
        n, _, h, w = offset.shape
        k = torch.arange(9)
        base_y = torch.arange(h, dtype=torch.float32).view(1, 1, h, 1) + (k // 3 - 1).float().view(1, 9, 1, 1)
        base_x = torch.arange(w, dtype=torch.float32).view(1, 1, 1, w) + (k % 3 - 1).float().view(1, 9, 1, 1)
        cy = (base_y + offset[:, 0::2]).half().float() - base_y
        cx = (base_x + offset[:, 1::2]).half().float() - base_x
        snapped = torch.stack((cy, cx), dim=2).reshape(n, 18, h, w)
        return deform_conv2d(inp, snapped, dcn.weight, dcn.bias, padding=dcn.padding, mask=mask)

    original = dcn.forward
    dcn.forward = forward
    try:
        yield
    finally:
        dcn.forward = original


#: PyTorch module/parameter names of the network islands (mirrors export/precision.py's scopes).
ISLAND_PATTERNS = {
    "deform_onnx": r"^dcn_block\.dcn(\.weight|\.bias)?$",
    "offset_conv": r"^dcn_block\.dcn\.conv_offset_mask",
    "kernel_generator": r"^drconv_phy\.conv_kernel",
    "attention": r"\.(calayer|palayer)",
    "output_head": r"^output(\.|$)",
}


def fp16_emulated(model, x, masks, islands: tuple[str, ...]):
    """FP16 network in PyTorch: weights and every module output outside the islands rounded to FP16,
    arithmetic in FP32 (TensorRT's FP16 convolutions accumulate in FP32). Without the ``deform_onnx``
    island the DeformConv coordinates are FP16 too (TensorRT's built-in DeformConv plugin)."""
    import copy

    import torch

    m = copy.deepcopy(model)
    patterns = [re.compile(ISLAND_PATTERNS[i]) for i in islands if i in ISLAND_PATTERNS]

    def in_island(name: str) -> bool:
        return any(p.search(name) for p in patterns)

    def rnd(t):
        return t.half().float() if isinstance(t, torch.Tensor) and t.is_floating_point() else t

    with torch.no_grad():
        for name, p in m.named_parameters():
            if not in_island(name):
                p.copy_(rnd(p))
    handles = [
        mod.register_forward_hook(lambda _m, _i, out: rnd(out))
        for name, mod in m.named_modules()
        if name and not in_island(name)
    ]
    coords = contextlib.nullcontext() if "deform_onnx" in islands else fp16_coordinates(m)
    try:
        with torch.no_grad(), coords:
            return m(rnd(x), masks)
    finally:
        for h in handles:
            h.remove()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoint", default=None, help="HDM checkpoint (default: the bundled sample)")
    ap.add_argument("--size", type=int, default=256, help="short side of the photographs, px")
    args = ap.parse_args(argv)

    import torch
    from rich.console import Console
    from rich.table import Table

    from hdm_deploy.core.errors import first_line
    from hdm_deploy.export.exporter import build_onnx
    from hdm_deploy.families.hdm.checkpoint import load_checkpoint
    from hdm_deploy.families.hdm.family import FAMILY
    from hdm_deploy.families.hdm.model import normalize
    from hdm_deploy.families.hdm.pipeline import enhance
    from hdm_deploy.families.hdm.sample import sample_checkpoint_path
    from hdm_deploy.graph.precision import DEFAULT_ISLANDS, apply_fp16_policy, policy_report

    torch.set_num_threads(2)
    console = Console(width=170)
    path = args.checkpoint or sample_checkpoint_path(must_exist=True)
    model = load_checkpoint(path).float().eval()
    photos = load_photos(args.size)
    t0 = time.perf_counter()
    fp32 = with_masks_output(build_onnx(model, io="float", deform="onnx"))
    console.print(f"[dim]exported FP32 graph ({time.perf_counter() - t0:.0f} s)[/]")

    network = DEFAULT_ISLANDS["onnx"]
    ort_rows = [  # label, network islands, FP32 local functions
        (
            f"ORT: FP16 graph, FP32 islands dcp + {' + '.join(network)} (the policy)",
            network,
            FAMILY.fp32_functions,
        ),
        ("ORT: − dcp (DCP function in FP16)", network, ()),
        ("ORT: no FP32 islands", (), ()),
    ]
    sessions, broken, clipped = {}, {}, {}
    for label, islands, functions in ort_rows:
        try:
            fp16 = apply_fp16_policy(
                fp32, islands, flavour="onnx", fp32_functions=functions, inline_other_functions=not functions
            )
            clipped[label] = policy_report(fp16).clipped_constants
            sessions[label] = session(fp16)
        except Exception as exc:  # reported below the table
            broken[label] = first_line(exc)[:160]
    emulated = [
        (f"PyTorch FP16 emulation: policy (FP32 {' + '.join(network)})", network),
        ("  − deform_onnx (DeformConv coordinates FP16: TensorRT's built-in plugin)", ()),
        *(
            (f"  + {i}", (*network, i))
            for i in ("offset_conv", "kernel_generator", "attention", "output_head")
        ),
    ]
    results: dict[str, list[tuple[float, float, float | None]]] = {
        label: [] for label in [*sessions, *(label for label, _ in emulated)]
    }
    unsafe = fp16_unsafe_constants(fp32)

    for name, rgb in photos:
        ref = enhance(model, rgb, masks="torch")
        ref_img, ref_masks = ref.image_float, ref.masks
        x = np.ascontiguousarray(rgb.transpose(2, 0, 1)[None], dtype=np.float32) / 255.0
        for label, sess in sessions.items():
            y, masks = sess.run([sess.get_outputs()[0].name, "dcp_masks"], {sess.get_inputs()[0].name: x})
            agree = float(np.mean(np.argmax(masks, axis=1) == np.argmax(ref_masks, axis=1)))
            results[label].append((psnr(y, ref_img), float(np.abs(y - ref_img).max()), agree))
        pad = (
            (0, 0),
            (0, 0),
            (0, 4 * ref_masks.shape[-2] - x.shape[2]),
            (0, 4 * ref_masks.shape[-1] - x.shape[3]),
        )
        xt = normalize(torch.from_numpy(np.pad(x, pad, "reflect")))
        for label, islands in emulated:
            y = fp16_emulated(model, xt, torch.from_numpy(ref_masks), islands)
            y = y[:, :, : x.shape[2], : x.shape[3]].clamp(0, 1).numpy()
            results[label].append((psnr(y, ref_img), float(np.abs(y - ref_img).max()), None))
        console.print(f"[dim]{name} {rgb.shape[1]}×{rgb.shape[0]} done ({time.perf_counter() - t0:.0f} s)[/]")

    table = Table(
        title=f"FP16 vs FP32 PyTorch — {getattr(path, 'name', path)}: FP16 graphs in ONNX Runtime CPU, "
        "FP16 network emulated in PyTorch"
    )
    table.add_column("FP16 graph variant (FP32 islands)")
    for name, rgb in photos:
        table.add_column(f"{name} {rgb.shape[1]}×{rgb.shape[0]}", justify="right")
    table.add_column("min PSNR", justify="right")
    table.add_column("masks equal", justify="right")
    for label, cells in results.items():
        low = min(p for p, _, _ in cells)
        style = "green" if low >= TARGET_DB else "red"
        table.add_row(
            label,
            *(f"{p:.1f} dB / {d:.1e}" for p, d, _ in cells),
            f"[{style}]{low:.1f} dB[/]",
            "FP32 DCP" if cells[0][2] is None else f"{100 * min(a for _, _, a in cells):.3f} %",
        )
    for label in broken:
        table.add_row(label, *(["—"] * len(photos)), "[red]no graph[/]", "—")
    console.print(table)
    for label, reason in broken.items():
        console.print(f"[red]{label}[/]: no FP16 graph: {reason}")
    for label, count in clipped.items():
        if count:
            console.print(f"{label}: {count} float constants clipped to FP16's range (±65504)")
    console.print(
        f"DCP function: {unsafe['total']} float constants, {unsafe['overflow']} beyond FP16's range (65504: "
        f"Lanczos weights up to 2^22, box-sum offsets, −FLT_MAX), {unsafe['inexact']} other values FP16 "
        f"cannot hold exactly (integers > 2048, eps); its integer box sums reach 2^24. FP16 cannot run it."
    )
    console.print(
        f"cells: PSNR of the [0,1] output / max |Δ| vs FP32 PyTorch (torch DCP masks); target ≥ {TARGET_DB:.0f} dB, "
        "masks 100 %; 'masks equal' is the worst photo's share of pixels in the same region"
    )
    console.print(
        "ONNX Runtime runs FP16 nodes that lack CPU kernels in FP32 and folds the casts between them, so in "
        "its rows only weights, graph input and island boundaries are FP16; the emulation rows round every "
        "module output too, which is what separates the network islands."
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
