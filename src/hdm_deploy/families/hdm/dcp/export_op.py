"""The DCP region masks as one opaque op during export, replaced by the ONNX local function after.

``torch.ops.hdm_deploy.dcp_masks`` is a torch custom op (uint8 [N,3,H,W] → float32
[N,5,1,H/4,W/4]) with a shape-only fake implementation, so ``torch.export`` sees a single node
instead of tracing the mask computation. The dynamo exporter translates it to one
``hdm_deploy.dcp::DCPMasks`` call; :func:`attach_functions` then adds the function body (from
:mod:`hdm_deploy.families.hdm.dcp.onnx_function`) and the domain's opset import to the model.

:class:`DCPImpl` pairs the torch implementation (eager runs and golden outputs) with the ONNX
function protos; :func:`default_impl` is the project's (``hdm_deploy.dcp``); tests can pass another.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import onnx
import torch

from hdm_deploy.core.errors import ExportError

#: Largest frame (padded H·W) the DCP function handles by default (4K UHD); it sizes the function's
#: constant TopK (TensorRT needs a constant K); larger frames are refused by the runners.
from hdm_deploy.families.hdm.dcp import (
    DCP_DOMAIN,
    DCP_DOMAIN_VERSION,
    DCP_FUNCTION,
    onnx_function,
    torch_masks,
)
from hdm_deploy.families.hdm.dcp.onnx_function import DEFAULT_MAX_PIXELS, INT_SUMS
from hdm_deploy.graph import onnx_io as _graph

DOMAIN = DCP_DOMAIN
DOMAIN_VERSION = DCP_DOMAIN_VERSION
FUNCTION = DCP_FUNCTION
REGIONS = 5


@dataclass(frozen=True)
class DCPImpl:
    """A DCP mask implementation usable by the exporter."""

    name: str
    torch_fn: Callable[[torch.Tensor], torch.Tensor]  #: uint8 [N,3,H,W] → float32 [N,5,1,H/4,W/4]
    #: opset → DCPMasks (+ helpers) in domain hdm_deploy.dcp, importing that default-domain opset
    functions: Callable[[int], Sequence[onnx.FunctionProto]]


def _as_function_list(obj) -> list[onnx.FunctionProto]:
    if isinstance(obj, onnx.FunctionProto):
        return [obj]
    if isinstance(obj, onnx.ModelProto):
        return list(obj.functions)
    return list(obj)


def default_impl(max_pixels: int = DEFAULT_MAX_PIXELS, int_sums: str = "cumsum") -> DCPImpl:
    """``families.hdm.dcp.torch_masks.dcp_masks`` + ``families.hdm.dcp.onnx_function``."""
    if int_sums not in INT_SUMS:
        raise ExportError(f"unknown DCP sum method {int_sums!r}", f"use one of {', '.join(INT_SUMS)}")
    try:
        onnx_function.topk_for(max_pixels)
    except ValueError as exc:
        raise ExportError(str(exc), "export with a smaller --max-size") from None

    def functions(opset: int) -> list[onnx.FunctionProto]:
        return onnx_function.dcp_functions(opset, max_pixels=max_pixels, int_sums=int_sums)

    return DCPImpl(DCP_DOMAIN, torch_masks.dcp_masks, functions)


_active: list[DCPImpl] = []


@contextlib.contextmanager
def using(impl: DCPImpl) -> Iterator[DCPImpl]:
    """Make ``impl`` what eager calls of ``torch.ops.hdm_deploy.dcp_masks`` run."""
    _active.append(impl)
    try:
        yield impl
    finally:
        _active.pop()


@torch.library.custom_op("hdm_deploy::dcp_masks", mutates_args=())
def dcp_masks(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N,3,H,W] (H, W multiples of 4) → float32 one-hot region masks [N,5,1,H/4,W/4]."""
    impl = _active[-1] if _active else default_impl()
    return impl.torch_fn(images).to(torch.float32).contiguous()


@dcp_masks.register_fake
def _dcp_masks_fake(images: torch.Tensor) -> torch.Tensor:
    n, _, h, w = images.shape
    return images.new_empty((n, REGIONS, 1, h // 4, w // 4), dtype=torch.float32)


def _schema() -> onnx.defs.OpSchema:
    """A schema for the exporter's op call only; never registered globally."""
    return onnx.defs.OpSchema(
        FUNCTION,
        DOMAIN,
        DOMAIN_VERSION,
        "DCP region masks (model-local function).",
        inputs=[onnx.defs.OpSchema.FormalParameter("images", "T")],
        outputs=[onnx.defs.OpSchema.FormalParameter("masks", "M")],
        type_constraints=[("T", ["tensor(uint8)"], ""), ("M", ["tensor(float)"], "")],
    )


def translation_table() -> dict:
    """``custom_translation_table`` entry: our op → one ``hdm_deploy.dcp::DCPMasks`` node."""
    import onnxscript

    call = onnxscript.values.Op(onnxscript.values.Opset(DOMAIN, DOMAIN_VERSION), FUNCTION, _schema())

    def dcp_masks_to_onnx(images):
        return call(images)

    return {torch.ops.hdm_deploy.dcp_masks.default: dcp_masks_to_onnx}


def attach_functions(model: onnx.ModelProto, impl: DCPImpl) -> onnx.ModelProto:
    """Add the DCPMasks function (and its helpers) with matching opset imports, in place."""
    opset = _graph.opset_version(model) or _graph.OPSET
    functions = _as_function_list(impl.functions(opset))
    names = {(f.domain, f.name) for f in functions}
    if (DOMAIN, FUNCTION) not in names:
        raise ExportError(f"the DCP implementation {impl.name!r} provides no {DOMAIN}::{FUNCTION} function")
    for f in functions:
        fv = next((imp.version for imp in f.opset_import if imp.domain in _graph.ONNX_DOMAINS), opset)
        if fv != opset:
            raise ExportError(
                f"the DCP function {f.name} imports ONNX opset {fv} but the model uses {opset}",
                f"export with --opset {fv}",
            )
        for imp in f.opset_import:
            if imp.domain not in _graph.ONNX_DOMAINS:
                _graph.set_opset(model, imp.domain, imp.version)
    kept = [f for f in model.functions if (f.domain, f.name) not in names]
    del model.functions[:]
    model.functions.extend(functions + kept)
    _graph.set_opset(model, DOMAIN, DOMAIN_VERSION)
    return model
