"""Engine-build decisions without TensorRT: profiles, flags per version, sidecar, plugin discovery."""

from __future__ import annotations

import json

import onnx
import pytest

from _engine_helpers import make_sidecar
from hdm_deploy.core.errors import (
    EngineMismatchError,
    HdmDeployError,
    InputImageError,
    ModelFormatError,
    PluginBuildError,
    ShapeOutOfProfileError,
    TensorRTUnavailableError,
)
from hdm_deploy.core.sizes import parse_nhw
from hdm_deploy.tensorrt.flags import (
    BuildConfigError,
    decide_flags,
    layer_matches,
    layers_to_pin,
    parse_version,
    workspace_bytes,
)
from hdm_deploy.tensorrt.plugins import (
    ENV_VAR,
    LIB_NAME,
    find_plugin_library,
    model_needs_plugin,
)
from hdm_deploy.tensorrt.profiles import Profile, check_in_profile, compute_profile
from hdm_deploy.tensorrt.sidecar import (
    RuntimeFacts,
    check_sidecar,
    raise_on_mismatch,
    read_sidecar,
    sidecar_path,
    write_sidecar,
)

# ---- profiles --------------------------------------------------------------------------------------


def test_parse_nhw():
    assert parse_nhw("1x720x1280") == (1, 720, 1280)
    assert parse_nhw("720×1280") == (1, 720, 1280)
    assert parse_nhw([2, 64, 64]) == (2, 64, 64)
    for bad in ("720", "axb", "0x4x4", "1x2x3x4"):
        with pytest.raises(ValueError):
            parse_nhw(bad)


def test_default_profile_uint8_nhwc():
    p = compute_profile({"io": "uint8"}, "image", [None, None, None, 3])
    assert p.layout == "NHWC"
    assert p.shapes() == ((1, 64, 64, 3), (1, 720, 1280, 3), (1, 1080, 1920, 3))


def test_profile_float_io_and_metadata_and_overrides():
    p = compute_profile({"io": "float", "profile_max": "2x1080x1920"}, "image", ["N", 3, "H", "W"])
    assert p.layout == "NCHW" and p.max == (2, 1080, 1920) and p.tensor_shape(p.max) == (2, 3, 1080, 1920)
    # user's --max below the default opt pulls opt down; --min above default pulls opt up
    q = compute_profile({"io": "uint8"}, max_shape="1x480x640")
    assert q.opt == (1, 480, 640) and q.min == (1, 64, 64)
    r = compute_profile({"io": "uint8"}, min_shape="4x800x800")
    assert r.opt == (4, 800, 1280) and r.max == (4, 1080, 1920)
    # static ONNX dims pin the axis
    s = compute_profile({}, "image", [1, 256, 256, 3])
    assert s.min == s.opt == s.max == (1, 256, 256)


def test_profile_validation_and_roundtrip():
    with pytest.raises(ValueError, match="min ≤ opt ≤ max"):
        Profile("image", "NHWC", (1, 64, 64), (1, 32, 32), (1, 128, 128))
    # the smallest side comes from the model's frame contract (metadata min_side: HDM 4)
    with pytest.raises(ValueError, match="≥ 4 for this model"):
        compute_profile({"io": "uint8", "min_side": "4"}, min_shape="1x2x64")
    p = compute_profile({"io": "uint8"})
    assert Profile.from_dict(json.loads(json.dumps(p.as_dict()))) == p


def test_shape_outside_profile_error():
    p = Profile("image", "NHWC", (1, 64, 64), (1, 720, 1280), (2, 1080, 1920))
    check_in_profile((2, 1080, 1920, 3), p)
    check_in_profile((1, 64, 64, 3), p)
    with pytest.raises(ShapeOutOfProfileError, match=r"height 2160 not in \[64, 1080\]") as exc:
        check_in_profile((1, 2160, 3840, 3), p)
    assert "--max 2x2160x3840" in exc.value.hint
    with pytest.raises(ShapeOutOfProfileError, match="batch 3"):
        check_in_profile((3, 100, 100, 3), p)
    q = Profile("image", "NCHW", (1, 64, 64), (1, 64, 64), (1, 64, 64))
    with pytest.raises(ShapeOutOfProfileError, match="width 65"):
        check_in_profile((1, 3, 64, 65), q)


