"""examples/ray_archive.py (Ray Data over a folder tree): outputs equal the direct runner's, images of
different sizes in one run, sub-folders mirrored, unreadable files reported (exit 4), and a second run
skips what is already written. One actor (``--concurrency 1``), under a time-out. Skipped where Ray
Data is not installed (extra ``ray``; `.ci/run` installs it, so CI runs this test)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from _export_helpers import photo_frames
from hdm_deploy.runtime import load_runner
from hdm_deploy.runtime.image_io import read_image, write_image

ROOT = Path(__file__).resolve().parents[2]


def _ray_missing() -> str | None:
    if importlib.util.find_spec("ray") is None:
        return "ray is not installed (pip install '.[ray]')"
    proc = subprocess.run(
        [sys.executable, "-c", "import ray.data"], capture_output=True, text=True, timeout=120
    )
    if proc.returncode:
        return "ray.data does not import here: " + (proc.stderr.strip().splitlines() or ["?"])[-1]
    return None


pytestmark = [pytest.mark.slow, pytest.mark.skipif(_ray_missing() is not None, reason=str(_ray_missing()))]


def _run(archive: Path, out: Path, model: Path) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "examples" / "ray_archive.py"), str(archive), str(out)]
    cmd += ["--model", str(model), "--batch", "2", "--concurrency", "1", "--num-cpus", "2", "--threads", "1"]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_ray_archive_enhances_a_tree_and_resumes(small_export, tmp_path):
    model = small_export().path
    archive = tmp_path / "archive"
    inputs = {
        "a0.png": photo_frames(48, 32, batch=3)[0],
        "a1.png": photo_frames(48, 32, batch=3)[1],
        "sub/b0.png": photo_frames(24, 40)[0],
        "sub/deeper/c0.png": photo_frames(30, 22)[0],
    }
    for name, frame in inputs.items():
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(archive / name, frame)
    (archive / "sub" / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"

    first = _run(archive, out, model)
    assert first.returncode == 4, first.stdout + first.stderr  # the broken file is reported and skipped
    assert "4 of 5 written" in first.stdout and "broken.png" in first.stderr
    with load_runner(model) as runner:
        for name, frame in inputs.items():
            expected = runner(frame[None]).image[0]
            np.testing.assert_array_equal(read_image(out / name).rgb8, expected)
    mtimes = {name: (out / name).stat().st_mtime_ns for name in inputs}

    second = _run(archive, out, model)  # resumable: only the unreadable file is tried again
    assert "1 images to enhance, 4 already done" in second.stdout, second.stdout + second.stderr
    assert {name: (out / name).stat().st_mtime_ns for name in inputs} == mtimes
