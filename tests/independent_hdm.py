"""An independent implementation of the published DR_Net_phy, for checkpoint-compatibility tests.

Written from ``shared/reference/hdm-published-code.md`` alone and sharing no code with
``hdm_deploy.models``: the deformable conv samples with ``grid_sample`` (not torchvision), and the
region conv uses the published grouped-conv trick (groups = batch). It saves checkpoints the way
the published training did: ``torch.save({'model': DataParallel(net).state_dict()})``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

C = 64


class _CA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.ca = nn.Sequential(nn.Conv2d(c, c // 8, 1), nn.ReLU(), nn.Conv2d(c // 8, c, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.ca(self.avg_pool(x))


class _PA(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.pa = nn.Sequential(nn.Conv2d(c, c // 8, 1), nn.ReLU(), nn.Conv2d(c // 8, 1, 1), nn.Sigmoid())

    def forward(self, x):
        return x * self.pa(x)


class _Block(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c, 3, padding=1)
        self.act1 = nn.ReLU()
        self.conv2 = nn.Conv2d(c, c, 3, padding=1)
        self.calayer = _CA(c)
        self.palayer = _PA(c)

    def forward(self, x):
        r = self.act1(self.conv1(x)) + x
        return self.palayer(self.calayer(self.conv2(r))) + x


class _Group(nn.Module):
    def __init__(self, c, n):
        super().__init__()
        self.gp = nn.Sequential(*[_Block(c) for _ in range(n)], nn.Conv2d(c, c, 3, padding=1))

    def forward(self, x):
        return self.gp(x) + x


class _DCN(nn.Module):
    """DCNv2 with bilinear sampling by grid_sample (align_corners=True ⇒ pixel-centre coordinates)."""

    def __init__(self, c):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(c, c, 3, 3) * 0.05)
        self.bias = nn.Parameter(torch.randn(c) * 0.01)
        self.conv_offset_mask = nn.Conv2d(c, 27, 3, padding=1)

    def forward(self, x):
        _, c, h, w = x.shape
        om = self.conv_offset_mask(x)
        dy, dx, m = om[:, 0:18:2], om[:, 1:18:2], torch.sigmoid(om[:, 18:27])
        # chunk(3) then cat(o1, o2): channels 0..17 are (y, x) pairs per tap, 18..26 the mask
        ys = torch.arange(h, dtype=x.dtype).view(1, h, 1)
        xs = torch.arange(w, dtype=x.dtype).view(1, 1, w)
        cols = []
        for k in range(9):
            i, j = divmod(k, 3)
            py = ys + (i - 1) + dy[:, k]
            px = xs + (j - 1) + dx[:, k]
            grid = torch.stack((2 * px / max(w - 1, 1) - 1, 2 * py / max(h - 1, 1) - 1), dim=-1)
            sampled = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
            cols.append(sampled * m[:, k : k + 1])
        col = torch.stack(cols, dim=2)  # [b, c, 9, h, w]
        return torch.einsum("bckhw,ock->bohw", col, self.weight.view(c, c, 9)) + self.bias.view(1, -1, 1, 1)


class _DCNBlock(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.dcn = _DCN(c)


class _DRPhy(nn.Module):
    def __init__(self, c, regions=5, with_guide=False):
        super().__init__()
        self.conv_kernel = nn.Sequential(
            nn.AdaptiveAvgPool2d((3, 3)),
            nn.Conv2d(c, regions * regions, 1),
            nn.Sigmoid(),
            nn.Conv2d(regions * regions, regions * c * c, 1, groups=regions),
        )
        if with_guide:
            self.conv_guide = nn.Conv2d(c, regions, 3, padding=1)

    def forward(self, x, mask):
        b, c, h, w = x.shape
        kernel = self.conv_kernel(x).view(-1, c, 3, 3)  # [b*5*c, c, 3, 3]
        out = F.conv2d(x.reshape(1, b * c, h, w), kernel, padding=1, groups=b).view(b, 5, c, h, w)
        return (out * mask).sum(1)


def _up(c):
    return nn.Sequential(
        nn.ConvTranspose2d(c, c, 4, 2, 1), nn.ReflectionPad2d((1, 0, 1, 0)), nn.AvgPool2d(2, 1), nn.ReLU()
    )


class _Mix(nn.Module):
    def __init__(self, m):
        super().__init__()
        self.w = nn.Parameter(torch.tensor([m]))

    def forward(self, a, b):
        f = torch.sigmoid(self.w)
        return a * f + b * (1 - f)


class PublishedHDM(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv0 = nn.Sequential(nn.Conv2d(3, C, 5, 1, 2), nn.ReLU())
        self.conv1 = nn.Sequential(nn.Conv2d(C, C, 3, 1, 1), nn.Conv2d(C, C, 3, 2, 1), nn.ReLU())
        self.conv2 = nn.Sequential(nn.Conv2d(C, C, 3, 1, 1), nn.Conv2d(C, C, 3, 2, 1), nn.ReLU())
        self.FAB = nn.Sequential(_Group(C, 9), _Group(C, 9), _Group(C, 9), nn.ReLU())
        self.deconv1, self.deconv2 = _up(C), _up(C)
        self.output = nn.Sequential(
            nn.Conv2d(C, C, 5, 1, 2), nn.Conv2d(C, C, 5, 1, 2), nn.Conv2d(C, 3, 5, 1, 2), nn.Tanh()
        )
        self.drconv = _DRPhy(C, with_guide=True)
        self.drconv_phy = _DRPhy(C)
        self.dcn_block = _DCNBlock(C)
        self.mix1, self.mix2, self.mix3, self.mix4 = _Mix(-1.0), _Mix(-0.6), _Mix(-0.5), _Mix(-0.5)

    def forward(self, x, mask):
        res1 = self.conv1(self.conv0(x))
        res2 = self.conv2(res1)
        x = self.FAB(res2)
        for _ in range(2):
            x = self.drconv_phy(self.dcn_block.dcn(x), mask)
        x = self.deconv1(self.mix1(res2, x))
        return self.output(self.deconv2(self.mix2(res1, x)))


def make_published_checkpoint(path, seed: int = 0) -> PublishedHDM:
    """Random weights with clearly non-zero offsets, saved as {'model': {'module.…': tensor}}."""
    torch.manual_seed(seed)
    net = PublishedHDM()
    with torch.no_grad():
        net.dcn_block.dcn.conv_offset_mask.weight.normal_(0, 0.02)
        net.dcn_block.dcn.conv_offset_mask.bias.uniform_(-1.0, 1.0)
        net.output[2].weight.mul_(4)  # a non-trivial (not near-constant) output …
        net.output[2].bias.fill_(0.5)  # … centred in [0, 1] rather than clamped at 0
    torch.save({"model": {f"module.{k}": v for k, v in net.state_dict().items()}}, path)
    return net.eval()


def published_pipeline(net: PublishedHDM, rgb_uint8, masks) -> torch.Tensor:
    """ToTensor → Normalize(mean, std) → net(x, masks) → clamp(0, 1); float [3, H, W]."""
    x = torch.from_numpy(rgb_uint8).permute(2, 0, 1).float().div(255)
    mean = torch.tensor([0.64, 0.6, 0.58]).view(3, 1, 1)
    std = torch.tensor([0.14, 0.15, 0.152]).view(3, 1, 1)
    with torch.no_grad():
        return net(((x - mean) / std)[None], torch.as_tensor(masks)[None]).clamp(0, 1)[0]