# ---- flags -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("version", "network", "sets", "strong"),
    [
        ("8.5.2.2", ("EXPLICIT_BATCH",), ("FP16", "OBEY_PRECISION_CONSTRAINTS"), False),
        ("8.6.2", ("EXPLICIT_BATCH",), ("FP16", "OBEY_PRECISION_CONSTRAINTS"), False),
        ("10.3.0.30", ("STRONGLY_TYPED",), (), True),
        ("10.13.3.9", ("STRONGLY_TYPED",), (), True),
        ("11.1.0", (), (), True),
    ],
)
def test_flags_per_version_fp16(version, network, sets, strong):
    f = decide_flags(version, "fp16", fp16=True)
    assert f.network_flags == network and f.set_flags == sets and f.strongly_typed is strong
    assert f.clear_flags == ("TF32",)  # always: DCP needs true FP32
    assert f.pin_fp32_layers is (not strong)


def test_flags_weak_typing_on_trt10_and_errors():
    f = decide_flags("10.3", "fp16", fp16=True, strongly_typed=False)
    assert (
        f.network_flags == () and f.set_flags == ("FP16", "OBEY_PRECISION_CONSTRAINTS") and f.pin_fp32_layers
    )
    assert decide_flags("8.5", "fp32", fp16=False).set_flags == ()
    assert decide_flags("10.3", "fp32", fp16=False).clear_flags == ("TF32",)
    with pytest.raises(BuildConfigError, match="--precision fp16"):
        decide_flags("10.3", "fp32", fp16=True)
    with pytest.raises(BuildConfigError, match="TensorRT ≥ 10"):
        decide_flags("8.6", "fp16", fp16=True, strongly_typed=True)
    with pytest.raises(BuildConfigError, match="no weakly typed"):
        decide_flags("11.0", "fp16", fp16=True, strongly_typed=False)
    with pytest.raises(TensorRTUnavailableError):
        decide_flags("8.4.3", "fp32", fp16=False)
    assert parse_version("10.13.3.9") == (10, 13, 3, 9)
    assert workspace_bytes(None) is None and workspace_bytes(1.5) == 3 << 29
    with pytest.raises(BuildConfigError):
        workspace_bytes(0)


def test_layer_matching_for_pinning():
    names = ["node_deform", "dcp_min"]
    assert layer_matches("node_deform", names)
    assert layer_matches("node_deform_1", names)  # parser's uniquifying suffix
    assert layer_matches("dcp_min__1", names)  # ONNX inliner's suffix
    assert not layer_matches("node_deformer", names)
    assert layer_matches("ONNXTRT_castHelper_7", names, metadata="[ONNX Layer: node_deform]")
    pinned = layers_to_pin(
        [
            ("node_deform", None, ["FLOAT"]),
            ("dcp_min__1", None, ["HALF"]),
            ("dcp_shape__1", None, ["INT64"]),
            ("node_conv0", None, ["HALF"]),
        ],
        [*names, "dcp_shape"],
    )
    assert pinned == ["node_deform", "dcp_min__1"]


# ---- sidecar ---------------------------------------------------------------------------------------


def test_sidecar_roundtrip(tmp_path):
    engine = tmp_path / "model.engine"
    engine.write_bytes(b"x")
    path = write_sidecar(engine, make_sidecar(plugin_sha256="cd" * 32))
    assert path == sidecar_path(engine) == tmp_path / "model.engine.json"
    back = read_sidecar(engine)
    assert back == make_sidecar(plugin_sha256="cd" * 32)
    assert back.profile().opt == (1, 720, 1280)
    assert not list(tmp_path.glob(".*"))  # atomic: no temp files left


def test_sidecar_missing_or_broken(tmp_path):
    engine = tmp_path / "m.engine"
    assert read_sidecar(engine, required=False) is None
    with pytest.raises(ModelFormatError, match="no sidecar"):
        read_sidecar(engine)
    sidecar_path(engine).write_text('{"trt_version": "10.3"}')
    with pytest.raises(ModelFormatError, match="lacks"):
        read_sidecar(engine)
    sidecar_path(engine).write_text("{not json")
    with pytest.raises(ModelFormatError, match="unreadable"):
        read_sidecar(engine)


