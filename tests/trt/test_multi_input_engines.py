"""Engines of graphs with several inputs (artifacts of several graphs, e.g. a diffusion model's UNet +
condition network): per-axis profiles, companion graphs, trtexec lines, the multi-input engine
runner's decisions and its Polygraphy loader — all without TensorRT (generic graphs, no family)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.core.errors import (
    EngineMismatchError,
    HdmDeployError,
    HdmDeployWarning,
    ModelFormatError,
    ShapeOutOfProfileError,
)
from hdm_deploy.tensorrt import graph_runner
from hdm_deploy.tensorrt.builder import (
    artifact_graphs,
    companion_engine_path,
    profile_shapes,
    read_onnx_facts,
    resolve_profile,
)
from hdm_deploy.tensorrt.profiles import (
    TensorProfile,
    compute_tensor_profile,
    parse_axis_spec,
)
from hdm_deploy.tensorrt.runner import TensorInfo
from hdm_deploy.tensorrt.sidecar import EngineSidecar, read_sidecar, write_sidecar
from hdm_deploy.tensorrt.trtexec import trtexec_plans

cli = CliRunner()


def _graph(inputs, output, out_dims, metadata, nodes):
    g = helper.make_graph(
        nodes,
        "g",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, d) for n, d in inputs],
        [helper.make_tensor_value_info(output, TensorProto.FLOAT, out_dims)],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)
    helper.set_model_props(m, metadata)
    onnx.checker.check_model(m)
    return m


@pytest.fixture
def artifact(tmp_path):
    """main.onnx (x [batch,3,side,side], f [batch,4,side,side], t [1] → y) + main.aux.onnx (c → f)."""
    axes = json.dumps({"batch": [1, 4, 8], "side": [64, 128, 256]})
    main = _graph(
        [("x", ["batch", 3, "side", "side"]), ("f", ["batch", 4, "side", "side"]), ("t", [1])],
        "y",
        ["batch", 3, "side", "side"],
        {"profile_axes": axes, "companion_graphs": "main.aux.onnx"},
        [helper.make_node("Add", ["x", "t"], ["y"])],
    )
    aux = _graph(
        [("c", ["batch", 6, "side", "side"])],
        "g",
        ["batch", 6, "side", "side"],
        {"profile_axes": axes},
        [helper.make_node("Relu", ["c"], ["g"])],
    )
    onnx.save(main, tmp_path / "main.onnx")
    onnx.save(aux, tmp_path / "main.aux.onnx")
    return tmp_path / "main.onnx"


def test_axis_specs():
    assert parse_axis_spec("batch=1:4:8") == ("batch", (1, 4, 8))
    assert parse_axis_spec(" patch=512") == ("patch", (512, 512, 512))
    for bad in ("batch", "batch=1:2", "batch=8:4:1", "=3", "b=x", "b=0"):
        with pytest.raises(ValueError):
            parse_axis_spec(bad)


def test_profile_from_named_axes_metadata_and_overrides():
    inputs = [("x", ["batch", 3, "side", "side"]), ("t", [1])]
    meta = {"profile_axes": json.dumps({"batch": [1, 4, 8], "side": [64, 128, 256]})}
    p = compute_tensor_profile(inputs, meta)
    assert p.inputs == {"x": ((1, 3, 64, 64), (4, 3, 128, 128), (8, 3, 256, 256)), "t": ((1,), (1,), (1,))}
    q = compute_tensor_profile(inputs, meta, ["side=512", "batch=2:2:2"])
    assert q.inputs["x"] == ((2, 3, 512, 512),) * 3 and q.axes == {"batch": (2, 2, 2), "side": (512,) * 3}
    with pytest.raises(ValueError, match="axis 'side' of input x has no range: give --axis side="):
        compute_tensor_profile(inputs, {}, ["batch=1"])
    with pytest.raises(ValueError, match="--axis patch: not an axis of this graph"):
        compute_tensor_profile(inputs, meta, ["patch=64"])
    with pytest.raises(ValueError, match="dynamic without a name"):
        compute_tensor_profile([("x", [None, 3])], meta)
    with pytest.raises(ValueError, match="profile_axes metadata is unusable"):
        compute_tensor_profile(inputs, {"profile_axes": '{"batch": [4, 2, 1]}'})


def test_tensor_profile_round_trips_through_the_sidecar_and_checks_shapes(tmp_path):
    p = compute_tensor_profile([("x", ["batch", 3, "side", "side"])], {}, ["batch=1:4:8", "side=64:128:256"])
    engine = tmp_path / "m.engine"
    write_sidecar(
        engine,
        EngineSidecar("10.3", None, None, "fp32", True, False, [p.as_dict()], onnx_sha256="ab" * 32),
    )
    back = read_sidecar(engine).profile(0)
    assert isinstance(back, TensorProfile) and back == p
    assert profile_shapes(back) == {"x": ((1, 3, 64, 64), (4, 3, 128, 128), (8, 3, 256, 256))}
    back.check({"x": (8, 3, 256, 256)})
    with pytest.raises(ShapeOutOfProfileError, match=r"x 9×3×256×256 not within") as err:
        back.check({"x": (9, 3, 256, 256)})
    assert "--axis batch=" in err.value.hint
    with pytest.raises(ShapeOutOfProfileError, match="y is not an input"):
        back.check({"y": (1,)})


def test_graph_kind_decides_which_profile_options_apply(artifact, tmp_path):
    facts = read_onnx_facts(artifact)
    assert [n for n, _ in facts.inputs] == ["x", "f", "t"]
    assert isinstance(resolve_profile(facts), TensorProfile)
    with pytest.raises(HdmDeployError, match="--min/--opt/--max describe one image input"):
        resolve_profile(facts, max_shape="1x64x64")
    aux = read_onnx_facts(artifact.with_name("main.aux.onnx"))  # one input, but named axes: per-axis too
    assert resolve_profile(aux).inputs["c"][2] == (8, 6, 256, 256)
    image = _graph(
        [("image", ["N", 3, "H", "W"])],
        "enhanced",
        ["N", 3, "H", "W"],
        {"io": "float"},
        [helper.make_node("Identity", ["image"], ["enhanced"])],
    )
    onnx.save(image, tmp_path / "image.onnx")
    with pytest.raises(HdmDeployError, match="one image input: use --min/--opt/--max"):
        resolve_profile(read_onnx_facts(tmp_path / "image.onnx"), axes=["batch=1"])


def test_companion_graphs_and_their_engine_names(artifact, tmp_path):
    meta = read_onnx_facts(artifact).metadata
    pairs = artifact_graphs(artifact, tmp_path / "out" / "fast.engine", meta)
    assert [(p.name, e.name) for p, e in pairs] == [
        ("main.onnx", "fast.engine"),
        ("main.aux.onnx", "fast.aux.engine"),
    ]
    assert companion_engine_path("a/m.onnx", "b/e.plan", "other.onnx") == Path("b/e.other.plan")
    artifact.with_name("main.aux.onnx").unlink()
    with pytest.raises(ModelFormatError, match=r"companion graph main\.aux\.onnx, which is not beside it"):
        artifact_graphs(artifact, artifact.with_suffix(".engine"), meta)


def test_trtexec_lines_for_every_graph(artifact):
    plans = trtexec_plans(artifact, "10.13", axes=["batch=1:2:4"])
    assert len(plans) == 2
    main, aux = plans[0].args, plans[1].args
    assert main[:2] == [f"--onnx={artifact}", f"--saveEngine={artifact.with_suffix('.engine')}"]
    # one flag per bound, every input in trtexec's comma-separated spec
    assert "--minShapes=x:1x3x64x64,f:1x4x64x64,t:1" in main
    assert "--optShapes=x:2x3x128x128,f:2x4x128x128,t:1" in main
    assert "--maxShapes=x:4x3x256x256,f:4x4x256x256,t:1" in main
    assert "--stronglyTyped" in main and "--noTF32" in main
    assert aux[1] == f"--saveEngine={artifact.with_name('main.aux.engine')}"
    assert "--optShapes=c:2x6x128x128" in aux
    with pytest.raises(HdmDeployError, match="--axis nope is not an axis of these graphs"):
        trtexec_plans(artifact, "10.13", axes=["nope=3"])
    result = cli.invoke(app, ["trtexec-args", str(artifact), "--trt", "10.13", "--axis", "side=128"])
    assert result.exit_code == 0, result.output
    lines = [ln for ln in result.stdout.splitlines() if ln.startswith("trtexec ")]
    assert len(lines) == 2 and "--maxShapes=c:8x6x128x128" in lines[1]
    bad = cli.invoke(app, ["trtexec-args", str(artifact), "--max", "1x64x64"])
    assert bad.exit_code == 2 and "--axis NAME=MIN:OPT:MAX" in bad.output


def test_doctor_checks_the_companion_graphs(artifact):
    result = cli.invoke(app, ["doctor", str(artifact), "--trt", "10.13"])
    assert result.exit_code == 0, result.output
    assert "main.onnx: TensorRT ONNX parser check" in result.stdout
    assert "main.aux.onnx (companion graph of main.onnx): TensorRT ONNX parser check" in result.stdout


# ---- the multi-input engine runner ---------------------------------------------------------------------


def test_feeds_are_cast_to_the_engine_types_and_named():
    inputs = [
        TensorInfo("x", True, np.dtype(np.float16)),
        TensorInfo("t", True, np.dtype(np.float32)),
        TensorInfo("y", False, np.dtype(np.float32)),
    ]
    x = np.arange(6, dtype=np.float64).reshape(1, 6)[:, ::2]  # not contiguous
    feeds = graph_runner.prepare_feeds({"x": x, "t": np.array([3.0])}, inputs)
    assert feeds["x"].dtype == np.float16 and feeds["x"].flags.c_contiguous and feeds["t"].dtype == np.float32
    with pytest.raises(HdmDeployError, match="missing t; unknown z"):
        graph_runner.prepare_feeds({"x": x, "z": x}, inputs)


def test_engine_loader_and_profile_without_sidecar():
    calls = []
    poly = SimpleNamespace(
        EngineFromBytes=lambda data: calls.append(("bytes", data)) or "from-bytes",
        LoadPlugins=lambda plugins, obj: calls.append(("plugins", plugins, obj)) or "with-plugins",
    )
    assert graph_runner.engine_loader(poly, b"plan", None) == "from-bytes"
    assert graph_runner.engine_loader(poly, b"plan", Path("/p/lib.so")) == "with-plugins"
    assert calls[-1] == ("plugins", ["/p/lib.so"], "from-bytes")
    p = graph_runner.profile_of_engine({"x": [(1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8)]})
    assert p.inputs["x"][2] == (4, 3, 8, 8)
    with pytest.raises(EngineMismatchError):
        graph_runner.profile_of_engine({"x": [(1, 3, 8, 8)]})
    assert graph_runner.companion_engines("d/u.engine", {"companion_engines": "u.cond.engine"}) == [
        Path("d/u.cond.engine")
    ]
    assert graph_runner.companion_engines("d/u.engine", {}) == []


class _FakeEngine:
    """What Polygraphy's TrtRunner exposes of a deserialised engine (tensor-name API)."""

    num_io_tensors = 3
    names = ("x", "t", "y")

    def get_tensor_name(self, i):
        return self.names[i]

    def get_tensor_dtype(self, name):
        return SimpleNamespace(name="HALF" if name == "x" else "FLOAT")

    def get_tensor_mode(self, name):
        return "in" if name != "y" else "out"

    def get_tensor_profile_shape(self, name, index):
        return [(1, 3, 8, 8), (2, 3, 8, 8), (2, 3, 8, 8)] if name == "x" else [(1,), (1,), (1,)]


