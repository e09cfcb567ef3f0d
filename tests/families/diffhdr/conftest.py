"""The DiffHDR tests' shared fixture: one tiny checkpoint exported once per session."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from _diffhdr_checkpoints import write_tiny


@pytest.fixture(scope="session")
def tiny_export(tmp_path_factory):
    """A tiny published-format checkpoint exported through the generic ``export_onnx`` (which dispatches
    to the family): the two graphs, the golden bundle, and the PyTorch model."""
    from hdm_deploy.export.exporter import export_onnx
    from hdm_deploy.families.diffhdr.checkpoint import load_published

    folder = tmp_path_factory.mktemp("diffhdr_tiny")
    ckpt = folder / "Hdr_ddpm3000000.pth.tar"
    write_tiny(ckpt, seed=1)
    result = export_onnx(ckpt, folder / "diffhdr.onnx")
    model, _ = load_published(ckpt)
    return SimpleNamespace(folder=folder, ckpt=ckpt, onnx=folder / "diffhdr.onnx", model=model, result=result)
