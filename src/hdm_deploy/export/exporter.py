"""``hdm-deploy export``: checkpoint → one ONNX file with the whole frame path, plus a golden bundle.

Generic over model families: the family's :class:`~hdm_deploy.families.base.FamilyExport` supplies
the module to trace, its custom ops and local functions, metadata and golden outputs. Pipeline
(each step timed, shown with rich when ``progress=True``):

1. load the checkpoint (default: the family's bundled sample), find its family, wrap it;
2. ``torch.export`` with dynamic N, H, W (runtime shape assertions instead of specialisation);
3. the dynamo ONNX exporter (opset 19; ``torchvision.ops.deform_conv2d`` → ``DeformConv``; the
   family's custom ops → local-function calls) with onnxscript's optimiser;
4. the family finishes the graph (attaches its local functions), DeformConv is rewritten to the
   chosen flavour, the precision policy applied (:mod:`hdm_deploy.graph.precision`), metadata set,
   optionally all local functions inlined;
5. ``onnx.checker`` full check, IR version ≤ 13;
6. golden bundle (PyTorch outputs on bundled photographs) and a check of the new file in ONNX
   Runtime against it;
7. only a verified file is published (renamed from a hidden temporary, with ``model.golden.npz``);
   one that misses the reference is kept as ``model.failed.onnx`` + ``model.failed.golden.npz``.
"""

from __future__ import annotations

import contextlib
import os
import time
import warnings
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import onnx
import torch
from rich.console import Console

from hdm_deploy import __version__
from hdm_deploy.core.contracts import (
    FLAVOURS,
    INPUT_NAME,
    IO_KINDS,
    OUTPUT_NAME,
    PRECISIONS,
    SUPPORTED_OPSETS,
)
from hdm_deploy.core.errors import ExportError, ParityError, first_line
from hdm_deploy.core.fs import discard, sha256_file, temp_path_beside
from hdm_deploy.export import tiled as tiled_export
from hdm_deploy.families.base import Family, FamilyExport
from hdm_deploy.families.checkpoint_io import open_checkpoint, sample_checkpoint
from hdm_deploy.families.registry import DEFAULT_FAMILY, detect_family, get_family
from hdm_deploy.graph import flavours
from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.graph import precision as policy
from hdm_deploy.graph.golden import GoldenBundle, golden_path_for, write_golden
from hdm_deploy.graph.opset import IR_FOR_OPSET, lower_opset
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
from hdm_deploy.runtime.parity import Thresholds, check_parity

#: 19: the default (DeformConv); 17/18: for TensorRT 8.5/8.6 parsers, with --deform plugin|decompose
OPSETS = SUPPORTED_OPSETS
#: example batch used for tracing: sizes ≠ 0/1 (which torch.export would specialise) and not
#: multiples of 4, so that the padding path is traced.
EXAMPLE_SHAPE = (2, 37, 42)
MAX_SIDE = 16384
#: smallest dynamic H, W of the traced graph (a family's ``min_side`` may raise it)
MIN_TRACED_SIDE = 8
MAX_BATCH = 1024


@dataclass
class ExportResult:
    """What :func:`export_onnx` wrote and measured."""

    path: Path
    golden_path: Path | None
    io: str
    deform: str
    precision: str
    inline_functions: bool
    opset: int
    metadata: dict[str, str]
    ops: dict[str, int]
    size_bytes: int
    seconds: dict[str, float] = field(default_factory=dict)
    family: str = ""
    verification: Any = None  #: runtime.parity.ParityReport of ORT vs the golden outputs, if run
    warnings: list[str] = field(default_factory=list)
    #: ``--tiled``: the manifest written and the tiled-vs-whole reports of its check
    tiled: list | None = None
    tiled_manifest: Path | None = None


class _Steps:
    """Timed steps with a rich spinner (on stderr) while each runs."""

    def __init__(self, enabled: bool, console=None):
        self.enabled = enabled
        self.times: dict[str, float] = {}
        if enabled and console is None:
            console = Console(stderr=True)
        self.console = console

    @contextlib.contextmanager
    def __call__(self, key: str, text: str) -> Iterator[None]:
        t0 = time.perf_counter()
        if self.enabled:
            with self.console.status(f"{text}…"):
                yield
        else:
            yield
        self.times[key] = dt = time.perf_counter() - t0
        if self.enabled:
            self.console.print(f"[green]✓[/] {text} [dim]({dt:.1f} s)[/]", highlight=False)