def _fake_tensorrt(monkeypatch, seen):
    class TrtRunner:
        def __init__(self, loader):
            seen["loader"] = loader
            self.engine, self.is_active = _FakeEngine(), False

        def activate(self):
            self.is_active = True

        def deactivate(self):
            self.is_active = False

        def infer(self, feed, copy_outputs_to_host):
            seen["feed"] = feed
            out = seen.setdefault("buffer", np.zeros((feed["x"].shape[0], 3, 8, 8), np.float32))
            out += 1  # Polygraphy reuses its host buffers
            return {"y": out}

    poly = SimpleNamespace(
        EngineFromBytes=lambda data: ("EngineFromBytes", data),
        LoadPlugins=lambda plugins, obj: ("LoadPlugins", plugins, obj),
        TrtRunner=TrtRunner,
    )
    trt = SimpleNamespace(__version__="10.13.0", TensorIOMode=SimpleNamespace(INPUT="in"))
    monkeypatch.setattr(graph_runner, "import_tensorrt", lambda: trt)
    monkeypatch.setattr(graph_runner, "import_polygraphy_trt", lambda: poly)
    monkeypatch.setattr(graph_runner.cudart, "cudart", lambda: None)
    monkeypatch.setattr(graph_runner.cudart, "set_device", lambda d, lib: seen.setdefault("device", d))
    monkeypatch.setattr(graph_runner.cudart, "device_properties", lambda d, lib: ("Orin", "8.7"))


