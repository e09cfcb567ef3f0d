"""ADFNet and MHNet declare ``tiling="overlap"``: their exported graphs run through the approximate
overlap runner (tiny exports), and every call measures and reports the PSNR against the whole frame."""

from __future__ import annotations

import numpy as np
import pytest
from typer.testing import CliRunner

import _export_helpers
import _mhnet_helpers
from hdm_deploy.cli import app
from hdm_deploy.families.registry import get_family
from hdm_deploy.runtime import load_runner
from independent_adfnet import random_state_dict, save_published

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    folder = tmp_path_factory.mktemp("overlap_families")
    ckpt = save_published(random_state_dict("rgb", width=8, seed=5), folder / "adfnet_small.pt")
    res = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(folder / "adfnet.onnx")])
    assert res.exit_code == 0, res.output
    return {"adfnet": folder / "adfnet.onnx", "mhnet": _mhnet_helpers.tiny_export().path}


@pytest.mark.parametrize("family", ["adfnet", "mhnet"])
def test_overlap_tiling_runs_and_reports_psnr(exports, family):
    assert get_family(family).tiling == "overlap"
    frames = _export_helpers.photo_frames(161, 107)
    messages = []
    with load_runner(exports[family], tile=64, overlap=16) as runner:
        runner.report = messages.append
        got = runner(frames)
    assert got.image.shape == frames.shape and got.image.dtype == np.uint8
    assert runner.last_psnr is not None and np.isfinite(runner.last_psnr)
    assert len(messages) == 1 and "approximate overlap tiling" in messages[0] and "PSNR" in messages[0]
