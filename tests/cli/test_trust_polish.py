"""Polish (issue 10, item 11): 80-column pipes, --help flags, --debug anywhere, --masks defaults, doctor."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import onnx
import pytest
from rich.table import Table
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.cli.render import table_lines

SRC = Path(__file__).resolve().parents[2] / "src"
cli = CliRunner()


def _cli_through_a_pipe(*args: str, columns: int = 80) -> subprocess.CompletedProcess:
    env = dict(
        os.environ, COLUMNS=str(columns), PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"
    )
    return subprocess.run(
        [sys.executable, "-m", "hdm_deploy.cli", *args], capture_output=True, text=True, env=env, timeout=300
    )


def test_tables_never_split_a_token_in_80_columns():
    t = Table(
        title="parity: model.onnx  vs  model.golden.npz", caption="pass if PSNR ≥ 40 dB, identical ≥ 99.9 %"
    )
    for col in ("case", "N×W×H", "PSNR dB", "max |Δ|", "max |Δ| u8", "identical %", "masks %", "result"):
        t.add_column(col, justify="left" if col in ("case", "result") else "right")
    t.add_row(
        "batch2_rocket+chelsea_64x48", "2×64×48", "90.79", "n/a", "1", "99.984", "100.000", "[red]fail[/]"
    )
    t.add_row("rocket_160x107", "1×160×107", "95.24", "n/a", "1", "99.994", "100.000", "pass")
    lines = table_lines(t, 80)
    assert all(len(line) <= 80 for line in lines), lines
    text = "\n".join(lines)
    for token in ("1×160×107", "identical %", "batch2_rocket+chelsea_64x48", "99.984", "fail"):
        assert token in text
    narrow = Table(title="t")
    narrow.add_column("a")
    narrow.add_column("b", justify="right")
    narrow.add_row("x", "1.5")
    assert table_lines(narrow, 80) == ["t", "a    b", "-  ---", "x  1.5"]


def test_doctor_in_an_80_column_pipe(tmp_path):
    from _onnx_graphs import hdm_like

    path = tmp_path / "m.onnx"
    onnx.save(hdm_like("onnx"), path)
    res = _cli_through_a_pipe("doctor", str(path), "--trt", "8.5", "--trt", "10.3", "--verbose")
    assert res.returncode == 1, res.stderr  # fails on 8.5: exit 1
    lines = res.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), [line for line in lines if len(line) > 80]
    text = " ".join(res.stdout.split())
    assert "TensorRT 8.5: ✗ FAILS" in text and "TensorRT 10.3: ✓ OK" in text
    assert "DCPMasks" in res.stdout


def test_doctor_is_concise_and_its_exit_code_has_one_rule(tmp_path):
    from _onnx_graphs import hdm_like

    path = tmp_path / "m.onnx"
    onnx.save(hdm_like("onnx"), path)
    ok = cli.invoke(app, ["doctor", str(path), "--trt", "10.3"])
    assert ok.exit_code == 0, ok.output
    bad = cli.invoke(app, ["doctor", str(path), "--trt", "8.5"])
    assert bad.exit_code == 1 and "FAILS" in bad.output and "--verbose" in bad.output
    assert len(bad.output.splitlines()) < 40  # verdicts, not every node
    every = cli.invoke(app, ["doctor", str(path)])  # no TensorRT here: every known version is checked
    assert every.exit_code == (1 if "FAILS" in every.output else 0)


@pytest.mark.parametrize("version", ["9.9", "12.1", "7.0"])
def test_doctor_refuses_versions_that_do_not_exist(tmp_path, version):
    res = cli.invoke(app, ["doctor", "--trt", version])
    assert (
        res.exit_code == 2
        and "not a TensorRT release we know" in res.output
        and "nearest table" in res.output
    )


def test_doctor_maps_a_real_release_to_its_table(tmp_path):
    from _onnx_graphs import hdm_like

    path = tmp_path / "m.onnx"
    onnx.save(hdm_like("onnx"), path)
    res = cli.invoke(app, ["doctor", str(path), "--trt", "10.5"])
    assert res.exit_code == 0 and "TensorRT 10.5 (table 10.3)" in res.output, res.output


@pytest.mark.parametrize(
    "command", ["", "infer", "export", "parity", "bench", "masks", "doctor", "build-plugin"]
)
def test_help_shows_no_bool_type_on_flags(command):
    res = cli.invoke(app, [command, "--help"] if command else ["--help"], env={"COLUMNS": "150"})
    assert res.exit_code == 0 and "<bool>" not in res.output, res.output


def test_debug_is_accepted_after_the_subcommand(tmp_path):
    res = cli.invoke(app, ["infer", str(tmp_path / "missing.png"), "--debug"])
    assert "No such option" not in res.output
    assert isinstance(res.exception, Exception) and "input not found" in str(res.exception)  # traceback mode
    res = cli.invoke(app, ["infer", str(tmp_path / "missing.png")])
    assert res.exit_code == 2 and "input not found" in res.output


def test_masks_default_is_the_same_everywhere():
    from hdm_deploy.cli import commands
    from hdm_deploy.cli.options import DEFAULT_MASKS

    assert DEFAULT_MASKS == "reference"
    for name in ("infer", "parity", "bench"):
        res = cli.invoke(app, [name, "--help"], env={"COLUMNS": "200"})
        assert "reference" in res.output and "default" in res.output, name
    assert commands.mask_impl(None) == "reference"
