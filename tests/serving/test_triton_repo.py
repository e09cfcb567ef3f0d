"""``triton-repo`` without a server: the repository layout and config.pbtxt, the Python model's
batch grouping, server URLs, and the serve environment checks (numpy ≥ 2 refused in one line)."""

from __future__ import annotations

import re

import numpy as np
import pytest
from typer.testing import CliRunner

from _engine_helpers import make_sidecar
from hdm_deploy.cli import app
from hdm_deploy.core.errors import EnvironmentProblem, HdmDeployError, InputImageError, ModelFormatError
from hdm_deploy.core.runner import Prediction, Runner, model_kind, server_url
from hdm_deploy.graph.metadata import read_metadata
from hdm_deploy.runtime import load_runner
from hdm_deploy.runtime.triton_client import parse_url
from hdm_deploy.serving import RepositoryOptions, write_repository
from hdm_deploy.serving import server as serving_server
from hdm_deploy.serving.triton_model import group_by_shape, pick_model_file, run_grouped
from hdm_deploy.tensorrt.sidecar import write_sidecar

cli = CliRunner()


@pytest.fixture(scope="module")
def onnx_model(small_export):
    return small_export().path


def _engine(folder, cc, meta, name=None):
    path = folder / (name or f"e{cc.replace('.', '') if cc else 'x'}.engine")
    path.write_bytes(b"plan bytes")
    write_sidecar(path, make_sidecar(compute_capability=cc, model_metadata=meta))
    return path


def test_repository_for_an_onnx_model(onnx_model, tmp_path):
    repo = write_repository(
        [onnx_model, onnx_model],
        tmp_path / "repo",
        RepositoryOptions(
            max_batch_size=4,
            instance_kind="gpu",
            instance_count=2,
            max_queue_delay_us=500,
            preferred_batch_sizes=(2, 4),
            first_version=3,
            threads=1,
        ),
    )
    assert repo.models == {"hdm": [3, 4], "hdm_onnxruntime": [3, 4]}
    py = (tmp_path / "repo" / "hdm" / "config.pbtxt").read_text()
    assert 'backend: "python"' in py and "max_batch_size: 4" in py
    assert "versions: [ 3, 4 ]" in py
    assert '{ name: "image" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] }' in py
    assert '{ name: "enhanced" data_type: TYPE_UINT8 dims: [ -1, -1, 3 ] }' in py
    # the family's extra output, shape from the graph (HDM's masks: regions × 1 × H/4 × W/4)
    assert re.search(r'name: "masks" data_type: TYPE_FP32 dims: \[ 5, 1, -1, -1 \]', py)
    assert "count: 2 kind: KIND_GPU" in py
    assert "max_queue_delay_microseconds: 500 preferred_batch_size: [ 2, 4 ]" in py
    assert 'key: "min_side" value: { string_value: "4" }' in py
    assert 'key: "threads" value: { string_value: "1" }' in py
    for v in (3, 4):
        assert (tmp_path / "repo" / "hdm" / str(v) / "model.onnx").read_bytes() == onnx_model.read_bytes()
        assert "TritonPythonModel" in (tmp_path / "repo" / "hdm" / str(v) / "model.py").read_text()
    ort = (tmp_path / "repo" / "hdm_onnxruntime" / "config.pbtxt").read_text()
    assert 'backend: "onnxruntime"' in ort and "versions: [ 3, 4 ]" in ort
    assert 'name: "masks"' in ort
    # rewriting replaces the repository's model folders
    again = write_repository([onnx_model], tmp_path / "repo", RepositoryOptions(backends=["python"]))
    assert again.models == {"hdm": [1]} and not (tmp_path / "repo" / "hdm" / "3").exists()


