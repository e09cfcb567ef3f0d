"""``hdm-deploy export``: checkpoint → one ONNX file with the whole frame path, plus a golden bundle.

Pipeline (each step timed, shown with rich when ``progress=True``):

1. load the checkpoint (default: the bundled sample) and wrap it in :class:`.frame_path.FramePath`;
2. ``torch.export`` with dynamic N, H, W (runtime shape assertions instead of specialisation);
3. the dynamo ONNX exporter (opset 19; ``torchvision.ops.deform_conv2d`` → ``DeformConv``; our DCP
   op → one ``hdm_deploy.dcp::DCPMasks`` call) with onnxscript's optimiser;
4. attach the DCP local function(s), rewrite DeformConv to the chosen flavour, apply the precision
   policy (``fp32`` here; others come from :mod:`hdm_deploy.export.precision`), metadata,
   optionally inline all local functions;
5. ``onnx.checker`` full check, IR version ≤ 13;
6. golden bundle (PyTorch outputs on bundled photographs) and a check of the new file in ONNX
   Runtime against it;
7. atomic writes of ``model.onnx`` and ``model.golden.npz``.
"""

from __future__ import annotations

import contextlib
import json
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

from hdm_deploy import __version__
from hdm_deploy.core.errors import ExportError, ParityError, first_line
from hdm_deploy.core.fs import sha256_file
from hdm_deploy.families.hdm.dcp.export_op import (
    DEFAULT_MAX_PIXELS,
    DCPImpl,
    attach_functions,
    default_impl,
    translation_table,
    using,
)
from hdm_deploy.families.hdm.dcp.export_op import (
    FP32_FUNCTIONS as DCP_FP32_FUNCTIONS,
)
from hdm_deploy.families.hdm.frame_path import IO_KINDS, PAD_MULTIPLE, FramePath, export_ready
from hdm_deploy.families.hdm.golden import make_golden
from hdm_deploy.families.hdm.model import HDM, MEAN, STD
from hdm_deploy.graph import flavours
from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.graph.golden import GoldenBundle, golden_path_for, write_golden
from hdm_deploy.graph.opset import IR_FOR_OPSET, lower_opset
from hdm_deploy.graph.precision import apply_precision

PRECISIONS = ("fp32", "fp16")
#: 19: the default (DeformConv); 17/18: for TensorRT 8.5/8.6 parsers, with --deform plugin|decompose
OPSETS = (17, 18, 19)
#: example batch used for tracing: sizes ≠ 0/1 (which torch.export would specialise) and not
#: multiples of 4, so that the padding path is traced.
EXAMPLE_SHAPE = (2, 37, 42)
MAX_SIDE = 16384
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
    verification: Any = None  #: runtime.parity.ParityReport of ORT vs the golden outputs, if run
    warnings: list[str] = field(default_factory=list)


class _Steps:
    """Timed steps with a rich spinner (on stderr) while each runs."""

    def __init__(self, enabled: bool, console=None):
        self.enabled = enabled
        self.times: dict[str, float] = {}
        if enabled and console is None:
            from rich.console import Console

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


def _load_model(checkpoint, trust_checkpoint: bool) -> tuple[HDM, dict[str, Any]]:
    from hdm_deploy.families.hdm.checkpoint import load_checkpoint_with_meta

    if isinstance(checkpoint, HDM):
        return checkpoint, {"checkpoint": "(in-memory model)"}
    if checkpoint is None:
        from hdm_deploy.families.hdm.sample import sample_checkpoint_path

        checkpoint = sample_checkpoint_path()
    path = Path(checkpoint)
    model, meta = load_checkpoint_with_meta(path, trust_checkpoint)
    info = {"checkpoint": path.name, "checkpoint_sha256": sha256_file(path)}
    if isinstance(meta, dict) and meta.get("task"):
        info["task"] = str(meta["task"])
    return model, info


