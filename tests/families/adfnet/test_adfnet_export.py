"""ADFNet through the generic exporter: ONNX Runtime vs PyTorch on the bundled photographs (sizes not
divisible by 8, batch 2) for every DeformConv flavour, the shifted-slice dynamic filters, metadata,
Gray models, and the torch-free commands (infer, parity, bench, doctor) on the exported file."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import onnx
import pytest
import torch
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.export.exporter import export_onnx
from hdm_deploy.families.adfnet.checkpoint import load_for_family
from hdm_deploy.families.adfnet.model import dynamic_filter, set_dynamic_filter
from hdm_deploy.graph.golden import golden_path_for, load_golden
from hdm_deploy.graph.metadata import read_metadata
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
from hdm_deploy.runtime.parity import Thresholds, check_parity
from independent_adfnet import random_state_dict, save_published

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """``hdm-deploy export CKPT`` (family found from the keys; the CLI's HDM-only --max-size default
    is not used by ADFNet) → (checkpoint, model.onnx)."""
    folder = tmp_path_factory.mktemp("adfnet")
    ckpt = save_published(random_state_dict("rgb", width=8, seed=5), folder / "adfnet_small.pt")
    res = CliRunner().invoke(app, ["export", str(ckpt), "-o", str(folder / "adfnet.onnx")])
    assert res.exit_code == 0, res.output
    assert "rocket_160x107" in res.output  # the verification table was printed
    return ckpt, folder / "adfnet.onnx"


def _ops(path) -> set[str]:
    return {n.op_type for n in onnx.load(str(path)).graph.node}


def _parity(path, golden):
    bundle = load_golden(golden)
    with OnnxRuntimeRunner(path, device="cpu") as runner:
        return check_parity(runner, bundle, thresholds=Thresholds.from_dict(bundle.tolerances))


def test_export_verified_on_photographs_with_metadata(exported):
    _, path = exported
    report = _parity(path, golden_path_for(path))
    assert report.passed, report.failures
    names = [c.name for c in report.cases]
    assert any("batch2" in n for n in names) and any("150x100" in n for n in names)  # ×2 batch, H,W % 8 ≠ 0
    for case in report.cases:  # ≥ 99.9 % identical uint8 pixels, at most one level apart
        assert case.identical >= 99.9 and (case.max_abs_u8 or 0) <= 1
    meta = read_metadata(path)
    assert meta["family"] == "adfnet" and meta["pad_multiple"] == "8" and meta["pad_mode"] == "reflect"
    assert meta["channels"] == "3" and meta["colour_order"] == "RGB" and meta["dynamic_filter"] == "shifted"
    assert meta["variant"] == "custom" and json.loads(meta["network"]) == {"n_colors": 3, "width": 8}
    ops = _ops(path)
    assert "DeformConv" in ops
    # no logging branch (If / data-dependent mean |offset|) and no Unfold-style gather of a 9× tensor
    assert not ops & {"If", "Loop", "Abs", "Col2Im"}
    deform = [n for n in onnx.load(str(path)).graph.node if n.op_type == "DeformConv"]
    assert len(deform) == 7
    assert all(a.i == 8 for n in deform for a in n.attribute if a.name == "offset_group")


@pytest.mark.parametrize("flavour", ["plugin", "decompose"])
def test_other_deformconv_flavours_match_pytorch(exported, tmp_path, flavour):
    """``hdm-deploy convert``: 8 offset groups survive the plugin rewrite (run in ORT as DeformConv)
    and the decomposition; then ``trtexec-args`` (TensorRT-free) and ``build-engine`` (needs TensorRT)."""
    _, path = exported
    out = tmp_path / f"adfnet.{flavour}.onnx"
    res = CliRunner().invoke(app, ["convert", str(path), "--deform", flavour, "-o", str(out)])
    assert res.exit_code == 0, res.output
    report = _parity(out, golden_path_for(path))
    assert report.passed, report.failures
    if flavour == "plugin":
        nodes = [n for n in onnx.load(str(out)).graph.node if n.op_type == "HdmDeformConv"]
        assert len(nodes) == 7 and all(
            a.i == 8 for n in nodes for a in n.attribute if a.name == "offset_group"
        )
        lib = "/opt/hdm/libhdm_deploy_plugins.so"  # where trtexec's machine has it
        res = CliRunner().invoke(app, ["trtexec-args", str(out), "--trt", "8.6", "--plugin-lib", lib])
        assert res.exit_code == 0 and f"--plugins={lib}" in res.output, res.output
        assert "--minShapes=image:1x64x64x3" in res.output  # the default profile (≥ min_side 8)
    res = CliRunner().invoke(app, ["build-engine", str(out), "-o", str(tmp_path / "a.engine")])
    if importlib.util.find_spec("tensorrt") is None:
        assert res.exit_code == 3 and "TensorRT" in res.output, res.output


def test_plugin_cpu_kernel_handles_eight_offset_groups(exported):
    """The plugin's kernel (its CPU twin, same C++ source as the CUDA kernel) on a real ADFNet DCN:
    offsets and masks from the checkpoint's conv_offset_mask, 8 offset groups."""
    native = pytest.importorskip("hdm_deploy.plugins")
    try:
        native.cpu_library()
    except Exception as exc:  # no compiler here
        pytest.skip(f"CPU twin not buildable: {exc}")
    from torchvision.ops import deform_conv2d

    ckpt, _ = exported
    model = load_for_family(torch.load(ckpt, weights_only=True), {}, None)
    dcn = model.fe1.fe[1].dcn[0]
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 8, 12, 10, generator=g)
    feat = torch.randn(1, 32, 12, 10, generator=g)
    o1, o2, m = torch.chunk(dcn.conv_offset_mask(feat), 3, dim=1)
    offset, mask = torch.cat((o1, o2), 1).detach(), torch.sigmoid(m).detach()
    assert offset.shape[1] == 8 * 18 and offset.abs().mean() > 0.1
    ref = deform_conv2d(x, offset, dcn.weight.detach(), dcn.bias.detach(), padding=(1, 1), mask=mask)
    got = native.cpu_deform_conv(
        x.numpy(),
        dcn.weight.detach().numpy(),
        offset.numpy(),
        dcn.bias.detach().numpy(),
        mask.numpy(),
        padding=1,
        offset_groups=8,
    )
    assert np.abs(got - ref.numpy()).max() < 1e-5


