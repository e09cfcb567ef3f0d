"""How long one MHNet training step takes here — why no sample checkpoint is shipped for MHNet.

The published training (``46ba1eb:Deblur/trmash.yml``, ``train.py``): batch 32 of 256×256 GoPro
patches, Adam lr 2e-4, PSNR loss on ``restored[0]``, 4 GPUs. This times forward + backward + Adam
step of the published-size network on the CPU for a few small batches and extrapolates linearly in
pixels to one published step (batch 32 × 256²).

    python scripts/mhnet_train_step.py                   # deblur, batch 1 and 2 of 128×128, 2 steps each
    python scripts/mhnet_train_step.py --variant derain --patch 96
"""

from __future__ import annotations

import argparse
import sys
import time


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--variant", default="deblur", choices=("deblur", "derain"))
    parser.add_argument("--patch", type=int, default=128)
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args(argv)

    import torch

    from hdm_deploy_dev.mhnet_weights import published

    torch.manual_seed(0)
    model = published(args.variant).train()
    opt = torch.optim.Adam(model.parameters(), lr=2e-4)
    rows = []
    for batch in (1, 2):
        x = torch.rand(batch, 3, args.patch, args.patch)
        target = torch.rand_like(x)
        times = []
        for _ in range(args.steps + 1):  # the first step is warm-up
            t0 = time.perf_counter()
            opt.zero_grad()
            mse = ((model(x)[0] - target) ** 2).mean(dim=(1, 2, 3))
            loss = (10 * torch.log10(mse + 1e-8)).mean()  # PSNR loss (published losses.PSNRLoss, up to scale)
            loss.backward()
            opt.step()
            times.append(time.perf_counter() - t0)
        per_px = min(times[1:]) / (batch * args.patch**2)
        rows.append((batch, min(times[1:]), per_px))
        print(
            f"batch {batch} × {args.patch}²: {min(times[1:]):.2f} s/step ({per_px * 1e6:.2f} µs/pixel)",
            flush=True,
        )
    per_px = min(r[2] for r in rows)
    published_step = per_px * 32 * 256**2
    print(
        f"threads {torch.get_num_threads()}; one published step (32 × 256²) ≈ {published_step / 60:.1f} min; "
        f"1000 steps ≈ {published_step * 1000 / 86400:.1f} days"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
