"""DiffHDR's two graphs on the TensorRT path without TensorRT: the named axes and profile metadata the
export writes, both engines' trtexec lines (FP16: the FP32 islands pinned), `build-engine`'s decisions,
`doctor` on both graphs, the export's success line, `export --ema`, and `hdr` driving engine sessions
(the sampler over engine-like sessions equals the ONNX Runtime one)."""

from __future__ import annotations

import json

import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.core.errors import HdmDeployError, ShapeOutOfProfileError
from hdm_deploy.tensorrt.builder import artifact_graphs, make_pin_fp32, read_onnx_facts, resolve_profile
from hdm_deploy.tensorrt.profiles import compute_tensor_profile
from hdm_deploy.tensorrt.trtexec import trtexec_plans

cli = CliRunner()


def _meta(path):
    return {p.key: p.value for p in onnx.load(path, load_external_data=False).metadata_props}


def test_graphs_name_their_axes_and_carry_the_profile(tiny_export):
    unet, cond = tiny_export.onnx, tiny_export.onnx.with_name("diffhdr.cond.onnx")
    dims = {
        v.name: [d.dim_param or d.dim_value for d in v.type.tensor_type.shape.dim]
        for path in (unet, cond)
        for v in [*onnx.load(path, load_external_data=False).graph.input]
    }
    assert dims["x_t"] == ["batch", 3, "patch", "patch"] and dims["t"] == [1]
    assert dims["feature"][0] == "batch" and dims["cond"] == ["batch", 18, "patch", "patch"]
    meta = _meta(unet)
    assert meta["companion_graphs"] == "diffhdr.cond.onnx"
    assert json.loads(meta["profile_axes"]) == {"batch": [1, 8, 8], "patch": [512, 512, 512]}
    assert "companion_graphs" not in _meta(cond) and "profile_axes" in _meta(cond)
    profile = resolve_profile(read_onnx_facts(unet), axes=["patch=64:128:256"])
    assert profile.inputs["feature"][2][1:] == (8, 256, 256) and profile.inputs["t"] == ((1,),) * 3


def test_trtexec_builds_both_engines(tiny_export):
    plans = trtexec_plans(tiny_export.onnx, "10.13", axes=["batch=1:4:8", "patch=256"])
    unet, cond = (" ".join(p.args) for p in plans)
    engine = tiny_export.folder / "diffhdr.engine"
    assert f"--saveEngine={engine}" in unet
    assert "--minShapes=x_t:1x3x256x256,feature:1x8x256x256,t:1" in unet
    assert "--optShapes=x_t:4x3x256x256,feature:4x8x256x256,t:1" in unet
    assert f"--saveEngine={engine.with_name('diffhdr.cond.engine')}" in cond
    assert "--maxShapes=cond:8x18x256x256" in cond
    result = cli.invoke(app, ["trtexec-args", str(tiny_export.onnx), "--trt", "10.13"])
    assert result.exit_code == 0, result.output
    assert sum(ln.startswith("trtexec --onnx=") for ln in result.stdout.splitlines()) == 2


@pytest.fixture(scope="module")
def fp16_graphs(tiny_export, tmp_path_factory):
    """The tiny export under the FP16 policy (what `export --precision fp16` writes)."""
    from hdm_deploy.families.diffhdr.export import to_fp16
    from hdm_deploy.graph import onnx_io

    folder = tmp_path_factory.mktemp("diffhdr_fp16")
    unet, cond = to_fp16(
        onnx.load(tiny_export.onnx), onnx.load(tiny_export.onnx.with_name("diffhdr.cond.onnx"))
    )
    for proto in (unet, cond):  # the cond graph keeps its own metadata (no companion)
        onnx_io.set_metadata(proto, {"precision": "fp16"})
    onnx.save(unet, folder / "diffhdr.onnx")
    onnx.save(cond, folder / "diffhdr.cond.onnx")
    return folder / "diffhdr.onnx"