def _load_model(
    checkpoint: str | os.PathLike | torch.nn.Module | None,
    trust_checkpoint: bool,
    arch: str | None = None,
    weights: str | None = None,
) -> tuple[Family, torch.nn.Module, dict[str, Any]]:
    """(family, fp32 CPU model in eval mode, source facts) of a checkpoint, an in-memory network
    (family from its state-dict keys) or — ``None`` — the family's bundled sample. ``weights``: a
    family weight variant (``"ema"``), recorded in the source facts (hence the ONNX metadata)."""
    if weights is not None and isinstance(checkpoint, torch.nn.Module):
        raise ExportError(f"--{weights} needs a checkpoint file", f"pass the checkpoint, or drop --{weights}")
    if isinstance(checkpoint, torch.nn.Module):
        family, _ = detect_family(checkpoint.state_dict().keys(), arch=arch)
        return family, checkpoint.float().cpu().eval(), {"checkpoint": "(in-memory model)"}
    if checkpoint is None:
        checkpoint = sample_checkpoint(get_family((arch or DEFAULT_FAMILY).partition(":")[0]))
    path = Path(checkpoint)
    family, model, meta = open_checkpoint(path, trust_checkpoint=trust_checkpoint, arch=arch, weights=weights)
    info = {"checkpoint": path.name, "checkpoint_sha256": sha256_file(path)}
    if weights is not None:
        info["weights"] = weights
    if isinstance(meta, dict) and meta.get("task"):
        info["task"] = str(meta["task"])
    return family, model.float().cpu().eval(), info


def _torch_export(wrapper: torch.nn.Module, io: str, min_side: int = 1) -> torch.export.ExportedProgram:
    """``min_side``: the family's smallest frame side (the dynamic H, W start at it, at least 8)."""
    n, h, w = EXAMPLE_SHAPE
    lo = max(MIN_TRACED_SIDE, int(min_side))
    if io == "uint8":
        example = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8)
        dims = {
            0: torch.export.Dim("N", min=1, max=MAX_BATCH),
            1: torch.export.Dim("H", min=lo, max=MAX_SIDE),
            2: torch.export.Dim("W", min=lo, max=MAX_SIDE),
        }
    else:
        example = torch.rand(n, 3, h, w)
        dims = {
            0: torch.export.Dim("N", min=1, max=MAX_BATCH),
            2: torch.export.Dim("H", min=lo, max=MAX_SIDE),
            3: torch.export.Dim("W", min=lo, max=MAX_SIDE),
        }
    try:
        return torch.export.export(
            wrapper,
            (example,),
            dynamic_shapes={INPUT_NAME: dims},
            strict=False,
            prefer_deferred_runtime_asserts_over_guards=True,
        )
    except Exception as exc:
        raise ExportError(f"torch.export failed: {first_line(exc)}", "re-run with --debug") from exc


def _to_onnx(
    program: torch.export.ExportedProgram, opset: int, outputs: list[str], table: dict
) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,
                opset_version=opset,
                input_names=[INPUT_NAME],
                output_names=outputs,
                custom_translation_table=table,
                optimize=True,
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(f"the ONNX exporter failed: {first_line(exc)}", "re-run with --debug") from exc
    return onnx_program.model_proto


def _separate_outputs(model: onnx.ModelProto) -> None:
    """Give graph outputs that are also used inside the graph (HDM's ``masks`` feed the network) their
    own ``Identity``, so passes that retype or rename outputs (FP16 policy) never touch internal edges."""
    outputs = {o.name for o in model.graph.output}
    consumed = {i for n in model.graph.node for i in n.input}
    shared = outputs & consumed
    if not shared:
        return
    nodes = []
    for node in model.graph.node:
        for k, name in enumerate(node.output):
            if name in shared:
                node.output[k] = f"{name}_internal"
        nodes.append(node)
    for node in nodes:
        for k, name in enumerate(node.input):
            if name in shared:
                node.input[k] = f"{name}_internal"
    for name in sorted(shared):
        nodes.append(onnx.helper.make_node("Identity", [f"{name}_internal"], [name], name=f"output_{name}"))
    del model.graph.node[:]
    model.graph.node.extend(nodes)


