"""torch → ONNX export of the whole HDM frame path, DeformConv flavours, metadata, golden bundles.

Importing this package does not import torch: the exporter (``export_onnx``) loads it on first
use, while the graph rewrites (:mod:`.flavours`), metadata and golden-bundle readers stay torch-free
for devices that only run ONNX Runtime / TensorRT.

    from hdm_deploy.export import export_onnx, convert_file
    result = export_onnx("hdm.pk", "model.onnx", deform="plugin")
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_LAZY = {
    "export_onnx": ".exporter",
    "ExportResult": ".exporter",
    "convert_deform": ".flavours",
    "convert_file": ".flavours",
    "detect_flavour": ".flavours",
    "inline_functions": ".flavours",
    "FLAVOURS": ".flavours",
    "read_metadata": ".metadata",
    "load_golden": ".golden",
    "golden_path_for": ".golden",
    "GoldenBundle": ".golden",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
