"""torch → ONNX export of a model family's whole frame path, with a self-check in ONNX Runtime.

from hdm_deploy.export import export_onnx
result = export_onnx("hdm.pk", "model.onnx", deform="plugin")
"""

from hdm_deploy.export.exporter import ExportResult, export_onnx

__all__ = ["ExportResult", "export_onnx"]
