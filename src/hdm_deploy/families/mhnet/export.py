"""MHNet's export hooks (:class:`~hdm_deploy.families.base.FamilyExport`) for the generic exporter.

The traced module is :class:`~.pipeline.FramePath` around :func:`export_ready` (MHNet with
shape-generic global pooling): reflect-pad to ×16 inside the graph, the final stage only (stage 1's
auxiliary image is dead code the ONNX optimiser removes), crop, clamp, round to uint8. There are no
custom ops, no local functions and no DeformConv: ``--deform`` flavours give the same graph.
LayerNorm2d exports as standard ops (ReduceMean, Sub, Mul, ReduceMean, Add, Sqrt, Div, Mul, Add).
"""

from __future__ import annotations

import contextlib
import json
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import onnx
import torch

from hdm_deploy.core.errors import ExportError
from hdm_deploy.families.export_modules import export_ready
from hdm_deploy.families.mhnet.family import FAMILY, PAD_MODE, PAD_MULTIPLE
from hdm_deploy.families.mhnet.golden import make_golden
from hdm_deploy.families.mhnet.model import MHNet, variant_of
from hdm_deploy.families.mhnet.pipeline import FramePath
from hdm_deploy.graph.golden import GoldenBundle

__all__ = ["EXPORT", "MHNetExport", "MHNetPlan"]

TASKS = {"deblur": "deblur", "derain": "derain"}


@dataclass(frozen=True)
class MHNetPlan:
    variant: str


class MHNetExport:
    """The :class:`~hdm_deploy.families.base.FamilyExport` of MHNet."""

    family = FAMILY

    def plan(
        self,
        model: Any,
        *,
        io: str,
        deform: str,
        opset: int,
        max_pixels: int | None = None,
        dcp_sums: str | None = None,
    ) -> MHNetPlan:
        """No family options: ``max_pixels`` (the CLI's ``--max-size``) is accepted and unused —
        MHNet's graph computes any frame size — and ``dcp_sums`` (HDM's) is refused when given."""
        if not isinstance(model, MHNet):
            raise ExportError(f"expected an MHNet network, got {type(model).__name__}")
        if dcp_sums is not None:
            raise ExportError("--dcp-sums does not apply to MHNet (it has no DCP masks)", "leave it out")
        del io, deform, opset, max_pixels
        return MHNetPlan(variant_of(model.config))

    def wrapper(self, model: MHNet, io: str, plan: MHNetPlan) -> torch.nn.Module:
        del plan
        return FramePath(export_ready(model), io).eval()

    def tracing(self, plan: MHNetPlan) -> AbstractContextManager[Any]:
        del plan
        return contextlib.nullcontext()

    def translation_table(self, plan: MHNetPlan) -> dict:
        del plan
        return {}

    def finish_graph(self, proto: onnx.ModelProto, plan: MHNetPlan, io: str) -> None:
        del plan
        _rename_dims(proto, io)

    def metadata(self, model: MHNet, plan: MHNetPlan, source: dict[str, Any]) -> dict[str, str]:
        return {
            "model": "MHNet",
            "variant": plan.variant,
            "network": json.dumps(model.config.as_dict()),
            "task": TASKS.get(plan.variant, source.get("task", FAMILY.task)),
            "normalization": json.dumps({"scale": "1/255", "mean": [0.0, 0.0, 0.0], "std": [1.0, 1.0, 1.0]}),
            "output_stage": "final (stage 2; restored[0] of the published test script)",
            "padding": f"{PAD_MODE} bottom/right to ×{PAD_MULTIPLE} in the graph, cropped back; "
            "stage 1 zero-pads internally as published (a no-op after it)",
            "max_pixels": "0",
        }

    def golden(
        self, model: MHNet, plan: MHNetPlan, cases: Any, *, precision: str, provenance: dict[str, Any]
    ) -> GoldenBundle:
        del plan
        return make_golden(model, cases, precision=precision, provenance=provenance)


def _rename_dims(model: onnx.ModelProto, io: str) -> None:
    """Readable symbolic dims N, H, W on the graph I/O."""
    names = {}
    inp = model.graph.input[0].type.tensor_type.shape.dim
    axes = (0, 1, 2) if io == "uint8" else (0, 2, 3)
    for axis, label in zip(axes, ("N", "H", "W"), strict=True):
        if inp[axis].dim_param:
            names[inp[axis].dim_param] = label
    for value in list(model.graph.input) + list(model.graph.output):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param in names:
                d.dim_param = names[d.dim_param]


EXPORT = MHNetExport()
