"""Shared CLI options and the checks that refuse options which cannot apply (before any work)."""

from __future__ import annotations

from enum import Enum
from pathlib import Path
from typing import Annotated, Any

import typer

from hdm_deploy.core.contracts import FLAVOURS, IO_KINDS, PRECISIONS
from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.core.runner import model_kind
from hdm_deploy.runtime import check_options

#: Exit code of a run that completed but skipped some inputs (folder, video, animated image).
EXIT_SKIPPED = 4

#: ``--masks`` choices: DCP masks of PyTorch checkpoints.
MASK_IMPLS = ("reference", "torch")
#: The default everywhere (infer, parity, bench): the published numpy/OpenCV pipeline.
DEFAULT_MASKS = "reference"

MasksOption = Annotated[
    str | None,
    typer.Option(
        "--masks",
        help="DCP masks of PyTorch checkpoints: reference (the published numpy/OpenCV pipeline; default) "
        "| torch (batched, on device, as in the exported graph). Refused for other models.",
    ),
]

#: ``--arch FAMILY[:VARIANT]``: the checkpoint's family (and variant), instead of detecting it from the keys.
ArchOption = Annotated[
    str | None,
    typer.Option(
        "--arch",
        help="Checkpoints: the model family[:variant] (e.g. adfnet:L, mhnet:derain) instead of "
        "detecting it from the state-dict keys.",
    ),
]

# ---- choices (typer shows and checks them; commands take ``.value``) -------------------------------
Flavour = Enum("Flavour", {f: f for f in FLAVOURS}, type=str)  #: ``--deform``
IoKind = Enum("IoKind", {k: k for k in IO_KINDS}, type=str)  #: ``--io``
Precision = Enum("Precision", {p: p for p in PRECISIONS}, type=str)  #: ``--precision``
DcpSums = Enum("DcpSums", {s: s for s in ("cumsum", "doubling")}, type=str)  #: HDM ``--dcp-sums``
MaskRender = Enum("MaskRender", {s: s for s in ("reference", "torch", "onnx")}, type=str)  #: ``masks --impl``

# ---- options shared by several commands ------------------------------------------------------------
DeviceOption = Annotated[
    str | None, typer.Option("--device", help="cpu | cuda | cuda:N | N (default: best available).")
]
PluginLibOption = Annotated[
    Path | None,
    typer.Option(
        "--plugin-lib", help="TensorRT engines: libhdm_deploy_plugins.so (default: found automatically)."
    ),
]
TrustCheckpointOption = Annotated[
    bool,
    typer.Option(
        "--trust-checkpoint",
        help="Allow pickled Python objects in the checkpoint (unpickling can run code).",
        metavar="",
    ),
]
ForeignModelOption = Annotated[
    bool,
    typer.Option(
        "--foreign-model",
        help="Run an ONNX graph with hdm-deploy's I/O names but no hdm-deploy metadata.",
        metavar="",
    ),
]
MinShapeOption = Annotated[str | None, typer.Option("--min", help="Smallest input NxHxW (default 1x64x64).")]
OptShapeOption = Annotated[
    str | None, typer.Option("--opt", help="Input NxHxW tuned for (default 1x720x1280).")
]
MaxShapeOption = Annotated[
    str | None, typer.Option("--max", help="Largest input NxHxW (default 1x1080x1920).")
]
InlineFunctionsOption = Annotated[
    bool,
    typer.Option("--inline-functions", help="Inline local functions (TensorRT < 9 needs it).", metavar=""),
]


def value(choice: Enum | str | None) -> str | None:
    """The plain string of a choice option (``None`` stays ``None``)."""
    return choice.value if isinstance(choice, Enum) else choice


#: ``--max-pixels`` default, in megapixels (a 12 MP phone photo and 8K frames pass).
DEFAULT_MAX_MEGAPIXELS = 100.0


def inapplicable_option(kind: str, **options: Any) -> HdmDeployError | None:
    """The error for the given options (not None/False) that a model of ``kind`` cannot use — the
    runtime's own rule (:data:`hdm_deploy.runtime.BACKEND_OPTIONS`), checked before any work."""
    try:
        check_options(kind, options)
    except HdmDeployError as exc:
        return exc
    return None


def refuse_inapplicable(kind: str, **options: Any) -> None:
    """Raise :func:`inapplicable_option`'s error, if any."""
    error = inapplicable_option(kind, **options)
    if error is not None:
        raise error


def model_kind_of(model: Path | None) -> str:
    """'torch' | 'onnx' | 'engine' (no model: the bundled sample checkpoint)."""
    return "torch" if model is None else model_kind(model)


def mask_impl(masks: str | None) -> str:
    """``--masks`` value (default :data:`DEFAULT_MASKS`), a typo as one line."""
    masks = masks or DEFAULT_MASKS
    if masks not in MASK_IMPLS:
        raise HdmDeployError(f"unknown --masks {masks!r}", f"use --masks {' or --masks '.join(MASK_IMPLS)}")
    return masks


def percent(value: float | None, flag: str) -> float | None:
    """A percentage option in 0..100 (``--identical-min 200`` would never pass: refused)."""
    if value is not None and not 0.0 <= value <= 100.0:
        raise HdmDeployError(f"{flag} {value:g} is not a percentage", f"give {flag} between 0 and 100")
    return value


AxisOption = Annotated[
    list[str] | None,
    typer.Option(
        "--axis",
        help="Graphs with several inputs: range of a named dynamic axis, NAME=MIN:OPT:MAX or NAME=VALUE "
        "(repeat; default: the model's profile_axes metadata), e.g. --axis batch=1:8:8 --axis patch=512.",
    ),
]
