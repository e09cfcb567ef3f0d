"""The exported frame-path graph: contract (I/O, opset, IR, checker, metadata), ORT parity with the
PyTorch pipeline at any size and batch, flavours, golden bundle, inlining, errors.

Small model + stand-in DCP masks (see ``_export_helpers``); the published width with the real DCP
function is in ``test_export_acceptance.py``.
"""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from _export_helpers import photo_frames, small_export, small_model, tmp_dir, torch_reference
from hdm_deploy.core.errors import ExportError
from hdm_deploy.core.fs import sha256_file
from hdm_deploy.graph.flavours import convert_deform, inline_functions
from hdm_deploy.graph.golden import golden_path_for, load_golden
from hdm_deploy.graph.metadata import read_metadata
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
from hdm_deploy.runtime.parity import compare

pytestmark = pytest.mark.slow  # one ~15 s export per io kind, cached for the module


def _dims(value_info):
    return [d.dim_param or d.dim_value for d in value_info.type.tensor_type.shape.dim]


def test_uint8_graph_contract():
    res = small_export("uint8")
    model = onnx.load(res.path)
    onnx.checker.check_model(model, full_check=True)
    assert model.ir_version <= 13
    assert {imp.domain: imp.version for imp in model.opset_import}[""] == 19
    assert [i.name for i in model.graph.input] == ["image"]
    assert [o.name for o in model.graph.output] == ["enhanced", "masks"]
    image, enhanced, masks = model.graph.input[0], model.graph.output[0], model.graph.output[1]
    assert image.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert enhanced.type.tensor_type.elem_type == onnx.TensorProto.UINT8
    assert masks.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(image) == ["N", "H", "W", 3]
    assert _dims(enhanced) == ["N", "H", "W", 3]
    assert _dims(masks) == ["N", 5, 1, "ceil(H/4)", "ceil(W/4)"]
    ops = {(n.domain, n.op_type) for n in model.graph.node}
    assert ("hdm_deploy.dcp", "DCPMasks") in ops and ("", "DeformConv") in ops
    assert [(f.domain, f.name) for f in model.functions] == [("hdm_deploy.dcp", "DCPMasks")]
    # region conv: per-sample matmuls, no grouped conv with groups = batch (5 = the kernel head's regions)
    groups = {
        onnx.helper.get_attribute_value(a)
        for n in model.graph.node
        if n.op_type == "Conv"
        for a in n.attribute
        if a.name == "group"
    }
    assert groups <= {1, 5}


def test_float_graph_contract():
    model = onnx.load(small_export("float").path)
    image, enhanced = model.graph.input[0], model.graph.output[0]
    assert image.type.tensor_type.elem_type == onnx.TensorProto.FLOAT
    assert _dims(image) == ["N", 3, "H", "W"] and _dims(enhanced) == ["N", 3, "H", "W"]


def test_metadata():
    meta = read_metadata(small_export("uint8").path)
    for key in (
        "model",
        "task",
        "normalization",
        "io",
        "deform",
        "precision",
        "opset",
        "checkpoint_sha256",
        "package_version",
        "functions_inlined",
        "dcp",
        "golden",
    ):
        assert key in meta, key
    assert meta["io"] == "uint8" and meta["deform"] == "onnx" and meta["precision"] == "fp32"
    assert meta["opset"] == "19" and meta["functions_inlined"] == "false"
    assert meta["golden"] == "small_uint8_onnx.golden.npz"
    assert '"mean": [0.64, 0.6, 0.58]' in meta["normalization"]
    assert (
        meta["max_pixels"] == str(7680 * 4320) and meta["dcp_sums"] == "cumsum"
    )  # default --max-size 7680x4320


def test_dcp_sums_default_follows_the_target():
    from hdm_deploy.families.hdm.export import default_dcp_sums

    assert default_dcp_sums("onnx", 19) == "cumsum"  # ONNX Runtime: CumSum is fastest
    assert default_dcp_sums("plugin", 19) == "doubling"  # TensorRT imports CumSum as a loop
    assert default_dcp_sums("decompose", 17) == "doubling"  # opset 17 = TensorRT 8.x


