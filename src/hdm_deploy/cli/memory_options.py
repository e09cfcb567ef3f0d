"""Memory-budget options of ``infer``/``bench``/``export`` and their reporting (no commands here:
``fits`` is in :mod:`hdm_deploy.cli.memory`)."""

from __future__ import annotations

from typing import Annotated, Any

import typer
from rich.console import Console

from hdm_deploy.core.runner import Runner
from hdm_deploy.runtime.budget import BudgetRunner, ExecutionPlan, OverlapRunner, parse_bytes

MaxMemoryOption = Annotated[
    str | None,
    typer.Option(
        "--max-memory",
        help="ONNX models: peak memory budget, e.g. 3G; picks the whole frame or the exact tiled path "
        "(export --tiled) and its tile size from the measured memory model (docs/memory.md).",
    ),
]
TileOption = Annotated[
    int | None,
    typer.Option("--tile", min=4, help="ONNX models: force the tiled path with this tile size (pixels)."),
]
OverlapOption = Annotated[
    int | None,
    typer.Option(
        "--overlap",
        min=0,
        help="ONNX models: APPROXIMATE overlap tiling of the whole graph (tiles of --tile, default 512, "
        "overlapping by this many pixels); its PSNR vs the whole frame is measured and printed.",
    ),
]
TiledExportOption = Annotated[
    bool,
    typer.Option(
        "--tiled",
        help="Also write the stage graphs of the exact tiled path (NAME.<stage>.onnx, NAME.tiled.json).",
        metavar="",
    ),
]


def memory_options(max_memory: str | None, tile: int | None, overlap: int | None) -> dict[str, Any]:
    """The runner options for the memory flags that were given (validated: a bad size is exit 2)."""
    options: dict[str, Any] = {}
    if max_memory is not None:
        options["max_memory"] = parse_bytes(max_memory)
    if tile is not None:
        options["tile"] = tile
    if overlap is not None:
        options["overlap"] = overlap
    return options


def watch_memory_plan(runner: Runner, console: Console) -> None:
    """Print each budget decision once, and every overlap-tiling PSNR (never silently inexact)."""
    if isinstance(runner, BudgetRunner):
        seen: set[str] = set()

        def on_plan(plan: ExecutionPlan) -> None:
            text = plan.describe()
            if text not in seen:
                seen.add(text)
                console.print(f"[dim]memory plan: {text}[/]", highlight=False)

        runner.on_plan = on_plan
    elif isinstance(runner, OverlapRunner):
        runner.report = lambda line: console.print(f"[yellow]{line}[/]", highlight=False)


def report_tiled_export(out: Console, result: Any) -> None:
    """One line per tiled-export check: the tiled path vs the whole-frame graph."""
    for r in getattr(result, "tiled", None) or []:
        out.print(
            f"tiled vs whole {'×'.join(map(str, r['shape']))}: {r['identical_pct']:.4f} % identical, "
            f"max {r['max_level']} level, masks equal {all(r['extras_equal'].values())} ({r['tiles']} tiles)",
            highlight=False,
        )
    if getattr(result, "tiled_manifest", None):
        out.print(f"[bold green]wrote[/] {result.tiled_manifest} and its stage graphs", highlight=False)
