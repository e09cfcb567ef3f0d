"""One cached ``export --tiled`` of the small HDM per test process (shared by the tiled-path tests)."""

from __future__ import annotations

import functools

import _export_helpers


@functools.cache
def tiled_small_export():
    """ExportResult of the small model (width 8, real DCP) with the tiled stage graphs."""
    from hdm_deploy.export.exporter import export_onnx

    return export_onnx(
        _export_helpers.small_model(), _export_helpers.tmp_dir() / "tiled_small.onnx", tiled=True
    )
