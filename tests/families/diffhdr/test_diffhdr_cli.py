"""`hdm-deploy export` (family detected, two graphs + golden), `hdr`, `hdr-parity` (torch-free), `hdr-resave`."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hdm_deploy.cli import app

cli = CliRunner()
ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(scope="module")
def exported(tiny_export):
    result, folder = tiny_export.result, tiny_export.folder
    assert result.family == "diffhdr" and result.measured["psnr_db"] >= 45.0
    golden = np.load(folder / "diffhdr.golden.npz")
    for name in ("short", "medium", "long"):
        cv2.imwrite(str(folder / f"{name}.png"), golden[f"ldr_{name}"][:, :, ::-1])
    return folder, tiny_export.ckpt


def test_export_writes_two_graphs_and_a_golden_bundle(exported):
    folder, _ = exported
    for name in ("diffhdr.onnx", "diffhdr.cond.onnx", "diffhdr.golden.npz"):
        assert (folder / name).is_file()
    import onnx

    meta = {
        p.key: p.value for p in onnx.load(folder / "diffhdr.onnx", load_external_data=False).metadata_props
    }
    assert meta["family"] == "diffhdr" and meta["condition_graph"] == "diffhdr.cond.onnx"


def test_golden_parity_runs_without_torch(exported):
    folder, _ = exported
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any `import torch` now raises
        "from hdm_deploy.cli import main; sys.argv = ['hdm-deploy', 'parity', sys.argv[1]]; main()"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code, str(folder / "diffhdr.onnx")],
        capture_output=True,
        text=True,
        env={"PYTHONPATH": str(ROOT / "src"), "PATH": "/usr/bin:/bin", "COLUMNS": "200"},
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "parity passed" in proc.stdout and "tonemapped PSNR" in proc.stderr


def test_hdr_writes_radiance_and_preview(exported, tmp_path):
    folder, _ = exported
    ins = [str(folder / f"{n}.png") for n in ("short", "medium", "long")]
    out, preview = tmp_path / "out.hdr", tmp_path / "out.png"
    args = ["hdr", *ins, "--exposures", "0,2,4", "-m", str(folder / "diffhdr.onnx"), "-o", str(out)]
    result = cli.invoke(
        app, [*args, "--steps", "3", "--patch", "64", "--stride", "32", "--preview", str(preview)]
    )
    assert result.exit_code == 0, result.output
    hdr = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert hdr.dtype == np.float32 and hdr.shape == (96, 128, 3) and hdr.min() >= 0 and hdr.max() <= 1.0
    assert cv2.imread(str(preview)).shape == (96, 128, 3)
    # the exposure file of the published dataset gives the same stops
    (tmp_path / "exposure.txt").write_text("0\n2\n4\n")
    out2 = tmp_path / "out2.hdr"
    args2 = [
        "hdr",
        *ins,
        "--exposure-file",
        str(tmp_path / "exposure.txt"),
        "-m",
        str(folder / "diffhdr.onnx"),
    ]
    result = cli.invoke(app, [*args2, "-o", str(out2), "--steps", "3", "--patch", "64", "--stride", "32"])
    assert result.exit_code == 0, result.output
    np.testing.assert_array_equal(cv2.imread(str(out2), cv2.IMREAD_UNCHANGED), hdr)


@pytest.mark.parametrize(
    "case, message",
    [
        ("count", "takes 3 exposures"),
        ("size", "differ in size"),
        ("depth", "8-bit"),
        ("missing", "either with --exposures or with --exposure-file"),
        ("values", "needs 3"),
        ("absent", "not found"),
    ],
)
def test_hdr_input_errors_are_one_line(exported, tmp_path, case, message):
    folder, _ = exported
    ins = [str(folder / f"{n}.png") for n in ("short", "medium", "long")]
    expo = ["--exposures", "0,2,4"]
    if case == "count":
        ins = ins[:2]
    elif case == "size":
        cv2.imwrite(str(tmp_path / "small.png"), np.zeros((50, 128, 3), np.uint8))
        ins[0] = str(tmp_path / "small.png")
    elif case == "depth":
        cv2.imwrite(str(tmp_path / "s16.png"), np.zeros((96, 128, 3), np.uint16))
        ins[0] = str(tmp_path / "s16.png")
    elif case == "missing":
        expo = []
    elif case == "values":
        expo = ["--exposures", "0,2"]
    elif case == "absent":
        ins[2] = str(tmp_path / "nope.png")
    result = cli.invoke(
        app, ["hdr", *ins, *expo, "-m", str(folder / "diffhdr.onnx"), "-o", str(tmp_path / "o.hdr")]
    )
    assert result.exit_code == 2, result.output
    assert message in result.output and "Traceback" not in result.output
    assert not (tmp_path / "o.hdr").exists()


def test_resave_command(exported, tmp_path):
    _, ckpt = exported
    dst = tmp_path / "tensors.pt"
    result = cli.invoke(app, ["hdr-resave", str(ckpt), "-o", str(dst), "--ema"])
    assert result.exit_code == 0, result.output
    state = torch.load(dst, weights_only=True)
    ema = torch.load(ckpt, weights_only=False)["ema_helper"]
    assert torch.equal(state["ddpm_state_dict"]["module.conv_in.weight"], ema["conv_in.weight"])


def test_hdr_parity_fails_below_the_threshold_and_refuses_frame_options(exported):
    folder, _ = exported
    model = str(folder / "diffhdr.onnx")
    result = cli.invoke(app, ["hdr-parity", model, "--psnr-min", "1000"])
    assert result.exit_code == 1 and "PSNR" in result.output
    result = cli.invoke(app, ["parity", model, "--images", str(folder / "short.png")])
    assert result.exit_code == 2 and "does not apply" in result.output