def test_tensorrt_entry_per_architecture_with_the_plugin(onnx_model, tmp_path):
    meta = read_metadata(onnx_model)
    engines = [_engine(tmp_path, cc, meta) for cc in ("8.7", "9.0", "8.7")]
    plugin = tmp_path / "libhdm_deploy_plugins.so"
    plugin.write_bytes(b"elf")
    repo = write_repository(engines, tmp_path / "repo", RepositoryOptions(plugin_lib=plugin, name="dehaze"))
    # two engines for sm87: two versions; the sm90 engine sits beside the first
    assert repo.models == {"dehaze": [1, 2], "dehaze_tensorrt": [1, 2]}
    cfg = (tmp_path / "repo" / "dehaze_tensorrt" / "config.pbtxt").read_text()
    assert 'platform: "tensorrt_plan"' in cfg and "KIND_GPU" in cfg
    assert 'cc_model_filenames { key: "8.7" value: "model_sm87.plan" }' in cfg
    assert 'cc_model_filenames { key: "9.0" value: "model_sm90.plan" }' in cfg
    assert sorted(p.name for p in (tmp_path / "repo" / "dehaze_tensorrt" / "1").iterdir()) == [
        "model_sm87.plan",
        "model_sm90.plan",
    ]
    assert [p.name for p in (tmp_path / "repo" / "dehaze_tensorrt" / "2").iterdir()] == ["model_sm87.plan"]
    assert (tmp_path / "repo" / "dehaze_tensorrt" / "plugins" / plugin.name).read_bytes() == b"elf"
    assert repo.server_args == [
        f"--backend-config=tensorrt,plugins={(tmp_path / 'repo' / 'dehaze_tensorrt' / 'plugins' / plugin.name).resolve()}"
    ]
    # the Python model runs the engines through our runner, picking the one for the GPU it runs on
    v1 = tmp_path / "repo" / "dehaze" / "1"
    assert pick_model_file(v1, "9.0").name == "model_sm90.engine"
    assert (v1 / "model_sm90.engine.json").is_file()
    with pytest.raises(ModelFormatError, match="no engine for this GPU"):
        pick_model_file(v1, "7.2")
    assert pick_model_file(tmp_path / "repo" / "dehaze" / "2", None).name == "model_sm87.engine"


def test_refusals(onnx_model, tmp_path):
    meta = read_metadata(onnx_model)
    checkpoint = tmp_path / "x.pk"
    checkpoint.write_bytes(b"")
    with pytest.raises(ModelFormatError, match="export it first"):
        write_repository([checkpoint], tmp_path / "r")
    with pytest.raises(HdmDeployError, match="max-batch-size"):
        write_repository([onnx_model], tmp_path / "r", RepositoryOptions(max_batch_size=0))
    with pytest.raises(HdmDeployError, match="preferred"):
        write_repository([onnx_model], tmp_path / "r", RepositoryOptions(preferred_batch_sizes=(16,)))
    with pytest.raises(HdmDeployError, match=r"needs at least one \.engine"):
        write_repository([onnx_model], tmp_path / "r", RepositoryOptions(backends=["tensorrt"]))
    mixed = [_engine(tmp_path, None, meta, "a.engine"), _engine(tmp_path, "8.7", meta, "b.engine")]
    with pytest.raises(ModelFormatError, match="records no compute capability"):
        write_repository(mixed, tmp_path / "r")
    plugin_meta = {**meta, "deform": "plugin"}
    with pytest.raises(HdmDeployError, match="plugin library"):
        write_repository([_engine(tmp_path, "8.7", plugin_meta, "p.engine")], tmp_path / "r")
    (tmp_path / "busy" / "hdm").mkdir(parents=True)
    with pytest.raises(HdmDeployError, match="not a Triton model folder"):
        write_repository([onnx_model], tmp_path / "busy")


def test_triton_repo_command(onnx_model, tmp_path):
    result = cli.invoke(
        app, ["triton-repo", str(onnx_model), "-o", str(tmp_path / "repo"), "--backend", "python"]
    )
    assert result.exit_code == 0, result.output
    assert "wrote" in result.output and (tmp_path / "repo" / "hdm" / "1" / "model.onnx").is_file()
    bad = cli.invoke(app, ["triton-repo", str(tmp_path / "missing.onnx"), "-o", str(tmp_path / "r2")])
    assert bad.exit_code == 2 and "not found" in bad.output


class _Doubler(Runner):
    """Enhanced = 2 × frame; counts calls and the batch sizes it saw."""

    backend = "test"
    min_side = 4

    def __init__(self):
        super().__init__(None)
        self.calls: list[tuple[int, ...]] = []

    def _run(self, frames):
        self.calls.append(frames.shape)
        return Prediction(image=frames * 2, extras={"extra": frames[..., :1].copy()})


