"""DiffHDR's two networks (torch): the AHDR condition generator and the DDIM noise-prediction UNet.

Written from the published architecture facts (``../shared/reference/diffhdr-published-code.md``):
module trees and parameter names equal the published ones, so ``load_state_dict`` is strict after the
``module.`` prefix is stripped. ``DiffHDRConfig.published()`` is the published size (UNet 75,048,195,
AHDR 556,928 parameters); smaller configs exist for tests.

Numerics kept as published (parity means parity with that code): LeakyReLU slope 0.01 in AHDR and 0.1
in the SFT layer, GroupNorm(32, eps 1e-6), attention scale applied *after* q·k, nearest ×2 upsampling,
asymmetric (0,1,0,1) zero pad before the stride-2 conv, timestep embedding with ln(10000)/(half−1).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn


@dataclass(frozen=True)
class DiffHDRConfig:
    """Sizes of both networks. ``attn_levels``: UNet levels with attention (published: config
    resolution 16 of image_size 128 → level 3)."""

    ch: int = 128
    ch_mult: tuple[int, ...] = (1, 1, 2, 2, 4, 4)
    num_res_blocks: int = 1
    attn_levels: tuple[int, ...] = (3,)
    out_ch: int = 3
    ahdr_in: int = 6  #: channels per exposure: LDR (3) + LDR^2.2/2^ev (3)
    ahdr_feat: int = 64
    sft_nf: int = 128

    @classmethod
    def published(cls) -> DiffHDRConfig:
        return cls()

    @classmethod
    def tiny(cls) -> DiffHDRConfig:
        """Smallest config with every module kind (GroupNorm needs multiples of 32 channels)."""
        return cls(ch=32, ch_mult=(1, 2), num_res_blocks=1, attn_levels=(1,), ahdr_feat=8, sft_nf=16)

    @property
    def temb_ch(self) -> int:
        return 4 * self.ch

    @property
    def patch_multiple(self) -> int:
        """Patch sides must be multiples of this (one halving per level but the last)."""
        return 2 ** (len(self.ch_mult) - 1)

    def as_dict(self) -> dict:
        return asdict(self)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding [sin(t·f_k), cos(t·f_k)], f_k = exp(−k·ln(10000)/(dim/2 − 1)), in float32."""
    half = dim // 2
    scale = math.log(10000) / (half - 1)
    freqs = torch.exp(torch.arange(half, dtype=torch.float32, device=t.device) * -scale)
    args = t.float()[:, None] * freqs[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=1)
    if dim % 2:
        emb = F.pad(emb, (0, 1, 0, 0))
    return emb


def swish(x: torch.Tensor) -> torch.Tensor:
    return x * torch.sigmoid(x)


def group_norm(channels: int) -> nn.GroupNorm:
    return nn.GroupNorm(num_groups=32, num_channels=channels, eps=1e-6, affine=True)


class Upsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2.0, mode="nearest"))


class Downsample(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, 2, 0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.pad(x, (0, 1, 0, 1), mode="constant", value=0.0))


class ResnetBlock(nn.Module):
    def __init__(self, in_channels: int, out_channels: int, temb_channels: int):
        super().__init__()
        self.in_channels, self.out_channels = in_channels, out_channels
        self.norm1 = group_norm(in_channels)
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, 1, 1)
        self.temb_proj = nn.Linear(temb_channels, out_channels)
        self.norm2 = group_norm(out_channels)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1)
        if in_channels != out_channels:
            self.nin_shortcut = nn.Conv2d(in_channels, out_channels, 1, 1, 0)

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(swish(self.norm1(x)))
        h = h + self.temb_proj(swish(temb))[:, :, None, None]
        h = self.conv2(swish(self.norm2(h)))  # dropout 0 at inference
        if self.in_channels != self.out_channels:
            x = self.nin_shortcut(x)
        return x + h


