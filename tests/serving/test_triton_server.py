"""Against a real Triton Inference Server (the ``tritonserver`` bundled by nvidia-pytriton, started by
``hdm-deploy serve``): HTTP and gRPC answers equal the direct runner's, same-shape concurrent requests
are batched (Triton's statistics), two versions are served side by side, a bad request is answered with
an error while the server stays up, and the onnxruntime / tensorrt entries parse (the bundled server
reports only their missing backends). Skipped, with the reason, where no serve environment exists
(``.ci/run`` makes one)."""

from __future__ import annotations

import json
import os
import threading
import urllib.request
from pathlib import Path

import numpy as np
import onnx
import pytest

from _engine_helpers import make_sidecar
from _export_helpers import photo_frames
from _serve_helpers import Served, client_missing, serve_python
from hdm_deploy.graph.metadata import read_metadata
from hdm_deploy.runtime import load_runner
from hdm_deploy.serving import RepositoryOptions, write_repository
from hdm_deploy.tensorrt.sidecar import write_sidecar

PYTHON, WHY = serve_python()
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(PYTHON is None, reason=WHY),
    pytest.mark.skipif(client_missing() is not None, reason=str(client_missing())),
]
QUEUE_DELAY_US = 150_000  # long enough that concurrent requests meet in one batch on a busy 2-core VM


def _perturbed_copy(src: Path, dst: Path) -> Path:
    """The same graph with one bias shifted: a second model whose outputs differ (version 2)."""
    model = onnx.load(str(src))
    for init in model.graph.initializer:
        if init.data_type == onnx.TensorProto.FLOAT and "bias" in init.name and len(init.dims) == 1:
            values = onnx.numpy_helper.to_array(init) + np.float32(0.25)
            init.CopyFrom(onnx.numpy_helper.from_array(values.astype(np.float32), init.name))
            break
    else:
        raise AssertionError("no bias initializer to perturb")
    onnx.save(model, str(dst))
    return dst


