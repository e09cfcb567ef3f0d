"""``hdm-deploy``: a thin typer shell over the importable API.

Each command parses arguments, calls one library function and renders the result with rich.
Errors derived from :class:`~hdm_deploy.core.errors.HdmDeployError` print as one line; ``--debug``
shows the traceback. Heavy imports (torch, onnxruntime, tensorrt) happen inside commands so that
``hdm-deploy --help`` and the torch-free commands stay fast on a Jetson.
"""

from __future__ import annotations

import contextlib
import shlex
import signal
import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn
from typer.core import TyperCommand, TyperGroup

from hdm_deploy import __version__
from hdm_deploy.cli.memory_options import (
    MaxMemoryOption,
    OverlapOption,
    TiledExportOption,
    TileOption,
    memory_options,
    report_tiled_export,
    watch_memory_plan,
)
from hdm_deploy.cli.options import (
    DEFAULT_MAX_MEGAPIXELS,
    EXIT_SKIPPED,
    ArchOption,
    AxisOption,
    DcpSums,
    DeviceOption,
    Flavour,
    ForeignModelOption,
    InlineFunctionsOption,
    IoKind,
    MaskRender,
    MasksOption,
    MaxShapeOption,
    MinShapeOption,
    OptShapeOption,
    PluginLibOption,
    Precision,
    TrustCheckpointOption,
    mask_impl,
    model_kind_of,
    percent,
    refuse_inapplicable,
    value,
)
from hdm_deploy.cli.render import print_table
from hdm_deploy.cli.tensorrt_report import run_build_engine, run_doctor
from hdm_deploy.core.errors import (
    CheckpointError,
    EnvironmentProblem,
    HdmDeployError,
    HdmDeployWarning,
    InputImageError,
    ModelFormatError,
    OutputPathError,
    environment_problem,
    missing_dependency,
)
from hdm_deploy.core.fs import probe_writable, refuse_overwrite, same_file
from hdm_deploy.core.runner import server_url
from hdm_deploy.core.sizes import parse_size
from hdm_deploy.families.hdm.dcp import render
from hdm_deploy.families.registry import get_family
from hdm_deploy.families.registry import names as family_names
from hdm_deploy.graph.flavours import convert_file, detect_flavour
from hdm_deploy.graph.golden import golden_path_for
from hdm_deploy.graph.onnx_io import load as onnx_load
from hdm_deploy.graph.onnx_io import metadata as onnx_metadata
from hdm_deploy.plugins import build_plugin
from hdm_deploy.runtime import bench, load_runner, parity
from hdm_deploy.runtime.image_io import check_image_header, list_images, read_image
from hdm_deploy.runtime.infer import enhance_path, plan_outputs
from hdm_deploy.runtime.parity import default_golden_for, render_table
from hdm_deploy.runtime.video_io import open_video
from hdm_deploy.tensorrt.trtexec import trtexec_plans

console = Console(stderr=True)
_python_showwarning = warnings.showwarning
out = Console()
_state = {"debug": False}


class _Terminated(BaseException):
    """SIGTERM, raised in the main thread so that atomic writes discard their temp files."""


def _on_sigterm(signum, frame) -> None:
    raise _Terminated()


def _one_line(exc: BaseException) -> HdmDeployError | None:
    """The typed one-line error for ``exc``: ours as is; OSError/MemoryError/allocator errors as exit 3."""
    if isinstance(exc, HdmDeployError):
        return exc
    return environment_problem(exc)


