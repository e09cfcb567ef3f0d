"""``hdm-deploy masks``: overlay picture, raw masks, implementation choice, clear errors."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.families.hdm.dcp import reference as ref

pytest.importorskip("skimage", reason="scikit-image provides the bundled photographs")
from hdm_deploy_dev.photos import photo_at


@pytest.fixture
def photo_png(tmp_path):
    path = tmp_path / "coffee.png"
    Image.fromarray(photo_at("coffee", (240, 160))).save(path)
    return path


@pytest.mark.parametrize("impl", ["reference", "torch", "onnx"])
def test_masks_command_writes_overlay_and_npy(tmp_path, photo_png, impl):
    if impl == "torch":
        pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")
    out, npy = tmp_path / "masks.png", tmp_path / "masks.npy"
    result = CliRunner().invoke(
        app, ["masks", str(photo_png), "-o", str(out), "--save-npy", str(npy), "--impl", impl]
    )
    assert result.exit_code == 0, result.output
    masks = np.load(npy)
    assert masks.shape == (5, 1, 40, 60) and masks.dtype == np.float32
    assert (masks.sum(axis=0) == 1).all()
    np.testing.assert_array_equal(masks, ref.region_masks(photo_at("coffee", (240, 160))))
    picture = np.asarray(Image.open(out))
    assert picture.ndim == 3 and picture.shape[1] >= 460 and picture.shape[0] > 2 * 40


def test_masks_command_errors(tmp_path, photo_png):
    runner = CliRunner()
    result = runner.invoke(app, ["masks", str(tmp_path / "missing.png")])
    assert result.exit_code != 0
    result = runner.invoke(app, ["masks", str(photo_png), "--impl", "nope", "-o", str(tmp_path / "x.png")])
    assert result.exit_code != 0 and not (tmp_path / "x.png").exists()
    tiny = tmp_path / "tiny.png"
    Image.fromarray(np.zeros((3, 9, 3), np.uint8)).save(tiny)
    result = runner.invoke(app, ["masks", str(tiny), "-o", str(tmp_path / "t.png")])
    assert result.exit_code != 0 and not (tmp_path / "t.png").exists()