@pytest.fixture(scope="module")
def models(small_export, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served_models")
    v1 = small_export().path
    v2 = _perturbed_copy(v1, folder / "v2.onnx")
    # engines for two GPU architectures (not real plans: this server has no TensorRT backend, and the
    # test checks that Triton parses their entry)
    engines = []
    for cc in ("8.7", "9.0"):
        engine = folder / f"sm{cc.replace('.', '')}.engine"
        engine.write_bytes(b"not a plan")
        write_sidecar(engine, make_sidecar(compute_capability=cc, model_metadata=read_metadata(v1)))
        engines.append(engine)
    plugin = folder / "libplugin.so"
    plugin.write_bytes(b"\x7fELF not really")
    return {"v1": v1, "v2": v2, "engines": engines, "plugin": plugin}


@pytest.fixture(scope="module")
def server(models, tmp_path_factory):
    folder = tmp_path_factory.mktemp("served")
    repo = write_repository(
        [models["v1"], models["v2"], *models["engines"]],
        folder / "repository",
        RepositoryOptions(max_batch_size=8, max_queue_delay_us=QUEUE_DELAY_US, plugin_lib=models["plugin"]),
    )
    assert set(repo.models) == {"hdm", "hdm_onnxruntime", "hdm_tensorrt"}
    served = Served(PYTHON, [str(repo.root), "--allow-unavailable", *_free_ports()], folder)
    try:
        yield served
    finally:
        code = served.stop()
        assert code == 143, served.output()  # SIGTERM: the server was stopped, not killed


def _free_ports() -> list[str]:
    from hdm_deploy.serving.server import free_port

    ports = set()
    while len(ports) < 3:
        ports.add(free_port())
    http, grpc, metrics = sorted(ports)
    return ["--http-port", str(http), "--grpc-port", str(grpc), "--metrics-port", str(metrics)]


@pytest.fixture(scope="module")
def direct(models):
    with load_runner(models["v1"]) as v1, load_runner(models["v2"]) as v2:
        yield {"v1": v1, "v2": v2}


def _equal(pred, ref) -> None:
    np.testing.assert_array_equal(pred.image, ref.image)
    assert set(pred.extras) == set(ref.extras) == {"masks"}
    np.testing.assert_array_equal(pred.extras["masks"], ref.extras["masks"])


@pytest.mark.parametrize("protocol", ["http", "grpc"])
def test_served_outputs_equal_the_direct_runner(server, direct, protocol):
    frames = photo_frames(53, 37, batch=2)  # not a multiple of 4: the runner pads and crops back
    base = server.http if protocol == "http" else server.grpc
    with load_runner(f"{base}/hdm/1") as remote:
        assert remote.describe()["backend"] == f"triton-{protocol}"
        assert remote.min_side == direct["v1"].min_side
        _equal(remote(frames), direct["v1"](frames))
        _equal(remote(frames[1]), direct["v1"](frames[1]))


def test_two_versions_side_by_side(server, direct):
    frames = photo_frames(40, 32)
    with load_runner(f"{server.http}/hdm/1") as r1, load_runner(f"{server.grpc}/hdm/2") as r2:
        p1, p2 = r1(frames), r2(frames)
    _equal(p1, direct["v1"](frames))
    _equal(p2, direct["v2"](frames))
    assert not np.array_equal(p1.image, p2.image)
    with load_runner(f"{server.http}/hdm") as latest:  # no version: Triton serves the highest
        _equal(latest(frames), direct["v2"](frames))


def _stats(server) -> dict:
    with urllib.request.urlopen(f"{server.http}/v2/models/hdm/versions/1/stats", timeout=10) as r:
        return json.loads(r.read())["model_stats"][0]


def test_concurrent_same_shape_requests_are_batched(server, direct):
    before = _stats(server)
    same = photo_frames(48, 32, batch=8)
    other = photo_frames(24, 40, batch=4)
    jobs = [f[None] for f in same] + [f[None] for f in other]
    results: list = [None] * len(jobs)
    barrier = threading.Barrier(len(jobs))

    def send(i: int) -> None:
        with load_runner(f"{server.http}/hdm/1") as r:
            barrier.wait()
            results[i] = r(jobs[i])

    threads = [threading.Thread(target=send, args=(i,)) for i in range(len(jobs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(120)
    after = _stats(server)
    # every answer is the direct runner's for that frame, whatever it was batched with
    for frames, pred in zip(jobs, results, strict=True):
        assert pred is not None
        _equal(pred, direct["v1"](frames))
    inferences = int(after["inference_count"]) - int(before["inference_count"])
    executions = int(after["execution_count"]) - int(before["execution_count"])
    assert inferences == len(jobs)
    assert executions < len(jobs), (executions, after["batch_stats"])
    sizes = {int(b["batch_size"]) for b in after["batch_stats"]}
    assert max(sizes) > 1, after["batch_stats"]


def test_bad_requests_are_answered_with_errors_and_the_server_stays_up(server, direct):
    import tritonclient.http as th
    from tritonclient.utils import InferenceServerException

    client = th.InferenceServerClient(server.http.split("://")[1])

    def infer(array: np.ndarray, dtype: str) -> str:
        tensor = th.InferInput("image", list(array.shape), dtype)
        tensor.set_data_from_numpy(array)
        with pytest.raises(InferenceServerException) as info:
            client.infer("hdm", [tensor], "1")
        return str(info.value)

    # too small for the model's frame contract: refused by our model (the runner's own message)
    assert "too small" in infer(np.zeros((1, 2, 2, 3), np.uint8), "UINT8")
    # wrong type and wrong channel count: refused by Triton against config.pbtxt
    assert "FP32" in infer(np.zeros((1, 8, 8, 3), np.float32), "FP32")
    assert "3" in infer(np.zeros((1, 8, 8, 4), np.uint8), "UINT8")
    assert client.is_server_live() and client.is_model_ready("hdm", "1")
    frames = photo_frames(32, 24)
    with load_runner(f"{server.http}/hdm/1") as r:
        _equal(r(frames), direct["v1"](frames))


def test_onnxruntime_and_tensorrt_entries_parse(server):
    req = urllib.request.Request(f"{server.http}/v2/repository/index", data=b"{}", method="POST")
    with urllib.request.urlopen(req, timeout=10) as r:
        index = {(m["name"], m.get("version")): m for m in json.loads(r.read())}
    assert index[("hdm", "1")]["state"] == index[("hdm", "2")]["state"] == "READY"
    for name, backend in (("hdm_onnxruntime", "onnxruntime"), ("hdm_tensorrt", "tensorrt")):
        entries = [m for (n, _), m in index.items() if n == name]
        assert entries, index
        for entry in entries:
            # the configuration parsed; the only problem is the backend this server does not ship
            assert entry["state"] == "UNAVAILABLE"
            assert f"unable to find backend library for backend '{backend}'" in entry["reason"], entry


def test_parity_command_checks_a_served_model(server, models):
    from typer.testing import CliRunner

    from hdm_deploy.cli import app

    golden = models["v1"].with_name(models["v1"].stem + ".golden.npz")
    result = CliRunner().invoke(app, ["parity", f"{server.grpc}/hdm/1", "--reference", str(golden)])
    assert result.exit_code == 0, result.output
    assert "parity passed" in result.output


def test_serve_model_file_stops_on_sigterm(models, tmp_path):
    served = Served(PYTHON, [str(models["v1"]), "--no-dynamic-batching", *_free_ports()], tmp_path)
    try:
        with load_runner(f"{served.http}/hdm") as r:
            assert r(photo_frames(16, 12)).image.shape == (1, 12, 16, 3)
    finally:
        code = served.stop()
    assert code == 143, served.output()
    assert "tritonserver stopped (exit 0)" in served.output()
    # (onnxruntime itself drops a `.ses` file into TMPDIR when imported; not ours)
    left = [n for n in os.listdir(served.tmp) if n != ".ses"]
    assert not left, f"the temporary workspace was left behind: {left}"
    with pytest.raises(ProcessLookupError):
        os.killpg(served.proc.pid, 0)


def test_serve_repository_loads_what_the_bundled_server_can_run(models, tmp_path):
    repo = write_repository([models["v1"]], tmp_path / "repository")  # python + onnxruntime entries
    served = Served(PYTHON, [str(repo.root), *_free_ports()], tmp_path)
    try:
        with load_runner(f"{served.grpc}/hdm") as r:
            assert r(photo_frames(16, 12)).image.shape == (1, 12, 16, 3)
    finally:
        code = served.stop()
    assert code == 143, served.output()
    assert "not loaded hdm_onnxruntime: backend onnxruntime" in " ".join(served.output().split())
