"""An independent, functional implementation of the 2023 MHNet (Deblur/Derain), for the checkpoint,
runner and export tests.

Written from ``shared/reference/mhnet-published-code.md`` and sharing nothing with
``hdm_deploy.families.mhnet``: no modules at all — a forward pass over a plain dict of tensors with
``torch.nn.functional``; channel LayerNorm through ``F.layer_norm`` on an NHWC view, MDTA attention
with ``einsum`` and an explicit clamped norm, PixelShuffle by reshape/permute, global pooling by
``mean``. The key names and shapes are enumerated here from the sheet (the tests compare them with
``shared/reference/keys``), and checkpoints are written as the published ``train.py`` does:
``{'epoch', 'state_dict': DataParallel(net).state_dict(), 'optimizer'}`` (every key ``module.``).
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

PUBLISHED = {
    "deblur": dict(width=32, n_feat=64, num_cab=8, enc=(1, 1, 1, 28), dec=(1, 1, 1, 1), heads=8),
    "derain": dict(width=32, n_feat=40, num_cab=8, enc=(1, 1, 1, 28), dec=(1, 1, 1, 1), heads=8),
}
#: a small network with every structural feature (4 levels, 8 heads, SCAB groups) for fast tests
TINY = dict(width=8, n_feat=8, num_cab=1, enc=(1, 1, 1, 2), dec=(1, 1, 1, 1), heads=8)


def key_shapes(width, n_feat, num_cab, enc, dec, heads, reduction=4) -> dict[str, tuple[int, ...]]:
    """Every state-dict key of ``MHNet(width, n_feat, num_cab)`` with its shape, in module order."""
    s: dict[str, tuple[int, ...]] = {}
    w, n = width, n_feat

    def conv(name, cout, cin, k, bias):
        s[f"{name}.weight"] = (cout, cin, k, k)
        if bias:
            s[f"{name}.bias"] = (cout,)

    def norm(name, c):
        s[f"{name}.weight"] = (c,)
        s[f"{name}.bias"] = (c,)

    def naf(p, c):
        s[f"{p}.beta"] = (1, c, 1, 1)
        s[f"{p}.gamma"] = (1, c, 1, 1)
        conv(f"{p}.conv1", 2 * c, c, 1, True)
        conv(f"{p}.conv2", 2 * c, 1, 3, True)
        conv(f"{p}.conv3", c, c, 1, True)
        conv(f"{p}.sca.1", c, c, 1, True)
        conv(f"{p}.conv4", 2 * c, c, 1, True)
        conv(f"{p}.conv5", c, c, 1, True)
        norm(f"{p}.norm1", c)
        norm(f"{p}.norm2", c)

    conv("shallow_feat1.0", w, 3, 3, False)
    conv("shallow_feat1.1.body.0", w, w, 3, False)
    conv("shallow_feat1.1.body.2", w, w // 2, 3, False)
    conv("shallow_feat1.1.SA.spatial.conv", 1, 2, 5, False)
    conv("shallow_feat1.1.CA.conv_du.0", w // reduction, w, 1, False)
    conv("shallow_feat1.1.CA.conv_du.2", w, w // reduction, 1, False)
    conv("shallow_feat1.1.conv1x1", w, 2 * w, 1, False)
    conv("info", n, w, 1, True)
    conv("stage1.intro", w, 3, 3, True)
    conv("stage1.ending", 3, w, 3, True)
    c = w
    for i, num in enumerate(enc):
        for j in range(num):
            naf(f"stage1.encoders.{i}.{j}", c)
        conv(f"stage1.downs.{i}", 2 * c, c, 2, True)
        c *= 2
    s["stage1.middle_blks.0.temperature"] = (heads, 1, 1)
    conv("stage1.middle_blks.0.qkv", 3 * c, c, 1, False)
    conv("stage1.middle_blks.0.qkv_dwconv", 3 * c, 1, 3, False)
    conv("stage1.middle_blks.0.project_out", c, c, 1, False)
    for i, num in enumerate(dec):
        conv(f"stage1.ups.{i}.0", 2 * c, c, 1, False)
        c //= 2
        for j in range(num):
            naf(f"stage1.decoders.{i}.{j}", c)
    conv("stage2.info", n, w, 1, False)
    for g in range(1, 5):
        for b in range(num_cab):
            p = f"stage2.CABG{g}.body.{b}"
            conv(f"{p}.body.0.depth_conv", n, 1, 3, True)
            conv(f"{p}.body.0.point_conv", n, n, 1, True)
            conv(f"{p}.body.2.depth_conv", n // 2, 1, 3, True)
            conv(f"{p}.body.2.point_conv", n, n // 2, 1, True)
            conv(f"{p}.SCA.conv_du.0", n, n, 1, True)
        conv(f"stage2.CABG{g}.body.{num_cab}", n, n, 3, False)
    chains = {
        1: [(2 * w, n)],
        2: [(4 * w, 2 * w), (2 * w, n)],
        3: [(8 * w, 4 * w), (4 * w, 2 * w), (2 * w, n)],
    }
    for side in ("enc", "dec"):
        for level, chain in chains.items():
            for k, (cin, cout) in enumerate(chain):
                stem = f"stage2.up_{side}{level}" + (f".{k}" if len(chain) > 1 else "")
                conv(f"{stem}.up.1", cout, cin, 1, False)
    for side in ("enc", "dec"):
        conv(f"stage2.conv_{side}1", n, w, 1, False)
        for i in range(2, 5):
            conv(f"stage2.conv_{side}{i}", n, n, 1, False)
    for i in range(1, 5):
        norm(f"stage2.norm{i}", n)
    conv("concat12", w, 2 * w, 3, False)
    conv("tail", 3, n, 3, False)
    return s


def random_state(arch: dict, seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights of a plausible scale: fan-in scaled convs, LayerNorm gains near 1, non-zero
    NAFBlock beta/gamma (the published init is zero, which would hide the residual branches)."""
    g = torch.Generator().manual_seed(seed)
    out = {}
    for key, shape in key_shapes(**arch).items():
        if key.endswith(("beta", "gamma")):
            t = torch.randn(shape, generator=g) * 0.2
        elif key.endswith("temperature"):
            t = torch.rand(shape, generator=g) * 1.5 + 0.5
        elif ".norm" in key and key.endswith("weight"):
            t = 1 + 0.2 * torch.randn(shape, generator=g)
        elif key.endswith("bias"):
            t = 0.05 * torch.randn(shape, generator=g)
        else:
            fan_in = math.prod(shape[1:])
            scale = 0.1 if key == "tail.weight" else 0.7  # a residual of ~0.1: few clipped pixels
            t = torch.randn(shape, generator=g) * (scale / math.sqrt(fan_in))
        out[key] = t
    return out