def _interrupted(exc: BaseException) -> bool:
    """True when a KeyboardInterrupt lies in ``exc``'s cause/context chain."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, KeyboardInterrupt):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False


class _PlainHelpFlag:
    """``--help`` is a flag: no ``<bool>`` type column in the help (typer shows one for every bool)."""

    def get_help_option(self, ctx):
        option = super().get_help_option(ctx)
        if option is not None:
            option.metavar = ""
        return option


class _Command(_PlainHelpFlag, TyperCommand):
    """Every subcommand: ``@app.command("name", cls=_Command)``."""


class _OneLineErrors(_PlainHelpFlag, TyperGroup):
    """Render errors as one line with the exit code of their meaning, unless ``--debug`` is on.

    0 ok, 1 a check failed, 2 bad usage/input/model, 3 environment (OSError, MemoryError, allocator
    failures, missing CUDA/TensorRT/compiler), 4 done with inputs skipped, 130 Ctrl-C, 143 SIGTERM.
    Done at the click level so it holds wherever the app runs: console script, ``python -m``, tests.
    """

    def parse_args(self, ctx, args):
        # `--debug` is global but also accepted after the subcommand (`infer x.jpg --debug`).
        args = list(args)
        end = args.index("--") if "--" in args else len(args)
        if "--debug" in args[1:end]:
            args = ["--debug"] + [a for i, a in enumerate(args) if not (a == "--debug" and i < end)]
        return super().parse_args(ctx, args)

    def invoke(self, ctx: typer.Context):
        previous = previous_int = None
        with contextlib.suppress(ValueError):  # not the main thread (an embedding app): leave signals alone
            previous = signal.signal(signal.SIGTERM, _on_sigterm)
            # A shell starts background jobs (`hdm-deploy parity … &`) with SIGINT ignored, so `kill -INT`
            # did nothing and parity ran to the end with exit 0. Every command here is interruptible.
            if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
                previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
        try:
            return super().invoke(ctx)
        except typer.Exit:  # click's Exit is a RuntimeError: not an error to translate
            raise
        except (KeyboardInterrupt, _Terminated) as exc:
            # Artifacts are written atomically: their temp files were removed on the way up.
            if _state["debug"]:
                raise
            sigterm = isinstance(exc, _Terminated)
            console.print(f"[yellow]{'terminated' if sigterm else 'interrupted'}[/]")
            raise typer.Exit(143 if sigterm else 130) from None
        except (HdmDeployError, OSError, MemoryError, RuntimeError) as exc:
            if _interrupted(exc) and not _state["debug"]:  # Ctrl-C mid-import surfaces as ImportError
                console.print("[yellow]interrupted[/]")
                raise typer.Exit(130) from None
            error = _one_line(exc)
            if error is None or _state["debug"]:
                raise

            console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
            raise typer.Exit(error.exit_code) from None
        finally:
            if previous is not None:
                signal.signal(signal.SIGTERM, previous)
            if previous_int is not None:
                signal.signal(signal.SIGINT, previous_int)


app = typer.Typer(
    name="hdm-deploy",
    cls=_OneLineErrors,
    help="Export HDM image enhancement to ONNX / TensorRT and check numerical parity with PyTorch.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)


def _version(value: bool) -> None:
    if value:
        out.print(f"hdm-deploy {__version__}")
        raise typer.Exit()


@app.callback()
def _main(
    debug: Annotated[
        bool, typer.Option("--debug", help="Show full tracebacks on errors.", metavar="")
    ] = False,
    version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_version, is_eager=True, help="Print the version and exit.", metavar=""
        ),
    ] = False,
) -> None:
    _state["debug"] = debug
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one yellow line on stderr; everyone else's as Python prints them."""
    if issubclass(category, HdmDeployWarning):
        console.print(f"[yellow]warning:[/] {escape(str(message))}")
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


# ---- commands -------------------------------------------------------------------------------
# Keep each command short: parse, call the library, render. Add new commands below.


