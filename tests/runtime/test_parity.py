"""runtime/parity.py and ``hdm-deploy parity``: metrics, thresholds, reports, exit codes."""

from __future__ import annotations

import json
import math
import subprocess
import sys
import xml.etree.ElementTree as ET

import numpy as np
import onnx
import pytest

from hdm_deploy.core.errors import InputImageError, ParityError
from hdm_deploy.core.runner import Prediction, quantize
from hdm_deploy.runtime.parity import (
    ParityReport,
    Thresholds,
    compare,
    psnr,
    render_table,
    run_parity,
    write_heatmaps,
    write_json,
    write_junit,
)


def _pred(rng, n=1, h=12, w=16, masks=True):
    f = rng.uniform(0, 1, (n, 3, h, w)).astype(np.float32)
    m = None
    if masks:
        region = rng.integers(0, 5, (n, (h + 3) // 4, (w + 3) // 4))
        m = (np.arange(5)[None, :, None, None] == region[:, None]).astype(np.float32)[:, :, None]
    return Prediction(image=quantize(f), image_float=f, extras={"masks": m} if m is not None else {})


def test_identical_outputs_pass_with_infinite_psnr():
    p = _pred(np.random.default_rng(0))
    res = compare("same", p, p)
    assert res.passed and math.isinf(res.psnr_db) and res.max_abs == 0.0
    assert res.identical == 100.0 and res.extras_agreement["masks"] == 100.0 and res.max_abs_u8 == 0
    assert res.as_json()["psnr_db"] == "inf"


def test_each_threshold_fails_its_metric():
    rng = np.random.default_rng(1)
    ref = _pred(rng)
    bad_float = ref.image_float + np.float32(1e-3)
    bad = Prediction(quantize(bad_float), bad_float, {"masks": ref.extras["masks"].copy()})
    bad.extras["masks"][0, :, 0, 0, 0] = np.roll(bad.extras["masks"][0, :, 0, 0, 0], 1)
    res = compare("bad", bad, ref, Thresholds(psnr_min=70, max_abs=2e-4, identical_min=99.9, extras_min=100))
    assert not res.passed
    assert set(res.failed_metrics) == {"psnr_db", "max_abs", "masks_agreement"} | (
        {"identical"} if res.identical < 99.9 else set()
    )
    assert res.extras_agreement["masks"] == pytest.approx(100 * (1 - 1 / 12))


def test_uint8_only_predictions_skip_the_float_check():
    rng = np.random.default_rng(2)
    ref = _pred(rng, h=64, w=64)
    u8 = Prediction(image=ref.image.copy(), image_float=None)
    u8.image[0, 0, 0, 0] ^= 1
    res = compare("u8", u8, ref, Thresholds(max_abs=1e-9, max_abs_u8=0))
    assert res.max_abs is None and res.extras_agreement == {}
    assert res.failed_metrics == ["max_abs_u8"]
    assert res.psnr_db == pytest.approx(psnr(u8.image / 255.0, ref.image / 255.0))


def test_shape_mismatch_always_fails():
    rng = np.random.default_rng(3)
    res = compare("shape", _pred(rng, h=12), _pred(rng, h=16), Thresholds(psnr_min=None, max_abs=None))
    assert not res.passed and "shape" in res.failures[0]


def test_reports_json_junit_heatmap_and_table(tmp_path):
    rng = np.random.default_rng(4)
    ref = _pred(rng, n=2)
    off = Prediction(ref.image, ref.image_float + 0.01, dict(ref.extras))
    cases = [compare("good", ref, ref), compare("off", off, ref)]
    report = ParityReport("m.onnx", "ref.npz", Thresholds(), cases)
    assert not report.passed
    with pytest.raises(ParityError, match="off: "):
        report.raise_for_failures()
    data = json.loads(write_json(report, tmp_path / "r.json").read_text())
    assert data["passed"] is False and data["cases"][0]["psnr_db"] == "inf"
    suite = ET.parse(write_junit(report, tmp_path / "r.xml")).getroot()
    assert suite.get("tests") == "2" and suite.get("failures") == "1"
    assert suite.findall("testcase")[1].find("failure") is not None
    paths = write_heatmaps(tmp_path / "hm", "off", off, ref)
    assert [p.name for p in paths] == ["off_0_absdiff.png", "off_1_absdiff.png"]
    import cv2

    img = cv2.imread(str(paths[0]))
    assert img.shape == (12, 16, 3)
    from rich.console import Console

    console = Console(record=True, width=160)
    console.print(render_table(report))
    assert "FAIL" in console.export_text()


@pytest.mark.slow
def test_golden_parity_passes_and_images_need_a_model_reference(tmp_path):
    from _export_helpers import small_export

    res = small_export("float")
    report = run_parity(res.path, res.golden_path)
    assert report.passed and len(report.cases) == 7
    assert report.thresholds.max_abs == 2e-4
    (tmp_path / "img").mkdir()
    import cv2

    cv2.imwrite(str(tmp_path / "img" / "a.png"), np.zeros((20, 24, 3), np.uint8))
    with pytest.raises(InputImageError, match="golden"):
        run_parity(res.path, res.golden_path, images=tmp_path / "img")
    # a model as the reference, on a folder of images
    other = small_export("uint8").path
    report = run_parity(res.path, other, images=tmp_path / "img")
    assert report.passed and report.cases[0].name == "a.png"


def _perturbed(path, out_path, delta=0.05):
    model = onnx.load(path)
    (init,) = [t for t in model.graph.initializer if t.name.endswith("output.2.bias")]
    arr = onnx.numpy_helper.to_array(init) + np.float32(delta)
    init.CopyFrom(onnx.numpy_helper.from_array(arr, init.name))
    onnx.save(model, out_path)
    return out_path


def _cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "hdm_deploy.cli", *map(str, args)], capture_output=True, text=True, timeout=600
    )