def test_run_grouped_batches_by_shape_and_isolates_bad_requests():
    rng = np.random.default_rng(0)
    a = [rng.integers(0, 100, (1, 8, 12, 3), dtype=np.uint8) for _ in range(3)]
    b = rng.integers(0, 100, (2, 16, 8, 3), dtype=np.uint8)
    bad = np.zeros((1, 2, 2, 3), np.uint8)
    runner = _Doubler()
    results = run_grouped(runner, [a[0], b, bad, a[1], a[2]])
    assert sorted(runner.calls) == [(2, 16, 8, 3), (3, 8, 12, 3)]  # one call per frame size
    assert isinstance(results[2], InputImageError) and "too small" in str(results[2])
    for req, res in zip([a[0], b, a[1], a[2]], [results[0], results[1], results[3], results[4]], strict=True):
        image, extras = res
        np.testing.assert_array_equal(image, req * 2)
        np.testing.assert_array_equal(extras["extra"], req[..., :1])
    assert group_by_shape([a[0], b, a[1]]) == {(8, 12, 3): [0, 2], (16, 8, 3): [1]}


def test_server_urls():
    for text in ("http://h:8000/m", "http:/h:8000/m", "grpc://h:8001/m/2"):
        assert model_kind(text) == "server"
    assert server_url("http:/h:8000/m") == "http://h:8000/m"
    assert server_url("model.onnx") is None and server_url("C:/x.onnx") is None
    assert parse_url("grpc://h:8001/m/2") == ("grpc", "h:8001", "m", "2")
    assert parse_url("https://h/m") == ("https", "h", "m", "")
    for bad in ("http://h:8000", "http://h:8000/m/x", "http://h:8000/m/1/2"):
        with pytest.raises(HdmDeployError):
            parse_url(bad)
    with pytest.raises(HdmDeployError, match="does not apply to a served model"):
        load_runner("http://127.0.0.1:9/m", threads=2)


def test_parity_of_a_url_needs_a_reference():
    result = cli.invoke(app, ["parity", "http://127.0.0.1:9/hdm"])
    assert result.exit_code == 2 and "--reference" in result.output, result.output


def test_unreachable_server_is_an_environment_error():
    pytest.importorskip("tritonclient.http")
    from hdm_deploy.serving.server import free_port

    with pytest.raises(EnvironmentProblem, match="cannot reach"):
        load_runner(f"http://127.0.0.1:{free_port()}/hdm")


def test_numpy_2_is_refused_in_one_line(onnx_model, monkeypatch):
    assert serving_server.numpy_problem("1.26.4") is None
    assert "corrupt" in serving_server.numpy_problem("2.2.1")
    monkeypatch.setattr(serving_server.numpy, "__version__", "2.2.1")
    with pytest.raises(EnvironmentProblem) as info:
        serving_server.check_environment()
    assert info.value.exit_code == 3
    result = cli.invoke(app, ["serve", str(onnx_model), "--http-port", "0"])
    assert result.exit_code == 3
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "numpy 2.2.1" in errors[0], result.output


def test_repository_backends_and_busy_ports(onnx_model, tmp_path):
    import socket

    meta = read_metadata(onnx_model)
    write_repository([onnx_model, _engine(tmp_path, "8.7", meta)], tmp_path / "repo")
    assert serving_server.model_backends(tmp_path / "repo") == {
        "hdm": "python",
        "hdm_onnxruntime": "onnxruntime",
        "hdm_tensorrt": "tensorrt",
    }
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(EnvironmentProblem, match=f"http port {port} .* not free"):
            serving_server.check_ports_free("127.0.0.1", {"http": port})


def test_server_environment_fixes_the_pitfalls():
    pytest.importorskip("pytriton")
    if serving_server.numpy_problem() is not None:
        pytest.skip("numpy >= 2 here (the check above covers the refusal)")
    import sys
    import sysconfig
    from pathlib import Path

    env = serving_server.check_environment()
    assert env.env["LD_LIBRARY_PATH"].split(":")[0] == sysconfig.get_config_var("LIBDIR")
    assert env.env["PATH"].split(":")[0] == str(Path(sys.executable).parent)
    assert env.stub.name == "triton_python_backend_stub"
