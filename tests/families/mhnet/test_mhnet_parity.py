"""MHNet against the independent implementation (tests/independent_mhnet.py) and through export:
PyTorch runner = independent network (float |Δ| < 1e-4), ONNX Runtime = PyTorch (≥ 99.9 % identical
uint8 pixels, at most 1 level) on the bundled photographs at several sizes (not multiples of 16) and
a batch of 2, the golden bundle, and torch-free parity and inference from the metadata alone."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import onnx
import pytest

import _mhnet_helpers
import independent_mhnet as ind
from hdm_deploy.core.photos import golden_cases
from hdm_deploy.graph.golden import load_golden
from hdm_deploy.runtime import load_runner

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def tiny():
    return _mhnet_helpers.tiny_state(), _mhnet_helpers.tiny_checkpoint()


@pytest.fixture(scope="module")
def exported():
    return _mhnet_helpers.tiny_export()


def test_runner_reproduces_the_independent_network(tiny):
    state, ckpt = tiny
    with load_runner(ckpt, device="cpu") as runner:
        assert runner.describe()["backend"] == "torch"
        # 128×96 (a multiple of 16: no padding), 80×54, 76×50, 64×48 and a batch of 2
        for name, frames in golden_cases()[2:]:
            pred = runner.run(frames)
            ref = ind.restore_frames(state, frames)
            assert pred.image_float.shape == ref.shape == (len(frames), 3, *frames.shape[1:3])
            delta = np.abs(pred.image_float - ref).max()
            assert delta < 1e-4, (name, delta)
            assert (
                0.02 < np.abs(ref - frames.transpose(0, 3, 1, 2) / 255).mean() < 0.5
            )  # the net does something


@pytest.mark.slow
@pytest.mark.parametrize("variant", ["deblur"])  # derain differs in n_feat only (see the key tests)
def test_published_size_network_on_a_tiny_frame(tmp_path, variant):
    state = ind.random_state(ind.PUBLISHED[variant], seed=2)
    ckpt = ind.save_published(state, tmp_path / f"{variant}.pth")
    frames = golden_cases()[-1][1][:, :21, :30]  # batch 2, 30×21: padded to 32×32
    with load_runner(ckpt, device="cpu") as runner:
        assert f"MHNet-{variant}" in runner.describe()["network"]
        pred = runner.run(frames)
    ref = ind.restore_frames(state, frames)
    assert np.abs(pred.image_float - ref).max() < 1e-4


def test_runner_refuses_frames_below_the_minimum_side(tiny):
    from hdm_deploy.core.errors import InputImageError

    with load_runner(tiny[1], device="cpu") as runner, pytest.raises(InputImageError, match="at least 17"):
        runner.run(np.zeros((1, 16, 40, 3), np.uint8))


def test_export_matches_pytorch_on_the_photographs(exported):
    report = exported.verification
    assert report is not None and report.passed, report.failures
    names = [c.name for c in report.cases]
    assert any(n.startswith("batch2") for n in names) and len(names) == len(golden_cases())
    for case in report.cases:
        assert case.identical_raw >= 99.9, (case.name, case.identical_raw)
        assert case.max_abs_u8 <= 1, (case.name, case.max_abs_u8)


def test_exported_graph_facts(exported):
    model = onnx.load(str(exported.path))
    meta = {p.key: p.value for p in model.metadata_props}
    assert meta["family"] == "mhnet" and meta["model"] == "MHNet"
    assert (meta["pad_multiple"], meta["pad_mode"], meta["min_side"]) == ("16", "reflect", "17")
    assert (meta["colour_order"], meta["channels"], meta["io"]) == ("RGB", "3", "uint8")
    assert meta["outputs"] == "enhanced" and meta["deform"] == "none"
    ops = {n.op_type for n in model.graph.node}
    assert "DeformConv" not in ops and not model.functions
    # one reflection Pad (to ×16); stage 1's own zero pad is a no-op on ×16 input and folds away;
    # LayerNorm2d is standard ops; stage 1's auxiliary image (restored[1]) is not in the graph
    pads = [n for n in model.graph.node if n.op_type == "Pad"]
    assert len(pads) == 1 and any(a.s == b"reflect" for a in pads[0].attribute if a.name == "mode")
    assert {"ReduceMean", "Sqrt", "Div", "Softmax", "ReduceL2", "DepthToSpace", "Resize"} <= ops
    assert [o.name for o in model.graph.output] == ["enhanced"]
    bundle = load_golden(exported.golden_path)
    assert bundle.manifest["family"] == "mhnet" and len(bundle.cases) == len(golden_cases())


def test_parity_and_infer_without_torch(exported, tmp_path):
    """A device with no PyTorch: parity against the golden bundle, and infer with no flags."""
    import cv2

    image = golden_cases()[0][1][0]
    src = tmp_path / "photo.png"
    cv2.imwrite(str(src), image[..., ::-1])
    code = textwrap.dedent(
        f"""
        import sys
        sys.modules["torch"] = None
        sys.modules["torchvision"] = None
        from hdm_deploy.cli import app
        from typer.testing import CliRunner
        r = CliRunner().invoke(app, ["parity", {str(exported.path)!r}])
        print(r.exit_code, r.output[-400:].replace(chr(10), ' '))
        r = CliRunner().invoke(app, ["infer", {str(src)!r}, "-m", {str(exported.path)!r},
                                     "-o", {str(tmp_path / "out.png")!r}])
        print(r.exit_code, r.output[-300:].replace(chr(10), ' '))
        """
    )
    env_path = f"{ROOT / 'src'}"
    proc = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PYTHONPATH": env_path, "COLUMNS": "200", "PATH": "/usr/bin:/bin"},
    )
    lines = proc.stdout.strip().splitlines()
    assert proc.returncode == 0 and len(lines) == 2, proc.stdout + proc.stderr[-2000:]
    assert lines[0].startswith("0 ") and "parity passed" in lines[0], lines[0]
    assert lines[1].startswith("0 "), lines[1]
    out = cv2.imread(str(tmp_path / "out.png"))[..., ::-1]
    with load_runner(exported.path, device="cpu") as runner:
        np.testing.assert_array_equal(out, runner.run(image).image[0])
