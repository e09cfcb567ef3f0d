"""FP16 precision policy: which nodes stay FP32, explicit casts, runs in ONNX Runtime, metadata."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from _onnx_graphs import hdm_like, random_frames
from hdm_deploy.core.errors import ExportError
from hdm_deploy.graph.precision import (
    DEFAULT_ISLANDS,
    ISLANDS,
    apply_fp16_policy,
    fp32_layer_names,
    node_scope,
    policy_report,
    select_fp32_nodes,
)

pytest.importorskip("onnxconverter_common", reason="FP16 policy needs onnxconverter-common ([fp16] extra)")


def _run(model: onnx.ModelProto, frames: np.ndarray) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, {"image": frames})


def _dtype_of_inputs(model: onnx.ModelProto, node_name: str) -> list[int]:
    inferred = onnx.shape_inference.infer_shapes(model, strict_mode=True)
    types = {
        v.name: v.type.tensor_type.elem_type for v in [*inferred.graph.value_info, *inferred.graph.input]
    }
    types |= {i.name: i.data_type for i in inferred.graph.initializer}
    node = next(n for n in inferred.graph.node if n.name == node_name)
    return [types.get(i) for i in node.input if i]


def test_node_scope_reads_dynamo_namespace():
    node = onnx.helper.make_node("Sigmoid", ["a"], ["b"])
    node.metadata_props.add(
        key="namespace",
        value=": m.HDM/drconv_phy: m.RegionConv/drconv_phy.conv_kernel.2: Sigmoid/sigmoid_3: aten.sigmoid",
    )
    assert node_scope(node) == "drconv_phy/drconv_phy.conv_kernel.2/sigmoid_3"
    assert node_scope(onnx.helper.make_node("Relu", ["a"], ["b"])) == ""


def test_default_placement_onnx_flavour():
    m16 = apply_fp16_policy(hdm_like("onnx"))
    report = policy_report(m16)
    assert report is not None and report.flavour == "onnx"
    assert report.islands["dcp"] == ["node_DCPMasks_0"]
    assert report.islands["deform_onnx"] == ["node_deform"]
    assert report.fp32_functions == ["hdm_deploy.dcp::DCPMasks"]
    # DeformConv: every float input FP32 (TensorRT's importer needs one type for all of them)
    assert set(_dtype_of_inputs(m16, "node_deform")) == {onnx.TensorProto.FLOAT}
    # the rest is FP16
    assert set(_dtype_of_inputs(m16, "node_out_conv")) == {onnx.TensorProto.FLOAT16}
    assert set(_dtype_of_inputs(m16, "node_conv0")) == {onnx.TensorProto.FLOAT16}
    # the function body is untouched FP32 and the masks output keeps FP32
    body = next(f for f in m16.functions if f.name == "DCPMasks")
    assert all(a.i == onnx.TensorProto.FLOAT for n in body.node if n.op_type == "Cast" for a in n.attribute)
    outs = {o.name: o.type.tensor_type.elem_type for o in m16.graph.output}
    assert outs == {"enhanced": onnx.TensorProto.FLOAT, "masks": onnx.TensorProto.FLOAT}
    meta = {p.key: p.value for p in m16.metadata_props}
    assert meta["precision"] == "fp16"
    onnx.checker.check_model(m16, full_check=True)


def test_plugin_flavour_keeps_deform_fp16():
    m16 = apply_fp16_policy(hdm_like("plugin"))
    report = policy_report(m16)
    assert report.flavour == "plugin"
    assert "deform_onnx" not in report.islands and "node_deform" not in report.fp32_node_names()
    assert DEFAULT_ISLANDS["plugin"] == ("dcp",)


def test_extra_islands_by_scope():
    m16 = apply_fp16_policy(
        hdm_like("onnx"), ["dcp", "deform_onnx", "kernel_generator", "output_head", "offset_conv"]
    )
    islands = policy_report(m16).islands
    assert islands["kernel_generator"] == ["node_sigmoid_kernel"]
    assert islands["output_head"] == ["node_out_conv", "node_tanh"]
    assert islands["offset_conv"] == ["node_offconv"]
    assert set(_dtype_of_inputs(m16, "node_tanh")) == {onnx.TensorProto.FLOAT}


def test_select_is_first_match_and_unknown_island_errors():
    graph = hdm_like().graph
    picked = select_fp32_nodes(graph, [ISLANDS["dcp"], ISLANDS["deform_onnx"]])
    assert picked == {"dcp": ["node_DCPMasks_0"], "deform_onnx": ["node_deform"]}
    with pytest.raises(ExportError, match="unknown FP32 island"):
        apply_fp16_policy(hdm_like(), ["no-such-island"])
    with pytest.raises(ExportError, match="flavour"):
        apply_fp16_policy(hdm_like(), None, flavour="bogus")


def test_fp16_graph_runs_and_masks_equal():
    frames = random_frames(2, 24, 20)
    m = hdm_like("onnx")
    ref_enh, ref_masks = _run(m, frames)
    enh, masks = _run(apply_fp16_policy(m), frames)
    assert enh.dtype == np.float32 and masks.dtype == np.float32
    assert np.array_equal(masks, ref_masks)
    assert np.abs(enh - ref_enh).max() < 5e-3


def test_refuses_double_conversion_and_foreign_functions():
    m16 = apply_fp16_policy(hdm_like())
    with pytest.raises(ExportError, match="already FP16"):
        apply_fp16_policy(m16)
    # without the DCP island, the local function call is an unblocked function → refused
    with pytest.raises(ExportError, match="would stay FP32"):
        apply_fp16_policy(hdm_like(), ["deform_onnx"])
    inlined = apply_fp16_policy(hdm_like(), ["deform_onnx"], inline_other_functions=True)
    assert not inlined.functions
    # inlined DCP nodes are FP16 now: masks may differ, but the graph is valid
    onnx.checker.check_model(inlined, full_check=True)


def test_policy_survives_inlining_and_names_layers():
    from onnx import inliner

    m16 = apply_fp16_policy(hdm_like())
    names = fp32_layer_names(m16)
    assert "node_deform" in names and "node_DCPMasks_0" in names and "dcp_min" in names
    inlined = inliner.inline_local_functions(m16)
    frames = random_frames(1, 16, 16)
    a = _run(m16, frames)
    b = _run(inlined, frames)
    assert np.array_equal(a[1], b[1]) and np.allclose(a[0], b[0])
    # inlined body nodes are still recognisable for layer pinning (name + "__N")
    from hdm_deploy.tensorrt.flags import layer_matches

    inlined_names = [n.name for n in inlined.graph.node if n.name.startswith("dcp_min")]
    assert inlined_names and all(layer_matches(n, fp32_layer_names(m16)) for n in inlined_names)


@pytest.mark.slow
def test_scopes_match_real_dynamo_export():
    """Island scopes against the metadata torch's dynamo exporter really writes (tiny HDM)."""
    torch = pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")
    from hdm_deploy.families.hdm.model import HDM, HDMConfig

    torch.manual_seed(0)
    model = HDM(HDMConfig(width=8, groups=1, blocks=1)).eval()
    x = torch.randn(1, 3, 16, 16)
    masks = torch.zeros(1, 5, 1, 4, 4)
    masks[:, 0] = 1
    proto = torch.onnx.export(model, (x, masks), dynamo=True, opset_version=19, verbose=False).model_proto
    picked = select_fp32_nodes(
        proto.graph,
        [ISLANDS[k] for k in ("deform_onnx", "kernel_generator", "attention", "output_head", "offset_conv")],
    )
    ops = {n.name: n.op_type for n in proto.graph.node}
    assert [ops[n] for n in picked["deform_onnx"]] == ["DeformConv", "DeformConv"]
    assert "Sigmoid" in {ops[n] for n in picked["kernel_generator"]}
    assert {ops[n] for n in picked["attention"]} >= {"Sigmoid", "Conv"}
    assert "Tanh" in {ops[n] for n in picked["output_head"]}
    assert {ops[n] for n in picked["offset_conv"]} == {"Conv"}


