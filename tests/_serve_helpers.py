"""A real Triton server for the serving tests: ``hdm-deploy serve`` in a subprocess.

The bundled ``tritonserver``'s Python stub needs an environment with numpy < 2 (extra ``serve``), while
the rest of the suite may run on numpy 2, so the server may run under another interpreter than the
tests: ``HDM_SERVE_PYTHON`` (``.ci/run`` sets it to ``.venv-serve/bin/python``), else this interpreter
when it can serve, else ``.venv-serve/bin/python`` beside the repository. The tests talk to it with
``tritonclient`` (extra ``dev``). Ports are free ports on 127.0.0.1; teardown always stops the server.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _can_serve(python: str) -> str | None:
    """None if ``python`` has pytriton and numpy < 2, else why not."""
    code = "import numpy, pytriton, sys; sys.exit(0 if int(numpy.__version__.split('.')[0]) < 2 else 3)"
    try:
        proc = subprocess.run([python, "-c", code], capture_output=True, text=True, timeout=60)
    except OSError as exc:
        return f"{python}: {exc}"
    if proc.returncode == 3:
        return f"{python} has numpy >= 2 (the Triton Python stub needs numpy < 2)"
    if proc.returncode:
        return f"{python} lacks nvidia-pytriton (pip install '.[serve]')"
    return None


def serve_python() -> tuple[str | None, str]:
    """(interpreter that can run `hdm-deploy serve`, reason when there is none)."""
    candidates = []
    if os.environ.get("HDM_SERVE_PYTHON"):
        candidates.append(os.environ["HDM_SERVE_PYTHON"])
    else:
        candidates += [sys.executable, str(ROOT / ".venv-serve" / "bin" / "python")]
    reasons = []
    for python in candidates:
        if not Path(python).exists():
            reasons.append(f"{python} not found")
            continue
        why = _can_serve(python)
        if why is None:
            return python, ""
        reasons.append(why)
    return None, "no serve environment (.ci/run makes .venv-serve; or set HDM_SERVE_PYTHON): " + "; ".join(
        reasons
    )


def client_missing() -> str | None:
    for module in ("tritonclient.http", "tritonclient.grpc"):
        with contextlib.suppress(ModuleNotFoundError):
            if importlib.util.find_spec(module) is not None:
                continue
        return f"{module} is not installed (pip install 'tritonclient[http,grpc]', part of extra dev)"
    return None


class Served:
    """``hdm-deploy serve ARGS`` started in its own session; ``stop()`` sends SIGTERM."""

    def __init__(self, python: str, args: list[str], folder: Path, timeout: float = 180.0):
        self.ready_file = folder / "ready.json"
        self.tmp = folder / "tmp"
        self.tmp.mkdir(exist_ok=True)
        env = dict(os.environ, TMPDIR=str(self.tmp), PYTHONUNBUFFERED="1")
        self.log = open(folder / "serve.log", "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [python, "-m", "hdm_deploy.cli", "serve", *args, "--ready-file", str(self.ready_file)],
            stdout=self.log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,
        )
        self.log_path = folder / "serve.log"
        deadline = time.monotonic() + timeout
        while not self.ready_file.exists():
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("hdm-deploy serve did not become ready:\n" + self.output())
            time.sleep(0.2)
        urls = json.loads(self.ready_file.read_text())
        self.http, self.grpc = urls["http"], urls["grpc"]

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-5000:]

    def stop(self, grace: float = 60.0) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(grace)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.killpg(self.proc.pid, signal.SIGKILL)  # nothing of the session may outlive the test
        self.log.close()
        return self.proc.returncode