def save_published(state: dict[str, torch.Tensor], path: Path) -> Path:
    """``torch.save`` as ``Deblur/train.py`` does, DataParallel-wrapped (``module.`` keys)."""
    first = next(iter(state.values()))
    torch.save(
        {
            "epoch": 3000,
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer": {
                "state": {0: {"step": torch.tensor(1.0), "exp_avg": torch.zeros_like(first)}},
                "param_groups": [{"lr": 2e-4, "betas": (0.9, 0.999), "eps": 1e-8, "params": [0]}],
            },
        },
        path,
    )
    return path


# ------------------------------------------------------------------------------------------------ forward
def _conv(sd, name, x, pad=None, groups=1, stride=1):
    wgt = sd[f"{name}.weight"]
    pad = wgt.shape[-1] // 2 if pad is None else pad
    return F.conv2d(x, wgt, sd.get(f"{name}.bias"), stride=stride, padding=pad, groups=groups)


def _ln(sd, name, x):
    return F.layer_norm(
        x.permute(0, 2, 3, 1), (x.shape[1],), sd[f"{name}.weight"], sd[f"{name}.bias"], 1e-6
    ).permute(0, 3, 1, 2)


def _gate(x):
    half = x.shape[1] // 2
    return x[:, :half] * x[:, half:]


def _gap(x):
    return x.mean(dim=(2, 3), keepdim=True)


def _shuffle(x):
    b, c4, h, w = x.shape
    c = c4 // 4
    return x.reshape(b, c, 2, 2, h, w).permute(0, 1, 4, 2, 5, 3).reshape(b, c, 2 * h, 2 * w)


def _naf(sd, p, inp):
    c = inp.shape[1]
    x = _conv(sd, f"{p}.conv1", _ln(sd, f"{p}.norm1", inp))
    x = _gate(_conv(sd, f"{p}.conv2", x, groups=2 * c))
    x = x * _conv(sd, f"{p}.sca.1", _gap(x))
    y = inp + _conv(sd, f"{p}.conv3", x) * sd[f"{p}.beta"]
    x = _conv(sd, f"{p}.conv5", _gate(_conv(sd, f"{p}.conv4", _ln(sd, f"{p}.norm2", y))))
    return y + x * sd[f"{p}.gamma"]