def test_fp16_islands_reach_tensorrt(fp16_graphs):
    """Strongly typed: the graph's casts carry the islands; weakly typed: every island node is pinned
    (trtexec --layerPrecisions, build-engine's PostprocessNetwork step) — as on the HDM path."""
    strong = trtexec_plans(fp16_graphs, "10.13")
    assert all("--stronglyTyped" in p.args and "--fp16" not in p.args for p in strong)
    weak = trtexec_plans(fp16_graphs, "10.13", strongly_typed=False)
    unet_args = weak[0].args
    assert "--fp16" in unet_args and "--precisionConstraints=obey" in unet_args
    model = onnx.load(fp16_graphs, load_external_data=False)
    ops = {n.name: n.op_type for n in model.graph.node}
    pinned = {ops[n] for n in weak[0].pinned_layers}
    assert {"Sin", "Cos", "Softmax", "InstanceNormalization"} <= pinned
    assert weak[1].pinned_layers == []  # AHDR has no islands

    # build-engine's pinning step on a fake parsed network with the graph's node names as layers
    facts = read_onnx_facts(fp16_graphs)
    assert facts.fp32_node_names and facts.precision == "fp16"

    class Out:
        def __init__(self, dtype):
            self.dtype = dtype

    class Layer:
        def __init__(self, name, dtype):
            self.name, self.metadata, self.num_outputs = name, None, 1
            self._out, self.precision, self.types = Out(dtype), None, {}

        def get_output(self, j):
            return self._out

        def set_output_type(self, j, t):
            self.types[j] = t

    layers = [Layer(n, "HALF") for n in ops] + [Layer("shape_layer", "INT64")]
    net = type("Net", (), {"num_layers": len(layers), "get_layer": lambda self, i: layers[i]})()
    got: list[str] = []
    make_pin_fp32(facts.fp32_node_names, "FLOAT", ("FLOAT", "HALF"), got.extend)(net)
    assert set(weak[0].pinned_layers) <= set(got)
    assert all(layer.precision == "FLOAT" for layer in layers if layer.name in got)


def test_build_engine_refuses_frame_options_and_missing_companions(tiny_export, tmp_path):
    result = cli.invoke(app, ["build-engine", str(tiny_export.onnx), "--opt", "1x512x512"])
    assert result.exit_code == 2 and "give --axis NAME=MIN:OPT:MAX" in result.output
    result = cli.invoke(app, ["build-engine", str(tiny_export.onnx), "--axis", "side=64"])
    assert result.exit_code == 2 and "--axis side is not an axis of these graphs" in result.output
    lonely = tmp_path / "diffhdr.onnx"
    lonely.write_bytes(tiny_export.onnx.read_bytes())
    with pytest.raises(HdmDeployError, match=r"diffhdr\.cond\.onnx, which is not beside it"):
        artifact_graphs(lonely, lonely.with_suffix(".engine"), _meta(lonely))


def test_doctor_reports_both_graphs(tiny_export):
    result = cli.invoke(app, ["doctor", str(tiny_export.onnx), "--trt", "10.13", "--trt", "8.6"])
    assert "diffhdr.onnx: TensorRT ONNX parser check" in result.stdout
    assert "diffhdr.cond.onnx (companion graph of diffhdr.onnx)" in result.stdout
    assert result.stdout.count("TensorRT 10.13") == 2 and result.stdout.count("TensorRT 8.6") == 2


def test_export_success_line_says_what_was_written(tiny_export, tmp_path, monkeypatch):
    import hdm_deploy.export.exporter as exporter

    seen = {}
    monkeypatch.setattr(exporter, "export_onnx", lambda *a, **k: seen.update(k) or tiny_export.result)
    result = cli.invoke(app, ["export", str(tiny_export.ckpt), "-o", str(tmp_path / "d.onnx"), "--ema"])
    assert result.exit_code == 0, result.output
    assert seen["ema"] is True
    assert "wrote" in result.stdout and "diffhdr.cond.onnx (AHDR" in result.stdout.replace("\n", " ")
    assert "io float" not in result.stdout and "deform none" not in result.stdout
    line = tiny_export.result.summary()
    assert "diffhdr.onnx (UNet x_t, feature, t → eps" in line and "diffhdr.cond.onnx (AHDR" in line
    assert "fp32, opset 19, raw weights + diffhdr.golden.npz" in line
    assert f"{tiny_export.result.measured['psnr_db']:.1f} dB" in line and "io float" not in line


def test_export_ema_is_a_family_option(tiny_export, tmp_path):
    from hdm_deploy.export.exporter import _load_model

    _family, model, source = _load_model(tiny_export.ckpt, False, None, "ema")
    state = {k: v for k, v in model.unet.state_dict().items()}
    raw = tiny_export.model.unet.state_dict()
    assert source["weights"] == "ema" and any(not (state[k] == raw[k]).all() for k in raw)
    # HDM checkpoints (the bundled sample) have no EMA weights: one line, exit 2, nothing written
    result = cli.invoke(app, ["export", "--ema", "-o", str(tmp_path / "h.onnx"), "--no-verify"])
    assert result.exit_code == 2, result.output
    assert "--ema: HDM" in result.output and "have no EMA weights" in result.output
    assert not (tmp_path / "h.onnx").exists()


# ---- hdr over engines ------------------------------------------------------------------------------------


