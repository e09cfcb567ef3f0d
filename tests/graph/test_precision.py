"""FP16 precision policy: which nodes stay FP32, explicit casts, runs in ONNX Runtime, metadata."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from _onnx_graphs import DCP_FUNCTION, hdm_like, random_frames
from hdm_deploy.core.errors import ExportError
from hdm_deploy.graph.precision import (
    DEFAULT_ISLANDS,
    ISLANDS,
    apply_fp16_policy,
    fp32_layer_names,
    function_island,
    node_scope,
    policy_report,
    select_fp32_nodes,
)

DCP = "hdm_deploy.dcp::DCPMasks"  # the function island's name in reports


def _policy(model: onnx.ModelProto, *args, **kwargs) -> onnx.ModelProto:
    """The policy with the stand-in DCP function as an FP32 island (what the HDM exporter passes)."""
    return apply_fp16_policy(model, *args, fp32_functions=[DCP_FUNCTION], **kwargs)


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
    m16 = _policy(hdm_like("onnx"))
    report = policy_report(m16)
    assert report is not None and report.flavour == "onnx"
    assert report.islands[DCP] == ["node_DCPMasks_0"]
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
    m16 = _policy(hdm_like("plugin"))
    report = policy_report(m16)
    assert report.flavour == "plugin"
    assert "deform_onnx" not in report.islands and "node_deform" not in report.fp32_node_names()
    assert DEFAULT_ISLANDS["plugin"] == ()
    # the plugin op computes in FP16 like everything around it
    assert set(_dtype_of_inputs(m16, "node_deform")) == {onnx.TensorProto.FLOAT16}


def test_extra_islands_by_scope():
    m16 = _policy(hdm_like("onnx"), ["deform_onnx", "kernel_generator", "output_head", "offset_conv"])
    islands = policy_report(m16).islands
    assert islands["kernel_generator"] == ["node_sigmoid_kernel"]
    assert islands["output_head"] == ["node_out_conv", "node_tanh"]
    assert islands["offset_conv"] == ["node_offconv"]
    assert set(_dtype_of_inputs(m16, "node_tanh")) == {onnx.TensorProto.FLOAT}


def test_select_is_first_match_and_unknown_island_errors():
    graph = hdm_like().graph
    picked = select_fp32_nodes(graph, [function_island(*DCP_FUNCTION), ISLANDS["deform_onnx"]])
    assert picked == {DCP: ["node_DCPMasks_0"], "deform_onnx": ["node_deform"]}
    with pytest.raises(ExportError, match="unknown FP32 island"):
        apply_fp16_policy(hdm_like(), ["no-such-island"])
    with pytest.raises(ExportError, match="flavour"):
        apply_fp16_policy(hdm_like(), None, flavour="bogus")


def test_fp16_graph_runs_and_masks_equal():
    frames = random_frames(2, 24, 20)
    m = hdm_like("onnx")
    ref_enh, ref_masks = _run(m, frames)
    enh, masks = _run(_policy(m), frames)
    assert enh.dtype == np.float32 and masks.dtype == np.float32
    assert np.array_equal(masks, ref_masks)
    assert np.abs(enh - ref_enh).max() < 5e-3


def test_refuses_double_conversion_and_foreign_functions():
    m16 = _policy(hdm_like())
    with pytest.raises(ExportError, match="already FP16"):
        _policy(m16)
    # without the DCP island, the local function call is an unblocked function → refused
    with pytest.raises(ExportError, match="would stay FP32"):
        apply_fp16_policy(hdm_like(), ["deform_onnx"])
    inlined = apply_fp16_policy(hdm_like(), ["deform_onnx"], inline_other_functions=True)
    assert not inlined.functions
    # inlined DCP nodes are FP16 now: masks may differ, but the graph is valid
    onnx.checker.check_model(inlined, full_check=True)


def test_policy_survives_inlining_and_names_layers():
    from onnx import inliner

    m16 = _policy(hdm_like())
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
    dcp.node[i].output[0] = "pooled_raw"
    dcp.node.insert(
        i + 1,
        helper.make_node("BoxMean", ["pooled_raw"], ["pooled"], domain="hdm_deploy.dcp", name="dcp_box"),
    )
    m.functions.append(helper_fn)
    dcp.opset_import.append(helper.make_opsetid("hdm_deploy.dcp", 1))
    onnx.checker.check_model(m, full_check=True)
    m16 = _policy(m)
    names = fp32_layer_names(m16)
    assert "dcp_box" in names and "box_identity" in names
    frames = random_frames(1, 16, 16)
    assert np.array_equal(_run(m16, frames)[1], _run(m, frames)[1])


def test_apply_precision_entry_point_infers_flavour():
    from hdm_deploy.graph.flavours import detect_flavour
    from hdm_deploy.graph.precision import apply_precision

    m = hdm_like("plugin")
    del m.metadata_props[:]  # the exporter writes metadata after the policy
    assert detect_flavour(m) == "plugin" and detect_flavour(hdm_like("onnx")) == "onnx"
    assert apply_precision(m, "fp32") is m
    m16 = apply_precision(m, "fp16", fp32_functions=[DCP_FUNCTION])
    report = policy_report(m16)
    assert report.flavour == "plugin" and set(report.islands) == {DCP}
    with pytest.raises(ExportError, match="would stay FP32"):
        apply_precision(m, "fp16")  # the caller must say which local functions stay FP32
    with pytest.raises(ExportError, match="unknown precision"):
        apply_precision(m, "int8")


def _types(model: onnx.ModelProto) -> dict[str, int]:
    """Element type of every main-graph value (strict shape inference: the graph is type-consistent)."""
    g = onnx.shape_inference.infer_shapes(model, strict_mode=True).graph
    types = {v.name: v.type.tensor_type.elem_type for v in [*g.value_info, *g.input, *g.output]}
    return types | {i.name: i.data_type for i in g.initializer}


FLOATS = {TensorProto.FLOAT, TensorProto.FLOAT16}


@pytest.mark.parametrize("flavour", ["onnx", "plugin"])
def test_every_float_outside_islands_is_fp16(flavour):
    m = hdm_like(flavour)
    m16 = _policy(m)
    onnx.checker.check_model(m16, full_check=True)
    types, fp32 = _types(m16), set(fp32_layer_names(m16))
    casts = 0
    for node in m16.graph.node:
        if node.op_type == "Cast":
            casts += 1
            continue
        want = TensorProto.FLOAT if node.name in fp32 else TensorProto.FLOAT16
        float_io = [types[v] for v in [*node.input, *node.output] if v and types.get(v) in FLOATS]
        assert set(float_io) <= {want}, (node.name, float_io)
    # the graph's IO contract is the FP32 export's (uint8 in, FP32 out), and only weights read by
    # islands stay FP32
    io = lambda g: [(v.name, v.type.tensor_type.elem_type) for v in [*g.input, *g.output]]  # noqa: E731
    assert io(m16.graph) == io(m.graph)
    consumers = {i: n.name for n in m16.graph.node for i in n.input}
    assert all(consumers[i.name] in fp32 for i in m16.graph.initializer if i.data_type == TensorProto.FLOAT)
    assert casts == policy_report(m16).cast_nodes + 1  # + the graph's own uint8 → FP16 cast


def test_function_bodies_stay_fp32_byte_for_byte():
    m = hdm_like()
    m16 = _policy(m)
    assert [f.SerializeToString() for f in m16.functions] == [f.SerializeToString() for f in m.functions]
    # the graph's own Cast(uint8 → float) outside the island produces FP16 now
    cast_in = next(n for n in m16.graph.node if n.name == "node_cast_in")
    assert cast_in.attribute[0].i == TensorProto.FLOAT16


def _typed_ops_graph() -> onnx.ModelProto:
    """Float I/O; ops whose attributes or inputs carry types; an initializer shared with an island;
    a constant beyond FP16's range."""
    f = TensorProto.FLOAT
    inits = [
        numpy_helper.from_array(np.array([1, 1, 2, 2], np.float32), "scales"),
        numpy_helper.from_array(np.array([0.25], np.float32), "shared"),
        numpy_helper.from_array(np.array([1e6], np.float32), "big"),
    ]
    nodes = [
        helper.make_node("Cast", ["x"], ["xc"], to=f, name="cast"),
        helper.make_node("Constant", [], ["half"], value_float=0.5, name="const"),
        helper.make_node("Mul", ["xc", "half"], ["a"], name="mul"),
        helper.make_node("Shape", ["x"], ["shape"], name="shape"),
        helper.make_node(
            "ConstantOfShape",
            ["shape"],
            ["ones"],
            value=numpy_helper.from_array(np.ones(1, np.float32)),
            name="cos",
        ),
        helper.make_node("Add", ["a", "ones"], ["b"], name="add"),
        helper.make_node("Min", ["b", "big"], ["bm"], name="min"),
        helper.make_node("Mul", ["bm", "shared"], ["c"], name="island_scale"),
        helper.make_node("Add", ["c", "shared"], ["d"], name="add_shared"),
        helper.make_node("Resize", ["d", "", "scales"], ["y"], mode="nearest", name="resize"),
    ]
    graph = helper.make_graph(
        nodes,
        "typed",
        [helper.make_tensor_value_info("x", f, [1, 2, 3, 3])],
        [helper.make_tensor_value_info("y", f, [1, 2, 6, 6])],
        initializer=inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=10)