@pytest.mark.parametrize("dilation", [1, 3, 5])
def test_shifted_dynamic_filter_equals_unfold(dilation):
    g = torch.Generator().manual_seed(dilation)
    x = torch.randn(2, 6, 13, 11, generator=g)
    k = torch.randn(2, 54, 13, 11, generator=g) * 3
    a = dynamic_filter(x, k, dilation, "unfold")
    b = dynamic_filter(x, k, dilation, "shifted")
    assert ((a - b).abs().max() / a.abs().max()) < 1e-5


def test_model_switches_dynamic_filter_formulation(exported):
    """PyTorch runs the published ``unfold``; the export copy uses ``shifted`` (see
    benchmarks/bench_adfnet_filters.py for the ``unfold`` export and the ORT timings of both)."""
    ckpt, _ = exported
    model = load_for_family(torch.load(ckpt, weights_only=True), {}, None)
    assert {m.impl for m in model.modules() if hasattr(m, "impl")} == {"unfold"}
    x = torch.rand(1, 3, 24, 16)
    with torch.no_grad():
        a = model(x)
        b = set_dynamic_filter(model, "shifted")(x)
    assert {m.impl for m in model.modules() if hasattr(m, "impl")} == {"shifted"}
    assert (a - b).abs().max() < 1e-5


def test_gray_export_metadata_and_colour_refusal(tmp_path):
    ckpt = save_published(random_state_dict("gray", width=8, seed=6), tmp_path / "adfnet_gray.pt")
    cases = [("grey_45x37", np.random.default_rng(1).integers(0, 256, (1, 37, 45, 3), dtype=np.uint8))]
    result = export_onnx(ckpt, tmp_path / "gray.onnx", golden_cases=cases)
    assert result.verification.passed
    assert result.metadata["channels"] == "1" and result.metadata["colour_order"] == "GRAY"
    with OnnxRuntimeRunner(result.path, device="cpu") as runner:
        grey = np.repeat(np.full((16, 20, 1), 100, np.uint8), 3, axis=2)
        out = runner.run(grey).image[0]
        assert np.array_equal(out[..., 0], out[..., 1])
        with pytest.raises(Exception, match="greyscale"):
            runner.run(np.zeros((16, 20, 3), np.uint8) + np.array([1, 2, 3], np.uint8))


def _cli_without_torch(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    """``hdm-deploy ARGS`` in a process where ``import torch`` fails."""
    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from hdm_deploy.cli import main\n"
        f"sys.argv = ['hdm-deploy', *{list(args)!r}]\n"
        "main()\n"
    )
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=cwd)


def test_cli_on_onnx_needs_no_flags_and_no_torch(exported, tmp_path):
    _, model_path = exported
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (37, 45, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "a.png"), img)
    (tmp_path / "folder").mkdir()
    cv2.imwrite(str(tmp_path / "folder" / "b.png"), img[:20, :30])
    video = cv2.VideoWriter(str(tmp_path / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 5, (40, 24))
    for _ in range(3):
        video.write(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8))
    video.release()
    model = str(model_path)
    for src in ("a.png", "folder", "clip.avi"):
        p = _cli_without_torch("infer", src, "--model", model, cwd=tmp_path)
        assert p.returncode == 0, p.stderr + p.stdout
    assert (tmp_path / "a_enhanced.png").is_file()
    p = _cli_without_torch("parity", model, cwd=tmp_path)
    assert p.returncode == 0 and "parity passed" in p.stdout, p.stderr + p.stdout
    p = _cli_without_torch("bench", model, "--size", "48x40", "--warmup", "0", "--iters", "1", cwd=tmp_path)
    assert p.returncode == 0, p.stderr + p.stdout
    p = _cli_without_torch("doctor", model, "--trt", "10.13", cwd=tmp_path)
    assert p.returncode in (0, 1) and "Traceback" not in p.stderr, p.stderr + p.stdout


def test_cli_parity_and_bench_with_the_checkpoint(exported, tmp_path):
    """The ONNX file against its checkpoint on an image folder, and both in one bench table."""
    ckpt, path = exported
    (tmp_path / "imgs").mkdir()
    img = np.random.default_rng(3).integers(0, 256, (41, 50, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "imgs" / "x.png"), img)
    runner = CliRunner()
    res = runner.invoke(
        app, ["parity", str(path), "--reference", str(ckpt), "--images", str(tmp_path / "imgs")]
    )
    assert res.exit_code == 0 and "parity passed" in res.output, res.output
    res = runner.invoke(
        app, ["bench", str(ckpt), str(path), "--size", "48x40", "--warmup", "0", "--iters", "1"]
    )
    assert res.exit_code == 0 and "protocol=clean" in res.output, res.output
