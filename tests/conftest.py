"""Session fixtures shared by the test folders (which mirror the package: core/, graph/, families/hdm/,
plugins/, trt/ (not ``tensorrt/``: it would shadow the real package), runtime/, export/, cli/). Helpers live beside this file (``_export_helpers``,
``_dcp_standin``, ``_onnx_graphs``, ``_engine_helpers``, ``independent_hdm``); ``pyproject.toml`` puts
this folder on the path."""

from __future__ import annotations

from pathlib import Path

import pytest

import _export_helpers


@pytest.fixture(scope="session", autouse=True)
def export_dir(tmp_path_factory) -> Path:
    """One folder per test session (per xdist worker) for the cached small exports."""
    folder = tmp_path_factory.mktemp("exports")
    _export_helpers.use_folder(folder)
    return folder


@pytest.fixture(scope="session")
def small_model():
    """The small HDM (width 8, one block) with non-zero deformable offsets."""
    return _export_helpers.small_model()


@pytest.fixture(scope="session")
def small_export(export_dir):
    """``small_export(io, deform, inline, golden)`` → the cached ExportResult (stand-in DCP)."""
    return _export_helpers.small_export