def test_runner_builds_the_polygraphy_chain_and_checks_before_tensorrt(tmp_path, monkeypatch):
    seen: dict = {}
    _fake_tensorrt(monkeypatch, seen)
    engine = tmp_path / "u.engine"
    engine.write_bytes(b"plan")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        g = graph_runner.TensorRTGraph(engine, device=1)  # no sidecar: one warning, profile from the engine
    assert [str(w.message) for w in caught if issubclass(w.category, HdmDeployWarning)] == [
        f"u.engine: {graph_runner.NO_SIDECAR_WARNING}"
    ]
    assert seen["loader"] == ("EngineFromBytes", b"plan") and seen["device"] == 1
    assert g.profile.inputs["x"][2] == (2, 3, 8, 8) and g.model_metadata == {}
    with pytest.raises(ShapeOutOfProfileError):
        g.run({"x": np.zeros((3, 3, 8, 8), np.float32), "t": np.array([1.0])})
    assert "feed" not in seen  # refused before TensorRT
    a = g.run({"x": np.zeros((2, 3, 8, 8), np.float32), "t": np.array([5.0])})
    b = g.run({"x": np.zeros((2, 3, 8, 8), np.float32), "t": np.array([5.0])})
    assert seen["feed"]["x"].dtype == np.float16 and seen["feed"]["t"].dtype == np.float32
    assert a["y"][0, 0, 0, 0] == 1 and b["y"][0, 0, 0, 0] == 2  # copies, not Polygraphy's buffer
    g.close()

    # with a sidecar: its per-input profile and metadata are used
    prof = compute_tensor_profile([("x", ["b", 3, 8, 8]), ("t", [1])], {}, ["b=1:1:1"])
    write_sidecar(
        engine,
        EngineSidecar(
            "10.13.0",
            "Orin",
            "8.7",
            "fp16",
            True,
            False,
            [prof.as_dict()],
            onnx_sha256="ab" * 32,
            model_metadata={"companion_engines": "u.cond.engine"},
        ),
    )
    g = graph_runner.TensorRTGraph(engine)
    assert (
        g.profile == prof
        and graph_runner.companion_engines(engine, g.model_metadata)[0].name == "u.cond.engine"
    )
    with pytest.raises(ShapeOutOfProfileError):
        g.check({"x": (2, 3, 8, 8)})