def _apply_precision(model: onnx.ModelProto, precision: str, flavour: str, family: Family) -> onnx.ModelProto:
    if precision == "fp32":
        return model
    islands = [policy.Island(name, reason, scopes=(scope,)) for name, reason, scope in family.fp32_scopes]
    return policy.apply_precision(
        model, precision, flavour=flavour, fp32_functions=family.fp32_functions, extra_islands=islands
    )


def build_metadata(
    family: Family,
    family_meta: dict[str, str],
    io: str,
    deform: str,
    precision: str,
    opset: int,
    inline: bool,
    source: dict[str, Any],
) -> dict[str, str]:
    """Every ``metadata_props`` key of an exported model (see :mod:`hdm_deploy.graph.metadata`)."""
    import onnxscript

    return {
        "family": family.name,
        "task": source.get("task", family.task),
        **family.frame.metadata(),
        **family_meta,  # after the frame contract: a variant may differ (ADFNet Gray: channels 1)
        "io": io,
        "layout": "NHWC" if io == "uint8" else "NCHW",
        "inputs": INPUT_NAME,
        "outputs": ",".join((OUTPUT_NAME, *family.extras)),
        "deform": deform,
        "precision": precision,
        "opset": str(opset),
        "functions_inlined": "true" if inline else "false",
        "checkpoint": source.get("checkpoint", ""),
        "checkpoint_sha256": source.get("checkpoint_sha256", ""),
        "package_version": __version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "exporter": f"torch.onnx dynamo (onnxscript {onnxscript.__version__})",
    }


def _check_options(io: str, deform: str, precision: str, opset: int) -> None:
    if io not in IO_KINDS:
        raise ExportError(f"unknown io {io!r}", f"use one of {', '.join(IO_KINDS)}")
    if deform not in FLAVOURS:
        raise ExportError(f"unknown DeformConv flavour {deform!r}", f"use one of {', '.join(FLAVOURS)}")
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    if opset not in OPSETS:
        raise ExportError(f"opset {opset} is not supported", f"use one of {', '.join(map(str, OPSETS))}")


def _check_deform_opset(proto: onnx.ModelProto, deform: str, opset: int) -> bool:
    """Whether the traced graph has deformable convolutions; refuses ``--deform onnx`` below opset 19
    for a graph that has them (a network without any exports at any opset whatever ``--deform`` says)."""
    has_deform = flavours.detect_flavour(proto) is not None
    if has_deform and opset < 19 and deform == "onnx":
        raise ExportError(
            f"DeformConv does not exist in opset {opset}", "export with --deform plugin or --deform decompose"
        )
    return has_deform


def _family_export(family: Family) -> FamilyExport:
    hooks = family.resolve("exporter")
    if not isinstance(hooks, FamilyExport):
        raise ExportError(f"family {family.name!r} has no usable export hooks")
    return hooks


def build_onnx(
    model: torch.nn.Module,
    *,
    io: str = "uint8",
    deform: str = "onnx",
    inline_functions: bool = False,
    opset: int = _graph.OPSET,
    precision: str = "fp32",
    source: dict[str, Any] | None = None,
    steps: _Steps | None = None,
    arch: str | None = None,
    plan: Any = None,
    **family_options: Any,
) -> onnx.ModelProto:
    """The checked ONNX model of ``model``'s frame path (nothing written).

    ``family_options`` are the family's own export options (HDM: ``max_pixels``, ``dcp_sums``,
    ``dcp``); ``plan`` passes a plan the family already made (then they must be empty).
    """
    _check_options(io, deform, precision, opset)
    family, _ = detect_family(model.state_dict().keys(), arch=arch)
    hooks = _family_export(family)
    if plan is None:
        plan = hooks.plan(model, io=io, deform=deform, opset=opset, **family_options)
    elif family_options:
        raise ExportError(f"family options {sorted(family_options)} given with a ready plan")
    steps = steps or _Steps(False)
    wrapper = hooks.wrapper(model, io, plan)
    with hooks.tracing(plan), torch.no_grad():
        with steps("trace", "torch.export (dynamic N, H, W)"):
            program = _torch_export(wrapper, io, family.frame.min_side)
        with steps("onnx", f"ONNX conversion (dynamo exporter, opset {_graph.OPSET})"):
            outputs = [OUTPUT_NAME, *family.extras]
            proto = _to_onnx(program, _graph.OPSET, outputs, hooks.translation_table(plan))
    has_deform = _check_deform_opset(proto, deform, opset)
    with steps("rewrite", f"{family.name} functions, DeformConv → {deform}, metadata"):
        if opset < _graph.OPSET:
            proto = lower_opset(proto, opset, passthrough=("DeformConv",))
        hooks.finish_graph(proto, plan, io)
        _separate_outputs(proto)
        if deform != "onnx":
            proto = flavours.convert_deform(proto, deform, check=False)
        proto = _apply_precision(proto, precision, deform, family)
        proto.producer_name = "hdm-deploy"
        proto.producer_version = __version__
        proto.doc_string = f"{family.title}, whole frame path: {io} frames in, enhanced frames out."
        meta = build_metadata(
            family,
            hooks.metadata(model, plan, source or {}),
            io,
            deform if has_deform else flavours.NO_DEFORM,
            precision,
            opset,
            inline_functions,
            source or {},
        )
        _graph.set_metadata(proto, meta)
        if inline_functions:
            proto = flavours.inline_functions(proto, check=False)
    with steps("check", "onnx.checker (full check)"):
        _graph.finalize(
            proto, ir_version=IR_FOR_OPSET.get(opset, _graph.IR_VERSION) if opset < 19 else _graph.IR_VERSION
        )
    return proto