def _progress_bar(description: str):
    """A rich progress bar on stderr and a ``tick(advance, total)`` callback for library code."""

    bar = Progress(
        TextColumn("[bold]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=False,
    )
    task = bar.add_task(description, total=None)

    def tick(advance: int, total: int | None) -> None:
        bar.update(task, advance=advance, total=total)

    return bar, tick


@app.command("infer", cls=_Command)
def infer_cmd(
    source: Annotated[Path, typer.Argument(help="Image, folder of images, or video (.mp4/.avi/…).")],
    output: Annotated[
        str | None,
        typer.Option(
            "-o",
            "--output",
            help="Output file, or folder when it ends in / or exists (default: NAME_enhanced.EXT beside the input).",
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="Checkpoint (.pk/.pt/.pth, PyTorch), .onnx (ONNX Runtime), .engine (TensorRT) or a served model's URL (http://host:port/model, grpc://host:port/model).",
        ),
    ] = None,
    masks: MasksOption = None,
    arch: ArchOption = None,
    device: DeviceOption = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Video frames per inference call.")] = 1,
    plugin_lib: PluginLibOption = None,
    foreign_model: ForeignModelOption = False,
    trust_checkpoint: TrustCheckpointOption = False,
    max_pixels: Annotated[
        float,
        typer.Option(
            "--max-pixels",
            min=0.0001,
            help="Largest input in megapixels, checked from the file header before decoding.",
        ),
    ] = DEFAULT_MAX_MEGAPIXELS,
    max_memory: MaxMemoryOption = None,
    tile: TileOption = None,
    overlap: OverlapOption = None,
    protocol: Annotated[
        str | None,
        typer.Option(
            "--protocol",
            help="Checkpoints of families with a published test protocol (ADFNet): 'published' runs it "
            "exactly (BGR, 4-quadrant forward_chop) to reproduce published numbers; default 'clean' "
            "(whole image, as the exported graph).",
        ),
    ] = None,
    self_ensemble: Annotated[
        bool,
        typer.Option(
            "--self-ensemble", help="With --protocol published: the published ×8 self-ensemble.", metavar=""
        ),
    ] = False,
) -> None:
    """Enhance an image, a folder or a video with a PyTorch, ONNX or TensorRT model (default: the bundled sample)."""

    # Everything that can be wrong with the arguments is checked before the model loads.
    _existing(source, "input", "give an image, a folder of images or a video")
    if model is not None:
        _existing_model(model)
    kind = model_kind_of(model)
    refuse_inapplicable(
        kind,
        masks=masks,
        arch=arch,
        plugin_lib=plugin_lib,
        trust_checkpoint=trust_checkpoint,
        allow_foreign=foreign_model,
        protocol=protocol,
        self_ensemble=self_ensemble,
    )
    mask_impl(masks)  # validated; None (not given) lets each family's runner use its default
    plan = plan_outputs(source, output)

    refuse_overwrite([model], [dst for _, dst in plan.targets])
    limit = int(max_pixels * 1e6)
    if plan.kind == "image":  # a single input is checked from its header before the model loads
        check_image_header(source, limit)
    elif plan.kind == "video":
        open_video(source, limit)[0].release()
    with load_runner(
        model,
        masks=masks if kind == "torch" else None,
        arch=arch,
        device=device,
        trust_checkpoint=trust_checkpoint or None,
        plugin_lib=plugin_lib,
        allow_foreign=foreign_model or None,
        protocol=protocol,
        self_ensemble=self_ensemble or None,
        **memory_options(max_memory, tile, overlap),
    ) as runner:
        watch_memory_plan(runner, console)
        info = runner.describe()
        console.print(
            f"[dim]{info.get('backend')} · {info.get('model') or 'bundled sample'} · "
            f"{info.get('device') or info.get('providers') or ''}[/]",
            highlight=False,
        )
        bar, tick = _progress_bar(f"enhancing {source.name}")
        with bar:
            summary = enhance_path(runner, source, plan, batch=batch, progress=tick, max_pixels=limit)
    for path, reason in summary.skipped:
        console.print(f"[yellow]skipped[/] {path}: {reason}", highlight=False, soft_wrap=True)
    if not summary.outputs:
        raise InputImageError(f"nothing written: {summary.counts()}", "see the skipped files above")
    where = summary.outputs[0] if len(summary.outputs) == 1 else plan.output
    out.print(f"[bold green]wrote[/] {where} ({summary.counts()})", highlight=False)
    if summary.skipped:
        raise typer.Exit(EXIT_SKIPPED)


# ---- ONNX: export, convert, parity, bench (export/, runtime/parity.py, runtime/bench.py) ----------


@app.command("export", cls=_Command)
def export_cmd(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="HDM checkpoint (.pk/.pt/.pth; default: the bundled sample).")
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX file to write.")] = Path("model.onnx"),
    io: Annotated[
        IoKind, typer.Option("--io", help="uint8: image uint8 NHWC in/out; float: float32 NCHW in [0,1].")
    ] = IoKind.uint8,
    deform: Annotated[
        Flavour,
        typer.Option("--deform", help="DeformConv: onnx | plugin (our TensorRT plugin op) | decompose."),
    ] = Flavour.onnx,
    inline_functions: InlineFunctionsOption = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset (DeformConv needs 19).")] = 19,
    precision: Annotated[
        Precision, typer.Option("--precision", help="fp16: the FP16 policy with FP32 islands.")
    ] = Precision.fp32,
    golden: Annotated[
        bool,
        typer.Option(
            "--golden/--no-golden", help="Write NAME.golden.npz (PyTorch outputs) beside it.", metavar=""
        ),
    ] = True,
    verify: Annotated[
        bool,
        typer.Option(
            "--verify/--no-verify", help="Check the file in ONNX Runtime against PyTorch.", metavar=""
        ),
    ] = True,
    trust_checkpoint: TrustCheckpointOption = False,
    arch: ArchOption = None,
    max_size: Annotated[
        str,
        typer.Option(
            "--max-size",
            help="Largest frame WxH the in-graph DCP supports (sizes its constant TopK; 8K and 12 MP photos "
            "fit the default; see benchmarks/dcp_topk.py for what a larger K costs).",
        ),
    ] = "7680x4320",
    dcp_sums: Annotated[
        DcpSums | None,
        typer.Option(
            "--dcp-sums",
            help="DCP integer sums: cumsum (fastest in ORT) | doubling (TensorRT). Default: by target.",
        ),
    ] = None,
    tiled: TiledExportOption = False,
    ema: Annotated[
        bool,
        typer.Option(
            "--ema",
            help="Families with EMA weights (DiffHDR): export those instead of the raw ones.",
            metavar="",
        ),
    ] = False,
) -> None:
    """Export the whole frame path (DCP masks, padding, network, uint8 out) to one ONNX file."""
    io, deform, precision, dcp_sums = value(io), value(deform), value(precision), value(dcp_sums)

    try:
        from hdm_deploy.export.exporter import export_onnx
    except ImportError as exc:  # torch is an extra: a Jetson running ONNX/TensorRT only lacks it
        raise missing_dependency("export", exc) from exc

    max_w, max_h = parse_size(max_size)

    if checkpoint is not None:
        _existing_model(checkpoint, "checkpoint")
    _onnx_output(output)
    refuse_overwrite([checkpoint], [output, golden_path_for(output) if golden else None])
    probe_writable(output.parent)

    try:
        result = export_onnx(
            checkpoint,
            output,
            io=io,
            deform=deform,
            inline_functions=inline_functions,
            opset=opset,
            precision=precision,
            golden=golden,
            verify=verify,
            trust_checkpoint=trust_checkpoint,
            arch=arch,
            progress=True,
            console=console,
            max_pixels=max_w * max_h,
            dcp_sums=dcp_sums,
            tiled=tiled,
            ema=ema,
        )
    except HdmDeployError as exc:
        report = getattr(exc, "report", None)
        if report is not None:
            print_table(out, render_table(report))
        raise
    if result.verification is not None:
        print_table(out, render_table(result.verification))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    report_tiled_export(out, result)
    golden_note = f" + {result.golden_path}" if result.golden_path else ""
    if hasattr(result, "summary"):  # a family artifact of several graphs says what it wrote
        out.print(f"[bold green]wrote[/] {result.summary()}", highlight=False)
        return
    out.print(
        f"[bold green]wrote[/] {result.path} ({result.size_bytes / 1e6:.1f} MB, io {result.io}, deform {result.deform}, "
        f"{result.precision}, opset {result.opset}){golden_note}",
        highlight=False,
    )


