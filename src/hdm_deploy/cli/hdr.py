"""``hdm-deploy hdr``, ``hdr-parity`` and ``hdr-resave``: DiffHDR's three-exposure job (torch-free at run time).

``hdr`` reads three 8-bit exposures, runs the published patch DDIM sampler over the exported graphs
(``export CKPT -o diffhdr.onnx`` writes ``diffhdr.onnx`` + ``diffhdr.cond.onnx``) in ONNX Runtime and
writes a Radiance ``.hdr`` (OpenCV), optionally a μ-law tonemapped PNG preview.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import cv2
import numpy as np
import typer

from hdm_deploy.cli.commands import _Command, _progress_bar, app, console, out
from hdm_deploy.cli.options import TrustCheckpointOption
from hdm_deploy.core.errors import HdmDeployError, InputImageError, OutputPathError
from hdm_deploy.core.fs import atomic_path, probe_writable, refuse_overwrite
from hdm_deploy.families.base import resolve
from hdm_deploy.families.diffhdr.family import COND_INPUT, PATCH, SEED, STEPS_PUBLISHED, STRIDE, XT_INPUT
from hdm_deploy.families.diffhdr.inputs import (
    inverse_mu_law,
    padded_size,
    parse_exposures,
    read_exposure_file,
    read_ldr,
)
from hdm_deploy.families.diffhdr.parity import check_artifact, condition_graph_of
from hdm_deploy.families.diffhdr.sampler import EngineGraphs, OrtGraphs, grid, initial_noise, sample
from hdm_deploy.graph.onnx_io import load as onnx_load
from hdm_deploy.graph.onnx_io import metadata as onnx_metadata
from hdm_deploy.tensorrt.graph_runner import TensorRTGraph, companion_engines

HDR_SUFFIXES = (".hdr", ".pic")
ENGINE_SUFFIXES = (".engine", ".plan", ".trt")


def condition_engine_of(unet_engine: Path, model_metadata: dict[str, str]) -> Path:
    """The AHDR engine beside a UNet engine: the one its sidecar names (``build-engine`` built it from
    the companion graph), else ``NAME.cond.engine`` (trtexec engines have no sidecar)."""
    family = model_metadata.get("family")
    if family is not None and family != "diffhdr":
        raise HdmDeployError(
            f"{unet_engine.name} is a {family} engine, not DiffHDR's UNet",
            "give the engine built from diffhdr.onnx",
        )
    found = companion_engines(unet_engine, model_metadata)
    cond = found[0] if found else unet_engine.with_name(f"{unet_engine.stem}.cond{unet_engine.suffix}")
    if not cond.is_file():
        raise HdmDeployError(
            f"the condition engine {cond} is missing",
            "build both with `hdm-deploy build-engine diffhdr.onnx` (it builds NAME.cond.engine too)",
        )
    return cond


def open_engines(model: Path, device: int = 0):  # pragma: no cover - needs TensorRT and a GPU
    """(UNet engine, AHDR engine) as :class:`~hdm_deploy.tensorrt.graph_runner.TensorRTGraph`."""
    if not model.is_file():
        raise HdmDeployError(
            f"engine not found: {model}", "build it with `hdm-deploy build-engine diffhdr.onnx`"
        )
    unet = TensorRTGraph(model, device=device)
    return unet, TensorRTGraph(condition_engine_of(model, unet.model_metadata), device=device)


def check_engine_batch(unet, cond, batch: int, patch: int) -> None:
    """A full patch batch against the engines' profiles (``ShapeOutOfProfileError`` names the fix)."""
    for graph, name in ((unet, XT_INPUT), (cond, COND_INPUT)):
        lo = graph.profile.inputs.get(name)
        channels = lo[0][1] if lo else 0  # an engine without that input fails the check by name
        graph.check({name: (batch, channels, patch, patch)})


