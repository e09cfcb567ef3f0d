"""Ctrl-C and SIGTERM with real signals: exit 130/143, no partial or temp file left (issue 10, item 4).

The CLI runs in a subprocess on a small real job; the signal is sent once the job has started
working (its first line on stderr). ``parity`` is also run the way a shell starts a background
job (``cmd &``: SIGINT ignored), which is how it used to run to the end with exit 0.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

from hdm_deploy.runtime.image_io import write_image

SRC = Path(__file__).resolve().parents[2] / "src"


@pytest.fixture(scope="module")
def job(tmp_path_factory):
    """A tiny checkpoint and a folder of 120 photos (256×192): ~10 s of work on 2 idle cores, so a
    signal sent a second in always lands mid-job."""
    import torch

    from hdm_deploy.families.hdm.checkpoint import save_checkpoint
    from hdm_deploy.families.hdm.model import HDM, HDMConfig

    root = tmp_path_factory.mktemp("job")
    torch.manual_seed(0)
    ckpt = save_checkpoint(HDM(HDMConfig(width=8, groups=1, blocks=1)), root / "tiny.pk")
    photos = root / "photos"
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(120):
        write_image(photos / f"p{i:03d}.png", rng.integers(0, 256, (192, 256, 3), dtype=np.uint8))
    return ckpt, photos


def _run_and_signal(args, sig, wait_for: str, *, ignore_sigint: bool = False, delay: float = 0.5):
    env = dict(os.environ, PYTHONPATH=f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}")

    def background_job():  # what `sh -c 'cmd &'` does to a background job
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    proc = subprocess.Popen(
        [sys.executable, "-m", "hdm_deploy.cli", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        preexec_fn=background_job if ignore_sigint else None,
    )
    err: list[str] = []
    started = threading.Event()

    def read() -> None:
        for line in proc.stderr:
            err.append(line)
            if wait_for in line:
                started.set()

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    assert started.wait(120), "".join(err)
    time.sleep(delay)
    assert proc.poll() is None, "the job ended before the signal: make it longer"
    proc.send_signal(sig)
    t0 = time.perf_counter()
    out = proc.stdout.read()
    proc.wait(60)
    reader.join(5)
    return proc.returncode, out, "".join(err), time.perf_counter() - t0


def _leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if ".tmp-" in p.name or p.name.startswith(".")]


@pytest.mark.parametrize(
    ("sig", "code", "word"), [(signal.SIGINT, 130, "interrupted"), (signal.SIGTERM, 143, "terminated")]
)
def test_infer_folder_stops_cleanly(job, tmp_path, sig, code, word):
    ckpt, photos = job
    out = tmp_path / "out"
    rc, _, err, seconds = _run_and_signal(
        ["infer", str(photos), "-m", str(ckpt), "-o", f"{out}/"], sig, "torch ·", delay=1.0
    )
    assert rc == code, err
    assert word in err and seconds < 10
    assert _leftovers(out) == []
    assert len(list(out.iterdir())) < 120  # it really was stopped mid-way


def test_parity_stops_on_sigint_even_as_a_background_job(job, tmp_path):
    ckpt, photos = job
    rc, out, err, seconds = _run_and_signal(
        ["parity", str(ckpt), "-r", str(ckpt), "--images", str(photos), "--json", str(tmp_path / "r.json")],
        signal.SIGINT,
        "done",  # "parity: p000.png done"
        ignore_sigint=True,
        delay=0.3,
    )
    assert rc == 130, err + out
    assert "interrupted" in err and "parity passed" not in out and seconds < 10
    assert not (tmp_path / "r.json").exists() and _leftovers(tmp_path) == []
