"""``metadata_props`` of the ONNX files hdm-deploy writes (torch-free).

Keys (all values are strings):

=====================  ==================================================================
``model``              ``HDM``  (``network``: JSON of the HDMConfig: width, groups, blocks, regions)
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
``pad_multiple``       ``4`` (reflect pad bottom/right, cropped back), ``min_side`` ``4``
``checkpoint``         file name of the source checkpoint, ``checkpoint_sha256`` its hash
``package_version``    hdm-deploy version; ``torch_version``, ``onnx_version``, ``exporter``
``golden``             file name of the golden bundle written beside the model (if any)
=====================  ==================================================================
"""

from __future__ import annotations

import json
import os
from typing import Any

import onnx

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