@app.command("convert", cls=_Command)
def convert_cmd(
    model: Annotated[Path, typer.Argument(help="ONNX model written by `hdm-deploy export`.")],
    deform: Annotated[Flavour, typer.Option("--deform", help="Target DeformConv flavour.")],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output file (default: MODEL.<flavour>.onnx).")
    ] = None,
    inline_functions: Annotated[
        bool, typer.Option("--inline-functions", help="Also inline local functions.", metavar="")
    ] = False,
) -> None:
    """Rewrite the DeformConv nodes to another flavour (lossless), optionally inlining functions."""
    deform = value(deform)

    src = _existing(
        model, "ONNX model", "give the .onnx file written by `hdm-deploy export`", ModelFormatError
    )
    dst = output or src.with_name(f"{src.stem}.{deform}{'.inlined' if inline_functions else ''}.onnx")

    _onnx_output(dst)
    refuse_overwrite([src], [dst])
    probe_writable(dst.parent)
    before = detect_flavour(src)
    convert_file(src, dst, deform, inline=inline_functions)
    out.print(
        f"[bold green]wrote[/] {dst} (deform {before} → {deform}{', functions inlined' if inline_functions else ''})"
    )


@app.command("parity", cls=_Command)
def parity_cmd(
    model: Annotated[
        Path, typer.Argument(help="Model to check: .onnx, .engine, a checkpoint, or a served model's URL.")
    ],
    reference: Annotated[
        Path | None,
        typer.Option(
            "--reference", "-r", help="GOLDEN.npz, checkpoint or model (default: MODEL's golden bundle)."
        ),
    ] = None,
    images: Annotated[
        Path | None,
        typer.Option("--images", help="Image file or folder (needs a model/checkpoint reference)."),
    ] = None,
    psnr_min: Annotated[float | None, typer.Option("--psnr-min", help="Minimum PSNR in dB.")] = None,
    max_abs: Annotated[
        float | None, typer.Option("--max-abs", help="Maximum |Δ| of the float outputs.")
    ] = None,
    identical_min: Annotated[
        float | None, typer.Option("--identical-min", help="Minimum % of identical uint8 pixels (0..100).")
    ] = None,
    mask_min: Annotated[
        float | None, typer.Option("--mask-min", help="Minimum % of mask agreement (0..100).")
    ] = None,
    max_abs_u8: Annotated[
        int | None, typer.Option("--max-abs-u8", help="Maximum |Δ| of uint8 outputs (levels).")
    ] = None,
    masks: MasksOption = None,
    arch: ArchOption = None,
    device: DeviceOption = None,
    plugin_lib: PluginLibOption = None,
    foreign_model: ForeignModelOption = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    junit_path: Annotated[Path | None, typer.Option("--junit", help="Write a JUnit XML report.")] = None,
    heatmap: Annotated[
        Path | None, typer.Option("--heatmap", help="Write |Δ| heatmaps (PNG) into this folder.")
    ] = None,
) -> None:
    """Compare a model with PyTorch (checkpoint) or a golden bundle; non-zero exit on failure."""

    _existing_model(model)
    if reference is None and server_url(model) is not None:
        raise HdmDeployError(
            "a served model has no golden bundle beside it",
            "pass --reference model.golden.npz (or a model file)",
        )
    if (check := _artifact_parity(model)) is not None:  # a multi-graph family checks its own bundle
        given = {"--images": images, "--masks": masks, "--heatmap": heatmap, "--json": json_path}
        if extra := [flag for flag, v in given.items() if v is not None]:
            raise HdmDeployError(f"{', '.join(extra)} does not apply to this model", "drop it")
        check(model, reference, psnr_min=psnr_min, console=console)
        out.print("[bold green]parity passed[/]")
        return
    ref = reference or default_golden_for(model)
    _existing(
        ref,
        "reference",
        "pass --reference GOLDEN.npz, a checkpoint or a model (export writes NAME.golden.npz beside NAME.onnx)",
        ModelFormatError,
    )
    golden_ref = ref.suffix.lower() == ".npz"
    if golden_ref and masks is not None:
        raise HdmDeployError(
            "--masks does not apply to a golden bundle (its masks were computed at export)",
            "drop --masks, or pass a checkpoint with --reference",
        )
    if arch is not None and "torch" not in {model_kind_of(model), None if golden_ref else model_kind_of(ref)}:
        raise HdmDeployError("--arch applies to checkpoints, and neither side is one", "leave it out")
    if not golden_ref:
        refuse_inapplicable(model_kind_of(ref), masks=masks)
    mask_impl(masks)  # validated; None (not given) lets each family's runner use its default
    percent(identical_min, "--identical-min")
    percent(mask_min, "--mask-min")
    inputs = [model, ref, images]
    if images is not None and images.is_dir():
        inputs += list_images(images)
    refuse_overwrite(inputs, [json_path, junit_path])
    if heatmap is not None:
        if heatmap.exists() and not heatmap.is_dir():
            raise OutputPathError(
                f"--heatmap {heatmap} is a file, not a folder", "give a folder for the heatmaps"
            )
        refuse_overwrite(inputs, [p for p in heatmap.glob("*_absdiff.png")] if heatmap.is_dir() else [])
        probe_writable(heatmap)
    for report_path in (json_path, junit_path):
        if report_path is not None:
            probe_writable(report_path.parent)
    thresholds = {
        "psnr_min": psnr_min,
        "max_abs": max_abs,
        "identical_min": identical_min,
        "extras_min": mask_min,
        "max_abs_u8": max_abs_u8,
    }

    def progress(name: str) -> None:
        if console.is_terminal:
            status.update(f"parity {model.name} vs {ref.name}: {name} done")
        else:  # a log has no spinner: one line per case, so a long run shows it is alive
            console.print(f"parity: {name} done", highlight=False, markup=False)

    with console.status(f"parity {model.name} vs {ref.name}…") as status:
        report = parity.run_parity(
            model,
            ref,
            images=_existing(images, "images", "give an image file or a folder of images")
            if images
            else None,
            thresholds=thresholds,
            reference_options={"masks": masks, "arch": arch}
            if not golden_ref and model_kind_of(ref) == "torch"
            else {},
            heatmap_dir=heatmap,
            runner_options={
                "device": device,
                "plugin_lib": plugin_lib,
                "allow_foreign": foreign_model or None,
                **({"arch": arch} if model_kind_of(model) == "torch" else {}),
            },
            progress=progress,
        )
    print_table(out, parity.render_table(report))
    if not golden_ref and masks is not None:
        console.print(f"[dim]reference masks: {masks}[/]", highlight=False)
    if json_path:
        parity.write_json(report, json_path)
    if junit_path:
        parity.write_junit(report, junit_path)
    if heatmap:
        out.print(f"heatmaps in {heatmap}/")
    report.raise_for_failures()
    out.print(f"[bold green]parity passed[/] ({len(report.cases)} cases)")


