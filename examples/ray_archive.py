"""Enhance a folder tree of photographs with Ray Data (extra ``ray``; docs/serving.md, "Archives").

    python examples/ray_archive.py ARCHIVE/ OUT/ --model model.onnx [--batch 4] [--concurrency 1]

Every image under ``ARCHIVE/`` (sub-folders included) is written to the same relative path under
``OUT/``, in the input's layout (grey stays grey, alpha and 16 bits are kept, as ``hdm-deploy infer``
does). Resumable: outputs that already exist are skipped, so an interrupted run is simply started again
(outputs are written atomically, a killed run leaves no half-written image behind).

How it runs: the driver lists the tree and reads each image's size from its header, and sorts the work
by resolution, so that a batch holds images of one size; Ray Data's ``map_batches`` hands batches to
actors that each hold one runner (ONNX Runtime, TensorRT, or a served model's URL), and an actor runs
each batch's images once per frame size, never padding different sizes into one batch (HDM's dark-channel
prior is computed over the whole frame). Unreadable images are reported and skipped (exit 4).

On a small machine keep ``--concurrency 1`` (one actor): with two 1-CPU actors on 2 CPUs Ray's
scheduler starved the rest of the pipeline.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

from hdm_deploy.core.errors import HdmDeployError, first_line
from hdm_deploy.runtime import load_runner
from hdm_deploy.runtime.image_io import (
    IMAGE_SUFFIXES,
    check_image_header,
    read_image,
    render_output,
    write_image,
)


def plan(archive: Path, out: Path) -> tuple[list[dict], int]:
    """The images still to do, sorted by resolution, and how many already had outputs."""
    todo, done = [], 0
    for path in sorted(archive.rglob("*")):
        if not path.is_file() or path.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        if out.resolve() in path.resolve().parents:  # OUT inside ARCHIVE: never read our own outputs
            continue
        target = out / path.relative_to(archive)
        if target.exists():
            done += 1
            continue
        try:
            w, h = check_image_header(path) or (0, 0)
        except HdmDeployError:
            w, h = 0, 0  # reported by the actor, which reads it
        todo.append({"path": str(path), "out": str(target), "w": w, "h": h})
    todo.sort(key=lambda r: (r["h"], r["w"], r["path"]))
    return todo, done


class Enhancer:
    """A Ray actor holding one runner; enhances a batch of rows, one runner call per frame size."""

    def __init__(self, model: str, threads: int | None = None):
        options = {"threads": threads} if threads and model.endswith(".onnx") else {}
        self.runner = load_runner(model, **options)

    def __call__(self, batch: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        status = ["" for _ in batch["path"]]
        loaded = {}
        for i, path in enumerate(batch["path"]):
            try:
                loaded[i] = read_image(str(path))
            except HdmDeployError as exc:
                status[i] = "skipped: " + first_line(exc)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, image in loaded.items():
            groups.setdefault(image.rgb8.shape, []).append(i)
        for members in groups.values():
            try:
                pred = self.runner(np.stack([loaded[i].rgb8 for i in members]))
            except HdmDeployError as exc:
                for i in members:
                    status[i] = "skipped: " + first_line(exc)
                continue
            for k, i in enumerate(members):
                rgb_float = None if pred.image_float is None else pred.image_float[k].transpose(1, 2, 0)
                target = Path(str(batch["out"][i]))
                target.parent.mkdir(parents=True, exist_ok=True)
                write_image(target, render_output(loaded[i], pred.image[k], rgb_float))
                status[i] = "written"
        return {"path": batch["path"], "status": np.array(status, dtype=object)}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("archive", type=Path)
    ap.add_argument("out", type=Path)
    ap.add_argument("--model", required=True, help=".onnx, .engine, or a served model's URL")
    ap.add_argument("--batch", type=int, default=4, help="images per actor call")
    ap.add_argument("--concurrency", type=int, default=1, help="actors (each holds a runner)")
    ap.add_argument("--cpus-per-actor", type=float, default=1.0)
    ap.add_argument("--threads", type=int, default=None, help="ONNX Runtime threads per actor")
    ap.add_argument("--num-cpus", type=int, default=None, help="CPUs Ray may use (default: all)")
    args = ap.parse_args()

    if not args.archive.is_dir():
        print(f"error: {args.archive} is not a folder", file=sys.stderr)
        return 2
    todo, done = plan(args.archive, args.out)
    print(f"{len(todo)} images to enhance, {done} already done", flush=True)
    if not todo:
        return 0
    import ray

    started = time.perf_counter()
    ray.init(num_cpus=args.num_cpus, include_dashboard=False, log_to_driver=False, configure_logging=False)
    try:
        ctx = ray.data.DataContext.get_current()
        ctx.enable_progress_bars = sys.stderr.isatty()
        ds = ray.data.from_items(todo, override_num_blocks=max(1, len(todo) // max(1, args.batch)))
        results = ds.map_batches(
            Enhancer,
            fn_constructor_args=(args.model, args.threads),
            batch_size=args.batch,
            batch_format="numpy",
            compute=ray.data.ActorPoolStrategy(size=args.concurrency),
            num_cpus=args.cpus_per_actor,
        ).take_all()
    finally:
        ray.shutdown()
    seconds = time.perf_counter() - started
    written = sum(r["status"] == "written" for r in results)
    for r in results:
        if r["status"] != "written":
            print(f"{r['path']}: {r['status']}", file=sys.stderr)
    print(
        f"{written} of {len(todo)} written in {seconds:.1f} s ({written / seconds:.2f} images/s, "
        f"Ray start-up included), {len(todo) - written} skipped, {done} done before",
        flush=True,
    )
    return 4 if written < len(todo) else 0


if __name__ == "__main__":
    os.environ.setdefault("RAY_DEDUP_LOGS", "0")
    sys.exit(main())