@pytest.mark.slow
def test_parity_cli_exit_codes_on_real_and_perturbed_models(tmp_path):
    from _export_helpers import small_export

    res = small_export("float")
    ok = _cli("parity", res.path, "--reference", res.golden_path, "--json", tmp_path / "ok.json")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert json.loads((tmp_path / "ok.json").read_text())["passed"] is True
    bad = _perturbed(res.path, tmp_path / "perturbed.onnx")
    out = _cli(
        "parity",
        bad,
        "--reference",
        res.golden_path,
        "--junit",
        tmp_path / "bad.xml",
        "--heatmap",
        tmp_path / "hm",
    )
    assert out.returncode == 1, out.stdout + out.stderr
    assert "parity failed" in out.stderr and "FAIL" in out.stdout
    assert ET.parse(tmp_path / "bad.xml").getroot().get("failures") == "7"
    assert len(list((tmp_path / "hm").glob("*.png"))) == 8  # 6 single cases + a batch of two


@pytest.mark.slow
def test_export_cli_then_parity_against_the_checkpoint(tmp_path):
    """Real DCP function, CLI export from a checkpoint file, parity vs the checkpoint in PyTorch."""
    from _export_helpers import small_model
    from hdm_deploy.families.hdm.checkpoint import save_checkpoint

    ckpt = save_checkpoint(small_model(), tmp_path / "small.pk")
    model = tmp_path / "model.onnx"
    out = _cli("export", ckpt, "-o", model, "--io", "float")
    assert out.returncode == 0, out.stdout + out.stderr
    assert model.is_file() and (tmp_path / "model.golden.npz").is_file()
    ok = _cli("parity", model, "--reference", ckpt, "--masks", "torch")
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = _cli("parity", _perturbed(model, tmp_path / "bad.onnx"), "--reference", ckpt)
    assert bad.returncode == 1, bad.stdout + bad.stderr


@pytest.mark.slow
def test_default_golden_follows_the_model_through_convert_and_engines(tmp_path):
    """``model.plugin.onnx`` (convert) and ``model.engine`` (build-engine) find ``model.golden.npz``."""
    import shutil
    from pathlib import Path

    from _engine_helpers import make_sidecar
    from _export_helpers import small_export
    from hdm_deploy.graph.flavours import convert_file
    from hdm_deploy.graph.golden import golden_path_for
    from hdm_deploy.runtime.parity import default_golden_for
    from hdm_deploy.tensorrt.sidecar import write_sidecar

    res = small_export("uint8")
    model = shutil.copy(res.path, tmp_path / res.path.name)  # its metadata names its golden bundle
    golden = Path(shutil.copy(res.golden_path, tmp_path / res.golden_path.name))
    assert default_golden_for(model) == golden
    converted = tmp_path / f"{res.path.stem}.plugin.onnx"
    convert_file(model, converted, "plugin")
    assert not golden_path_for(converted).exists()
    assert default_golden_for(converted) == golden
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"not an engine")
    # what build-engine copies from the ONNX metadata
    write_sidecar(engine, make_sidecar(model_metadata={"golden": golden.name}))
    assert default_golden_for(engine) == golden
    # nothing named, nothing beside: the conventional name, for the error message
    lone = shutil.copy(res.path, tmp_path / "lone.onnx")
    model_proto = onnx.load(lone)
    del model_proto.metadata_props[:]
    onnx.save(model_proto, lone)
    assert default_golden_for(lone) == tmp_path / "lone.golden.npz"