@app.command("bench", cls=_Command)
def bench_cmd(
    models: Annotated[
        list[Path], typer.Argument(help="Model file(s): checkpoint, .onnx, .engine — compared in one table.")
    ],
    size: Annotated[str, typer.Option("--size", help="Frame size WIDTHxHEIGHT.")] = "640x480",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Frames per call.")] = 1,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed calls first.")] = 3,
    iters: Annotated[int, typer.Option("--iters", min=1, help="Timed calls.")] = 10,
    masks: MasksOption = None,
    arch: ArchOption = None,
    device: DeviceOption = None,
    plugin_lib: PluginLibOption = None,
    foreign_model: ForeignModelOption = False,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the timings as JSON.")] = None,
    max_memory: MaxMemoryOption = None,
    tile: TileOption = None,
) -> None:
    """Latency (median, p90) and throughput per model, warm-up excluded."""

    wh = parse_size(size)
    for m in models:
        _existing_model(m)
    if masks is not None and "torch" not in {model_kind_of(m) for m in models}:
        refuse_inapplicable(model_kind_of(models[0]), masks=masks)
    mask_impl(masks)  # validated; None (not given) lets each family's runner use its default

    refuse_overwrite(models, [json_path])
    if json_path is not None:
        probe_writable(json_path.parent)
    total = len(models) * (warmup + iters)

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=total)
        results = bench.bench_models(
            models,
            wh,
            batch,
            warmup,
            iters,
            runner_options={
                "masks": masks,
                "arch": arch,
                "device": device,
                "plugin_lib": plugin_lib,
                "allow_foreign": foreign_model or None,
                **memory_options(max_memory, tile, None),
            },
            progress=lambda _i: progress.advance(task),
        )
    print_table(out, bench.render_table(results))
    if masks is not None and any(model_kind_of(m) == "torch" for m in models):
        console.print(f"[dim]checkpoints ran with --masks {masks}[/]", highlight=False)
    if json_path:
        bench.write_json(results, json_path)