def test_sidecar_mismatch_detected():
    s = make_sidecar(plugin_sha256="cd" * 32)
    assert check_sidecar(s, RuntimeFacts("10.3.0.30", "Orin", "8.7", "cd" * 32)) == []
    warn = check_sidecar(s, RuntimeFacts("10.3.0.26", "Orin NX", "8.7"))
    assert [m.what for m in warn] == ["TensorRT build", "GPU"] and not any(m.fatal for m in warn)
    assert raise_on_mismatch("m.engine", warn) == warn
    fatal = check_sidecar(s, RuntimeFacts("10.13.3.9", "RTX 4090", "8.9", "ef" * 32))
    assert {m.what for m in fatal if m.fatal} == {
        "TensorRT version",
        "GPU compute capability",
        "plugin library sha256",
    }
    with pytest.raises(
        EngineMismatchError, match=r"TensorRT version: built for 10.3.0.30, running 10.13.3.9"
    ) as exc:
        raise_on_mismatch("m.engine", fatal)
    assert "build-engine" in exc.value.hint


# ---- plugin discovery ------------------------------------------------------------------------------


def test_plugin_candidates_order(tmp_path):
    from hdm_deploy.plugins import plugin_library_candidates

    paths = plugin_library_candidates([tmp_path])
    assert paths[0] == tmp_path / LIB_NAME and all(p.name == LIB_NAME for p in paths)
    assert any("plugins" in p.parts for p in paths[1:]) and any("build" in p.parts for p in paths)


def test_find_plugin_library(tmp_path, monkeypatch):
    lib = tmp_path / LIB_NAME
    with pytest.raises(PluginBuildError, match="not found"):
        find_plugin_library(lib)
    lib.write_bytes(b"\x7fELF")
    assert find_plugin_library(lib) == lib
    monkeypatch.setenv(ENV_VAR, str(lib))
    assert find_plugin_library() == lib  # the variable, through the plugin package's finder
    monkeypatch.setenv(ENV_VAR, str(tmp_path / "absent.so"))
    for required in (False, True):  # set on purpose: an error, never a silent fallback
        with pytest.raises(PluginBuildError, match=ENV_VAR):
            find_plugin_library(required=required)
    monkeypatch.delenv(ENV_VAR)
    monkeypatch.setattr(
        "hdm_deploy.plugins._build.plugin_library_candidates", lambda *a, **k: [tmp_path / "absent.so"]
    )
    assert find_plugin_library(required=False) is None
    with pytest.raises(PluginBuildError, match="build-plugin"):
        find_plugin_library()


def test_find_plugin_library_prefers_plugin_package(tmp_path, monkeypatch):
    import hdm_deploy.plugins as plugins_pkg

    lib = tmp_path / LIB_NAME
    lib.write_bytes(b"\x7fELF")
    monkeypatch.setattr(plugins_pkg, "find_plugin_library", lambda *a, **k: lib, raising=False)
    assert find_plugin_library() == lib


def test_load_plugin_library_error(tmp_path):
    from hdm_deploy.tensorrt.plugins import load_plugin_library

    bad = tmp_path / LIB_NAME
    bad.write_bytes(b"not an ELF")
    with pytest.raises(PluginBuildError, match="cannot load"):
        load_plugin_library(bad)


def test_model_needs_plugin():
    assert model_needs_plugin({("", "Conv"), ("hdm_deploy", "HdmDeformConv")})
    assert not model_needs_plugin({("", "DeformConv")})


