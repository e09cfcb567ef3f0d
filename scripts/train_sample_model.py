#!/usr/bin/env python
"""Re-create the bundled sample checkpoint ``src/hdm_deploy/assets/hdm_sample.pk``.

HDM at the published width (64 channels, 3 groups × 9 blocks) trained briefly on synthetic haze
(``hdm_deploy_dev.synthetic``) made from scikit-image's bundled photographs, with the published
(reference) DCP masks computed on every hazy image. It is a realistic stand-in for the published
``hdm_haze_sots.pk`` — same format, non-zero deformable offsets, meaningful masks — not a
state-of-the-art dehazer. Deterministic for a given seed and torch build (CPU).

The bundled file was made in two stages (≈ 55 min on 2 CPU cores): the deformable conv's offset
predictor starts at zero (as in DCNv2) and moves slowly at the network's learning rate, so a second
stage trains it with a larger rate until the offsets are clearly non-zero:

    python scripts/train_sample_model.py --steps 1500
    python scripts/train_sample_model.py --resume src/hdm_deploy/assets/hdm_sample.pk --steps 400 --offset-lr-mult 25 --seed 1
    python scripts/train_sample_model.py --steps 50 -o /tmp/quick.pk   # smoke run
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from hdm_deploy.core.fs import atomic_write_text
from hdm_deploy.families.hdm.checkpoint import load_checkpoint_with_meta, save_checkpoint
from hdm_deploy.families.hdm.dcp.reference import region_masks
from hdm_deploy.families.hdm.model import HDM, HDMConfig, normalize
from hdm_deploy.families.hdm.pipeline import enhance
from hdm_deploy.families.hdm.sample import sample_checkpoint_path
from hdm_deploy_dev.synthetic import HELD_OUT_PHOTOS, TRAIN_PHOTOS, Haze, depth_for, load_photo, psnr


def make_pairs(names, variants: int, rng: np.random.Generator):
    """(clean uint8, hazy uint8, masks [5,1,h/4,w/4]) per photo × haze variant, sizes cropped to ×4."""
    pairs = []
    for name in names:
        clean = load_photo(name)
        h, w = (clean.shape[0] // 4) * 4, (clean.shape[1] // 4) * 4
        clean = clean[:h, :w]
        for _ in range(variants):
            depth = depth_for(name, clean.shape[:2], rng)[:h, :w]
            hazy = Haze.random(rng).apply(clean, depth)
            pairs.append((clean, hazy, region_masks(hazy)))
    return pairs


def sample_batch(pairs, batch: int, crop: int, rng: np.random.Generator):
    xs, ys, ms = [], [], []
    for _ in range(batch):
        clean, hazy, masks = pairs[rng.integers(len(pairs))]
        h, w = clean.shape[:2]
        top = 4 * rng.integers((h - crop) // 4 + 1)
        left = 4 * rng.integers((w - crop) // 4 + 1)
        c = clean[top : top + crop, left : left + crop]
        z = hazy[top : top + crop, left : left + crop]
        m = masks[:, :, top // 4 : (top + crop) // 4, left // 4 : (left + crop) // 4]
        if rng.random() < 0.5:
            c, z, m = c[:, ::-1], z[:, ::-1], m[..., ::-1]
        xs.append(z)
        ys.append(c)
        ms.append(m)
    to_t = lambda a: torch.from_numpy(np.ascontiguousarray(np.stack(a))).permute(0, 3, 1, 2).float() / 255  # noqa: E731
    return normalize(to_t(xs)), to_t(ys), torch.from_numpy(np.ascontiguousarray(np.stack(ms)))


def mean_abs_offset(model: HDM, hazy: np.ndarray, masks: np.ndarray) -> float:
    """Mean |offset| in pixels (1/4-resolution grid) of the deformable conv on one image."""
    captured = []
    hook = model.dcn_block.dcn.register_forward_hook(
        lambda mod, inp, out: captured.append(mod.offsets_and_mask(inp[0])[0].abs().mean().item())
    )
    with torch.inference_mode():
        x = torch.from_numpy(hazy).permute(2, 0, 1)[None].float() / 255
        model(normalize(x), torch.from_numpy(masks)[None])
    hook.remove()
    return float(np.mean(captured))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--steps", type=int, default=2000)
    ap.add_argument("--batch", type=int, default=6)
    ap.add_argument("--crop", type=int, default=80)
    ap.add_argument("--lr", type=float, default=4e-4)
    ap.add_argument("--variants", type=int, default=6, help="haze variants per training photo")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    ap.add_argument("--resume", type=Path, help="start from this checkpoint (its training report is kept)")
    ap.add_argument(
        "--offset-lr-mult", type=float, default=1.0, help="learning-rate factor of the offset conv"
    )
    ap.add_argument("-o", "--output", type=Path, default=sample_checkpoint_path(must_exist=False))
    args = ap.parse_args()

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rng = np.random.default_rng(args.seed)
    t0 = time.time()
    train = make_pairs(TRAIN_PHOTOS, args.variants, rng)
    held_out = make_pairs(HELD_OUT_PHOTOS, 2, np.random.default_rng(args.seed + 1))
    print(f"data: {len(train)} training / {len(held_out)} held-out hazy images ({time.time() - t0:.1f} s)")

    previous = None
    if args.resume:
        model, meta = load_checkpoint_with_meta(args.resume)
        model = model.float().train()
        previous = meta.get("training") if isinstance(meta, dict) else None
    else:
        model = HDM(HDMConfig()).train()
    offset_params = list(model.dcn_block.dcn.conv_offset_mask.parameters())
    offset_ids = {id(p) for p in offset_params}
    groups = [
        {"params": [p for p in model.parameters() if id(p) not in offset_ids], "lr": args.lr},
        {"params": offset_params, "lr": args.lr * args.offset_lr_mult},
    ]
    opt = torch.optim.Adam(groups, betas=(0.9, 0.999))
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 0.5 * (1 + math.cos(math.pi * s / args.steps)))
    t0, running = time.time(), []
    for step in range(1, args.steps + 1):
        x, y, m = sample_batch(train, args.batch, args.crop, rng)
        loss = F.l1_loss(model(x, m), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        sched.step()
        running.append(loss.item())
        if step % 50 == 0 or step == args.steps:
            rate = (time.time() - t0) / step
            print(f"step {step}/{args.steps}  L1 {np.mean(running[-50:]):.4f}  {rate:.2f} s/step", flush=True)

    model.eval()
    report = {
        "steps": args.steps,
        "batch": args.batch,
        "crop": args.crop,
        "lr": args.lr,
        "seed": args.seed,
        "resumed_from": str(args.resume) if args.resume else None,
        "offset_lr_mult": args.offset_lr_mult,
        "previous_stage": previous,
        "train_photos": list(TRAIN_PHOTOS),
        "held_out_photos": list(HELD_OUT_PHOTOS),
        "train_seconds": round(time.time() - t0, 1),
        "held_out": [],
    }
    for i, (clean, hazy, masks) in enumerate(held_out):
        pred = enhance(model, hazy, masks[None]).image[0]
        report["held_out"].append(
            {
                "image": f"{HELD_OUT_PHOTOS[i // 2]}#{i % 2}",
                "psnr_hazy": round(float(psnr(hazy / 255.0, clean / 255.0)), 2),
                "psnr_output": round(float(psnr(pred / 255.0, clean / 255.0)), 2),
                "mean_abs_offset_px": round(mean_abs_offset(model, hazy, masks), 4),
            }
        )
    for row in report["held_out"]:
        print(row)
    save_checkpoint(model, args.output, half=True, metadata={"training": report})
    atomic_write_text(args.output.with_suffix(".json"), json.dumps(report, indent=2) + "\n")
    print(f"saved {args.output} ({args.output.stat().st_size / 1e6:.1f} MB)")


if __name__ == "__main__":
    main()
