"""``metadata_props`` of the ONNX files hdm-deploy writes (torch-free).

Keys (all values are strings):

=====================  ==================================================================
``family``             registry name of the model family (``hdm``); ``model`` its display name
``network``            JSON of the family's network configuration (HDM: width, groups, blocks, regions)
``task``               ``dehaze`` unless the checkpoint says otherwise
``normalization``      JSON ``{"scale": "1/255", "mean": [...], "std": [...]}`` (inside the graph)
``io``                 ``uint8`` (input ``image`` uint8 NHWC) or ``float`` (float32 NCHW in [0,1])
``layout``             ``NHWC`` or ``NCHW``
``outputs``            ``enhanced,masks``
``deform``             ``onnx`` | ``plugin`` | ``decompose``
``precision``          ``fp32`` (``fp16`` once a precision policy is applied)
``opset``              default-domain opset, e.g. ``19``
``dcp``                ``hdm_deploy.dcp::DCPMasks`` (the mask function), ``dcp_impl`` its provider
``functions_inlined``  ``true`` / ``false``
``pad_multiple``       e.g. ``4`` (``pad_mode`` ``reflect``, bottom/right, cropped back); ``min_side``
``channels``           ``3``; ``colour_order`` ``RGB``
``max_pixels``         largest padded H·W the graph computes correctly (0: any)
``checkpoint``         file name of the source checkpoint, ``checkpoint_sha256`` its hash
``package_version``    hdm-deploy version; ``torch_version``, ``onnx_version``, ``exporter``
``golden``             file name of the golden bundle written beside the model (if any)
=====================  ==================================================================
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import onnx

from hdm_deploy.core.contracts import (
    META_FAMILY,
    META_FLAVOUR,
    META_MAX_PIXELS,
    META_MIN_SIDE,
    META_PAD_MULTIPLE,
    META_PRECISION,
    OUTPUT_NAME,
)
from hdm_deploy.graph import onnx_io as _graph

REQUIRED = ("model", "io", "deform", "precision", "opset")


def read_metadata(model: onnx.ModelProto | str | os.PathLike) -> dict[str, str]:
    """The ``metadata_props`` of a model (or ONNX file) as a dict."""
    if not isinstance(model, onnx.ModelProto):
        model = onnx.load(str(model), load_external_data=False)
    return _graph.metadata(model)


def io_kind(meta: dict[str, str], input_type: str | None = None) -> str:
    """'uint8' or 'float', from the metadata or (for foreign files) the input element type."""
    if meta.get("io") in ("uint8", "float"):
        return meta["io"]
    if input_type is not None:
        return "uint8" if "uint8" in input_type else "float"
    return "uint8"


def decode(meta: dict[str, str]) -> dict[str, Any]:
    """Metadata with JSON values parsed (for reports)."""
    out: dict[str, Any] = {}
    for k, v in meta.items():
        try:
            out[k] = json.loads(v) if v[:1] in "[{" else v
        except json.JSONDecodeError:
            out[k] = v
    return out


@dataclass(frozen=True)
class ModelFacts:
    """What a runner needs to know about an exported graph, from its metadata and I/O.

    Files without hdm-deploy metadata get what their I/O says (``io`` from the input's element type)
    and the neutral frame contract; :func:`hdm_deploy.runtime.onnxruntime_runner.recognise` decides whether such
    a file may run at all.
    """

    family: str | None
    io: str  #: "uint8" (NHWC) or "float" (NCHW in [0, 1])
    flavour: str | None
    precision: str
    max_pixels: int | None
    pad_multiple: int
    min_side: int
    input_name: str
    output_names: tuple[str, ...]
    metadata: dict[str, str] = field(default_factory=dict)

    @property
    def extras(self) -> tuple[str, ...]:
        """Outputs beyond ``enhanced`` (the family's extras, e.g. HDM's ``masks``)."""
        return tuple(n for n in self.output_names if n != OUTPUT_NAME)


def model_facts(
    meta: dict[str, str], input_name: str, input_type: str | None, output_names: Sequence[str]
) -> ModelFacts:
    """:class:`ModelFacts` from ``metadata_props`` and the graph's I/O names/type."""

    def _int(key: str, default: int | None) -> int | None:
        try:
            return int(meta[key]) if meta.get(key) else default
        except ValueError:
            return default

    return ModelFacts(
        # files written before the ``family`` key name their family's model (``model``) only
        family=meta.get(META_FAMILY) or (str(meta.get("model", "")).lower() or None),
        io=io_kind(meta, input_type),
        flavour=meta.get(META_FLAVOUR),
        precision=meta.get(META_PRECISION, "fp32"),
        max_pixels=_int(META_MAX_PIXELS, None) or None,
        pad_multiple=_int(META_PAD_MULTIPLE, 1) or 1,
        min_side=_int(META_MIN_SIDE, 1) or 1,
        input_name=input_name,
        output_names=tuple(output_names),
        metadata=dict(meta),
    )
