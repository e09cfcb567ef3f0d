"""Inputs are sacred; outputs and options are checked before any model loads (issue 10, items 1, 7, 8)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.core.errors import OutputPathError
from hdm_deploy.core.fs import refuse_overwrite, same_file
from hdm_deploy.runtime.image_io import write_image

cli = CliRunner()


def _md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def _photo(path: Path, h: int = 24, w: int = 32, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    return write_image(path, rng.integers(0, 256, (h, w, 3), dtype=np.uint8))


@pytest.fixture
def model_never_loads(monkeypatch):
    """Fail loudly if a command gets as far as loading a model: the checks must come first."""

    def boom(*args, **kwargs):
        raise AssertionError("a model was loaded before the arguments were checked")

    for where in (
        "hdm_deploy.runtime",
        "hdm_deploy.cli.commands",
        "hdm_deploy.runtime.parity",
        "hdm_deploy.runtime.bench",
    ):
        monkeypatch.setattr(f"{where}.load_runner", boom)


def test_same_file_sees_links_and_case_folding(tmp_path):
    a = _photo(tmp_path / "a.jpg")
    (tmp_path / "link.jpg").symlink_to(a)
    os.link(a, tmp_path / "hard.jpg")
    assert same_file(a, tmp_path / "link.jpg") and same_file(a, tmp_path / "hard.jpg")
    (tmp_path / "sub").mkdir()
    assert same_file(a, tmp_path / "sub" / ".." / "a.jpg")
    assert not same_file(a, tmp_path / "new.jpg")
    # On a case-insensitive file system A.JPG opens a.jpg: detected by inode, whatever the FS.
    upper = tmp_path / "A.JPG"
    assert same_file(a, upper) == upper.exists()
    with pytest.raises(OutputPathError, match="refusing to overwrite the input"):
        refuse_overwrite([a], [None, tmp_path / "link.jpg"])
    refuse_overwrite([a, None], [tmp_path / "out.jpg"])  # a new file is fine


@pytest.mark.parametrize(
    "make_args",
    [
        lambda d: ["infer", str(d / "same.jpg"), "-o", str(d / "same.jpg")],
        lambda d: ["infer", str(d / "same.jpg"), "-o", str(d / "link.jpg")],
        lambda d: ["infer", str(d / "sub" / "good.jpg"), "-o", str(d / "sub")],
        lambda d: ["infer", str(d / "sub" / "good.jpg"), "-o", str(d / "sub") + "/"],
        lambda d: ["infer", str(d / "sub"), "-o", str(d / "sub")],
        lambda d: ["infer", str(d / "sub"), "-o", str(d / "sub" / ".." / "sub")],
        lambda d: ["masks", str(d / "same.jpg"), "-o", str(d / "same.jpg")],
        lambda d: ["masks", str(d / "same.jpg"), "-o", str(d / "link.jpg")],
    ],
)
def test_outputs_that_are_inputs_are_refused_before_any_work(tmp_path, model_never_loads, make_args):
    _photo(tmp_path / "same.jpg")
    (tmp_path / "link.jpg").symlink_to(tmp_path / "same.jpg")
    (tmp_path / "sub").mkdir()
    _photo(tmp_path / "sub" / "good.jpg", seed=1)
    before = {p: _md5(p) for p in tmp_path.rglob("*") if p.is_file()}
    result = cli.invoke(app, make_args(tmp_path))
    assert result.exit_code == 2, result.output
    assert len(result.output.strip().splitlines()) == 1, result.output
    assert "refusing to" in result.output
    assert {p: _md5(p) for p in tmp_path.rglob("*") if p.is_file()} == before


def test_output_folder_inside_the_input_folder_is_fine(tmp_path):
    import torch

    from hdm_deploy.families.hdm.checkpoint import save_checkpoint
    from hdm_deploy.families.hdm.model import HDM, HDMConfig

    torch.manual_seed(0)
    ckpt = save_checkpoint(HDM(HDMConfig(width=8, groups=1, blocks=1)), tmp_path / "tiny.pk")
    src = tmp_path / "in"
    src.mkdir()
    _photo(src / "a.png")
    before = _md5(src / "a.png")
    result = cli.invoke(app, ["infer", str(src), "-o", str(src / "out") + "/", "-m", str(ckpt)])
    assert result.exit_code == 0, result.output
    assert (src / "out" / "a.png").is_file() and _md5(src / "a.png") == before


def test_export_and_convert_refuse_their_inputs(tmp_path, model_never_loads):
    ckpt = tmp_path / "model.onnx"  # a "checkpoint" path that is also the output
    ckpt.write_bytes(b"not really")
    result = cli.invoke(app, ["export", str(tmp_path / "c.pk"), "-o", str(tmp_path / "e.onnx")])
    assert result.exit_code == 2  # missing checkpoint: one line
    (tmp_path / "c.pth").write_bytes(b"x")
    os.link(tmp_path / "c.pth", tmp_path / "e.onnx")
    result = cli.invoke(app, ["export", str(tmp_path / "c.pth"), "-o", str(tmp_path / "e.onnx")])
    assert result.exit_code == 2 and "refusing to overwrite" in result.output, result.output
    result = cli.invoke(app, ["convert", str(ckpt), "--deform", "plugin", "-o", str(ckpt)])
    assert result.exit_code == 2 and "refusing to overwrite" in result.output, result.output
    assert ckpt.read_bytes() == b"not really"


@pytest.mark.parametrize(
    ("output", "message"),
    [("x.xyz", "'.xyz'"), ("noext", "no extension")],
)
def test_bad_output_names_before_the_model_loads(tmp_path, model_never_loads, output, message):
    _photo(tmp_path / "a.jpg")
    result = cli.invoke(app, ["infer", str(tmp_path / "a.jpg"), "-o", str(tmp_path / output)])
    assert result.exit_code == 2 and message in result.output, result.output
    assert not (tmp_path / output).exists()


def test_trailing_slash_is_a_folder_created_up_front(tmp_path, model_never_loads):
    _photo(tmp_path / "a.jpg")
    with pytest.raises(AssertionError, match="model was loaded"):  # got past every check
        cli.invoke(
            app,
            ["infer", str(tmp_path / "a.jpg"), "-o", str(tmp_path / "newdir") + "/"],
            catch_exceptions=False,
        )
    assert (tmp_path / "newdir").is_dir()


def test_export_output_must_be_onnx(tmp_path):
    result = cli.invoke(app, ["export", "-o", str(tmp_path / "e.xyz")])
    assert result.exit_code == 2 and "must end in .onnx" in result.output
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["infer", "IMG", "-m", "M.onnx", "--masks", "torch"], "--masks does not apply to an ONNX model"),
        (["infer", "IMG", "-m", "M.onnx", "--plugin-lib", "/nope.so"], "--plugin-lib does not apply"),
        (["infer", "IMG", "--plugin-lib", "/nope.so"], "--plugin-lib does not apply to a PyTorch checkpoint"),
        (["infer", "IMG", "-m", "M.onnx", "--trust-checkpoint"], "--trust-checkpoint does not apply"),
        (["parity", "M.onnx", "--masks", "reference"], "--masks does not apply to a golden bundle"),
        (["parity", "M.onnx", "--identical-min", "200"], "--identical-min 200 is not a percentage"),
        (["parity", "M.onnx", "--mask-min", "-1"], "--mask-min -1 is not a percentage"),
        (["bench", "M.onnx", "--masks", "torch"], "--masks does not apply to an ONNX model"),
    ],
)
def test_options_that_cannot_apply_are_refused(tmp_path, model_never_loads, args, message):
    _photo(tmp_path / "a.jpg")
    (tmp_path / "M.onnx").write_bytes(b"x")
    (tmp_path / "M.golden.npz").write_bytes(b"x")
    args = [{"IMG": str(tmp_path / "a.jpg"), "M.onnx": str(tmp_path / "M.onnx")}.get(a, a) for a in args]
    result = cli.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert message in result.output and len(result.output.strip().splitlines()) == 1, result.output


def test_option_check_is_a_reusable_function():
    from hdm_deploy.cli.options import inapplicable_option

    assert inapplicable_option("engine", plugin_lib=Path("x.so"), masks=None) is None
    assert inapplicable_option("torch", masks="torch") is None
    assert "--masks" in str(inapplicable_option("engine", masks="torch"))


def test_build_plugin_with_a_missing_tensorrt_root_is_exit_3(tmp_path):
    result = cli.invoke(app, ["build-plugin", "--tensorrt-root", str(tmp_path / "nonexistent")])
    assert result.exit_code == 3 and "does not exist" in result.output, result.output
    (tmp_path / "trt").mkdir()
    result = cli.invoke(app, ["build-plugin", "--tensorrt-root", str(tmp_path / "trt")])
    assert result.exit_code == 3 and "NvInfer.h" in result.output, result.output


def test_build_engine_refuses_to_write_over_its_onnx(tmp_path):
    (tmp_path / "m.onnx").write_bytes(b"onnx")
    result = cli.invoke(app, ["build-engine", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "m.onnx")])
    assert result.exit_code == 2 and "refusing to overwrite" in result.output, result.output
    assert (tmp_path / "m.onnx").read_bytes() == b"onnx"
