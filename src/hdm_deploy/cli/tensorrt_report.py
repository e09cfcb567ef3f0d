"""Rich rendering for ``build-engine`` and ``doctor`` (kept out of cli.py so the commands stay thin)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from hdm_deploy.tensorrt.builder import build_engine, make_progress_monitor
from hdm_deploy.tensorrt.doctor import (
    KNOWN,
    check_graph,
    detect_versions,
    guide_for,
    nearest_known,
    plugin_available,
)


def run_build_engine(  # pragma: no cover - needs TensorRT
    model: Path,
    output: Path | None,
    *,
    console: Console,
    out: Console,
    **options,
) -> None:

    output = output or model.with_suffix(".engine")
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        TextColumn("{task.completed}/{task.total}"),
        console=console,
    ) as bar:
        tasks: dict[str, int] = {}

        def on_phase(phase: str, step: int, steps: int) -> None:
            if phase not in tasks:
                tasks[phase] = bar.add_task(phase, total=max(steps, 1))
            bar.update(tasks[phase], completed=step)

        monitor = None
        try:
            monitor = make_progress_monitor(on_phase)
        except Exception:
            monitor = None
        result = build_engine(
            model, output, log=lambda m: console.print(f"[dim]{m}[/]"), progress=monitor, **options
        )
    s = result.sidecar
    table = Table(title=f"engine {result.engine_path.name}", show_header=False)
    for k, v in (
        ("TensorRT", s.trt_version),
        ("GPU", f"{s.gpu_name or 'unknown'} (sm_{s.compute_capability or '?'})"),
        (
            "precision",
            s.precision
            + (" (strongly typed)" if s.strongly_typed else f" (weakly typed, {s.fp32_layers} FP32 layers)"),
        ),
        ("TF32", "off"),
        ("profile", result.profile.describe()),
        ("plugin", s.plugin_file or "-"),
        ("sidecar", str(result.sidecar_path)),
    ):
        table.add_row(k, str(v))
    out.print(table)


def run_doctor(model: Path | None, trt_versions: list[str], out: Console) -> bool:
    """Print versions, the Jetson guide and (with a model) the op check; False when errors were found."""

    for version in trt_versions:  # a typo in --trt is one line (HdmDeployError), before any probing
        nearest_known(version)
    v = detect_versions()
    table = Table(title="hdm-deploy doctor", show_header=False)
    for name, ver in v.python_packages.items():
        if ver or name in ("torch", "onnxruntime"):
            table.add_row(name, ver or "[dim]not installed[/]")
    table.add_row("TensorRT", v.tensorrt or "[dim]not installed[/]")
    table.add_row("CUDA runtime / driver", f"{v.cuda_runtime or '-'} / {v.cuda_driver or '-'}")
    table.add_row("GPU", ", ".join(v.gpus) or "[dim]none found[/]")
    table.add_row("Jetson (L4T)", v.jetson_l4t or "no")
    guide = guide_for(v.tensorrt, v.jetson_l4t)
    table.add_row(
        "guide", f"{guide[0]} → {guide[1]}" if guide else "x86: docs/jetson.md#x86-gpus (any TensorRT ≥ 8.5)"
    )
    out.print(table)
    if model is None:
        return True

    versions = trt_versions or ([v.tensorrt] if v.tensorrt else list(KNOWN))
    has_plugin = plugin_available()
    ok = True
    for version in versions:
        report = check_graph(model, version, has_plugin)
        rows = [i for i in report.issues if i.severity != "info"]
        title = f"{model.name} vs TensorRT {version} parser (table {report.table}, {report.ops} nodes)"
        if not rows:
            out.print(f"[green]✓[/] {title}: every op imports")
            continue
        t = Table(title=title)
        for col in ("", "op", "node", "problem", "fix"):
            t.add_column(col, overflow="fold")
        for i in rows:
            mark = "[red]✗[/]" if i.severity == "error" else "[yellow]![/]"
            t.add_row(mark, i.op, i.where, i.message, i.fix)
        out.print(t)
        ok = ok and report.ok
    # Only a check against the TensorRT in use (found or named with --trt) decides the exit code.
    return ok if (trt_versions or v.tensorrt) else True