def _mdta(sd, p, x):
    b, c, h, w = x.shape
    heads = sd[f"{p}.temperature"].shape[0]
    qkv = _conv(sd, f"{p}.qkv_dwconv", _conv(sd, f"{p}.qkv", x), groups=3 * c)
    q, k, v = (t.reshape(b, heads, c // heads, h * w) for t in torch.split(qkv, c, dim=1))
    q = q / q.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
    k = k / k.pow(2).sum(-1, keepdim=True).sqrt().clamp_min(1e-12)
    logits = torch.einsum("bhcn,bhdn->bhcd", q, k) * sd[f"{p}.temperature"].reshape(1, heads, 1, 1)
    out = torch.einsum("bhcd,bhdn->bhcn", torch.softmax(logits, dim=-1), v)
    return _conv(sd, f"{p}.project_out", out.reshape(b, c, h, w))


def _count(sd, prefix):
    return len({k[len(prefix) :].split(".")[0] for k in sd if k.startswith(prefix)})


def forward(sd: dict[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """The final stage image (``restored[0]``) of float NCHW ``x`` whose H, W are multiples of 16."""
    # shallow features: conv, dual attention unit
    s = _conv(sd, "shallow_feat1.0", x)
    r = _conv(sd, "shallow_feat1.1.body.2", _gate(_conv(sd, "shallow_feat1.1.body.0", s)))
    spatial = torch.cat([r.max(dim=1, keepdim=True).values, r.mean(dim=1, keepdim=True)], 1)
    sa = r * torch.sigmoid(_conv(sd, "shallow_feat1.1.SA.spatial.conv", spatial))
    ca = r * torch.sigmoid(
        _conv(sd, "shallow_feat1.1.CA.conv_du.2", F.relu(_conv(sd, "shallow_feat1.1.CA.conv_du.0", _gap(r))))
    )
    shallow = _conv(sd, "shallow_feat1.1.conv1x1", torch.cat([sa, ca], 1)) + s
    # stage 1 (its own zero pad to 16, a no-op here)
    h, w = x.shape[2:]
    y = _conv(sd, "stage1.intro", F.pad(x, (0, -w % 16, 0, -h % 16)))
    levels = _count(sd, "stage1.encoders.")
    encs = []
    for i in range(levels):
        for j in range(_count(sd, f"stage1.encoders.{i}.")):
            y = _naf(sd, f"stage1.encoders.{i}.{j}", y)
        encs.append(y)
        y = _conv(sd, f"stage1.downs.{i}", y, pad=0, stride=2)
    y = _mdta(sd, "stage1.middle_blks.0", y)
    decs = []
    for i in range(levels):
        y = _shuffle(_conv(sd, f"stage1.ups.{i}.0", y)) + encs[levels - 1 - i]
        for j in range(_count(sd, f"stage1.decoders.{i}.")):
            y = _naf(sd, f"stage1.decoders.{i}.{j}", y)
        decs.append(y)
    # stage 2
    f = _conv(sd, "stage2.info", _conv(sd, "concat12", torch.cat([shallow, decs[-1]], 1)))
    num_cab = _count(sd, "stage2.CABG1.body.") - 1

    def up(prefix, t, steps):
        for k in range(steps):
            stem = prefix + (f".{k}" if steps > 1 else "")
            t = _conv(
                sd, f"{stem}.up.1", F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)
            )
        return t

    for g in range(1, 5):
        t = _ln(sd, f"stage2.norm{g}", f)
        r = t
        for b in range(num_cab):
            p = f"stage2.CABG{g}.body.{b}"
            n = r.shape[1]
            a = _conv(sd, f"{p}.body.0.point_conv", _conv(sd, f"{p}.body.0.depth_conv", r, groups=n))
            a = _gate(a)
            a = _conv(sd, f"{p}.body.2.point_conv", _conv(sd, f"{p}.body.2.depth_conv", a, groups=n // 2))
            r = a * _conv(sd, f"{p}.SCA.conv_du.0", _gap(a)) + r
        f = _conv(sd, f"stage2.CABG{g}.body.{num_cab}", r) + t
        e_in = encs[g - 1] if g == 1 else up(f"stage2.up_enc{g - 1}", encs[g - 1], g - 1)
        d_in = decs[-1] if g == 1 else up(f"stage2.up_dec{g - 1}", decs[4 - g], g - 1)
        f = f + _conv(sd, f"stage2.conv_enc{g}", e_in) + _conv(sd, f"stage2.conv_dec{g}", d_in)
    return _conv(sd, "tail", f) + x


def restore_frames(sd: dict[str, torch.Tensor], frames: np.ndarray) -> np.ndarray:
    """uint8 [N,H,W,3] → float [N,3,H,W] in [0,1]: reflect-pad to 16, forward, crop, clamp."""
    h, w = frames.shape[1:3]
    padded = np.pad(frames, ((0, 0), (0, -h % 16), (0, -w % 16), (0, 0)), mode="reflect")
    x = torch.from_numpy(padded.astype(np.float32) / 255).permute(0, 3, 1, 2)
    with torch.no_grad():
        return forward(sd, x)[:, :, :h, :w].clamp(0, 1).numpy()