class _EngineLike:
    """An engine-like session (``run(feeds) -> dict`` casting to its own input types, as TensorRTGraph)
    over ONNX Runtime, with the per-axis profile TensorRT would enforce."""

    def __init__(self, path, axes):
        import onnxruntime as ort

        from hdm_deploy.tensorrt.graph_runner import prepare_feeds
        from hdm_deploy.tensorrt.runner import TensorInfo

        self.session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        self.inputs = [
            TensorInfo(i.name, True, np.dtype(np.float16 if "16" in i.type else np.float32))
            for i in self.session.get_inputs()
        ]
        self._prepare = prepare_feeds
        facts = read_onnx_facts(path)
        self.profile = compute_tensor_profile(facts.inputs, facts.metadata, axes, strict=False)
        self.calls = 0

    def check(self, shapes):
        self.profile.check(shapes)

    def run(self, feeds):
        x = self._prepare(feeds, self.inputs)
        self.profile.check({k: v.shape for k, v in x.items()})
        self.calls += 1
        return dict(zip([o.name for o in self.session.get_outputs()], self.session.run(None, x), strict=True))


def test_engine_sessions_drive_the_same_sampler(tiny_export):
    from hdm_deploy.cli.hdr import check_engine_batch
    from hdm_deploy.families.diffhdr.parity import load_golden
    from hdm_deploy.families.diffhdr.sampler import EngineGraphs, OrtGraphs, sample

    case = load_golden(tiny_export.folder / "diffhdr.golden.npz")
    patch, stride, steps = (int(v) for v in case["grid"])
    ldrs = [case[f"ldr_{n}"] for n in ("short", "medium", "long")]
    cond_path = tiny_export.onnx.with_name("diffhdr.cond.onnx")
    axes = ["batch=1:3:3", f"patch={patch}"]
    unet, cond = _EngineLike(tiny_export.onnx, axes), _EngineLike(cond_path, axes)
    check_engine_batch(unet, cond, 3, patch)
    with pytest.raises(ShapeOutOfProfileError):
        check_engine_batch(unet, cond, 4, patch)  # --batch 4 over a max-3 engine: refused before any work
    with pytest.raises(ShapeOutOfProfileError):
        check_engine_batch(unet, cond, 3, patch * 2)
    kwargs = dict(steps=steps, patch=patch, stride=stride, batch=3)
    by_engine, _ = sample(
        ldrs, case["exposures"], case["noise"], **_graphs(EngineGraphs(unet, cond)), **kwargs
    )
    by_ort, _ = sample(
        ldrs, case["exposures"], case["noise"], **_graphs(OrtGraphs(tiny_export.onnx, cond_path)), **kwargs
    )
    assert unet.calls > 0 and cond.calls > 0
    np.testing.assert_array_equal(by_engine, by_ort)


def _graphs(g):
    return {"feature_fn": g.feature, "eps_fn": g.eps}


def test_hdr_with_engines_fails_in_one_line_without_tensorrt(tiny_export, tmp_path):
    import importlib.util

    from hdm_deploy.cli.hdr import condition_engine_of

    engine = tmp_path / "diffhdr.engine"
    engine.write_bytes(b"plan")
    with pytest.raises(HdmDeployError, match=r"condition engine .*diffhdr\.cond\.engine is missing"):
        condition_engine_of(engine, {"family": "diffhdr"})
    with pytest.raises(HdmDeployError, match="is a hdm engine"):
        condition_engine_of(engine, {"family": "hdm"})
    (tmp_path / "x.cond.engine").write_bytes(b"plan")
    assert condition_engine_of(engine, {"companion_engines": "x.cond.engine"}).name == "x.cond.engine"
    if importlib.util.find_spec("tensorrt") is not None:
        pytest.skip("TensorRT is installed: hdr would go on to load the engine")
    pngs = [tiny_export.folder / f"{n}.png" for n in ("short", "medium", "long")]
    if not all(p.is_file() for p in pngs):
        import cv2

        golden = np.load(tiny_export.folder / "diffhdr.golden.npz")
        for n, p in zip(("short", "medium", "long"), pngs, strict=True):
            cv2.imwrite(str(p), golden[f"ldr_{n}"][:, :, ::-1])
    args = [
        "hdr",
        *map(str, pngs),
        "--exposures",
        "0,2,4",
        "--model",
        str(engine),
        "-o",
        str(tmp_path / "o.hdr"),
    ]
    result = cli.invoke(app, args)
    assert result.exit_code == 3, result.output
    errors = [ln for ln in result.output.splitlines() if ln.startswith("error:")]
    assert len(errors) == 1 and "TensorRT's Python package is not installed" in errors[0]
    assert not (tmp_path / "o.hdr").exists()