class AttnBlock(nn.Module):
    """Full spatial self-attention; the c^-0.5 scale multiplies the logits after q·k (as published)."""

    def __init__(self, channels: int):
        super().__init__()
        self.norm = group_norm(channels)
        self.q = nn.Conv2d(channels, channels, 1)
        self.k = nn.Conv2d(channels, channels, 1)
        self.v = nn.Conv2d(channels, channels, 1)
        self.proj_out = nn.Conv2d(channels, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.norm(x)
        q, k, v = self.q(h), self.k(h), self.v(h)
        b, c, hh, ww = q.shape
        q = q.reshape(b, c, hh * ww).permute(0, 2, 1)  # b, hw, c
        k = k.reshape(b, c, hh * ww)  # b, c, hw
        w = torch.bmm(q, k) * (int(c) ** (-0.5))
        w = torch.softmax(w, dim=2)
        out = torch.bmm(v.reshape(b, c, hh * ww), w.permute(0, 2, 1)).reshape(b, c, hh, ww)
        return x + self.proj_out(out)


class SFTLayer(nn.Module):
    """Spatial feature transform: fea·(scale+1) + shift, scale/shift from the AHDR feature."""

    def __init__(self, in_nc: int = 64, out_nc: int = 128, nf: int = 128):
        super().__init__()
        self.SFT_scale_conv0 = nn.Conv2d(in_nc, nf, 1)
        self.SFT_scale_conv1 = nn.Conv2d(nf, out_nc, 1)
        self.SFT_shift_conv0 = nn.Conv2d(in_nc, nf, 1)
        self.SFT_shift_conv1 = nn.Conv2d(nf, out_nc, 1)

    def forward(self, fea: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        scale = self.SFT_scale_conv1(F.leaky_relu(self.SFT_scale_conv0(cond), 0.1))
        shift = self.SFT_shift_conv1(F.leaky_relu(self.SFT_shift_conv0(cond), 0.1))
        return fea * (scale + 1) + shift


class AHDR(nn.Module):
    """The condition generator as published: shared conv1, two attention branches, conv2 fusion."""

    def __init__(self, n_channel: int = 6, n_feat: int = 64):
        super().__init__()
        self.conv1 = nn.Conv2d(n_channel, n_feat, 3, padding=1)
        self.conv2 = nn.Conv2d(n_feat * 3, n_feat, 3, padding=1)
        self.att11 = nn.Conv2d(n_feat * 2, n_feat * 2, 3, padding=1)
        self.att12 = nn.Conv2d(n_feat * 2, n_feat, 3, padding=1)
        self.att31 = nn.Conv2d(n_feat * 2, n_feat * 2, 3, padding=1)
        self.att32 = nn.Conv2d(n_feat * 2, n_feat, 3, padding=1)
        self.relu = nn.LeakyReLU()  # slope 0.01

    def forward(self, x1: torch.Tensor, x2: torch.Tensor, x3: torch.Tensor) -> torch.Tensor:
        f1, f2, f3 = (self.relu(self.conv1(x)) for x in (x1, x2, x3))
        a1 = torch.sigmoid(self.att12(self.relu(self.att11(torch.cat((f1, f2), 1)))))
        a3 = torch.sigmoid(self.att32(self.relu(self.att31(torch.cat((f3, f2), 1)))))
        return self.conv2(torch.cat((f1 * a1, f2, f3 * a3), 1))

    def from_condition(self, cond: torch.Tensor) -> torch.Tensor:
        """``cond`` [B, 18, H, W] = [short(6), medium(6), long(6)] → feature [B, n_feat, H, W]."""
        c = cond.shape[1] // 3
        return self(cond[:, :c], cond[:, c : 2 * c], cond[:, 2 * c :])


class _Level(nn.Module):
    pass


class Sinusoid(nn.Module):
    """The parameter-free sinusoidal embedding as a module (no state-dict keys), so exported nodes carry
    its scope and the FP16 policy can keep it FP32 (t·f reaches 960 rad; FP16 spacing there is 0.5)."""

    def __init__(self, dim: int):
        super().__init__()
        self.dim = dim

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        return timestep_embedding(t, self.dim)


class DiffusionUNet(nn.Module):
    """The DDIM UNet of the published config; ``forward(x_t, t, feature)`` → predicted noise.

    The published forward takes cat[cond(18), x_t(3)] and feeds only channels 18: to ``conv_in``; the
    condition reaches the network only through ``feature`` (AHDR output) and the SFT layer, so this
    port takes ``x_t`` alone. ``t`` is float ``[1]`` (broadcast over the patch batch) or ``[B]``.
    """

    def __init__(self, config: DiffHDRConfig | None = None):
        super().__init__()
        cfg = self.config = config or DiffHDRConfig()
        ch, mult, nrb = cfg.ch, tuple(cfg.ch_mult), cfg.num_res_blocks
        self.temb = nn.Module()
        self.temb.dense = nn.ModuleList([nn.Linear(ch, cfg.temb_ch), nn.Linear(cfg.temb_ch, cfg.temb_ch)])
        self.sinusoid = Sinusoid(ch)
        self.conv_in = nn.Conv2d(3, ch, 3, 1, 1)
        in_mult = (1, *mult)
        self.down = nn.ModuleList()
        block_in = ch
        for level, m in enumerate(mult):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_in, block_out = ch * in_mult[level], ch * m
            for _ in range(nrb):
                block.append(ResnetBlock(block_in, block_out, cfg.temb_ch))
                block_in = block_out
                if level in cfg.attn_levels:
                    attn.append(AttnBlock(block_in))
            down = _Level()
            down.block, down.attn = block, attn
            if level != len(mult) - 1:
                down.downsample = Downsample(block_in)
            self.down.append(down)
        self.mid = nn.Module()
        self.mid.block_1 = ResnetBlock(block_in, block_in, cfg.temb_ch)
        self.mid.attn_1 = AttnBlock(block_in)
        self.mid.block_2 = ResnetBlock(block_in, block_in, cfg.temb_ch)
        self.up = nn.ModuleList()
        for level in reversed(range(len(mult))):
            block, attn = nn.ModuleList(), nn.ModuleList()
            block_out = skip_in = ch * mult[level]
            for i in range(nrb + 1):
                if i == nrb:
                    skip_in = ch * in_mult[level]
                block.append(ResnetBlock(block_in + skip_in, block_out, cfg.temb_ch))
                block_in = block_out
                if level in cfg.attn_levels:
                    attn.append(AttnBlock(block_in))
            up = _Level()
            up.block, up.attn = block, attn
            if level != 0:
                up.upsample = Upsample(block_in)
            self.up.insert(0, up)
        self.norm_out = group_norm(block_in)
        self.conv_out = nn.Conv2d(block_in, cfg.out_ch, 3, 1, 1)
        self.SFT_layer = SFTLayer(cfg.ahdr_feat, ch, cfg.sft_nf)

    def time_embedding(self, t: torch.Tensor) -> torch.Tensor:
        temb = self.sinusoid(t)
        return self.temb.dense[1](swish(self.temb.dense[0](temb)))

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, feature: torch.Tensor) -> torch.Tensor:
        temb = self.time_embedding(t)
        nrb, levels = self.config.num_res_blocks, len(self.down)
        hs = [self.SFT_layer(self.conv_in(x_t), feature)]
        for level in range(levels):
            for i in range(nrb):
                h = self.down[level].block[i](hs[-1], temb)
                if len(self.down[level].attn) > 0:
                    h = self.down[level].attn[i](h)
                hs.append(h)
            if level != levels - 1:
                hs.append(self.down[level].downsample(hs[-1]))
        h = self.mid.block_2(self.mid.attn_1(self.mid.block_1(hs[-1], temb)), temb)
        for level in reversed(range(levels)):
            for i in range(nrb + 1):
                h = self.up[level].block[i](torch.cat([h, hs.pop()], dim=1), temb)
                if len(self.up[level].attn) > 0:
                    h = self.up[level].attn[i](h)
            if level != 0:
                h = self.up[level].upsample(h)
        return self.conv_out(swish(self.norm_out(h)))


class DiffHDR(nn.Module):
    """Both networks together: ``unet`` (published ``ddpm_state_dict``) and ``ahdr`` (``cnn_state_dict``).

    ``forward(cond, x_t, t)`` is one published patch evaluation: AHDR on the condition, then the UNet.
    """

    def __init__(self, config: DiffHDRConfig | None = None):
        super().__init__()
        self.config = config or DiffHDRConfig()
        self.unet = DiffusionUNet(self.config)
        self.ahdr = AHDR(self.config.ahdr_in, self.config.ahdr_feat)

    def forward(self, cond: torch.Tensor, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, t, self.ahdr.from_condition(cond))
