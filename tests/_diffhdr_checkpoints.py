"""Writers of DiffHDR checkpoints in the published ``Hdr_ddpm*.pth.tar`` format, for tests.

Key names and shapes come from the reference key files for the published size (independent of our
model code), or from a shape table for the tiny test size. The file carries what the published
``save_checkpoint`` writes: ``epoch``, ``step``, ``module.``-prefixed ``ddpm_state_dict`` and
``cnn_state_dict``, an ``optimizer`` state, an un-prefixed ``ema_helper`` and two pickled
``argparse.Namespace`` objects (``config`` nesting Namespaces and a ``torch.device``).
"""

from __future__ import annotations

import argparse
import ast
import math
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def published_shapes(which: str) -> dict[str, tuple[int, ...]]:
    """``module.``-prefixed key → shape from ``keys/diffhdr_{unet,ahdr}_keys.txt`` (a copy lives in
    tests/data/ so the tests run without the shared folder)."""
    name = f"diffhdr_{which}_keys.txt"
    path = ROOT / "tests" / "data" / name
    shapes = {}
    for line in path.read_text().splitlines():
        key, _, shape = line.partition(" ")
        shapes[key] = tuple(ast.literal_eval(shape))
    return shapes


def tiny_shapes() -> tuple[dict[str, tuple[int, ...]], dict[str, tuple[int, ...]]]:
    """Shapes of the tiny test config (``DiffHDRConfig.tiny()``), ``module.``-prefixed."""
    from hdm_deploy.families.diffhdr.model import DiffHDR, DiffHDRConfig

    m = DiffHDR(DiffHDRConfig.tiny())
    return (
        {f"module.{k}": tuple(v.shape) for k, v in m.unet.state_dict().items()},
        {f"module.{k}": tuple(v.shape) for k, v in m.ahdr.state_dict().items()},
    )


def random_tensor(key: str, shape: tuple[int, ...], gen: torch.Generator) -> torch.Tensor:
    """Weights that keep activations O(1): fan-in scaled kernels, norms near 1, small biases."""
    if len(shape) >= 2:
        fan_in = math.prod(shape[1:])
        return torch.randn(shape, generator=gen) / math.sqrt(fan_in)
    if ".norm" in key or key.endswith(("norm_out.weight",)):
        return (
            (1 + 0.1 * torch.randn(shape, generator=gen))
            if key.endswith("weight")
            else 0.05 * torch.randn(shape, generator=gen)
        )
    return 0.02 * torch.randn(shape, generator=gen)


def write_published(
    path: Path, unet_shapes: dict, ahdr_shapes: dict, *, seed: int = 0, extra: dict | None = None
) -> dict[str, dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(seed)
    unet = {k: random_tensor(k, s, gen) for k, s in unet_shapes.items()}
    ahdr = {k: random_tensor(k, s, gen) for k, s in ahdr_shapes.items()}
    ema = {k.removeprefix("module."): v + 0.01 * torch.randn(v.shape, generator=gen) for k, v in unet.items()}
    params = [torch.nn.Parameter(v.clone()) for v in unet.values()][:3]
    opt = torch.optim.Adam(params, lr=2e-5)
    sum(p.sum() for p in params).backward()
    opt.step()
    config = argparse.Namespace(
        model=argparse.Namespace(ch=128, ch_mult=[1, 1, 2, 2, 4, 4], ema_rate=0.999),
        diffusion=argparse.Namespace(beta_schedule="linear", num_diffusion_timesteps=1000),
        data=argparse.Namespace(inf_size=512, conditional=True),
        device=torch.device("cpu"),
    )
    obj = {
        "epoch": 12,
        "step": 3000000,
        "ddpm_state_dict": unet,
        "cnn_state_dict": ahdr,
        "optimizer": opt.state_dict(),
        "ema_helper": ema,
        "params": argparse.Namespace(config="hdr.yml", sampling_timesteps=25, seed=61),
        "config": config,
        **(extra or {}),
    }
    torch.save(obj, path)
    return {"unet": unet, "ahdr": ahdr, "ema": ema}


def write_tiny(path: Path, seed: int = 0, **kw) -> dict[str, dict[str, torch.Tensor]]:
    unet, ahdr = tiny_shapes()
    return write_published(path, unet, ahdr, seed=seed, **kw)
