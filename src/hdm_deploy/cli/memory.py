"""``hdm-deploy fits``: for a model and a memory size, the largest frame whole and tiled."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from hdm_deploy.cli.commands import _Command, _existing_model, app, out
from hdm_deploy.cli.render import print_table
from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.core.runner import model_kind
from hdm_deploy.core.sizes import parse_size
from hdm_deploy.graph.metadata import read_metadata
from hdm_deploy.runtime.budget import (
    BudgetError,
    MemoryModel,
    format_bytes,
    largest_frames,
    network_width,
    parse_bytes,
    plan_execution,
)
from hdm_deploy.runtime.tiled import TiledManifest, manifest_path_for

#: frames every answer lists
COMMON = {"1080p": (1920, 1080), "4K": (3840, 2160), "8K": (7680, 4320), "12 MP 4:3": (4000, 3000)}


@app.command("fits", cls=_Command)
def fits_cmd(
    model: Annotated[
        Path, typer.Argument(help="An exported .onnx (with NAME.tiled.json for the tiled path).")
    ],
    memory: Annotated[
        str, typer.Option("--memory", help="Memory size, e.g. 8G (a Jetson Orin Nano).")
    ] = "8G",
    aspect: Annotated[str, typer.Option("--aspect", help="Aspect ratio W:H of the largest frame.")] = "16:9",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Frames per call.")] = 1,
) -> None:
    """What fits in a memory size: the largest frame whole and tiled, and how common frames would run."""
    _existing_model(model)
    if model_kind(model) != "onnx":
        raise HdmDeployError(
            "fits answers for exported ONNX models (the measured memory model is ONNX Runtime's)",
            "export with `hdm-deploy export --tiled` and give the .onnx",
        )
    budget = parse_bytes(memory)
    aw, ah = parse_size(aspect.replace(":", "x"))
    manifest_file = manifest_path_for(model)
    manifest = TiledManifest.load(manifest_file) if manifest_file.exists() else None
    meta = read_metadata(model)
    mm = MemoryModel.load().for_width(network_width(meta))
    if mm.family and meta.get("family", mm.family) != mm.family:
        raise HdmDeployError(
            f"no measured memory model for family {meta.get('family')!r} (the shipped one is {mm.family!r}'s)",
            "measure one with benchmarks/memory_model.py",
        )
    grow = (0, 0)
    if manifest is not None:
        tiled = [s for s in manifest.stages if s.mode == "tiled"]
        grow = (max(sum(s.halo[0]) for s in tiled), max(sum(s.halo[1]) for s in tiled))
    best = largest_frames(mm, budget, aw / ah, tiled=manifest is not None, grow=grow, batch=batch)
    table = Table(
        title=f"{model.name} in {format_bytes(budget)} (batch {batch}, ONNX Runtime CPU)",
        title_justify="left",
    )
    for col in ("frame", "whole frame", "tiled (exact)"):
        table.add_column(col)
    whole_best, tiled_best = best.get("whole"), best.get("tiled")
    table.add_row(
        f"largest {aw}:{ah}",
        f"{whole_best[0]}×{whole_best[1]}" if whole_best else "none",
        (f"{tiled_best[0]}×{tiled_best[1]}" if tiled_best else "none") if manifest else "export --tiled",
    )
    for name, (w, h) in COMMON.items():
        cells = []
        for tiled_ok in (False, True):
            if tiled_ok and manifest is None:
                cells.append("export --tiled")
                continue
            try:
                plan = plan_execution(mm, h, w, batch, budget, tiled=tiled_ok, grow=grow)
            except BudgetError:
                cells.append("no")
                continue
            if plan.mode == "whole":
                cells.append(f"{'whole frame, ' if tiled_ok else 'yes, '}{format_bytes(plan.predicted)}")
            else:
                cells.append(f"tile {plan.tile}, {format_bytes(plan.predicted)}")
        table.add_row(f"{name} {w}×{h}", *cells)
    print_table(out, table)
    src = mm.provenance.get("machine", "?")
    out.print(
        f"[dim]predicted peak RSS from the memory model measured on {src} (docs/memory.md)[/]",
        highlight=False,
    )