def export_onnx(
    checkpoint: str | os.PathLike | torch.nn.Module | None = None,
    output: str | os.PathLike = "model.onnx",
    *,
    io: str = "uint8",
    deform: str = "onnx",
    inline_functions: bool = False,
    opset: int = _graph.OPSET,
    precision: str = "fp32",
    golden: bool = True,
    verify: bool = True,
    golden_cases: list | None = None,
    trust_checkpoint: bool = False,
    arch: str | None = None,
    progress: bool = False,
    console=None,
    tiled: bool = False,
    ema: bool = False,
    **family_options: Any,
) -> ExportResult:
    """Export a checkpoint (default: the bundled sample) or an in-memory network to ``output``.

    ``golden`` writes ``<stem>.golden.npz`` beside it; ``verify`` runs the new file in ONNX Runtime
    on the golden inputs *before* publishing it and raises :class:`ParityError` when it misses the
    bundle's tolerances: then ``output`` is not written (nor an existing one touched) and the file
    and its bundle are kept as :func:`failed_paths` (``STEM.failed.onnx``/``.failed.golden.npz``). ``arch`` names the family (default: found from the state-dict keys);
    ``family_options`` are the family's own (HDM: ``max_pixels``, ``dcp_sums``, ``dcp``).
    ``ema`` exports the checkpoint's EMA weights (families listing ``"ema"`` in ``weight_variants``;
    refused for the others). ``tiled`` also writes the stage graphs of the exact memory-bounded path and their manifest
    (:mod:`hdm_deploy.export.tiled`), checked against the whole-frame graph before they are kept.
    """
    _check_options(io, deform, precision, opset)
    if tiled and (io != "uint8" or precision != "fp32" or inline_functions or opset != _graph.OPSET):
        raise ExportError(
            "--tiled exports uint8 I/O, FP32, opset 19 stage graphs only",
            "leave out --io float, --precision fp16, --inline-functions and --opset",
        )
    steps = _Steps(progress, console)
    output = Path(output)
    with steps("load", "load checkpoint"):
        family, model, source = _load_model(checkpoint, trust_checkpoint, arch, "ema" if ema else None)
    if family.artifact_exporter:  # several graphs driven by a host loop, not the frame path
        return family.resolve("artifact_exporter")(
            model,
            output,
            source=source,
            precision=precision,
            opset=opset,
            golden=golden,
            verify=verify,
            progress=progress,
            console=console,
            **family_options,
        )
    hooks = _family_export(family)
    plan = hooks.plan(model, io=io, deform=deform, opset=opset, **family_options)
    proto = build_onnx(
        model,
        io=io,
        deform=deform,
        inline_functions=inline_functions,
        opset=opset,
        precision=precision,
        source=source,
        steps=steps,
        arch=family.name,
        plan=plan,
    )
    bundle: GoldenBundle | None = None
    golden_file = golden_path_for(output) if golden else None
    if golden or verify:
        with steps("golden", "PyTorch reference outputs on the bundled photographs"):
            bundle = hooks.golden(
                model,
                plan,
                golden_cases,
                precision=precision,
                provenance={
                    "checkpoint": source.get("checkpoint"),
                    "checkpoint_sha256": source.get("checkpoint_sha256"),
                    "package_version": __version__,
                    "onnx_model": output.name,
                    "family": family.name,
                    "io": io,
                    "deform": deform,
                },
            )
    if golden_file is not None:
        _graph.set_metadata(proto, {"golden": golden_file.name})
    # Verified before it is published: the file is written under a hidden temporary name, checked
    # in ONNX Runtime, and only then renamed to ``output`` (with its golden bundle). A file that
    # misses the reference is kept as STEM.failed.onnx (+ STEM.failed.golden.npz) for inspection —
    # names no command picks up as a model/golden pair by accident — and ``output`` is not touched.
    staged = temp_path_beside(output)
    try:
        with steps("write", f"write {output.name}" + (f" and {golden_file.name}" if golden_file else "")):
            _graph.save(proto, staged)
        result = ExportResult(
            path=output,
            golden_path=golden_file,
            io=io,
            deform=deform,
            precision=precision,
            inline_functions=inline_functions,
            opset=opset,
            metadata=_graph.metadata(proto),
            ops=dict(
                Counter(
                    f"{n.domain}::{n.op_type}" if n.domain else n.op_type for n in proto.graph.node
                ).most_common()
            ),
            size_bytes=staged.stat().st_size,
            seconds=steps.times,
            family=family.name,
        )
        if verify and bundle is not None:
            with steps("verify", "ONNX Runtime vs PyTorch on the golden inputs"):
                try:
                    runner = OnnxRuntimeRunner(staged, device="cpu")
                except Exception as exc:
                    result.warnings.append(f"not verified: ONNX Runtime cannot load it ({exc})")
                    runner = None
                if runner is not None:
                    with runner:
                        report = check_parity(
                            runner, bundle, thresholds=Thresholds.from_dict(bundle.tolerances)
                        )
                    report.model = str(output)
                    report.reference = str(golden_file or "(PyTorch, in memory)")
                    result.verification = report
            result.seconds = steps.times
        if result.verification is not None and not result.verification.passed:
            raise _failed_export(result, proto, bundle, output)
        if golden_file is not None and bundle is not None:
            write_golden(golden_file, bundle)
        os.replace(staged, output)
        for stale in failed_paths(output):  # a previous failed attempt's files
            discard(stale)
    finally:
        discard(staged)
    if tiled:
        with steps("tiled", "stage graphs for the tiled path, halos, ONNX Runtime check vs whole frame"):
            manifest, protos = tiled_export.export_stage_graphs(
                family,
                hooks,
                model,
                plan,
                output,
                deform=deform,
                max_pixels=int(_graph.metadata(proto).get("max_pixels", 0) or 0),
                source=source,
            )
            frames = [c.input for c in bundle.cases] if bundle is not None else []
            result.tiled = tiled_export.write_and_verify(manifest, protos, output, frames)
            result.tiled_manifest = tiled_export.manifest_path_for(output)
    return result