def test_runner_refuses_frames_beyond_max_pixels(tmp_path):
    from _dcp_standin import STANDIN
    from hdm_deploy.core.errors import InputImageError
    from hdm_deploy.export.exporter import export_onnx

    res = export_onnx(
        small_model(), tmp_path / "m.onnx", dcp=STANDIN, golden=False, verify=False, max_pixels=48 * 48
    )
    assert read_metadata(res.path)["max_pixels"] == str(48 * 48)
    with OnnxRuntimeRunner(res.path) as runner:
        assert runner(photo_frames(48, 48)).image.shape == (1, 48, 48, 3)
        with pytest.raises(InputImageError, match="--max-size"):
            runner(photo_frames(49, 48))


SIZES = [(4, 4), (7, 5), (42, 37), (64, 48), (81, 30)]


@pytest.mark.parametrize("size", SIZES, ids=[f"{w}x{h}" for w, h in SIZES])
def test_ort_matches_torch_pipeline_at_any_size(size):
    frames = photo_frames(*size, batch=2)
    ref = torch_reference(frames)
    with (
        OnnxRuntimeRunner(small_export("uint8").path) as r8,
        OnnxRuntimeRunner(small_export("float").path) as rf,
    ):
        p8, pf = r8(frames), rf(frames)
    assert p8.image.shape == frames.shape and p8.image.dtype == np.uint8
    h, w = frames.shape[1:3]
    assert p8.extras["masks"].shape == (2, 5, 1, -(-h // 4), -(-w // 4))
    np.testing.assert_array_equal(p8.extras["masks"], ref.extras["masks"])
    res8 = compare("u8", p8, ref)
    assert res8.identical >= 99.9, res8
    resf = compare("float", pf, ref)
    assert resf.max_abs <= 2e-4 and resf.identical >= 99.9, resf
    np.testing.assert_array_equal(pf.extras["masks"], ref.extras["masks"])


def test_one_file_any_batch_and_samples_are_independent():
    frames = photo_frames(40, 28, batch=3)
    with OnnxRuntimeRunner(small_export("float").path) as runner:
        batch = runner(frames)
        singles = [runner(frames[i : i + 1]) for i in range(3)]
    for i, single in enumerate(singles):
        np.testing.assert_allclose(batch.image_float[i], single.image_float[0], atol=1e-6)
        np.testing.assert_array_equal(batch.extras["masks"][i], single.extras["masks"][0])


def test_flavours_agree_on_the_exported_graph():
    path = small_export("float").path
    base = onnx.load(path)
    frames = photo_frames(50, 38, batch=2)
    with OnnxRuntimeRunner(path) as r:
        ref = r(frames)
    variants = {
        "plugin": convert_deform(base, "plugin"),
        "decompose": convert_deform(base, "decompose"),
        "decompose-inlined": inline_functions(convert_deform(base, "decompose")),
    }
    for label, model in variants.items():
        out = tmp_dir() / f"flavour_{label}.onnx"
        onnx.save(model, out)
        assert read_metadata(out)["deform"] == label.split("-")[0]
        with OnnxRuntimeRunner(out) as r:
            pred = r(frames)
        res = compare(label, pred, ref)
        assert res.max_abs <= 2e-4 and res.identical >= 99.9 and res.extras_agreement["masks"] == 100.0, (
            label,
            res,
        )


def test_export_decompose_inlined_has_standard_ops_only():
    res = small_export("uint8", "decompose", inline=True, golden=True)
    model = onnx.load(res.path)
    assert not model.functions
    assert {n.domain for n in model.graph.node} <= {""}
    assert "DeformConv" not in {n.op_type for n in model.graph.node}
    meta = read_metadata(res.path)
    assert meta["deform"] == "decompose" and meta["functions_inlined"] == "true"
    assert res.verification is not None and res.verification.passed


def test_export_plugin_flavour_runs_in_ort_via_rewrite():
    res = small_export("uint8", "plugin")
    model = onnx.load(res.path)
    assert ("hdm_deploy", "HdmDeformConv") in {(n.domain, n.op_type) for n in model.graph.node}
    assert res.verification is not None and res.verification.passed
    with OnnxRuntimeRunner(res.path) as r:
        assert r.describe()["deform_rewrite"]


def test_golden_bundle_beside_the_model():
    res = small_export("float")
    assert res.golden_path == golden_path_for(res.path) and res.golden_path.is_file()
    bundle = load_golden(res.golden_path)
    assert len(bundle.cases) == 7
    sizes = {(c.input.shape[2], c.input.shape[1]) for c in bundle.cases}
    assert any(w % 4 or h % 4 for w, h in sizes), "a size not divisible by 4"
    assert any(c.input.shape[0] == 2 for c in bundle.cases), "a batch of two"
    for case in bundle.cases:
        n, h, w, _ = case.input.shape
        assert case.enhanced.shape == case.input.shape and case.enhanced.dtype == np.uint8
        assert case.enhanced_float.shape == (n, 3, h, w)
        assert case.extras["masks"].shape == (n, 5, 1, -(-h // 4), -(-w // 4))
    m = bundle.manifest
    assert m["tolerances"]["max_abs"] == 2e-4 and m["tolerances"]["identical_min"] == 99.9
    assert m["dcp"] == "test-standin" and "photos" in m and m["onnx_model"] == res.path.name
    assert res.verification.passed


def test_export_from_checkpoint_records_its_hash(tmp_path):
    from _dcp_standin import STANDIN
    from hdm_deploy.export.exporter import build_onnx
    from hdm_deploy.families.hdm.checkpoint import save_checkpoint

    ckpt = save_checkpoint(small_model(), tmp_path / "small.pk")
    from hdm_deploy.export.exporter import _load_model

    _family, model, source = _load_model(ckpt, trust_checkpoint=False)
    assert source["checkpoint_sha256"] == sha256_file(ckpt)
    proto = build_onnx(model, dcp=STANDIN, source=source, io="float")
    meta = {p.key: p.value for p in proto.metadata_props}
    assert meta["checkpoint"] == "small.pk" and meta["checkpoint_sha256"] == sha256_file(ckpt)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"deform": "cuda"}, "flavour"),
        ({"io": "rgb"}, "io"),
        ({"opset": 18}, "opset"),
        ({"precision": "int8"}, "precision"),
    ],
)
def test_bad_options_are_clear_errors(kwargs, match):
    from hdm_deploy.export.exporter import build_onnx

    with pytest.raises(ExportError, match=match):
        build_onnx(small_model(), **kwargs)