def test_typed_attributes_shared_initializers_and_fixed_fp32_inputs():
    from hdm_deploy.graph.precision import Island

    m = _typed_ops_graph()
    onnx.checker.check_model(m, full_check=True)
    island = Island("scale", "test", names=(r"^island_scale$",))
    m16 = apply_fp16_policy(m, [island], flavour="plugin")
    onnx.checker.check_model(m16, full_check=True)
    types = _types(m16)
    assert types["xc"] == types["half"] == types["ones"] == types["d"] == TensorProto.FLOAT16
    assert types["c"] == TensorProto.FLOAT and types["y"] == TensorProto.FLOAT
    inits = {i.name: i for i in m16.graph.initializer}
    assert inits["scales"].data_type == TensorProto.FLOAT  # Resize scales are tensor(float) in the spec
    assert inits["shared"].data_type == TensorProto.FLOAT  # the island reads it …
    assert inits["shared_fp16"].data_type == TensorProto.FLOAT16  # … the FP16 Add reads a copy
    assert numpy_helper.to_array(inits["big"]).item() == 65504.0
    assert policy_report(m16).clipped_constants == 1
    x = np.random.default_rng(0).normal(size=(1, 2, 3, 3)).astype(np.float32)

    def run(model: onnx.ModelProto) -> np.ndarray:
        sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
        return sess.run(None, {"x": x})[0]

    assert np.abs(run(m16) - run(m)).max() < 2e-3
    # keep_io_types=False: the float I/O becomes FP16 too
    m16_io = apply_fp16_policy(m, [island], flavour="plugin", keep_io_types=False)
    onnx.checker.check_model(m16_io, full_check=True)
    io = [v.type.tensor_type.elem_type for v in [*m16_io.graph.input, *m16_io.graph.output]]
    assert io == [TensorProto.FLOAT16, TensorProto.FLOAT16]


