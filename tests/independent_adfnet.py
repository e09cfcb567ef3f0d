"""An independent implementation of the published ADFNet ``Net``, for checkpoint-compatibility tests.

Written from ``shared/reference/adfnet-published-code.md`` alone, sharing no code with
``hdm_deploy.families.adfnet``: a *functional* network that reads a published state dict by key
name, its own modulated deformable conv (bilinear sampling with ``grid_sample``, 8 offset groups,
offset channel 2·(g·9+k) = dy, 2·(g·9+k)+1 = dx), its own dynamic filtering (``F.unfold`` as the
published code), the MFI attention with ``AdaptiveAvgPool2d`` on permuted tensors as published.
It writes checkpoints in the published formats: a raw state dict (RGB/Gray/L, optionally with
thop's ``total_ops``/``total_params`` buffers) or the Real trainer's
``{'epoch', 'state_dict', 'optimizer'}`` with ``module.`` prefixes.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F

KEYS_DIR = Path(__file__).parent / "data" / "adfnet_keys"
KEY_FILES = {
    "rgb": "adf_rgb_keys.txt",
    "gray": "adf_gray_keys.txt",
    "L": "adf_L_keys.txt",
    "real": "adf_real_keys.txt",
}


def published_keys(variant: str) -> list[tuple[str, tuple[int, ...]]]:
    """(key, shape) in the published order, from the reference key lists."""
    out = []
    for line in (KEYS_DIR / KEY_FILES[variant]).read_text().splitlines():
        if line.strip():
            name, _, shape = line.partition(" ")
            out.append((name, tuple(int(s) for s in shape.strip("()").split(",") if s.strip())))
    return out


def scaled_keys(variant: str, width: int | None) -> list[tuple[str, tuple[int, ...]]]:
    """The published keys with every width-derived dimension scaled to ``width`` (32 → width)."""
    keys = published_keys(variant)
    if width is None:
        return keys
    base = 64 if variant == "L" else 32

    def scale(name: str, axis: int, d: int) -> int:
        fixed = (
            axis >= 2  # kernel sizes
            or "conv_offset_mask" in name  # (216, 32): 8 groups × 27, 32 offset channels
            or "conv_ca" in name  # Conv1d(1, 1, 3)
            or ("offset_conv1" in name and axis == 0)  # 32 offset channels
            or ("conv_sa" in name and axis == 1)  # depthwise
            or (name.startswith("head") and axis == 1)  # colours
            or (name.startswith("tail") and axis == 0)
        )
        return d if fixed else d * width // base

    return [(k, tuple(scale(k, a, d) for a, d in enumerate(shape))) for k, shape in keys]


def random_state_dict(
    variant: str = "rgb", width: int | None = None, seed: int = 0
) -> dict[str, torch.Tensor]:
    """Random weights of the published shapes (He-like scale), non-zero deformable offsets."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in scaled_keys(variant, width):
        if name.endswith("bias"):
            t = torch.randn(shape, generator=g) * 0.02
            if "conv_offset_mask" in name:
                t = torch.randn(shape, generator=g) * 0.5  # offsets of about ±0.5 px, masks around 0.5
        else:
            fan_in = math.prod(shape[1:]) if len(shape) > 1 else 1
            if name.startswith("up"):  # ConvTranspose2d weight (Cin, Cout, k, k)
                fan_in = shape[0] * shape[2] * shape[3] // 4
            t = torch.randn(shape, generator=g) * (0.5 / math.sqrt(fan_in))
            if "conv_offset_mask" in name:
                t = torch.randn(shape, generator=g) * 0.02
        state[name] = t.float()
    return state


# ------------------------------------------------------------------ the network, functionally
def conv(sd, name, x, stride=1, padding=1, dilation=1, groups=1):
    return F.conv2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride, padding, dilation, groups)


def lrelu(x):
    return F.leaky_relu(x, 0.2)