def _torch_export(wrapper: FramePath, io: str) -> torch.export.ExportedProgram:
    n, h, w = EXAMPLE_SHAPE
    if io == "uint8":
        example = torch.randint(0, 256, (n, h, w, 3), dtype=torch.uint8)
        dims = {
            0: torch.export.Dim("N", min=1, max=MAX_BATCH),
            1: torch.export.Dim("H", min=8, max=MAX_SIDE),
            2: torch.export.Dim("W", min=8, max=MAX_SIDE),
        }
    else:
        example = torch.rand(n, 3, h, w)
        dims = {
            0: torch.export.Dim("N", min=1, max=MAX_BATCH),
            2: torch.export.Dim("H", min=8, max=MAX_SIDE),
            3: torch.export.Dim("W", min=8, max=MAX_SIDE),
        }
    try:
        return torch.export.export(
            wrapper,
            (example,),
            dynamic_shapes={"image": dims},
            strict=False,
            prefer_deferred_runtime_asserts_over_guards=True,
        )
    except Exception as exc:
        raise ExportError(f"torch.export failed: {first_line(exc)}", "re-run with --debug") from exc


def _to_onnx(program: torch.export.ExportedProgram, opset: int) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,
                opset_version=opset,
                input_names=["image"],
                output_names=["enhanced", "masks"],
                custom_translation_table=translation_table(),
                optimize=True,
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(f"the ONNX exporter failed: {first_line(exc)}", "re-run with --debug") from exc
    return onnx_program.model_proto


def _rename_dims(model: onnx.ModelProto, io: str) -> None:
    """Readable symbolic dims on the graph I/O: N, H, W and the padded quarter sizes."""
    names = {}
    inp = model.graph.input[0].type.tensor_type.shape.dim
    axes = (0, 1, 2) if io == "uint8" else (0, 2, 3)
    for axis, label in zip(axes, ("N", "H", "W"), strict=True):
        if inp[axis].dim_param:
            names[inp[axis].dim_param] = label
    for value in list(model.graph.input) + list(model.graph.output):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param:
                p = d.dim_param
                for old, new in names.items():
                    p = p.replace(old, new)
                p = p.replace("((H + 3)//4)", "ceil(H/4)").replace("((W + 3)//4)", "ceil(W/4)")
                d.dim_param = p


