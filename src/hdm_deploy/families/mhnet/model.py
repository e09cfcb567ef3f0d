"""MHNet 2023 (``46ba1eb:Deblur/MHNet.py``, ``Derain/MHNet.py``) re-implemented from the published
description: same modules, attribute names, parameter shapes and arithmetic, so published
``state_dict``s load strictly and outputs agree to float rounding.

Structure (``MHNet.forward``): ``shallow_feat1`` (conv + dual-attention unit) on the input; stage 1, a
NAFNet-style U-Net (``Bottneck``: 4 levels of ``BotBlock`` with [1,1,1,28] blocks, a Restormer MDTA
``Attention`` in the middle, zero-padding its input to ×16 itself); ``concat12`` of the shallow
features with the last decoder output; stage 2 (``CASNet``: four rounds of LayerNorm → CABG of SCAB
blocks, plus the upsampled stage-1 encoder/decoder features); ``tail`` conv + input. Returns
``[final, stage1_image]`` as published; inference uses element 0.

Published quirks kept on purpose: ``MHNet.info`` (a 1×1 conv with bias) is never used but its keys
are in every checkpoint; ``Depth_wise`` ignores its ``bias`` argument (both its convs have biases);
LayerNorm2d puts eps = 1e-6 inside the square root of the biased variance over channels; stage 1
zero-pads internally while ``concat12`` needs H, W % 16 == 0 (the frame path pads outside the net).

The LayerNorm is written with plain tensor ops (mean, subtract, square, mean, sqrt, divide) instead
of the published ``autograd.Function``: the same maths, and ONNX export sees standard ops.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

__all__ = ["VARIANT_CONFIGS", "MHNet", "MHNetConfig", "variant_of"]


@dataclass(frozen=True)
class MHNetConfig:
    """Constructor arguments of the published ``MHNet`` (plus stage 1's block counts)."""

    width: int = 32
    n_feat: int = 64
    num_cab: int = 8
    kernel_size: int = 3
    reduction: int = 4
    enc_blk_nums: tuple[int, ...] = (1, 1, 1, 28)
    dec_blk_nums: tuple[int, ...] = (1, 1, 1, 1)
    heads: int = 8
    in_c: int = 3
    out_c: int = 3

    def as_dict(self) -> dict:
        d = asdict(self)
        d["enc_blk_nums"] = list(self.enc_blk_nums)
        d["dec_blk_nums"] = list(self.dec_blk_nums)
        return d


#: The published defaults: ``MHNet()`` of ``Deblur/MHNet.py`` and of ``Derain/MHNet.py``.
VARIANT_CONFIGS = {"deblur": MHNetConfig(n_feat=64), "derain": MHNetConfig(n_feat=40)}


def variant_of(config: MHNetConfig) -> str:
    """``deblur`` / ``derain`` for the published configurations, else ``custom``."""
    return next((name for name, cfg in VARIANT_CONFIGS.items() if cfg == config), "custom")


def _conv(cin: int, cout: int, k: int, bias: bool = False) -> nn.Conv2d:
    return nn.Conv2d(cin, cout, k, padding=k // 2, bias=bias)


class LayerNorm2d(nn.Module):
    """Channel LayerNorm of NCHW maps: (x − μ_C) / sqrt(σ²_C + eps) · weight + bias (biased σ²)."""

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mu = x.mean(1, keepdim=True)
        centred = x - mu
        var = (centred * centred).mean(1, keepdim=True)
        y = centred / torch.sqrt(var + self.eps)
        return self.weight.view(1, -1, 1, 1) * y + self.bias.view(1, -1, 1, 1)


class SimpleGate(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a, b = x.chunk(2, dim=1)
        return a * b


class DepthWise(nn.Module):
    """Published ``Depth_wise``: depthwise k×k then pointwise 1×1, both with biases."""

    def __init__(self, cin: int, cout: int, k: int):
        super().__init__()
        self.depth_conv = nn.Conv2d(cin, cin, k, 1, 1, groups=cin)
        self.point_conv = nn.Conv2d(cin, cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.point_conv(self.depth_conv(x))


class _SpatialConv(nn.Module):
    """Holds the 5×5 conv under the published name ``SA.spatial.conv``."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(2, 1, 5, padding=2, bias=False)


class SpatialAttention(nn.Module):
    """x · sigmoid(conv5×5([max_C x, mean_C x]))."""

    def __init__(self):
        super().__init__()
        self.spatial = _SpatialConv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], dim=1)
        return x * torch.sigmoid(self.spatial.conv(pooled))


class ChannelAttention(nn.Module):
    """x · sigmoid(1×1 ∘ ReLU ∘ 1×1 (global mean)) — the DAU's ``ca_layer``."""

    def __init__(self, channels: int, reduction: int, bias: bool = False):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(channels, channels // reduction, 1, bias=bias),
            nn.ReLU(),
            nn.Conv2d(channels // reduction, channels, 1, bias=bias),
            nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class DAU(nn.Module):
    """Dual attention unit: conv → gate → conv, then [spatial, channel] attention, 1×1, residual."""

    def __init__(self, n: int, k: int, reduction: int):
        super().__init__()
        self.body = nn.Sequential(_conv(n, n, k), SimpleGate(), _conv(n // 2, n, k))
        self.SA = SpatialAttention()
        self.CA = ChannelAttention(n, reduction)
        self.conv1x1 = nn.Conv2d(n * 2, n, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = self.body(x)
        return self.conv1x1(torch.cat([self.SA(res), self.CA(res)], dim=1)) + x


class ScaLayer(nn.Module):
    """x · (1×1 conv with bias of the global mean) — no sigmoid, as published."""

    def __init__(self, channels: int):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(nn.Conv2d(channels, channels, 1, bias=True))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.conv_du(self.avg_pool(x))


class SCAB(nn.Module):
    def __init__(self, n: int, k: int):
        super().__init__()
        self.body = nn.Sequential(DepthWise(n, n, k), SimpleGate(), DepthWise(n // 2, n, k))
        self.SCA = ScaLayer(n)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SCA(self.body(x)) + x


class CABG(nn.Module):
    def __init__(self, n: int, k: int, num_cab: int):
        super().__init__()
        self.body = nn.Sequential(*[SCAB(n, k) for _ in range(num_cab)], _conv(n, n, k))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x) + x


class UpDSample(nn.Module):
    """Bilinear ×2 (align_corners=False) then a 1×1 conv without bias."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.up = nn.Sequential(
            nn.Upsample(scale_factor=2, mode="bilinear", align_corners=False),
            nn.Conv2d(cin, cout, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.up(x)


class Attention(nn.Module):
    """Restormer MDTA: channel attention per head over L2-normalised spatial vectors."""

    def __init__(self, dim: int, heads: int):
        super().__init__()
        self.num_heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(dim, dim * 3, 1, bias=False)
        self.qkv_dwconv = nn.Conv2d(dim * 3, dim * 3, 3, 1, 1, groups=dim * 3, bias=False)
        self.project_out = nn.Conv2d(dim, dim, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q, k, v = self.qkv_dwconv(self.qkv(x)).chunk(3, dim=1)
        shape = (b, self.num_heads, c // self.num_heads, h * w)
        q = F.normalize(q.reshape(shape), dim=-1)
        k = F.normalize(k.reshape(shape), dim=-1)
        attn = torch.softmax(torch.matmul(q, k.transpose(-2, -1)) * self.temperature, dim=-1)
        out = torch.matmul(attn, v.reshape(shape)).reshape(b, c, h, w)
        return self.project_out(out)


class BotBlock(nn.Module):
    """NAFNet block: LN → 1×1 → dw3×3 → gate → SCA → 1×1 (·beta), LN → 1×1 → gate → 1×1 (·gamma)."""

    def __init__(self, c: int):
        super().__init__()
        dw = c * 2
        self.conv1 = nn.Conv2d(c, dw, 1)
        self.conv2 = nn.Conv2d(dw, dw, 3, padding=1, groups=dw)
        self.conv3 = nn.Conv2d(dw // 2, c, 1)
        self.sca = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Conv2d(dw // 2, dw // 2, 1))
        self.sg = SimpleGate()
        self.conv4 = nn.Conv2d(c, c * 2, 1)
        self.conv5 = nn.Conv2d(c, c, 1)
        self.norm1 = LayerNorm2d(c)
        self.norm2 = LayerNorm2d(c)
        self.beta = nn.Parameter(torch.zeros(1, c, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, c, 1, 1))

    def forward(self, inp: torch.Tensor) -> torch.Tensor:
        x = self.sg(self.conv2(self.conv1(self.norm1(inp))))
        y = inp + self.conv3(x * self.sca(x)) * self.beta
        x = self.conv5(self.sg(self.conv4(self.norm2(y))))
        return y + x * self.gamma


class Bottneck(nn.Module):
    """Stage 1: the U-Net. Returns (image, encoder outputs, decoder outputs)."""

    def __init__(self, cfg: MHNetConfig):
        super().__init__()
        chan = cfg.width
        self.intro = nn.Conv2d(cfg.in_c, chan, 3, padding=1)
        self.ending = nn.Conv2d(chan, cfg.in_c, 3, padding=1)
        self.encoders = nn.ModuleList()
        self.decoders = nn.ModuleList()
        self.ups = nn.ModuleList()
        self.downs = nn.ModuleList()
        for num in cfg.enc_blk_nums:
            self.encoders.append(nn.Sequential(*[BotBlock(chan) for _ in range(num)]))
            self.downs.append(nn.Conv2d(chan, 2 * chan, 2, 2))
            chan *= 2
        self.middle_blks = nn.Sequential(Attention(chan, cfg.heads))
        for num in cfg.dec_blk_nums:
            self.ups.append(nn.Sequential(nn.Conv2d(chan, chan * 2, 1, bias=False), nn.PixelShuffle(2)))
            chan //= 2
            self.decoders.append(nn.Sequential(*[BotBlock(chan) for _ in range(num)]))
        self.padder_size = 2 ** len(self.encoders)

    def check_image_size(self, x: torch.Tensor) -> torch.Tensor:
        """Zero-pad bottom/right to multiples of ``padder_size`` (the published stage-1 padding)."""
        h, w = x.shape[2], x.shape[3]
        m = self.padder_size
        return F.pad(x, (0, (m - w % m) % m, 0, (m - h % m) % m))

    def forward(self, inp: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor], list[torch.Tensor]]:
        inp = self.check_image_size(inp)
        x = self.intro(inp)
        encs = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            x = encoder(x)
            encs.append(x)
            x = down(x)
        x = self.middle_blks(x)
        decs = []
        for decoder, up, skip in zip(self.decoders, self.ups, encs[::-1], strict=True):
            x = decoder(up(x) + skip)
            decs.append(x)
        return self.ending(x) + inp, encs, decs


class CASNet(nn.Module):
    """Stage 2 at full resolution: 4 × (LayerNorm → CABG → + stage-1 encoder/decoder features)."""

    def __init__(self, cfg: MHNetConfig):
        super().__init__()
        n, w, k = cfg.n_feat, cfg.width, cfg.kernel_size
        self.info = nn.Conv2d(w, n, 1, bias=False)
        for i in range(1, 5):
            setattr(self, f"CABG{i}", CABG(n, k, cfg.num_cab))
        self.up_enc1 = UpDSample(w * 2, n)
        self.up_dec1 = UpDSample(w * 2, n)
        self.up_enc2 = nn.Sequential(UpDSample(w * 4, w * 2), UpDSample(w * 2, n))
        self.up_dec2 = nn.Sequential(UpDSample(w * 4, w * 2), UpDSample(w * 2, n))
        self.up_enc3 = nn.Sequential(UpDSample(w * 8, w * 4), UpDSample(w * 4, w * 2), UpDSample(w * 2, n))
        self.up_dec3 = nn.Sequential(UpDSample(w * 8, w * 4), UpDSample(w * 4, w * 2), UpDSample(w * 2, n))
        for side in ("enc", "dec"):
            setattr(self, f"conv_{side}1", nn.Conv2d(w, n, 1, bias=False))
            for i in range(2, 5):
                setattr(self, f"conv_{side}{i}", nn.Conv2d(n, n, 1, bias=False))
        for i in range(1, 5):
            setattr(self, f"norm{i}", LayerNorm2d(n))

    def forward(self, x: torch.Tensor, encs: list[torch.Tensor], decs: list[torch.Tensor]) -> torch.Tensor:
        x = self.info(x)
        ups_enc = (nn.Identity(), self.up_enc1, self.up_enc2, self.up_enc3)
        ups_dec = (nn.Identity(), self.up_dec1, self.up_dec2, self.up_dec3)
        for i in range(4):
            x = getattr(self, f"CABG{i + 1}")(getattr(self, f"norm{i + 1}")(x))
            enc = getattr(self, f"conv_enc{i + 1}")(ups_enc[i](encs[i]))
            dec = getattr(self, f"conv_dec{i + 1}")(ups_dec[i](decs[3 - i]))
            x = x + enc + dec
        return x


class MHNet(nn.Module):
    """The 2023 MHNet; ``MHNet(VARIANT_CONFIGS["deblur"])`` is the published ``MHNet()``."""

    def __init__(self, config: MHNetConfig | None = None):
        super().__init__()
        cfg = self.config = config or MHNetConfig()
        w, n, k = cfg.width, cfg.n_feat, cfg.kernel_size
        self.shallow_feat1 = nn.Sequential(_conv(cfg.in_c, w, k), DAU(w, k, cfg.reduction))
        self.info = nn.Conv2d(w, n, 1)  # unused in forward; in every published state dict
        self.stage1 = Bottneck(cfg)
        self.stage2 = CASNet(cfg)
        self.concat12 = _conv(w * 2, w, k)
        self.tail = _conv(n, cfg.out_c, k)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """``[final image, stage-1 image]`` (published); H and W must be multiples of 16."""
        shallow = self.shallow_feat1(x)
        stage1_img, encs, decs = self.stage1(x)
        feat = self.stage2(self.concat12(torch.cat([shallow, decs[3]], 1)), encs, decs)
        return [self.tail(feat) + x, stage1_img]

    def restore(self, x: torch.Tensor) -> torch.Tensor:
        """The final image only (what the published test script keeps: ``restored[0]``)."""
        return self.forward(x)[0]