def modulated_deform_conv(x, offset, mask, weight, bias, groups=8):
    """DCNv2 (3×3, stride 1, pad 1), each offset group sampling its channels with grid_sample."""
    _, c, h, w = x.shape
    cg = c // groups
    ys = torch.arange(h, dtype=x.dtype).view(1, h, 1)
    xs = torch.arange(w, dtype=x.dtype).view(1, 1, w)
    cols = []  # per group: [N, cg, 9, H, W]
    for gi in range(groups):
        xg = x[:, gi * cg : (gi + 1) * cg]
        taps = []
        for k in range(9):
            i, j = divmod(k, 3)
            dy = offset[:, 2 * (gi * 9 + k)]
            dx = offset[:, 2 * (gi * 9 + k) + 1]
            py = ys + (i - 1) + dy
            px = xs + (j - 1) + dx
            grid = torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)
            s = F.grid_sample(xg, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            taps.append(s * mask[:, gi * 9 + k].unsqueeze(1))
        cols.append(torch.stack(taps, dim=2))
    cols = torch.cat(cols, dim=1)  # [N, C, 9, H, W]
    out = torch.einsum("ock,nckhw->nohw", weight.reshape(weight.shape[0], c, 9), cols)
    return out + bias.view(1, -1, 1, 1)


def dcn(sd, name, x, feature):
    om = conv(sd, f"{name}.conv_offset_mask", feature)
    o1, o2, m = torch.chunk(om, 3, dim=1)
    return modulated_deform_conv(
        x, torch.cat((o1, o2), 1), torch.sigmoid(m), sd[f"{name}.weight"], sd[f"{name}.bias"]
    )


def mfi(x):
    pool = torch.nn.AdaptiveAvgPool2d((1, 1))
    x_hw = pool(x).sigmoid() * 2 * x
    x1 = x_hw.permute(0, 2, 1, 3)
    x_cw = (pool(x1).sigmoid() * 2 * x1).permute(0, 2, 1, 3)
    x2 = x_hw.permute(0, 3, 2, 1)
    x_ch = (pool(x2).sigmoid() * 2 * x2).permute(0, 3, 2, 1)
    return x_cw + x_hw + x_ch


def sekg(sd, name, x):
    sa = conv(sd, f"{name}.conv_sa", x, groups=x.shape[1])
    y = torch.nn.AdaptiveAvgPool2d(1)(x)  # [N, C, 1, 1]
    ca = F.conv1d(
        y.squeeze(-1).transpose(-1, -2), sd[f"{name}.conv_ca.weight"], sd[f"{name}.conv_ca.bias"], padding=1
    )
    return sa + ca.transpose(-1, -2).unsqueeze(-1)


def per_pixel_filter(x, kernel, dilation):
    n, c, h, w = x.shape
    unfolded = F.unfold(x, 3, dilation=dilation, padding=dilation).reshape(n, c, 9, h, w)
    return (unfolded * kernel.reshape(n, c, 9, h, w)).sum(2)


def fe(sd, name, x):
    p = f"{name}.fe"
    r = x + conv(sd, f"{p}.0.conv3", lrelu(conv(sd, f"{p}.0.conv2", conv(sd, f"{p}.0.conv1", x))))
    off = lrelu(conv(sd, f"{p}.1.offset.offset_conv1", r))
    x0 = conv(sd, f"{p}.1.dcn.2", lrelu(dcn(sd, f"{p}.1.dcn.0", r, off)))
    if f"{p}.1.conv.weight" in sd:
        x0 = conv(sd, f"{p}.1.conv", x0, padding=0)
    x1 = lrelu(conv(sd, f"{p}.1.conv1", x0, padding=1, dilation=1))
    x2 = lrelu(conv(sd, f"{p}.1.conv2", x0, padding=3, dilation=3))
    x3 = lrelu(conv(sd, f"{p}.1.conv3", x0, padding=5, dilation=5))
    return conv(sd, f"{p}.1.fusion", mfi(torch.cat([x0, x1, x2, x3], 1)), padding=0) + r


def dfe(sd, name, x):
    p = f"{name}.fe"
    t = conv(sd, f"{p}.0.conv1", x)
    filt = conv(sd, f"{p}.0.dyconv.afg.conv", sekg(sd, f"{p}.0.dyconv.afg.sekg", t), padding=0)
    r = x + conv(sd, f"{p}.0.conv2", lrelu(per_pixel_filter(t, filt, 1)))
    off = lrelu(conv(sd, f"{p}.1.offset.offset_conv1", r))
    y = lrelu(dcn(sd, f"{p}.1.generate_kernel.0", r, off))
    kernel = conv(sd, f"{p}.1.generate_kernel.3", sekg(sd, f"{p}.1.generate_kernel.2", y), padding=0)
    xm = conv(sd, f"{p}.1.conv", r, padding=0) if f"{p}.1.conv.weight" in sd else r
    branches = [lrelu(conv(sd, f"{p}.1.branch_{d}.fuse", per_pixel_filter(xm, kernel, d))) for d in (1, 3, 5)]
    return conv(sd, f"{p}.1.fusion", mfi(torch.cat([xm, *branches], 1)), padding=0) + r


def up(sd, name, x):
    return F.conv_transpose2d(x, sd[f"{name}.weight"], sd[f"{name}.bias"], stride=2, padding=2)


@torch.no_grad()
def net_forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The published ``Net.forward`` on [N, C, H, W] (H, W multiples of 8)."""
    c1 = fe(sd, "fe1", conv(sd, "head", x))
    c2 = fe(sd, "fe2", lrelu(conv(sd, "down1", c1, stride=2)))
    c3 = fe(sd, "fe3", lrelu(conv(sd, "down2", c2, stride=2)))
    cf = fe(sd, "cfe", lrelu(conv(sd, "down3", c3, stride=2)))
    d3 = dfe(sd, "dfe3", up(sd, "up3", cf) + c3)
    d2 = dfe(sd, "dfe2", up(sd, "up2", d3) + c2)
    d1 = dfe(sd, "dfe1", up(sd, "up1", d2) + c1)
    return conv(sd, "tail", d1) + x


@torch.no_grad()
def clean_pipeline(sd: dict[str, torch.Tensor], rgb_uint8) -> torch.Tensor:
    """uint8 RGB [H, W, 3] → float [C, H, W]: /255, reflect pad to ×8 (the published rule), net, clamp, crop."""
    x = torch.from_numpy(rgb_uint8.copy()).permute(2, 0, 1).float().unsqueeze(0) / 255.0
    if sd["head.weight"].shape[1] == 1:
        x = x[:, :1]
    h, w = x.shape[2:]
    ph = ((h + 8) // 8) * 8 - h if h % 8 else 0
    pw = ((w + 8) // 8) * 8 - w if w % 8 else 0
    x = F.pad(x, (0, pw, 0, ph), mode="reflect")
    return net_forward(sd, x).clamp(0, 1)[0, :, :h, :w]


def save_published(sd: dict[str, torch.Tensor], path, fmt: str = "raw", thop: bool = False) -> Path:
    """``raw``: the bare state dict (RGB/Gray trainer; ``thop`` adds stray counter buffers);
    ``real``: ``{'epoch', 'state_dict', 'optimizer'}`` with ``module.`` prefixes."""
    state = dict(sd)
    if thop:
        state["total_ops"] = torch.zeros(1, dtype=torch.float64)
        state["total_params"] = torch.zeros(1, dtype=torch.float64)
        state["head.total_ops"] = torch.zeros(1, dtype=torch.float64)
        state["fe1.fe.0.conv1.total_params"] = torch.zeros(1, dtype=torch.float64)
    if fmt == "real":
        obj = {
            "epoch": 12,
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4}]},
        }
    else:
        obj = state
    torch.save(obj, path)
    return Path(path)
