"""Plausible random weights for an MHNet (no published checkpoint can be downloaded here, and
training one on 2 CPU cores is not feasible: see docs/mhnet.md). For benchmarks and scripts only.

Fan-in scaled convolutions, LayerNorm gains near 1, non-zero NAFBlock beta/gamma (the published
initialisation is zero, which would make every stage-1 block an identity), MDTA temperatures in
[0.5, 2], and a small ``tail`` so the output is the input plus a residual of ~0.1.
"""

from __future__ import annotations

import math

import torch


def randomize_(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for key, p in model.named_parameters():
            shape = tuple(p.shape)
            if key.endswith(("beta", "gamma")):
                t = torch.randn(shape, generator=g) * 0.2
            elif key.endswith("temperature"):
                t = torch.rand(shape, generator=g) * 1.5 + 0.5
            elif ".norm" in key and key.endswith("weight"):
                t = 1 + 0.2 * torch.randn(shape, generator=g)
            elif key.endswith("bias"):
                t = 0.05 * torch.randn(shape, generator=g)
            else:
                scale = 0.1 if key == "tail.weight" else 0.7
                t = torch.randn(shape, generator=g) * (scale / math.sqrt(math.prod(shape[1:])))
            p.copy_(t)
    return model.eval()


def published(variant: str = "deblur", seed: int = 0):
    """The published-size MHNet (``deblur`` | ``derain``) with :func:`randomize_` weights."""
    from hdm_deploy.families.mhnet.model import VARIANT_CONFIGS, MHNet

    return randomize_(MHNet(VARIANT_CONFIGS[variant]), seed)
