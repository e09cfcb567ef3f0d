"""``hdm-deploy``: a thin typer shell over the importable API.

Each command parses arguments, calls one library function and renders the result with rich.
Errors derived from :class:`~hdm_deploy.errors.HdmDeployError` print as one line; ``--debug``
shows the traceback. Heavy imports (torch, onnxruntime, tensorrt) happen inside commands so that
``hdm-deploy --help`` and the torch-free commands stay fast on a Jetson.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from typer.core import TyperGroup

from hdm_deploy import __version__
from hdm_deploy.core.errors import HdmDeployError, HdmDeployWarning, InputImageError, ModelFormatError
from hdm_deploy.core.sizes import parse_size

console = Console(stderr=True)
_python_showwarning = warnings.showwarning
out = Console()
_state = {"debug": False}


class _OneLineErrors(TyperGroup):
    """Render our typed errors as one line (exit code from the error) unless ``--debug`` is on.

    Done at the click level so it holds wherever the app runs: console script, ``python -m``, tests.
    """

    def invoke(self, ctx: typer.Context):
        try:
            return super().invoke(ctx)
        except HdmDeployError as exc:
            if _state["debug"]:
                raise
            from rich.markup import escape  # messages hold [brackets]: hdm-deploy[torch], shapes

            console.print(f"[bold red]error:[/] {escape(str(exc))}", highlight=False, soft_wrap=True)
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            # typer (0.29, vendored click) would turn Ctrl-C into a silent exit 130; say so. Artifacts
            # are written atomically, so nothing half-written is left behind.
            if _state["debug"]:
                raise
            console.print("[yellow]interrupted[/]")
            raise typer.Exit(130) from None


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
    debug: Annotated[bool, typer.Option("--debug", help="Show full tracebacks on errors.")] = False,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    _state["debug"] = debug
    warnings.showwarning = _show_warning


def _show_warning(message, category, filename, lineno, file=None, line=None) -> None:
    """Our warnings as one yellow line on stderr; everyone else's as Python prints them."""
    if issubclass(category, HdmDeployWarning):
        from rich.markup import escape

        console.print(f"[yellow]warning:[/] {escape(str(message))}")
    else:
        _python_showwarning(message, category, filename, lineno, file, line)


# ---- commands -------------------------------------------------------------------------------
# Keep each command short: parse, call the library, render. Add new commands below.