def test_helper_functions_of_dcp_are_recorded_for_pinning():
    """DCPMasks may call helper functions of its domain; their bodies are FP32 too and get pinned."""
    from onnx import helper

    m = hdm_like()
    helper_fn = helper.make_function(
        "hdm_deploy.dcp",
        "BoxMean",
        ["a"],
        ["b"],
        [helper.make_node("Identity", ["a"], ["b"], name="box_identity")],
        [helper.make_opsetid("", 19)],
    )
    dcp = next(f for f in m.functions if f.name == "DCPMasks")
    i = next(k for k, n in enumerate(dcp.node) if n.name == "dcp_pool")
    dcp.node[i].output[0] = "small_raw"
    dcp.node.insert(
        i + 1, helper.make_node("BoxMean", ["small_raw"], ["small"], domain="hdm_deploy.dcp", name="dcp_box")
    )
    m.functions.append(helper_fn)
    dcp.opset_import.append(helper.make_opsetid("hdm_deploy.dcp", 1))
    onnx.checker.check_model(m, full_check=True)
    m16 = apply_fp16_policy(m)
    names = fp32_layer_names(m16)
    assert "dcp_box" in names and "box_identity" in names
    frames = random_frames(1, 16, 16)
    assert np.array_equal(_run(m16, frames)[1], _run(m, frames)[1])


def test_apply_precision_entry_point_infers_flavour():
    from hdm_deploy.graph.precision import apply_precision, infer_flavour

    m = hdm_like("plugin")
    del m.metadata_props[:]  # the exporter writes metadata after the policy
    assert infer_flavour(m) == "plugin" and infer_flavour(hdm_like("onnx")) == "onnx"
    assert apply_precision(m, "fp32") is m
    m16 = apply_precision(m, "fp16")
    report = policy_report(m16)
    assert report.flavour == "plugin" and set(report.islands) == {"dcp"}
    with pytest.raises(ExportError, match="unknown precision"):
        apply_precision(m, "int8")
