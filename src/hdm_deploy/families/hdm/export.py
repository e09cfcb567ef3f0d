"""HDM's export hooks (:class:`~hdm_deploy.families.base.FamilyExport`) for the generic exporter.

The frame path (:class:`~.frame_path.FramePath`) is traced with the DCP masks as one opaque custom op
(:mod:`.dcp.export_op`), converted to one ``hdm_deploy.dcp::DCPMasks`` call, and the function body
is attached after conversion. HDM's own export options: ``max_pixels`` (the largest padded frame the
DCP function handles; it sizes the constant-K TopK), ``dcp_sums`` (``cumsum`` | ``doubling``: how
the exact integer box sums are computed; ``doubling`` for TensorRT-bound graphs) and ``dcp`` (another
:class:`~.dcp.export_op.DCPImpl`, for tests).
"""

from __future__ import annotations

import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import onnx
import torch

from hdm_deploy.core.errors import ExportError
from hdm_deploy.families.hdm.dcp.export_op import (
    DEFAULT_MAX_PIXELS,
    DCPImpl,
    attach_functions,
    default_impl,
    translation_table,
    using,
)
from hdm_deploy.families.hdm.family import FAMILY, PAD_MULTIPLE
from hdm_deploy.families.hdm.frame_path import FramePath, export_ready
from hdm_deploy.families.hdm.golden import make_golden
from hdm_deploy.families.hdm.model import HDM, MEAN, STD
from hdm_deploy.graph.golden import GoldenBundle

__all__ = ["EXPORT", "HdmExport", "HdmPlan", "default_dcp_sums"]


def default_dcp_sums(deform: str, opset: int) -> str:
    """``doubling`` where TensorRT is the target (it imports CumSum as a slow loop), else ``cumsum``."""
    return "doubling" if deform == "plugin" or opset < 19 else "cumsum"


@dataclass(frozen=True)
class HdmPlan:
    impl: DCPImpl
    max_pixels: int
    dcp_sums: str


class HdmExport:
    """The :class:`~hdm_deploy.families.base.FamilyExport` of HDM."""

    family = FAMILY

    def plan(
        self,
        model: Any,
        *,
        io: str,
        deform: str,
        opset: int,
        max_pixels: int = DEFAULT_MAX_PIXELS,
        dcp_sums: str | None = None,
        dcp: DCPImpl | None = None,
    ) -> HdmPlan:
        if not isinstance(model, HDM):
            raise ExportError(f"expected an HDM network, got {type(model).__name__}")
        del io
        sums = dcp_sums or default_dcp_sums(deform, opset)
        return HdmPlan(dcp or default_impl(max_pixels, sums), int(max_pixels), sums)

    def wrapper(self, model: HDM, io: str, plan: HdmPlan) -> torch.nn.Module:
        del plan
        return FramePath(export_ready(model), io).eval()

    def tracing(self, plan: HdmPlan) -> AbstractContextManager[Any]:
        return using(plan.impl)

    def translation_table(self, plan: HdmPlan) -> dict:
        del plan
        return translation_table()

    def finish_graph(self, proto: onnx.ModelProto, plan: HdmPlan, io: str) -> None:
        attach_functions(proto, plan.impl)
        _rename_dims(proto, io)

    def metadata(self, model: HDM, plan: HdmPlan, source: dict[str, Any]) -> dict[str, str]:
        return {
            "model": "HDM",
            "network": json.dumps(model.config.as_dict()),
            "task": source.get("task", FAMILY.task),
            "normalization": json.dumps({"scale": "1/255", "mean": list(MEAN), "std": list(STD)}),
            "dcp": f"{FAMILY.fp32_functions[0][0]}::{FAMILY.fp32_functions[0][1]}",
            "dcp_impl": plan.impl.name,
            "dcp_sums": plan.dcp_sums,
            "max_pixels": str(plan.max_pixels),
        }

    def golden(
        self, model: HDM, plan: HdmPlan, cases: Any, *, precision: str, provenance: dict[str, Any]
    ) -> GoldenBundle:
        return make_golden(model, plan.impl, cases, precision=precision, provenance=provenance)


def _rename_dims(model: onnx.ModelProto, io: str) -> None:
    """Readable symbolic dims on the graph I/O: N, H, W and the padded quarter sizes of the masks."""
    names = {}
    inp = model.graph.input[0].type.tensor_type.shape.dim
    axes = (0, 1, 2) if io == "uint8" else (0, 2, 3)
    for axis, label in zip(axes, ("N", "H", "W"), strict=True):
        if inp[axis].dim_param:
            names[inp[axis].dim_param] = label
    m = PAD_MULTIPLE
    for value in list(model.graph.input) + list(model.graph.output):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param:
                p = d.dim_param
                for old, new in names.items():
                    p = p.replace(old, new)
                p = p.replace(f"((H + {m - 1})//{m})", f"ceil(H/{m})").replace(
                    f"((W + {m - 1})//{m})", f"ceil(W/{m})"
                )
                d.dim_param = p


EXPORT = HdmExport()