def _progress_bar(description: str):
    """A rich progress bar on stderr and a ``tick(advance, total)`` callback for library code."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

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


@app.command("infer")
def infer_cmd(
    source: Annotated[Path, typer.Argument(help="Image, folder of images, or video (.mp4/.avi/…).")],
    output: Annotated[
        Path | None,
        typer.Option(
            "-o", "--output", help="Output file or folder (default: NAME_enhanced.EXT beside the input)."
        ),
    ] = None,
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            "-m",
            help="Checkpoint (.pk/.pt/.pth, PyTorch), .onnx (ONNX Runtime) or .engine (TensorRT).",
        ),
    ] = None,
    masks: Annotated[
        str | None,
        typer.Option(
            "--masks",
            help="HDM checkpoints only: reference (published numpy/OpenCV DCP, the default) or torch (batched, on device).",
        ),
    ] = "reference",
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu | cuda | cuda:N | N (default: best available)."),
    ] = None,
    batch: Annotated[int, typer.Option("--batch", min=1, help="Video frames per inference call.")] = 1,
    plugin_lib: Annotated[
        Path | None, typer.Option("--plugin-lib", help="TensorRT engines: libhdm_deploy_plugins.so to load.")
    ] = None,
    trust_checkpoint: Annotated[
        bool, typer.Option("--trust-checkpoint", help="Allow pickled Python objects in the checkpoint.")
    ] = False,
) -> None:
    """Enhance an image, a folder or a video with a PyTorch, ONNX or TensorRT model (default: the bundled sample)."""
    from hdm_deploy.runtime import load_runner
    from hdm_deploy.runtime.infer import enhance_path

    if masks is not None:
        _mask_impl(masks)
    _existing(source, "input", "give an image, a folder of images or a video")
    if model is not None:
        _existing_model(model)
    if output is None:
        if source.is_dir():
            folder = source.resolve()  # `infer .` / `infer ..` have no usable name until resolved
            if not folder.name:
                raise InputImageError(
                    f"cannot name an output folder beside {folder}", "pass the output folder with -o"
                )
            output = folder.with_name(f"{folder.name}_enhanced")
        else:
            output = source.with_name(f"{source.stem}_enhanced{source.suffix}")
    with load_runner(
        model, masks=masks, device=device, trust_checkpoint=trust_checkpoint or None, plugin_lib=plugin_lib
    ) as runner:
        info = runner.describe()
        console.print(
            f"[dim]{info.get('backend')} · {info.get('model') or 'bundled sample'} · "
            f"{info.get('device') or info.get('providers') or ''}[/]",
            highlight=False,
        )
        bar, tick = _progress_bar(f"enhancing {source.name}")
        with bar:
            summary = enhance_path(runner, source, output, batch=batch, progress=tick)
    for path, reason in summary.skipped:
        console.print(f"[yellow]skipped[/] {path}: {reason}", highlight=False)
    where = summary.outputs[0] if len(summary.outputs) == 1 else output
    out.print(
        f"[bold green]wrote[/] {where} ({summary.frames} frame{'s' * (summary.frames != 1)})", highlight=False
    )
    if summary.skipped and not summary.outputs:
        raise typer.Exit(1)


# ---- ONNX: export, convert, parity, bench (export/, runtime/parity.py, runtime/bench.py) ----------


@app.command("export")
def export_cmd(
    checkpoint: Annotated[
        Path | None, typer.Argument(help="HDM checkpoint (.pk/.pt/.pth; default: the bundled sample).")
    ] = None,
    output: Annotated[Path, typer.Option("-o", "--output", help="ONNX file to write.")] = Path("model.onnx"),
    io: Annotated[
        str, typer.Option("--io", help="uint8: image uint8 NHWC in/out; float: float32 NCHW in [0,1].")
    ] = "uint8",
    deform: Annotated[
        str,
        typer.Option("--deform", help="DeformConv flavour: onnx | plugin (TensorRT plugin op) | decompose."),
    ] = "onnx",
    inline_functions: Annotated[
        bool, typer.Option("--inline-functions", help="Inline local functions (TensorRT < 9 needs it).")
    ] = False,
    opset: Annotated[int, typer.Option("--opset", help="ONNX opset (DeformConv needs 19).")] = 19,
    precision: Annotated[
        str, typer.Option("--precision", help="fp32 | fp16 (FP16 policy with FP32 islands).")
    ] = "fp32",
    golden: Annotated[
        bool, typer.Option("--golden/--no-golden", help="Write NAME.golden.npz (PyTorch outputs) beside it.")
    ] = True,
    verify: Annotated[
        bool, typer.Option("--verify/--no-verify", help="Check the file in ONNX Runtime against PyTorch.")
    ] = True,
    trust_checkpoint: Annotated[
        bool, typer.Option("--trust-checkpoint", help="Allow pickled Python objects in the checkpoint.")
    ] = False,
    max_size: Annotated[
        str,
        typer.Option(
            "--max-size", help="Largest frame WxH the in-graph DCP supports (sizes its constant TopK)."
        ),
    ] = "3840x2160",
    dcp_sums: Annotated[
        str | None,
        typer.Option(
            "--dcp-sums",
            help="DCP integer sums: cumsum (fastest in ORT) | doubling (TensorRT). Default: by target.",
        ),
    ] = None,
) -> None:
    """Export the whole frame path (DCP masks, padding, network, uint8 out) to one ONNX file."""

    try:
        from hdm_deploy.export.exporter import export_onnx
    except ImportError as exc:  # torch is an extra: a Jetson running ONNX/TensorRT only lacks it
        from hdm_deploy.core.errors import missing_dependency

        raise missing_dependency("export", exc) from exc

    max_w, max_h = parse_size(max_size)

    try:
        result = export_onnx(
            _existing_model(checkpoint, "checkpoint") if checkpoint else None,
            output,
            io=io,
            deform=deform,
            inline_functions=inline_functions,
            opset=opset,
            precision=precision,
            golden=golden,
            verify=verify,
            trust_checkpoint=trust_checkpoint,
            progress=True,
            console=console,
            max_pixels=max_w * max_h,
            dcp_sums=dcp_sums,
        )
    except HdmDeployError as exc:
        report = getattr(exc, "report", None)
        if report is not None:
            from hdm_deploy.runtime.parity import render_table

            out.print(render_table(report))
        raise
    if result.verification is not None:
        from hdm_deploy.runtime.parity import render_table

        out.print(render_table(result.verification))
    for warning in result.warnings:
        console.print(f"[yellow]warning:[/] {warning}", highlight=False)
    golden_note = f" + {result.golden_path}" if result.golden_path else ""
    out.print(
        f"[bold green]wrote[/] {result.path} ({result.size_bytes / 1e6:.1f} MB, io {result.io}, deform {result.deform}, "
        f"{result.precision}, opset {result.opset}){golden_note}",
        highlight=False,
    )


@app.command("convert")
def convert_cmd(
    model: Annotated[Path, typer.Argument(help="ONNX model written by `hdm-deploy export`.")],
    deform: Annotated[
        str, typer.Option("--deform", help="Target DeformConv flavour: onnx | plugin | decompose.")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Output file (default: MODEL.<flavour>.onnx).")
    ] = None,
    inline_functions: Annotated[
        bool, typer.Option("--inline-functions", help="Also inline local functions.")
    ] = False,
) -> None:
    """Rewrite the DeformConv nodes to another flavour (lossless), optionally inlining functions."""
    from hdm_deploy.graph.flavours import convert_file, detect_flavour

    src = _existing(
        model, "ONNX model", "give the .onnx file written by `hdm-deploy export`", ModelFormatError
    )
    dst = output or src.with_name(f"{src.stem}.{deform}{'.inlined' if inline_functions else ''}.onnx")
    before = detect_flavour(src)
    convert_file(src, dst, deform, inline=inline_functions)
    out.print(
        f"[bold green]wrote[/] {dst} (deform {before} → {deform}{', functions inlined' if inline_functions else ''})"
    )


@app.command("parity")
def parity_cmd(
    model: Annotated[Path, typer.Argument(help="Model to check: .onnx, .engine, or a checkpoint.")],
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
        float | None, typer.Option("--identical-min", help="Minimum % of identical uint8 pixels.")
    ] = None,
    mask_min: Annotated[float | None, typer.Option("--mask-min", help="Minimum % of mask agreement.")] = None,
    max_abs_u8: Annotated[
        int | None, typer.Option("--max-abs-u8", help="Maximum |Δ| of uint8 outputs (levels).")
    ] = None,
    masks: Annotated[
        str | None,
        typer.Option(
            "--masks",
            help="HDM checkpoint reference only: torch (as the graph computes, the default) | reference.",
        ),
    ] = None,
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu | cuda | cuda:N | N (default: best available)."),
    ] = None,
    plugin_lib: Annotated[
        Path | None, typer.Option("--plugin-lib", help="TensorRT engines: libhdm_deploy_plugins.so to load.")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the report as JSON.")] = None,
    junit_path: Annotated[Path | None, typer.Option("--junit", help="Write a JUnit XML report.")] = None,
    heatmap: Annotated[
        Path | None, typer.Option("--heatmap", help="Write |Δ| heatmaps (PNG) into this folder.")
    ] = None,
) -> None:
    """Compare a model with PyTorch (checkpoint) or a golden bundle; non-zero exit on failure."""
    from hdm_deploy.runtime import parity
    from hdm_deploy.runtime.parity import default_golden_for

    if masks is not None:
        _mask_impl(masks)
    _existing_model(model)
    ref = reference or default_golden_for(model)
    _existing(
        ref,
        "reference",
        "pass --reference GOLDEN.npz, a checkpoint or a model (export writes NAME.golden.npz beside NAME.onnx)",
        ModelFormatError,
    )
    thresholds = {
        "psnr_min": psnr_min,
        "max_abs": max_abs,
        "identical_min": identical_min,
        "extras_min": mask_min,
        "max_abs_u8": max_abs_u8,
    }
    with console.status(f"parity {model.name} vs {ref.name}…") as status:
        report = parity.run_parity(
            model,
            ref,
            images=_existing(images, "images", "give an image file or a folder of images")
            if images
            else None,
            thresholds=thresholds,
            reference_options={"masks": masks or "torch"}
            if ref.suffix.lower() in (".pk", ".pt", ".pth")
            else {"masks": masks},
            heatmap_dir=heatmap,
            runner_options={"device": device, "plugin_lib": plugin_lib},
            progress=lambda name: status.update(f"parity {model.name} vs {ref.name}: {name} done"),
        )
    out.print(parity.render_table(report))
    if json_path:
        parity.write_json(report, json_path)
    if junit_path:
        parity.write_junit(report, junit_path)
    if heatmap:
        out.print(f"heatmaps in {heatmap}/")
    report.raise_for_failures()
    out.print(f"[bold green]parity passed[/] ({len(report.cases)} cases)")


@app.command("bench")
def bench_cmd(
    models: Annotated[
        list[Path], typer.Argument(help="Model file(s): checkpoint, .onnx, .engine — compared in one table.")
    ],
    size: Annotated[str, typer.Option("--size", help="Frame size WIDTHxHEIGHT.")] = "640x480",
    batch: Annotated[int, typer.Option("--batch", min=1, help="Frames per call.")] = 1,
    warmup: Annotated[int, typer.Option("--warmup", min=0, help="Untimed calls first.")] = 3,
    iters: Annotated[int, typer.Option("--iters", min=1, help="Timed calls.")] = 10,
    masks: Annotated[
        str, typer.Option("--masks", help="HDM checkpoints in the list: torch (the default) | reference.")
    ] = "torch",
    device: Annotated[
        str | None,
        typer.Option("--device", help="cpu | cuda | cuda:N | N (default: best available)."),
    ] = None,
    plugin_lib: Annotated[
        Path | None, typer.Option("--plugin-lib", help="TensorRT engines: libhdm_deploy_plugins.so to load.")
    ] = None,
    json_path: Annotated[Path | None, typer.Option("--json", help="Write the timings as JSON.")] = None,
) -> None:
    """Latency (median, p90) and throughput per model, warm-up excluded."""
    from hdm_deploy.runtime import bench

    wh = parse_size(size)
    if masks is not None:
        _mask_impl(masks)
    for m in models:
        _existing_model(m)
    total = len(models) * (warmup + iters)
    from rich.progress import Progress

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=total)
        results = bench.bench_models(
            models,
            wh,
            batch,
            warmup,
            iters,
            runner_options={"masks": masks, "device": device, "plugin_lib": plugin_lib},
            progress=lambda _i: progress.advance(task),
        )
    out.print(bench.render_table(results))
    if json_path:
        bench.write_json(results, json_path)


# ---- DCP region masks (dcp/) -------------------------------------------------------------------------


@app.command("masks")
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
    impl: Annotated[str, typer.Option("--impl", help="reference | torch | onnx")] = "reference",
) -> None:
    """The 5 DCP region masks of an image (as the published code computes them), drawn as an overlay."""
    from hdm_deploy.families.hdm.dcp import render
    from hdm_deploy.runtime.image_io import read_image

    picture_path = render.check_picture_suffix(output)  # before minutes of work
    result = render.compute(read_image(_existing(image, "image", "give an image file")).rgb8, impl)
    render.write_picture(picture_path, render.overlay(result))
    if save_npy is not None:
        render.write_npy(save_npy, result.masks)
    shares = "  ".join(f"{k + 1}: {v:.1%}" for k, v in enumerate(result.coverage()))
    out.print(f"masks [{', '.join(map(str, result.masks.shape))}] ({impl}) → {output}  regions {shares}")


# ---- plugins: build-plugin (plugins/) --------------------------------------------------------------


@app.command("build-plugin")
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
        ),
    ] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the CMake output.")] = False,
) -> None:
    """Build the HdmDeformConv CUDA kernels and TensorRT plugin library with CMake."""
    from hdm_deploy.plugins import build_plugin

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
    console.print(f"CUDA {result.cuda_version}, sm_{', sm_'.join(result.cuda_archs)}; {trt}")
    out.print(f"[bold green]plugin library:[/] {result.library}", highlight=False)


# ---- TensorRT: build-engine, doctor (engines/, runtime/doctor.py) ----------------------------------


@app.command("build-engine")
def build_engine_cmd(
    model: Annotated[
        Path, typer.Argument(help="ONNX model from `hdm-deploy export` (FP16: export --precision fp16).")
    ],
    output: Annotated[
        Path | None, typer.Option("-o", "--output", help="Engine file (default: MODEL.engine).")
    ] = None,
    fp16: Annotated[
        bool, typer.Option("--fp16", help="FP16 engine (needs a graph exported with --precision fp16).")
    ] = False,
    min_shape: Annotated[
        str | None, typer.Option("--min", help="Smallest input NxHxW (default 1x64x64).")
    ] = None,
    opt_shape: Annotated[
        str | None, typer.Option("--opt", help="Input NxHxW tuned for (default 1x720x1280).")
    ] = None,
    max_shape: Annotated[
        str | None, typer.Option("--max", help="Largest input NxHxW (default 1x1080x1920).")
    ] = None,
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
            "--strongly-typed/--no-strongly-typed", help="Default: strongly typed on TensorRT ≥ 10."
        ),
    ] = None,
    verbose: Annotated[bool, typer.Option("--verbose", help="TensorRT's verbose log.")] = False,
) -> None:
    """Build a TensorRT engine (+ JSON sidecar) from an exported ONNX model."""
    from hdm_deploy.cli.tensorrt_report import run_build_engine

    run_build_engine(
        _existing(
            model, "ONNX model", "give the .onnx file written by `hdm-deploy export`", ModelFormatError
        ),
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
    )


@app.command("trtexec-args")
def trtexec_args_cmd(
    model: Annotated[Path, typer.Argument(help="ONNX model from `hdm-deploy export`.")],
    trt: Annotated[
        str, typer.Option("--trt", help="TensorRT version trtexec belongs to: 8.5 | 8.6 | 10 | 10.x | 11.")
    ] = "10",
    fp16: Annotated[
        bool, typer.Option("--fp16", help="FP16 engine (needs a graph exported with --precision fp16).")
    ] = False,
    engine: Annotated[
        Path | None, typer.Option("--engine", help="Engine file trtexec writes (default: MODEL.engine).")
    ] = None,
    plugin_lib: Annotated[
        Path | None,
        typer.Option("--plugin-lib", help="libhdm_deploy_plugins.so as trtexec's machine sees it."),
    ] = None,
    min_shape: Annotated[
        str | None, typer.Option("--min", help="Smallest input NxHxW (default 1x64x64).")
    ] = None,
    opt_shape: Annotated[
        str | None, typer.Option("--opt", help="Input NxHxW tuned for (default 1x720x1280).")
    ] = None,
    max_shape: Annotated[
        str | None, typer.Option("--max", help="Largest input NxHxW (default 1x1080x1920).")
    ] = None,
    timing_cache: Annotated[
        Path | None, typer.Option("--timing-cache", help="Timing cache file for --timingCacheFile.")
    ] = None,
    strongly_typed: Annotated[
        bool | None,
        typer.Option(
            "--strongly-typed/--no-strongly-typed", help="Default: strongly typed on TensorRT ≥ 10."
        ),
    ] = None,
) -> None:
    """Print the trtexec command that builds the engine `build-engine` would (profile, FP32 islands, plugin)."""
    import shlex

    from hdm_deploy.tensorrt.trtexec import trtexec_plan

    plan = trtexec_plan(
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
    )
    for note in plan.notes:
        console.print(f"[dim]{note}[/]")
    out.print(shlex.join(["trtexec", *plan.args]), highlight=False, soft_wrap=True)


@app.command("doctor")
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
) -> None:
    """Versions found, the Jetson guide that applies here, and a TensorRT import check of a graph."""
    from hdm_deploy.cli.tensorrt_report import run_doctor

    ok = run_doctor(
        _existing(model, "ONNX model", "give the path of an .onnx file", ModelFormatError) if model else None,
        trt or [],
        out=out,
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
        from hdm_deploy.core.errors import InputImageError

        raise (error or InputImageError)(f"{what} not found: {path}", hint or "check the path")
    return path


def _existing_model(path: Path, what: str = "model", hint: str | None = None) -> Path:
    """A model file that must exist: :class:`CheckpointError` for checkpoints, else :class:`ModelFormatError`."""
    from hdm_deploy.core.errors import CheckpointError, ModelFormatError

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


MASK_IMPLS = ("reference", "torch")


def _mask_impl(masks: str) -> str:
    """``--masks`` of PyTorch models, checked here so that a typo is one line, not a traceback."""
    if masks not in MASK_IMPLS:
        raise HdmDeployError(f"unknown --masks {masks!r}", f"use --masks {' or --masks '.join(MASK_IMPLS)}")
    return masks


if __name__ == "__main__":
    main()