@app.command("hdr", cls=_Command)
def hdr_cmd(
    exposures_in: Annotated[
        list[Path], typer.Argument(help="SHORT MEDIUM LONG: three 8-bit exposures (medium = reference).")
    ],
    model: Annotated[
        Path,
        typer.Option(
            "--model",
            "-m",
            help="UNet graph written by `export` (NAME.cond.onnx beside it), or its TensorRT engine from "
            "`build-engine` (NAME.cond.engine beside it).",
        ),
    ],
    output: Annotated[Path, typer.Option("-o", "--output", help="Radiance .hdr to write.")],
    exposures: Annotated[
        str | None, typer.Option("--exposures", help="Stops of short,medium,long, e.g. -2,0,2.")
    ] = None,
    exposure_file: Annotated[
        Path | None,
        typer.Option("--exposure-file", help="The published dataset's exposure.txt (one stop per line)."),
    ] = None,
    steps: Annotated[
        int, typer.Option("--steps", help="DDIM steps (published 25; code default 200).")
    ] = STEPS_PUBLISHED,
    patch: Annotated[int, typer.Option("--patch", help="Patch side (published 512).")] = PATCH,
    stride: Annotated[
        int, typer.Option("--stride", help="Patch stride r (published 64; larger is faster).")
    ] = STRIDE,
    batch: Annotated[int, typer.Option("--batch", help="Patches per graph call (published 8).")] = 8,
    seed: Annotated[
        int, typer.Option("--seed", help="Seed of the numpy noise generator (published 61).")
    ] = SEED,
    noise: Annotated[
        Path | None,
        typer.Option("--noise", help="x_T as .npy [3,H',W'] for the padded size (overrides --seed)."),
    ] = None,
    preview: Annotated[
        Path | None, typer.Option("--preview", help="Also write the μ-law tonemapped PNG.")
    ] = None,
    threads: Annotated[int, typer.Option("--threads", help="ONNX Runtime intra-op threads (0: all).")] = 0,
    device: Annotated[int, typer.Option("--device", help="CUDA device of TensorRT engines.")] = 0,
) -> None:
    """Merge three exposures into one HDR image with DiffHDR (published patch DDIM sampler, eta 0)."""
    if len(exposures_in) != 3:
        raise HdmDeployError(
            f"hdr takes 3 exposures (short, medium, long), got {len(exposures_in)}",
            "give SHORT MEDIUM LONG",
        )
    if (exposures is None) == (exposure_file is None):
        raise HdmDeployError(
            "give the exposures either with --exposures or with --exposure-file (exactly one)",
            "e.g. --exposures -2,0,2, or --exposure-file scene/exposure.txt",
        )
    if output.suffix.lower() not in HDR_SUFFIXES:
        raise OutputPathError(f"-o {output}: the output is Radiance HDR", "name it NAME.hdr")
    if preview is not None and preview.suffix.lower() != ".png":
        raise OutputPathError(f"--preview {preview}: the preview is a PNG", "name it NAME.png")
    for flag, v, low in (
        ("--steps", steps, 1),
        ("--patch", patch, 32),
        ("--stride", stride, 1),
        ("--batch", batch, 1),
    ):
        if v < low:
            raise HdmDeployError(f"{flag} {v} is too small", f"use {flag} ≥ {low}")
    if stride > patch:
        raise HdmDeployError(f"--stride {stride} is larger than --patch {patch}", "pixels would go uncovered")
    stops = parse_exposures(exposures) if exposures is not None else read_exposure_file(exposure_file)
    refuse_overwrite([*exposures_in, model, exposure_file, noise], [output, preview])
    probe_writable(output.parent)
    ldrs = [read_ldr(p) for p in exposures_in]
    sizes = {x.shape[:2] for x in ldrs}
    if len(sizes) != 1:
        shown = ", ".join(f"{x.shape[1]}×{x.shape[0]}" for x in ldrs)
        raise InputImageError(f"the exposures differ in size ({shown})", "give three images of one size")
    engines = model.suffix.lower() in ENGINE_SUFFIXES
    if engines:
        unet_engine, cond_engine = open_engines(model, device)
        multiple = int(unet_engine.model_metadata.get("patch_multiple", "1"))
    else:
        cond_graph = condition_graph_of(model)
        multiple = int(onnx_metadata(onnx_load(model, external_data=False)).get("patch_multiple", "1"))
    if patch % multiple:
        raise HdmDeployError(
            f"--patch {patch} is not a multiple of {multiple} (the UNet halves the patch {multiple.bit_length() - 1} times)",
            f"use e.g. --patch {max(multiple, patch // multiple * multiple)}",
        )
    h, w = ldrs[0].shape[:2]
    hp, wp = padded_size(h, w, patch, stride)
    x_t = initial_noise((hp, wp), seed=seed, path=noise)
    if engines:  # every patch batch must lie in the engines' profiles: say so before any work
        first = min(batch, len(grid(hp, wp, patch, stride)))
        check_engine_batch(unet_engine, cond_engine, first, patch)
        graphs = EngineGraphs(unet_engine, cond_engine)
    else:
        graphs = OrtGraphs(model, cond_graph, threads=threads)
    bar, tick = _progress_bar(f"DiffHDR {w}×{h}, {steps} steps")
    start = time.perf_counter()
    with bar:
        x0, stats = sample(
            ldrs,
            stops,
            x_t,
            graphs.feature,
            graphs.eps,
            steps=steps,
            patch=patch,
            stride=stride,
            batch=batch,
            progress=tick,
        )
    seconds = time.perf_counter() - start
    tonemapped = np.clip(x0, 0, 1)[:, :h, :w]
    hdr = inverse_mu_law(tonemapped).transpose(1, 2, 0)[:, :, ::-1]
    with atomic_path(output) as tmp:
        if not cv2.imwrite(str(tmp), np.ascontiguousarray(hdr)):
            raise OutputPathError(f"OpenCV could not write {output}", "check the folder and the .hdr suffix")
    if preview is not None:
        png = np.rint(tonemapped.transpose(1, 2, 0)[:, :, ::-1] * 255).astype(np.uint8)
        with atomic_path(preview) as tmp:
            cv2.imwrite(str(tmp), png)
    out.print(
        f"[bold green]wrote[/] {output} ({w}×{h}, {stats.steps} steps × {stats.patches} patches of {patch}², "
        f"stride {stride}, {seconds:.1f} s)" + (f" + {preview}" if preview else ""),
        highlight=False,
    )


