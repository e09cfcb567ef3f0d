"""Start the ``tritonserver`` bundled by ``nvidia-pytriton`` on a model repository (extra ``serve``).

The bundled server has only the Python backend. Four pitfalls of running it from a virtual
environment are handled here, not left to the reader:

1. The Python stub links the *system* libpython by default; when the environment's interpreter is
   another patch release, model loading fails (``'_thread.RLock' object has no attribute
   '_recursion_count'``). → ``LD_LIBRARY_PATH`` starts with this interpreter's ``sysconfig`` LIBDIR.
2. pytriton pins numpy < 2 because the stub reads tensors through numpy 1's ABI; with numpy 2 the stub
   *silently* corrupts tensors (input [1,2,3,4] arrives as [1,1,1,1]). → :func:`check_environment`
   refuses to start (one line, exit 3) when numpy ≥ 2 is installed.
3. The stub finds the environment through ``python3`` on ``PATH`` (``PYTHONPATH`` has no effect).
   → ``PATH`` starts with this interpreter's folder.
4. Background processes ignore SIGINT, and pytriton writes to ``~/.cache/pytriton`` unless given a
   workspace. → the server is stopped with SIGTERM (SIGKILL after a grace period), and its binaries,
   the stub and the logs live in a temporary workspace that is removed on exit.
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import tempfile
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path

import numpy

from hdm_deploy.core.errors import EnvironmentProblem, HdmDeployError

SERVE_HINT = "pip install 'hdm-deploy[serve]' (with the other extras in one command, so numpy resolves < 2)"


@dataclass
class ServeEnvironment:
    """Where the bundled server lives and the environment it must run with."""

    dist: Path  #: pytriton's ``tritonserver`` folder (bin/, backends/, caches/)
    stub: Path  #: the Python stub for this interpreter's version
    env: dict[str, str] = field(default_factory=dict)


def numpy_problem(version: str | None = None) -> str | None:
    """Why tensors would be corrupted in this environment, or None (numpy 1.x)."""
    if version is None:
        version = numpy.__version__
    try:
        major = int(version.split(".")[0])
    except ValueError:
        return None
    if major >= 2:
        return (
            f"numpy {version} is installed: Triton's Python stub (pytriton 0.7) would silently corrupt "
            "the tensors it passes"
        )
    return None


def check_environment() -> ServeEnvironment:
    """The bundled server and the environment it needs, or one line (exit 3) saying what is wrong."""
    problem = numpy_problem()
    if problem is not None:
        raise EnvironmentProblem(problem, "pip install 'numpy<2' (or reinstall with " + SERVE_HINT + ")")
    try:
        from pytriton.utils.distribution import get_libs_path, get_root_module_path, get_stub_path
    except ImportError as exc:
        raise EnvironmentProblem(
            f"serving needs nvidia-pytriton's bundled tritonserver ({exc})", SERVE_HINT
        ) from exc
    dist = Path(get_root_module_path()) / "tritonserver"
    version = f"{sys.version_info[0]}.{sys.version_info[1]}"
    stub = Path(get_stub_path(version))
    if not (dist / "bin" / "tritonserver").is_file() or not stub.is_file():
        raise EnvironmentProblem(
            f"nvidia-pytriton has no tritonserver or no Python {version} stub under {dist}",
            "reinstall nvidia-pytriton (Linux x86_64/aarch64 wheels carry the server)",
        )
    env = dict(os.environ)
    # (1) the stub must load this interpreter's libpython, not the system's
    libdir = sysconfig.get_config_var("LIBDIR") or ""
    lib_paths = [p for p in (libdir, str(get_libs_path()), env.get("LD_LIBRARY_PATH", "")) if p]
    env["LD_LIBRARY_PATH"] = os.pathsep.join(lib_paths)
    # (3) the stub finds the environment (hdm_deploy, onnxruntime, numpy < 2) via python3 on PATH
    bindir = str(Path(sys.executable).parent)
    env["PATH"] = os.pathsep.join([bindir, env.get("PATH", "")])
    python3 = shutil.which("python3", path=env["PATH"])
    if python3 is None or Path(python3).parent != Path(bindir):
        raise EnvironmentProblem(
            f"no python3 beside {sys.executable}: the Python stub would run another environment",
            "run hdm-deploy from a virtual environment (python3 -m venv …)",
        )
    return ServeEnvironment(dist=dist, stub=stub, env=env)


def model_backends(repository: str | os.PathLike) -> dict[str, str]:
    """Model name → the backend its ``config.pbtxt`` names (``tensorrt_plan`` platform → ``tensorrt``)."""
    found = {}
    for config in sorted(Path(repository).glob("*/config.pbtxt")):
        backend = "?"
        for line in config.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            value = value.strip().strip('"')
            if key.strip() == "backend":
                backend = value
                break
            if key.strip() == "platform":
                backend = {"tensorrt_plan": "tensorrt", "onnxruntime_onnx": "onnxruntime"}.get(value, value)
        found[config.parent.name] = backend
    return found


def bundled_backends() -> set[str]:
    """The backends the bundled server ships (pytriton 0.7: ``python``)."""
    from pytriton.utils.distribution import get_root_module_path

    folder = Path(get_root_module_path()) / "tritonserver" / "backends"
    return {p.name for p in folder.iterdir() if p.is_dir()}


def check_model_runtime(model_files: list[Path]) -> None:
    """The Python model runs ``.onnx`` files in ONNX Runtime inside the stub: refuse (exit 3) before
    starting a server whose model load would fail for want of it."""
    if (
        any(Path(m).suffix.lower() == ".onnx" for m in model_files)
        and importlib.util.find_spec("onnxruntime") is None
    ):
        raise EnvironmentProblem(
            "serving .onnx models needs ONNX Runtime in this environment",
            "pip install 'hdm-deploy[cpu,serve]' (or [gpu,serve])",
        )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on now (for tests and ``--http-port 0``)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def check_ports_free(host: str, ports: dict[str, int]) -> None:
    """Refuse (exit 3) ports that another process listens on, before starting anything; a readiness
    probe would otherwise be answered by the other server."""
    for what, port in ports.items():
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                s.bind((host, port))
            except OSError as exc:
                raise EnvironmentProblem(
                    f"{what} port {port} on {host} is not free ({exc.strerror})",
                    f"another server uses it: pick another --{what}-port (0 = any free port)",
                ) from None


def _url_host(host: str) -> str:
    return "127.0.0.1" if host in ("0.0.0.0", "") else host


class TritonServer:
    """A running ``tritonserver``: ``with TritonServer(repo, http_port=…) as server: …``.

    ``allow_unavailable`` starts the server even when some models cannot load (``--exit-on-error=false
    --strict-readiness=false``; e.g. the onnxruntime/tensorrt entries on this bundled server).
    """

    def __init__(
        self,
        repository: str | os.PathLike,
        *,
        host: str = "127.0.0.1",
        http_port: int = 8000,
        grpc_port: int = 8001,
        metrics_port: int = 8002,
        allow_unavailable: bool = False,
        extra_args: list[str] | None = None,
        load_models: list[str] | None = None,
        log_verbose: int = 0,
        workspace: str | os.PathLike | None = None,
    ):
        self.repository = Path(repository).resolve()
        self.host = host
        self.ports = {
            "http": http_port or free_port(),
            "grpc": grpc_port or free_port(),
            "metrics": metrics_port or free_port(),
        }
        self.allow_unavailable = allow_unavailable
        self.extra_args = list(extra_args or [])
        self.load_models = list(load_models) if load_models is not None else None
        self.log_verbose = log_verbose
        self._given_workspace = Path(workspace) if workspace else None
        self.workspace: Path | None = None
        self.process: subprocess.Popen | None = None
        self.log_path: Path | None = None
        self._log = None

    @property
    def http_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.ports['http']}"

    @property
    def grpc_url(self) -> str:
        return f"grpc://{_url_host(self.host)}:{self.ports['grpc']}"

    @property
    def metrics_url(self) -> str:
        return f"http://{_url_host(self.host)}:{self.ports['metrics']}/metrics"

    def command(self, dist: Path) -> list[str]:
        # a per-process shared-memory prefix: two servers on one machine must not share regions
        shm = f"hdm_deploy{os.getpid()}x{self.ports['http']}_"
        args = [
            str(dist / "bin" / "tritonserver"),
            f"--model-repository={self.repository}",
            f"--backend-directory={dist / 'backends'}",
            f"--http-address={self.host}",
            f"--http-port={self.ports['http']}",
            f"--grpc-address={self.host}",
            f"--grpc-port={self.ports['grpc']}",
            f"--metrics-address={self.host}",
            f"--metrics-port={self.ports['metrics']}",
            f"--backend-config=python,shm-region-prefix-name={shm}",
            "--backend-config=python,shm-default-byte-size=16777216",
            "--backend-config=python,shm-growth-byte-size=16777216",
            f"--log-verbose={self.log_verbose}",
        ]
        if self.allow_unavailable:
            args += ["--exit-on-error=false", "--strict-readiness=false"]
        if self.load_models is not None:  # only these models of the repository
            args += ["--model-control-mode=explicit", *(f"--load-model={m}" for m in self.load_models)]
        return args + self.extra_args

    def start(self, timeout: float = 120.0) -> TritonServer:
        """Start the server and wait until it is ready (or raise with the server's own error lines)."""
        senv = check_environment()
        check_ports_free(self.host, self.ports)
        if not self.repository.is_dir():
            raise HdmDeployError(
                f"model repository not found: {self.repository}", "write one with triton-repo"
            )
        if self._given_workspace is not None:
            self._given_workspace.mkdir(parents=True, exist_ok=True)
            self.workspace = Path(tempfile.mkdtemp(prefix="hdm-deploy-triton-", dir=self._given_workspace))
        else:
            self.workspace = Path(tempfile.mkdtemp(prefix="hdm-deploy-triton-"))
        # (4) binaries and the stub of this Python version in the workspace (as pytriton lays them out)
        dist = self.workspace / "tritonserver"
        shutil.copytree(senv.dist, dist, ignore=shutil.ignore_patterns("python_backend_stubs", "__pycache__"))
        shutil.copy2(senv.stub, dist / "backends" / "python" / "triton_python_backend_stub")
        env = dict(senv.env)
        env["HOME"] = str(self.workspace)  # nothing of the server's lands in the user's ~/.cache
        self.log_path = self.workspace / "tritonserver.log"
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.process = subprocess.Popen(
            self.command(dist),
            stdout=self._log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            cwd=self.workspace,
            start_new_session=True,  # Ctrl-C reaches us; we stop the server with SIGTERM
        )
        try:
            self.wait_ready(timeout)
        except BaseException:
            self.stop()
            raise
        return self

    def _get(self, path: str, timeout: float = 2.0) -> tuple[int, bytes]:
        req = urllib.request.Request(self.http_url + path)
        try:
            with urllib.request.urlopen(req, timeout=timeout) as r:
                return r.status, r.read()
        except urllib.error.HTTPError as e:
            return e.code, e.read()

    def repository_index(self) -> list[dict]:
        """Triton's repository index: every model with its version, state and reason."""
        req = urllib.request.Request(self.http_url + "/v2/repository/index", data=b"{}", method="POST")
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def statistics(self, model: str = "") -> dict:
        path = f"/v2/models/{model}/stats" if model else "/v2/models/stats"
        _status, body = self._get(path, timeout=10)
        return json.loads(body)

    def log_tail(self, lines: int = 30) -> str:
        if self.log_path is None or not self.log_path.exists():
            return ""
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def _failure(self) -> str:
        """The server's first error line(s) (``E1125 … failed to load …``), for one-line errors."""
        text = self.log_tail(200)
        errors = [ln for ln in text.splitlines() if ln[:1] == "E" or "error" in ln.lower()]
        return (errors[0] if errors else (text.splitlines() or ["no output"])[-1]).strip()[:400]

    def wait_ready(self, timeout: float = 120.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                failure = self._failure()
                if "address already in use" in self.log_tail(200).lower():
                    raise EnvironmentProblem(
                        f"tritonserver could not listen: {failure}",
                        "another server uses the port: pick others with --http-port/--grpc-port/--metrics-port "
                        "(0 = any free port)",
                    )
                raise HdmDeployError(
                    f"tritonserver exited with code {self.process.returncode}: {failure}",
                    "see the repository's config.pbtxt files",
                )
            with contextlib.suppress(OSError):
                status, _ = self._get("/v2/health/ready", timeout=1.0)
                if status == 200 and self.process is not None and self.process.poll() is None:
                    return
            time.sleep(0.2)
        raise EnvironmentProblem(
            f"tritonserver was not ready after {timeout:.0f} s: {self._failure()}",
            "raise --timeout, or check the log with --debug",
        )

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def stop(self, grace: float = 30.0, keep_workspace: bool = False) -> int | None:
        """SIGTERM (Triton unloads its models and exits), SIGKILL after ``grace`` seconds; the
        workspace is removed. Returns the server's exit code."""
        code = None
        if self.process is not None:
            if self.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    self.process.send_signal(signal.SIGTERM)
                try:
                    self.process.wait(grace)
                except subprocess.TimeoutExpired:
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(self.process.pid, signal.SIGKILL)
                    self.process.wait()
            # the Python stubs are the server's children in its session: none may outlive it
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(self.process.pid, signal.SIGKILL)
            code = self.process.returncode
        if self._log is not None:
            self._log.close()
            self._log = None
        if self.workspace is not None and not keep_workspace:
            shutil.rmtree(self.workspace, ignore_errors=True)
            self.workspace = None
        return code

    def __enter__(self) -> TritonServer:
        return self.start() if self.process is None else self

    def __exit__(self, *exc: object) -> None:
        self.stop()