# ---- DCP region masks (families/hdm/dcp/) -------------------------------------------------------------------------


@app.command("masks", cls=_Command)
def masks_cmd(
    image: Annotated[Path, typer.Argument(help="Input image (any size ≥ 4×4; RGB, RGBA, grey, 16-bit).")],
    output: Annotated[
        Path,
        typer.Option(
            "-o", "--output", help="Overlay picture to write; the suffix picks the format (.png, .jpg, …)."
        ),
    ] = Path("masks.png"),
    save_npy: Annotated[
        Path | None, typer.Option("--save-npy", help="Also write the raw float32 [5,1,h,w] masks (.npy).")
    ] = None,
    impl: Annotated[
        MaskRender, typer.Option("--impl", help="reference (published numpy/OpenCV) | torch | onnx.")
    ] = MaskRender.reference,
) -> None:
    """The 5 DCP region masks of an image (as the published code computes them), drawn as an overlay."""
    impl = value(impl)

    picture_path = render.check_picture_suffix(output)  # before minutes of work
    _existing(image, "image", "give an image file")
    if save_npy is not None and save_npy.suffix.lower() != ".npy":
        raise OutputPathError(f"--save-npy {save_npy} must end in .npy", "e.g. --save-npy masks.npy")
    refuse_overwrite([image], [picture_path, save_npy])
    if save_npy is not None and same_path(picture_path, save_npy):
        raise OutputPathError("-o and --save-npy name the same file", "give two different files")
    for target in (picture_path, save_npy):
        if target is not None:
            probe_writable(target.parent)
    result = render.compute(read_image(image).rgb8, impl)
    render.write_picture(picture_path, render.overlay(result))
    if save_npy is not None:
        render.write_npy(save_npy, result.masks)
    shares = "  ".join(f"{k + 1}: {v:.1%}" for k, v in enumerate(result.coverage()))
    out.print(f"masks [{', '.join(map(str, result.masks.shape))}] ({impl}) → {output}  regions {shares}")


# ---- plugins: build-plugin (plugins/) --------------------------------------------------------------