FAILED_TAG = "failed"


def failed_paths(output: str | os.PathLike) -> tuple[Path, Path]:
    """Where an export that missed its reference is kept: ``STEM.failed.onnx``, ``STEM.failed.golden.npz``."""
    output = Path(output)
    failed = output.with_name(f"{output.stem}.{FAILED_TAG}{output.suffix}")
    return failed, golden_path_for(failed)


def _failed_export(
    result: ExportResult, proto: onnx.ModelProto, bundle: GoldenBundle | None, output: Path
) -> ParityError:
    """Keep the rejected model and its reference under ``.failed.`` names; the error to raise."""
    failed, failed_golden = failed_paths(output)
    _graph.set_metadata(proto, {"golden": failed_golden.name})
    _graph.save(proto, failed)
    if bundle is not None:
        write_golden(failed_golden, bundle)
    report = result.verification
    result.path, result.golden_path = failed, failed_golden if bundle is not None else None
    report.model, report.reference = str(failed), str(failed_golden)
    error = ParityError(
        f"the exported model misses the PyTorch reference: {'; '.join(report.failures[:3])}; "
        f"nothing written to {output.name}, kept as {failed.name} for inspection",
        f"inspect with `hdm-deploy parity {failed} --heatmap DIR`",
    )
    error.report = report  # type: ignore[attr-defined]
    error.result = result  # type: ignore[attr-defined]
    return error