def _separate_outputs(model: onnx.ModelProto) -> None:
    """Give graph outputs that are also used inside the graph (``masks`` feeds the region conv) their
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


def _apply_precision(model: onnx.ModelProto, precision: str, flavour: str) -> onnx.ModelProto:
    """The FP16 policy (:mod:`hdm_deploy.graph.precision`) with the DCP function as an FP32 island."""
    if precision == "fp32":
        return model
    return apply_precision(model, precision, flavour=flavour, fp32_functions=DCP_FP32_FUNCTIONS)


def default_dcp_sums(deform: str, opset: int) -> str:
    """``doubling`` where TensorRT is the target (it imports CumSum as a slow loop), else ``cumsum``."""
    return "doubling" if deform == "plugin" or opset < 19 else "cumsum"


def _dcp_impl(
    dcp: DCPImpl | None, max_pixels: int, dcp_sums: str | None, deform: str, opset: int
) -> tuple[DCPImpl, str]:
    """The DCP implementation an export uses (``dcp`` overrides, tests) and its integer-sum method."""
    sums = dcp_sums or default_dcp_sums(deform, opset)
    return dcp or default_impl(max_pixels, sums), sums


def build_metadata(
    model: HDM,
    io: str,
    deform: str,
    precision: str,
    opset: int,
    inline: bool,
    source: dict[str, Any],
    dcp_name: str,
) -> dict[str, str]:
    import onnxscript

    return {
        "model": "HDM",
        "network": json.dumps(model.config.as_dict()),
        "task": source.get("task", "dehaze"),
        "normalization": json.dumps({"scale": "1/255", "mean": list(MEAN), "std": list(STD)}),
        "io": io,
        "layout": "NHWC" if io == "uint8" else "NCHW",
        "inputs": "image",
        "outputs": "enhanced,masks",
        "deform": deform,
        "precision": precision,
        "opset": str(opset),
        "dcp": "hdm_deploy.dcp::DCPMasks",
        "dcp_impl": dcp_name,
        "functions_inlined": "true" if inline else "false",
        "pad_multiple": str(PAD_MULTIPLE),
        "min_side": "4",
        "checkpoint": source.get("checkpoint", ""),
        "checkpoint_sha256": source.get("checkpoint_sha256", ""),
        "package_version": __version__,
        "torch_version": torch.__version__,
        "onnx_version": onnx.__version__,
        "exporter": f"torch.onnx dynamo (onnxscript {onnxscript.__version__})",
    }


def build_onnx(
    model: HDM,
    *,
    io: str = "uint8",
    deform: str = "onnx",
    inline_functions: bool = False,
    opset: int = _graph.OPSET,
    precision: str = "fp32",
    dcp: DCPImpl | None = None,
    source: dict[str, Any] | None = None,
    steps: _Steps | None = None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    dcp_sums: str | None = None,
) -> onnx.ModelProto:
    """The checked ONNX model of the frame path (nothing written).

    ``max_pixels`` bounds the padded H·W the DCP function supports (it sizes its constant TopK);
    ``dcp_sums`` picks its integer-sum method (default: ``doubling`` for TensorRT-bound graphs —
    ``--deform plugin`` or opset < 19 — else ``cumsum``).
    """
    if io not in IO_KINDS:
        raise ExportError(f"unknown io {io!r}", f"use one of {', '.join(IO_KINDS)}")
    if deform not in flavours.FLAVOURS:
        raise ExportError(
            f"unknown DeformConv flavour {deform!r}", f"use one of {', '.join(flavours.FLAVOURS)}"
        )
    if precision not in PRECISIONS:
        raise ExportError(f"unknown precision {precision!r}", f"use one of {', '.join(PRECISIONS)}")
    if opset not in OPSETS:
        raise ExportError(f"opset {opset} is not supported", f"use one of {', '.join(map(str, OPSETS))}")
    if opset < 19 and deform == "onnx":
        raise ExportError(
            f"DeformConv does not exist in opset {opset}", "export with --deform plugin or --deform decompose"
        )
    steps = steps or _Steps(False)
    impl, sums = _dcp_impl(dcp, max_pixels, dcp_sums, deform, opset)
    wrapper = FramePath(export_ready(model), io).eval()
    with using(impl), torch.no_grad():
        with steps("trace", "torch.export (dynamic N, H, W)"):
            program = _torch_export(wrapper, io)
        with steps("onnx", f"ONNX conversion (dynamo exporter, opset {_graph.OPSET})"):
            proto = _to_onnx(program, _graph.OPSET)
    with steps("rewrite", f"DCP function, DeformConv → {deform}, metadata"):
        if opset < _graph.OPSET:
            proto = lower_opset(proto, opset, passthrough=("DeformConv",))
        attach_functions(proto, impl)
        _rename_dims(proto, io)
        _separate_outputs(proto)
        if deform != "onnx":
            proto = flavours.convert_deform(proto, deform, check=False)
        proto = _apply_precision(proto, precision, deform)
        proto.producer_name = "hdm-deploy"
        proto.producer_version = __version__
        proto.doc_string = (
            "HDM image enhancement (ACM MM 2022), whole frame path: uint8 frames in, enhanced frames out."
        )
        meta = build_metadata(model, io, deform, precision, opset, inline_functions, source or {}, impl.name)
        meta["max_pixels"] = str(max_pixels)
        meta["dcp_sums"] = sums
        _graph.set_metadata(proto, meta)
        if inline_functions:
            proto = flavours.inline_functions(proto, check=False)
    with steps("check", "onnx.checker (full check)"):
        _graph.finalize(
            proto, ir_version=IR_FOR_OPSET.get(opset, _graph.IR_VERSION) if opset < 19 else _graph.IR_VERSION
        )
    return proto


def export_onnx(
    checkpoint: str | os.PathLike | HDM | None = None,
    output: str | os.PathLike = "model.onnx",
    *,
    io: str = "uint8",
    deform: str = "onnx",
    inline_functions: bool = False,
    opset: int = _graph.OPSET,
    precision: str = "fp32",
    golden: bool = True,
    verify: bool = True,
    dcp: DCPImpl | None = None,
    golden_cases: list | None = None,
    trust_checkpoint: bool = False,
    progress: bool = False,
    console=None,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    dcp_sums: str | None = None,
) -> ExportResult:
    """Export a checkpoint (default: the bundled sample) or an HDM module to ``output``.

    ``golden`` writes ``<stem>.golden.npz`` beside it; ``verify`` runs the new file in ONNX Runtime
    on the golden inputs and raises :class:`ParityError` (after writing) when it misses the bundle's
    tolerances. ``dcp`` overrides the DCP implementation (tests).
    """
    steps = _Steps(progress, console)
    output = Path(output)
    with steps("load", "load checkpoint"):
        model, source = _load_model(checkpoint, trust_checkpoint)
        model = model.float().cpu().eval()
    proto = build_onnx(
        model,
        io=io,
        deform=deform,
        inline_functions=inline_functions,
        opset=opset,
        precision=precision,
        dcp=dcp,
        source=source,
        steps=steps,
        max_pixels=max_pixels,
        dcp_sums=dcp_sums,
    )
    impl, _ = _dcp_impl(dcp, max_pixels, dcp_sums, deform, opset)  # the settings build_onnx used
    bundle: GoldenBundle | None = None
    golden_file = golden_path_for(output) if golden else None
    if golden or verify:
        with steps("golden", "PyTorch reference outputs on the bundled photographs"):
            bundle = make_golden(
                model,
                impl,
                golden_cases,
                precision=precision,
                provenance={
                    "checkpoint": source.get("checkpoint"),
                    "checkpoint_sha256": source.get("checkpoint_sha256"),
                    "package_version": __version__,
                    "onnx_model": output.name,
                    "io": io,
                    "deform": deform,
                },
            )
    if golden_file is not None:
        _graph.set_metadata(proto, {"golden": golden_file.name})
    with steps("write", f"write {output}" + (f" and {golden_file.name}" if golden_file else "")):
        _graph.save(proto, output)
        if golden_file is not None and bundle is not None:
            write_golden(golden_file, bundle)
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
        size_bytes=output.stat().st_size,
        seconds=steps.times,
    )
    if verify and bundle is not None:
        from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
        from hdm_deploy.runtime.parity import Thresholds, check_parity

        with steps("verify", "ONNX Runtime vs PyTorch on the golden inputs"):
            try:
                runner = OnnxRuntimeRunner(output, device="cpu")
            except Exception as exc:
                result.warnings.append(f"not verified: ONNX Runtime cannot load it ({exc})")
                runner = None
            if runner is not None:
                report = check_parity(runner, bundle, thresholds=Thresholds.from_dict(bundle.tolerances))
                report.reference = str(golden_file or "(PyTorch, in memory)")
                result.verification = report
        result.seconds = steps.times
        if result.verification is not None and not result.verification.passed:
            error = ParityError(
                f"the exported model misses the PyTorch reference: {'; '.join(result.verification.failures[:3])}",
                f"inspect with `hdm-deploy parity {output} --reference {golden_file or 'CKPT'} --heatmap DIR`",
            )
            error.report = result.verification  # type: ignore[attr-defined]
            error.result = result  # type: ignore[attr-defined]
            raise error
    return result
