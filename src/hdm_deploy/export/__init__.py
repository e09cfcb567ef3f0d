"""torch → ONNX export of a model family's whole frame path, with a self-check in ONNX Runtime.

Importing this package does not import torch; :func:`export_onnx` loads it on first use.

    from hdm_deploy.export import export_onnx
    result = export_onnx("hdm.pk", "model.onnx", deform="plugin")
"""

from __future__ import annotations

from typing import Any

__all__ = ["ExportResult", "export_onnx"]


def __getattr__(name: str) -> Any:
    if name in __all__:
        from hdm_deploy.export import exporter

        return getattr(exporter, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
