"""Rich rendering for ``build-engine`` and ``doctor`` (kept out of cli.py so the commands stay thin)."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn
from rich.table import Table

from hdm_deploy.cli.render import print_table
from hdm_deploy.core.errors import HdmDeployError, ModelFormatError
from hdm_deploy.tensorrt.builder import artifact_graphs, build_engine, make_progress_monitor, read_onnx_facts
from hdm_deploy.tensorrt.doctor import (
    KNOWN,
    check_graph,
    detect_versions,
    guide_for,
    nearest_known,
    plugin_available,
)
from hdm_deploy.tensorrt.flags import parse_version

#: TensorRT releases (major, minor) that exist; a --trt outside them is a typo, not a table lookup.
RELEASES = (
    {(8, m) for m in range(7)}
    | {(9, m) for m in range(4)}
    | {(10, m) for m in range(17)}
    | {(11, m) for m in range(2)}
)


def check_release(version: str) -> str:
    """``--trt`` must name a TensorRT release (``9.9`` is refused, naming the table it would have used)."""
    parsed = (*parse_version(version), 0)[:2]  # HdmDeployError for garbage
    if tuple(parsed) not in RELEASES:
        raise HdmDeployError(
            f"--trt {version} is not a TensorRT release we know (nearest table: {nearest_known(version)})",
            f"use one of {', '.join(KNOWN)} or a real release such as 10.5",
        )
    return version


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
    for comp in result.companions:  # the other graphs of the artifact, built with the same options
        table.add_row("companion", f"{comp.engine_path} ({comp.profile.describe()})")
    out.print(table)


def artifact_graph_paths(model: Path) -> list[Path]:
    """``model`` and the companion graphs its metadata names (``companion_graphs``), which ``doctor``
    checks too; a companion that is missing is a one-line error (the artifact is incomplete)."""
    try:
        metadata = read_onnx_facts(model).metadata
    except ModelFormatError:  # not a readable ONNX file: check_graph reports it as it always did
        return [model]
    return [p for p, _ in artifact_graphs(model, model.with_suffix(".engine"), metadata)]


def run_doctor(model: Path | None, trt_versions: list[str], out: Console, verbose: bool = False) -> bool:
    """Print versions, the Jetson guide and (with a model) the op check; False when errors were found."""

    for version in trt_versions:  # a typo in --trt is one line (HdmDeployError), before any probing
        check_release(version)
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
    print_table(out, table)
    if model is None:
        return True

    versions = trt_versions or ([v.tensorrt] if v.tensorrt else list(KNOWN))
    # The plugin library is built for the TensorRT that runs the engine: only the local TensorRT's
    # check can say it is missing; for another version (a Jetson's, checked on a PC) it is unknown.
    has_plugin = plugin_available() or None
    ok = True
    details = []
    graphs = artifact_graph_paths(model)
    for graph in graphs:
        role = "" if graph == model else f" (companion graph of {model.name})"
        out.print(f"{graph.name}{role}: TensorRT ONNX parser check, one line per version", highlight=False)
        for version in versions:
            report = check_graph(graph, version, has_plugin)
            errors = [i for i in report.issues if i.severity == "error"]
            warnings = [i for i in report.issues if i.severity == "warning"]
            table_note = "" if report.table == version else f" (table {report.table})"
            if errors:
                ops = ", ".join(dict.fromkeys(i.op for i in errors))
                verdict = f"[red]✗ FAILS[/]  {len(errors)} error{'s' * (len(errors) != 1)}: {ops}"
            elif warnings:
                verdict = f"[yellow]✓ OK[/] with {len(warnings)} warning{'s' * (len(warnings) != 1)}"
            else:
                verdict = "[green]✓ OK[/]  every op imports"
            out.print(f"  TensorRT {version}{table_note}: {verdict}", highlight=False)
            if errors or warnings:
                details.append((graph, version, report, errors + warnings))
            ok = ok and report.ok
    if details and not verbose:
        out.print("[dim]details (nodes, fixes): --verbose[/]")
    for graph, version, report, issues in details if verbose else []:
        t = Table(
            title=f"{graph.name}, TensorRT {version} (table {report.table}, {report.ops} nodes)",
            title_justify="left",
        )
        for col in ("", "op", "node", "problem", "fix"):
            t.add_column(col)
        for i in issues:
            mark = "[red]✗[/]" if i.severity == "error" else "[yellow]![/]"
            t.add_row(mark, i.op, i.where, i.message, i.fix)
        print_table(out, t)
    # Exit code: 1 when any checked version fails (the requested ones, the installed one, else all known).
    return ok