@app.command("build-plugin", cls=_Command)
def build_plugin_cmd(
    cuda_arch: Annotated[
        list[str] | None,
        typer.Option(
            "--cuda-arch",
            help="CUDA architecture(s), e.g. 87 (Orin), 72 (Xavier), 110 (Thor), 89. Repeatable.",
        ),
    ] = None,
    tensorrt_root: Annotated[
        Path | None,
        typer.Option("--tensorrt-root", help="TensorRT root with include/NvInfer.h (default: search)."),
    ] = None,
    output: Annotated[
        Path | None,
        typer.Option("-o", "--output", help="Also copy libhdm_deploy_plugins.so into this directory."),
    ] = None,
    build_dir: Annotated[
        Path | None,
        typer.Option("--build-dir", help="CMake build directory (default: the hdm_deploy cache)."),
    ] = None,
    kernels_only: Annotated[
        bool,
        typer.Option(
            "--kernels-only",
            help="Build only the CUDA kernels (no TensorRT plugin); without it, missing headers fail.",
            metavar="",
        ),
    ] = False,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Show the CMake output.", metavar="")
    ] = False,
) -> None:
    """Build the HdmDeformConv CUDA kernels and TensorRT plugin library with CMake."""

    if tensorrt_root is not None and not (tensorrt_root / "include" / "NvInfer.h").is_file():
        found = "does not exist" if not tensorrt_root.exists() else "has no include/NvInfer.h"
        raise EnvironmentProblem(
            f"--tensorrt-root {tensorrt_root} {found}",
            "pass the TensorRT root that holds include/NvInfer.h (e.g. /usr or /usr/local/tensorrt), "
            "or build the CUDA kernels alone with --kernels-only",
        )
    with console.status("building libhdm_deploy_plugins.so (CMake + nvcc)..."):
        result = build_plugin(
            build_dir,
            cuda_arch,
            tensorrt_root,
            output_dir=output,
            log=(lambda line: console.print(line, markup=False, highlight=False)) if verbose else None,
            kernels_only=kernels_only,
            require_tensorrt=not kernels_only,
        )
    console.print(result.platform_line(), highlight=False)
    trt = (
        f"TensorRT {result.tensorrt_version} ({'IPluginV3' if int(result.tensorrt_version.split('.')[0]) >= 10 else 'IPluginV2DynamicExt'})"
        if result.tensorrt_version
        else "[yellow]kernels only (--kernels-only): no TensorRT plugin built[/]"
    )
    if tensorrt_root is not None and not result.tensorrt_version:
        raise EnvironmentProblem(
            f"the TensorRT plugin was not built although --tensorrt-root {tensorrt_root} was given",
            "re-run with --verbose to see why CMake did not find TensorRT",
        )
    console.print(f"CUDA {result.cuda_version}, sm_{', sm_'.join(result.cuda_archs)}; {trt}")
    out.print(f"[bold green]plugin library:[/] {result.library}", highlight=False)


# ---- TensorRT: build-engine, doctor (tensorrt/, tensorrt/doctor.py) ----------------------------------


@app.command("build-engine", cls=_Command)
def build_engine_cmd(
    model: Annotated[
        Path, typer.Argument(help="ONNX model from `hdm-deploy export` (FP16: export --precision fp16).")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Engine file (default: MODEL.engine).")
    ] = None,
    fp16: Annotated[
        bool,
        typer.Option(
            "--fp16", help="FP16 engine (needs a graph exported with --precision fp16).", metavar=""
        ),
    ] = False,
    min_shape: MinShapeOption = None,
    opt_shape: OptShapeOption = None,
    max_shape: MaxShapeOption = None,
    plugin_lib: Annotated[
        Path | None,
        typer.Option("--plugin-lib", help="libhdm_deploy_plugins.so (default: found automatically)."),
    ] = None,
    workspace: Annotated[float | None, typer.Option("--workspace", help="Workspace limit in GB.")] = None,
    timing_cache: Annotated[
        Path | None, typer.Option("--timing-cache", help="Timing cache file, read and updated.")
    ] = None,
    strongly_typed: Annotated[
        bool | None,
        typer.Option(
            "--strongly-typed/--no-strongly-typed",
            help="Default: strongly typed on TensorRT ≥ 10.",
            metavar="",
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="TensorRT's verbose log.", metavar="")] = False,
    axes: AxisOption = None,
) -> None:
    """Build a TensorRT engine (+ JSON sidecar) from an exported ONNX model (and its companion graphs)."""

    _existing(model, "ONNX model", "give the .onnx file written by `hdm-deploy export`", ModelFormatError)
    refuse_overwrite(
        [model, plugin_lib], [output, output.with_name(output.name + ".json") if output else None]
    )
    run_build_engine(
        model,
        output,
        fp16=fp16,
        min_shape=min_shape,
        opt_shape=opt_shape,
        max_shape=max_shape,
        plugin_lib=plugin_lib,
        workspace_gb=workspace,
        timing_cache=timing_cache,
        strongly_typed=strongly_typed,
        verbose=verbose,
        console=console,
        out=out,
        axes=axes or (),
    )