def test_opset_17_for_tensorrt_8_5_with_decompose_or_plugin():
    """TensorRT 8.5 (JetPack 5.1) parses opset ≤ 17 and no local functions: decompose (+ inline) at 17,
    or the plugin op at 17 (which ORT runs through the decomposition)."""
    from _dcp_standin import STANDIN
    from hdm_deploy.export.exporter import export_onnx

    res = export_onnx(
        small_model(), tmp_dir() / "o17.onnx", opset=17, deform="decompose", dcp=STANDIN, io="float"
    )
    assert res.verification.passed
    model = onnx.load(res.path)
    frames = photo_frames(45, 33, batch=2)
    ref = torch_reference(frames)
    variants = {"inlined": inline_functions(model), "plugin": convert_deform(model, "plugin")}
    assert not variants["inlined"].functions
    for label, m in variants.items():
        onnx.checker.check_model(m, full_check=True)
        assert {imp.domain: imp.version for imp in m.opset_import}[""] == 17 and m.ir_version == 8
        path = tmp_dir() / f"o17_{label}.onnx"
        onnx.save(m, path)
        with OnnxRuntimeRunner(path) as runner:
            got = compare(label, runner(frames), ref)
        assert got.max_abs <= 2e-4 and got.extras_agreement["masks"] == 100.0, (label, got)
    with pytest.raises(ExportError, match="opset 19"):
        convert_deform(model, "onnx")


def test_fp16_plugin_at_opset_17_is_verified_in_onnx_runtime(tmp_path):
    """The JetPack 5.1 graph (opset 17, plugin op, FP16): ONNX Runtime runs the plugin through the FP32
    decomposition, with casts around each call, so the export's own check runs (no "not verified")."""
    from _dcp_standin import STANDIN
    from hdm_deploy.export.exporter import export_onnx

    res = export_onnx(
        small_model(), tmp_path / "j51.onnx", opset=17, deform="plugin", precision="fp16", dcp=STANDIN
    )
    assert res.warnings == [] and res.verification is not None and res.verification.passed
    with OnnxRuntimeRunner(res.path) as runner:
        assert runner.flavour == "plugin" and runner.rewrite_to == "decompose"
        pred = runner(photo_frames(36, 28))
    assert pred.image.shape == (1, 28, 36, 3) and pred.extras["masks"].dtype == np.float32
