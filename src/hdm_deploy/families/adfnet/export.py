"""ADFNet's export hooks (:class:`~hdm_deploy.families.base.FamilyExport`) for the generic exporter.

Nothing custom reaches the graph: the DCNs are ``torchvision.ops.deform_conv2d`` (→ ONNX
``DeformConv``, offset_group 8, rewritten to the chosen ``--deform`` flavour by the generic pass), the
``offset_mean > 100`` logging branch does not exist in our model, and the dynamic filters are
exported as 9 shifted slices with a multiply-accumulate (``dynamic_filter="shifted"``, the default)
or, for comparison, as the published ``unfold`` (``benchmarks/bench_adfnet_filters.py``).
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import torch

from hdm_deploy.core.errors import ExportError
from hdm_deploy.families.adfnet.family import FAMILY
from hdm_deploy.families.adfnet.frame_path import FramePath, export_copy
from hdm_deploy.families.adfnet.golden import make_golden
from hdm_deploy.families.adfnet.model import DYNAMIC_FILTERS, ADFNet
from hdm_deploy.graph.golden import GoldenBundle

__all__ = ["EXPORT", "AdfnetExport", "AdfnetPlan"]

VARIANT_OF = {(3, 32): "rgb", (1, 32): "gray", (3, 64): "L"}


@dataclass(frozen=True)
class AdfnetPlan:
    dynamic_filter: str


class AdfnetExport:
    """The :class:`~hdm_deploy.families.base.FamilyExport` of ADFNet."""

    family = FAMILY

    def plan(
        self,
        model: Any,
        *,
        io: str,
        deform: str,
        opset: int,
        dynamic_filter: str = "shifted",
        max_pixels: int | None = None,
        dcp_sums: str | None = None,
    ) -> AdfnetPlan:
        """``dynamic_filter``: ``shifted`` (default) | ``unfold``. ``max_pixels`` (the CLI's
        ``--max-size``, sized for HDM's DCP) does not bound an ADFNet graph and is not used;
        ``dcp_sums`` is refused."""
        del io, deform, opset, max_pixels
        if not isinstance(model, ADFNet):
            raise ExportError(f"expected an ADFNet network, got {type(model).__name__}")
        if dcp_sums is not None:
            raise ExportError("--dcp-sums applies to HDM only", "leave it out for ADFNet")
        if dynamic_filter not in DYNAMIC_FILTERS:
            raise ExportError(
                f"unknown dynamic filter formulation {dynamic_filter!r}", f"use one of {DYNAMIC_FILTERS}"
            )
        return AdfnetPlan(dynamic_filter)

    def wrapper(self, model: ADFNet, io: str, plan: AdfnetPlan) -> torch.nn.Module:
        return FramePath(export_copy(model, plan.dynamic_filter), io).eval()

    def tracing(self, plan: AdfnetPlan):
        del plan
        return nullcontext()

    def translation_table(self, plan: AdfnetPlan) -> dict:
        del plan
        return {}

    def finish_graph(self, proto: Any, plan: AdfnetPlan, io: str) -> None:
        del plan
        _rename_dims(proto, io)

    def metadata(self, model: ADFNet, plan: AdfnetPlan, source: dict[str, Any]) -> dict[str, str]:
        cfg = model.config
        return {
            "model": "ADFNet",
            "variant": VARIANT_OF.get((cfg.n_colors, cfg.width), "custom"),
            "network": json.dumps(cfg.as_dict()),
            "task": source.get("task", FAMILY.task),
            "normalization": json.dumps({"scale": "1/255", "mean": [0.0], "std": [1.0]}),
            "dynamic_filter": plan.dynamic_filter,
            # the network's own colours; graph I/O stays RGB (a Gray graph reads channel 0 of grey frames)
            "channels": str(cfg.n_colors),
            "colour_order": "RGB" if cfg.n_colors == 3 else "GRAY",
        }

    def golden(
        self, model: ADFNet, plan: AdfnetPlan, cases: Any, *, precision: str, provenance: dict[str, Any]
    ) -> GoldenBundle:
        del plan
        return make_golden(model, cases, precision=precision, provenance=provenance)


def _rename_dims(model: Any, io: str) -> None:
    """Readable symbolic dims N, H, W on the graph I/O."""
    inp = model.graph.input[0].type.tensor_type.shape.dim
    axes = (0, 1, 2) if io == "uint8" else (0, 2, 3)
    names = {
        inp[a].dim_param: label for a, label in zip(axes, ("N", "H", "W"), strict=True) if inp[a].dim_param
    }
    for value in list(model.graph.input) + list(model.graph.output):
        for d in value.type.tensor_type.shape.dim:
            if d.dim_param in names:
                d.dim_param = names[d.dim_param]


EXPORT = AdfnetExport()