def test_decompose_functions_follow_the_deform_island():
    from hdm_deploy.graph.flavours import convert_deform

    m = convert_deform(hdm_like("onnx"), "decompose")
    m16 = _policy(m, flavour="decompose")
    onnx.checker.check_model(m16, full_check=True)
    report = policy_report(m16)
    assert report.islands["deform_decompose"] == ["node_deform"]
    assert len(report.fp32_functions) == 2 and DCP in report.fp32_functions
    assert [f.SerializeToString() for f in m16.functions] == [f.SerializeToString() for f in m.functions]
    assert set(_dtype_of_inputs(m16, "node_deform")) == {TensorProto.FLOAT}
    frames = random_frames(1, 16, 20)
    ref, got = _run(m, frames), _run(m16, frames)
    assert np.array_equal(ref[1], got[1]) and np.abs(ref[0] - got[0]).max() < 5e-3


def test_refuses_control_flow_outside_islands():
    m = _typed_ops_graph()
    branch = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["bx"])],
        "b",
        [],
        [helper.make_tensor_value_info("bx", TensorProto.FLOAT, None)],
    )
    cond = numpy_helper.from_array(np.array(True), "cond")
    m.graph.initializer.append(cond)
    m.graph.node.insert(0, helper.make_node("If", ["cond"], ["xi"], then_branch=branch, else_branch=branch))
    with pytest.raises(ExportError, match="control flow"):
        apply_fp16_policy(m, [], flavour="plugin")


@pytest.mark.slow
@pytest.mark.parametrize("deform", ["onnx", "decompose"])
def test_real_export_fp16_runs_and_keeps_masks(deform):
    """The exporter's FP16 graph of a tiny HDM: valid, uint8 IO kept, masks equal, frames within 1 LSB."""
    torch = pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")
    from hdm_deploy.export.exporter import build_onnx
    from hdm_deploy.families.hdm.model import HDM, HDMConfig

    torch.manual_seed(0)
    model = HDM(HDMConfig(width=8, groups=1, blocks=1)).eval()
    m32 = build_onnx(model, io="uint8", deform=deform)
    m16 = build_onnx(model, io="uint8", deform=deform, precision="fp16")
    report = policy_report(m16)
    assert DCP in report.fp32_functions and report.islands[DCP]
    assert {v.name: v.type.tensor_type.elem_type for v in m16.graph.output} == {
        v.name: v.type.tensor_type.elem_type for v in m32.graph.output
    }
    # FP32 weights: DeformConv's (read by the island), nothing else
    fp32_inits = {i.name for i in m16.graph.initializer if i.data_type == TensorProto.FLOAT}
    assert fp32_inits == {"net.dcn_block.dcn.weight", "net.dcn_block.dcn.bias"}
    readers = {n.name for n in m16.graph.node if set(n.input) & fp32_inits}
    assert readers <= set(report.fp32_node_names())
    frames = random_frames(2, 40, 36)
    ref, got = _run(m32, frames), _run(m16, frames)
    assert np.array_equal(ref[1], got[1])
    assert np.abs(ref[0].astype(int) - got[0].astype(int)).max() <= 1