@app.command("hdr-parity", cls=_Command)
def hdr_parity_cmd(
    model: Annotated[Path, typer.Argument(help="DiffHDR UNet graph written by `export`.")],
    reference: Annotated[
        Path | None, typer.Option("--reference", "-r", help="Golden bundle (default: NAME.golden.npz).")
    ] = None,
    psnr_min: Annotated[
        float, typer.Option("--psnr-min", help="Minimum PSNR (dB) on the tonemapped output.")
    ] = 45.0,
) -> None:
    """Check the graphs + torch-free sampler against the PyTorch golden bundle (no torch needed)."""
    check_artifact(model, reference, psnr_min=psnr_min, console=console)
    out.print("[bold green]parity passed[/]")


@app.command("hdr-resave", cls=_Command)
def hdr_resave_cmd(
    checkpoint: Annotated[Path, typer.Argument(help="DiffHDR checkpoint (published Hdr_ddpm*.pth.tar).")],
    output: Annotated[
        Path, typer.Option("-o", "--output", help="Tensors-only checkpoint to write (.pt/.pth).")
    ],
    ema: Annotated[bool, typer.Option("--ema", help="Write the EMA weights as the UNet's weights.")] = False,
    trust_checkpoint: TrustCheckpointOption = False,
) -> None:
    """Re-save a DiffHDR checkpoint with tensors only (loads with torch.load(weights_only=True))."""
    if not checkpoint.is_file():
        raise HdmDeployError(f"checkpoint not found: {checkpoint}", "give the .pth.tar file")
    refuse_overwrite([checkpoint], [output])
    probe_writable(output.parent)
    # torch-side code, reached through a reference (the CLI imports no torch until here)
    resave_tensors_only = resolve("hdm_deploy.families.diffhdr.checkpoint:resave_tensors_only")
    resave_tensors_only(checkpoint, output, trust_checkpoint=trust_checkpoint, ema=ema)
    out.print(f"[bold green]wrote[/] {output} ({'EMA' if ema else 'raw'} weights, tensors only)")


__all__ = ["hdr_cmd", "hdr_parity_cmd", "hdr_resave_cmd"]
