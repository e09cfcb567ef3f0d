"""scripts/gpu_acceptance.py runs everywhere: on a CPU-only machine every GPU step skips with a reason,
the reports are written, and the exit status is 0 (skips are not failures). Fast: `--only env` and
`--dry-run` execute no step."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gpu_acceptance.py"


def _run(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess, dict, str]:
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")]))
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    data = json.loads((tmp_path / "gpu_acceptance.json").read_text())
    md = (tmp_path / "gpu_acceptance.md").read_text()
    return proc, data, md


def test_only_env_writes_both_reports(tmp_path):
    proc, data, md = _run(tmp_path, "--only", "env")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert [s["name"] for s in data["steps"]] == ["env"]
    assert data["steps"][0]["status"] == "ok"
    for key in ("gpu", "driver", "torch", "onnxruntime", "onnxruntime_providers", "tensorrt", "python"):
        assert key in data["env"]
    assert "# hdm-deploy GPU acceptance" in md and "| GPU |" in md


def test_dry_run_plans_every_step_with_a_command_and_a_reason(tmp_path):
    proc, data, md = _run(tmp_path, "--dry-run", "--sizes", "640x480")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = {s["name"]: s for s in data["steps"]}
    for name in (
        "plugin_kernels",
        "plugin_bench",
        "dcp_bench",
        "export_fp32",
        "export_fp16",
        "ort_parity_fp32",
        "ort_parity_fp16",
        "ort_bench_640x480",
        "trt_build_plugin",
        "trt_build_engine",
        "trt_parity",
        "trt_bench_640x480",
    ):
        assert steps[name]["status"] == "skipped", name
        assert steps[name]["reason"], name
        assert steps[name]["command"], name
    assert "tests/plugins/test_plugin_gpu.py" in steps["plugin_kernels"]["command"]
    assert "--junitxml=" in steps["plugin_kernels"]["command"]
    assert "--device cuda" in steps["ort_parity_fp16"]["command"]
    assert "--precision fp16" in steps["export_fp16"]["command"]
    assert "--fp16" in steps["trt_build_engine"]["command"]
    assert data["summary"]["passed"] is True
    assert "`ort_bench_640x480`" in md


def test_unknown_group_is_refused(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--out", str(tmp_path), "--only", "nope"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2 and "unknown step group" in proc.stderr