def test_read_onnx_facts(tmp_path):
    import onnx

    from _onnx_graphs import DCP_FUNCTION, hdm_like
    from hdm_deploy.graph.precision import apply_fp16_policy
    from hdm_deploy.tensorrt.builder import read_onnx_facts

    path = tmp_path / "m.onnx"
    onnx.save(apply_fp16_policy(hdm_like("plugin"), fp32_functions=[DCP_FUNCTION]), path)
    facts = read_onnx_facts(path)
    assert facts.input_name == "image" and facts.input_dims == ["N", "H", "W", 3]
    assert facts.precision == "fp16" and facts.has_functions
    assert ("hdm_deploy", "HdmDeformConv") in facts.op_ids and (
        "",
        "ReduceMin",
    ) in facts.op_ids  # function body too
    assert "node_DCPMasks_0" in facts.fp32_node_names and "dcp_min" in facts.fp32_node_names
    p = compute_profile(facts.metadata, facts.input_name, facts.input_dims)
    assert p.layout == "NHWC"
    with pytest.raises(ModelFormatError):
        read_onnx_facts(tmp_path / "absent.onnx")


def test_profile_max_must_fit_the_dcp_topk():
    from hdm_deploy.tensorrt.profiles import compute_profile

    meta = {"io": "uint8", "max_pixels": str(1920 * 1080)}
    assert compute_profile(meta, max_shape="1x1080x1920").max == (1, 1080, 1920)
    with pytest.raises(InputImageError, match="re-export with a larger"):
        compute_profile(meta, max_shape="1x1081x1920")  # padded to 1084 rows


def test_build_engine_reports_bad_profile_before_needing_tensorrt(tmp_path):
    from _onnx_graphs import hdm_like
    from hdm_deploy.core.errors import HdmDeployError
    from hdm_deploy.tensorrt.builder import build_engine

    path = tmp_path / "m.onnx"
    model = hdm_like()
    onnx.helper.set_model_props(model, {"io": "uint8", "max_pixels": "4096"})
    onnx.save(model, path)
    with pytest.raises(HdmDeployError, match="invalid optimisation profile"):
        build_engine(path, tmp_path / "m.engine", max_shape="1x128x128")


def test_sidecar_skips_facts_the_builder_could_not_find(tmp_path):
    from hdm_deploy.tensorrt.sidecar import EngineSidecar as Sidecar

    unknown = make_sidecar(gpu_name=None, compute_capability=None)
    engine = tmp_path / "model.engine"
    write_sidecar(engine, unknown)
    back = read_sidecar(engine)
    assert back == unknown and back.gpu_name is None and back.compute_capability is None
    assert check_sidecar(back, RuntimeFacts("10.3.0.30", "Orin", "8.7")) == []
    # sidecars written before the fix hold "unknown": not a mismatch either
    legacy = Sidecar.from_mapping(
        {**json.loads(unknown.to_json()), "gpu_name": "unknown", "compute_capability": "unknown"}
    )
    assert check_sidecar(legacy, RuntimeFacts("10.3.0.30", "Orin", "8.7")) == []
    # a known compute capability is still compared
    assert [m.fatal for m in check_sidecar(make_sidecar(), RuntimeFacts("10.3.0.30", "Orin", "8.9"))] == [
        True
    ]


def test_publish_engine_writes_the_sidecar_first(tmp_path, monkeypatch):
    from hdm_deploy.core import fs as _fs
    from hdm_deploy.tensorrt.sidecar import publish_engine

    engine = tmp_path / "model.engine"
    side = publish_engine(engine, b"plan", make_sidecar())
    assert (
        engine.read_bytes() == b"plan"
        and side == sidecar_path(engine)
        and read_sidecar(engine) == make_sidecar()
    )

    real = _fs.atomic_write_bytes

    def fail_on_engine(target, data):
        if str(target).endswith(".engine"):
            raise OSError("disk full")
        return real(target, data)

    monkeypatch.setattr("hdm_deploy.tensorrt.sidecar.atomic_write_bytes", fail_on_engine)
    other = tmp_path / "other.engine"
    with pytest.raises(OSError):
        publish_engine(other, b"plan", make_sidecar())
    assert not other.exists() and sidecar_path(other).is_file()  # never an engine without a sidecar


def test_doctor_refuses_a_garbage_trt_version_in_one_line():
    from rich.console import Console

    from hdm_deploy.cli.tensorrt_report import run_doctor

    with pytest.raises(HdmDeployError, match="not a TensorRT version") as info:
        run_doctor(None, ["abc"], out=Console(file=None, quiet=True))
    assert "8.5" in info.value.hint