@app.command("trtexec-args", cls=_Command)
def trtexec_args_cmd(
    model: Annotated[Path, typer.Argument(help="ONNX model from `hdm-deploy export`.")],
    trt: Annotated[
        str, typer.Option("--trt", help="TensorRT version trtexec belongs to: 8.5 | 8.6 | 10 | 10.x | 11.")
    ] = "10",
    fp16: Annotated[
        bool,
        typer.Option(
            "--fp16", help="FP16 engine (needs a graph exported with --precision fp16).", metavar=""
        ),
    ] = False,
    engine: Annotated[
        Path | None, typer.Option("--engine", help="Engine file trtexec writes (default: MODEL.engine).")
    ] = None,
    plugin_lib: Annotated[
        Path | None,
        typer.Option("--plugin-lib", help="libhdm_deploy_plugins.so as trtexec's machine sees it."),
    ] = None,
    min_shape: MinShapeOption = None,
    opt_shape: OptShapeOption = None,
    max_shape: MaxShapeOption = None,
    timing_cache: Annotated[
        Path | None, typer.Option("--timing-cache", help="Timing cache file for --timingCacheFile.")
    ] = None,
    strongly_typed: Annotated[
        bool | None,
        typer.Option(
            "--strongly-typed/--no-strongly-typed", help="Default: strongly typed on TensorRT ≥ 10."
        ),
    ] = None,
    axes: AxisOption = None,
) -> None:
    """Print the trtexec command that builds the engine `build-engine` would (profile, FP32 islands, plugin)."""

    plans = trtexec_plans(
        _existing(
            model, "ONNX model", "give the .onnx file written by `hdm-deploy export`", ModelFormatError
        ),
        trt,
        fp16=fp16,
        engine=engine,
        plugin_lib=plugin_lib,
        min_shape=min_shape,
        opt_shape=opt_shape,
        max_shape=max_shape,
        timing_cache=timing_cache,
        strongly_typed=strongly_typed,
        axes=axes or (),
    )
    for plan in plans:  # one command per graph: the model, then its companion graphs
        for note in plan.notes:
            console.print(f"[dim]{note}[/]")
        out.print(shlex.join(["trtexec", *plan.args]), highlight=False, soft_wrap=True)


@app.command("doctor", cls=_Command)
def doctor_cmd(
    model: Annotated[
        Path | None, typer.Argument(help="ONNX model to check against TensorRT's ONNX parser.")
    ] = None,
    trt: Annotated[
        list[str] | None,
        typer.Option(
            "--trt",
            help="TensorRT version(s) to check: 8.5, 8.6, 10.3, 10.13, 11 (default: found, else all).",
        ),
    ] = None,
    verbose: Annotated[
        bool, typer.Option("--verbose", "-v", help="Every problem with its node and fix.", metavar="")
    ] = False,
) -> None:
    """Versions found, the Jetson guide, and a per-version TensorRT import verdict of a graph.

    Exit 1 when the graph fails on any checked version (--trt, else the TensorRT found, else all known)."""

    ok = run_doctor(
        _existing(model, "ONNX model", "give the path of an .onnx file", ModelFormatError) if model else None,
        trt or [],
        out=out,
        verbose=verbose,
    )
    if not ok:
        raise typer.Exit(1)


def main() -> None:
    app()


def _existing(
    path: Path, what: str = "file", hint: str | None = None, error: type[HdmDeployError] | None = None
) -> Path:
    """A user-given path, or a one-line ``error`` (default :class:`InputImageError`) with ``hint``."""
    if not path.exists():
        raise (error or InputImageError)(f"{what} not found: {path}", hint or "check the path")
    return path


def _existing_model(path: Path, what: str = "model", hint: str | None = None) -> Path:
    """A model file that must exist: :class:`CheckpointError` for checkpoints, else :class:`ModelFormatError`.
    A served model's URL (``http://host:port/model``) is checked when its runner connects."""
    if server_url(path) is not None:
        return path

    is_checkpoint = path.suffix.lower() in (".pk", ".pt", ".pth")
    return _existing(
        path,
        what,
        hint
        or (
            "give the path of a .pk/.pt/.pth checkpoint"
            if is_checkpoint
            else "give the path of a checkpoint (.pk/.pt/.pth), an .onnx model or a TensorRT .engine"
        ),
        CheckpointError if is_checkpoint else ModelFormatError,
    )


def _artifact_parity(model: Path):
    """``Family.artifact_parity`` of an ONNX file whose metadata names such a family, else ``None``."""
    if model.suffix.lower() != ".onnx":
        return None
    try:
        name = onnx_metadata(onnx_load(model, external_data=False)).get("family", "")
    except ModelFormatError:  # not readable: the generic path reports it after its option checks
        return None
    if name not in family_names():
        return None
    family = get_family(name)
    return family.resolve("artifact_parity") if family.artifact_parity else None


def _onnx_output(path: Path) -> Path:
    """An ONNX output path must end in .onnx (``export -o e.xyz`` would write a file nothing loads)."""
    if path.suffix.lower() != ".onnx":
        raise OutputPathError(f"output {path} must end in .onnx", f"e.g. -o {path.with_suffix('.onnx').name}")
    if path.is_dir():
        raise OutputPathError(f"output {path} is a folder", "name the .onnx file to write")
    return path


def same_path(a: Path, b: Path) -> bool:
    """Same file, existing or not (new outputs compare by absolute path)."""

    return same_file(a, b) or a.absolute() == b.absolute()


if __name__ == "__main__":
    main()
