"""DeformConv flavours: the decomposition against ONNX's conformance cases and torchvision, and the
lossless rewrites onnx ⇄ plugin ⇄ decompose (+ inlining)."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper

from hdm_deploy.core.errors import ExportError
from hdm_deploy.graph.deform_decompose import DOMAIN as DECOMPOSE_DOMAIN
from hdm_deploy.graph.flavours import (
    PLUGIN_DOMAIN,
    PLUGIN_OP,
    convert_deform,
    convert_file,
    deform_flavours,
    detect_flavour,
    inline_functions,
)

STANDARD_DOMAINS = ("", "ai.onnx")


def run(model: onnx.ModelProto, feeds: dict[str, np.ndarray]) -> list[np.ndarray]:
    sess = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return sess.run(None, feeds)


@functools.lru_cache(maxsize=1)
def conformance_cases():
    from onnx.backend.test.case.node import collect_testcases

    with np.errstate(all="ignore"):
        cases = collect_testcases("DeformConv")
    return [c for c in cases if "deform_conv" in c.name]


def test_onnx_ships_four_deformconv_conformance_cases():
    assert sorted(c.name for c in conformance_cases()) == [
        "test_basic_deform_conv_with_padding",
        "test_basic_deform_conv_without_padding",
        "test_deform_conv_with_mask_bias",
        "test_deform_conv_with_multiple_offset_groups",
    ]


@pytest.mark.parametrize("inline", [False, True], ids=["function", "inlined"])
@pytest.mark.parametrize(
    "name",
    [
        "test_basic_deform_conv_with_padding",
        "test_basic_deform_conv_without_padding",
        "test_deform_conv_with_mask_bias",
        "test_deform_conv_with_multiple_offset_groups",
    ],
)
def test_decompose_passes_onnx_conformance_case(name, inline):
    case = next(c for c in conformance_cases() if c.name == name)
    model = onnx.ModelProto()
    model.CopyFrom(case.model)
    model.ir_version = 10
    decomposed = convert_deform(model, "decompose")
    if inline:
        decomposed = inline_functions(decomposed)
        assert not decomposed.functions
    ops = {(n.domain, n.op_type) for n in decomposed.graph.node}
    for f in decomposed.functions:
        ops |= {(n.domain, n.op_type) for n in f.node}
    assert all(d in STANDARD_DOMAINS or d == DECOMPOSE_DOMAIN for d, _ in ops)
    assert not any(op == "DeformConv" and d in STANDARD_DOMAINS for d, op in ops)
    for inputs, outputs in case.data_sets:
        feeds = {vi.name: x for vi, x in zip(decomposed.graph.input, inputs, strict=True)}
        got = run(decomposed, feeds)
        np.testing.assert_allclose(got[0], outputs[0], rtol=1e-5, atol=1e-5)


def _deform_model(n, c, h, w, cout, k, stride, pad, dil, group, og, bias, mask, rng, weight_initializer=True):
    ho = (h + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
    wo = (w + 2 * pad - (dil * (k - 1) + 1)) // stride + 1
    values = {
        "X": rng.normal(size=(n, c, h, w)).astype(np.float32),
        "W": rng.normal(size=(cout, c // group, k, k)).astype(np.float32),
        "offset": (rng.normal(size=(n, og * 2 * k * k, ho, wo)) * 2.5).astype(np.float32),
        "B": rng.normal(size=(cout,)).astype(np.float32),
        "mask": rng.uniform(size=(n, og * k * k, ho, wo)).astype(np.float32),
    }
    names = ["X", "W", "offset", "B" if bias else "", "mask" if mask else ""]
    while not names[-1]:
        names.pop()
    node = helper.make_node(
        "DeformConv",
        names,
        ["Y"],
        strides=[stride] * 2,
        pads=[pad] * 4,
        dilations=[dil] * 2,
        group=group,
        offset_group=og,
    )
    graph_inputs = [n_ for n_ in names if n_ and not (weight_initializer and n_ == "W")]
    inits = [onnx.numpy_helper.from_array(values["W"], "W")] if weight_initializer else []
    graph = helper.make_graph(
        [node],
        "deform",
        [helper.make_tensor_value_info(x, TensorProto.FLOAT, list(values[x].shape)) for x in graph_inputs],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [n, cout, ho, wo])],
        initializer=inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])
    model.ir_version = 10
    return model, {x: values[x] for x in graph_inputs}, values, names


CONFIGS = [
    # n, c, h, w, cout, k, stride, pad, dil, group, offset_group, bias, mask
    (2, 8, 9, 11, 6, 3, 1, 1, 1, 1, 1, True, True),  # HDM's case, batch 2
    (1, 8, 10, 7, 4, 3, 2, 1, 1, 2, 1, True, True),
    (2, 8, 12, 12, 8, 3, 1, 2, 2, 2, 2, False, True),  # mask without bias
    (1, 4, 6, 5, 4, 2, 1, 0, 1, 1, 2, False, False),
    (1, 6, 5, 5, 6, 3, 1, 1, 1, 3, 3, True, False),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=[f"cfg{i}" for i in range(len(CONFIGS))])
def test_all_flavours_match_torchvision(cfg):
    torch = pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")
    from torchvision.ops import deform_conv2d

    rng = np.random.default_rng(sum(cfg[:6]))
    stride, pad, dil = cfg[6:9]
    bias, mask = cfg[11:13]
    model, feeds, v, _ = _deform_model(*cfg, rng, weight_initializer=cfg[0] == 2)
    ref = deform_conv2d(
        torch.from_numpy(v["X"]),
        torch.from_numpy(v["offset"]),
        torch.from_numpy(v["W"]),
        torch.from_numpy(v["B"]) if bias else None,
        stride=stride,
        padding=pad,
        dilation=dil,
        mask=torch.from_numpy(v["mask"]) if mask else None,
    ).numpy()
    variants = {
        "onnx": model,
        "decompose": convert_deform(model, "decompose"),
        "decompose-inlined": inline_functions(convert_deform(model, "decompose")),
        "plugin→onnx": convert_deform(convert_deform(model, "plugin"), "onnx"),
        "plugin→decompose": convert_deform(convert_deform(model, "plugin"), "decompose"),
    }
    for label, m in variants.items():
        got = run(m, feeds)[0]
        np.testing.assert_allclose(got, ref, rtol=1e-5, atol=2e-5, err_msg=label)


def test_plugin_contract_attributes_and_no_empty_inputs():
    rng = np.random.default_rng(1)
    for weight_init in (True, False):
        model, _, _, _ = _deform_model(
            1, 4, 6, 6, 4, 3, 1, 1, 1, 1, 1, False, True, rng, weight_initializer=weight_init
        )
        plugin = convert_deform(model, "plugin")
        (node,) = [n for n in plugin.graph.node if n.op_type == PLUGIN_OP]
        assert node.domain == PLUGIN_DOMAIN
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        assert attrs["plugin_version"] == b"1" and attrs["plugin_namespace"] == b"hdm_deploy"
        assert attrs["strides"] == [1, 1] and attrs["pads"] == [1, 1, 1, 1] and attrs["dilations"] == [1, 1]
        assert attrs["group"] == 1 and attrs["offset_group"] == 1
        if weight_init:
            assert attrs["kernel_shape"] == [3, 3]
        assert len(node.input) == 5 and all(node.input), "a zero bias must fill the empty B slot"
        assert any(imp.domain == PLUGIN_DOMAIN and imp.version == 1 for imp in plugin.opset_import)
        assert detect_flavour(plugin) == "plugin"


def test_round_trips_are_exact():
    rng = np.random.default_rng(2)
    model, feeds, _, _ = _deform_model(2, 8, 9, 11, 6, 3, 1, 1, 1, 1, 1, True, True, rng)
    base = run(model, feeds)[0]
    for path in (
        ("plugin", "onnx"),
        ("decompose", "onnx"),
        ("decompose", "plugin", "onnx"),
        ("plugin", "decompose", "onnx"),
    ):
        m = model
        for flavour in path:
            m = convert_deform(m, flavour)
        assert [(n.op_type, list(n.input)) for n in m.graph.node] == [
            (n.op_type, list(n.input)) for n in model.graph.node
        ]
        assert not m.functions
        assert {imp.domain for imp in m.opset_import} == {""}
        np.testing.assert_array_equal(run(m, feeds)[0], base)


def test_decompose_is_a_function_call_per_node_with_the_original_attributes():
    rng = np.random.default_rng(3)
    model, _, _, _ = _deform_model(1, 4, 6, 6, 4, 3, 2, 1, 1, 1, 1, True, True, rng)
    d = convert_deform(model, "decompose")
    (node,) = d.graph.node
    assert node.domain == DECOMPOSE_DOMAIN and node.op_type == "DeformConv_s2x2_p1x1x1x1_d1x1_g1_og1_BM"
    assert {a.name for a in node.attribute} == {"strides", "pads", "dilations", "group", "offset_group"}
    assert [f.name for f in d.functions] == [node.op_type]
    assert deform_flavours(d) == {"decompose": 1}
    inlined = inline_functions(d)
    assert detect_flavour(inlined) == "decompose"  # from the metadata the rewrite writes
    onnx.checker.check_model(inlined, full_check=True)


def test_inlined_decomposition_cannot_be_converted_back():
    rng = np.random.default_rng(4)
    model, _, _, _ = _deform_model(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, 1, True, True, rng)
    d = convert_deform(model, "decompose")
    from hdm_deploy.graph.onnx_io import set_metadata

    set_metadata(d, {"deform": "decompose"})
    inlined = inline_functions(d)
    assert detect_flavour(inlined) == "decompose"
    with pytest.raises(ExportError, match="inlined"):
        convert_deform(inlined, "onnx")


def test_unknown_flavour_is_a_clear_error():
    rng = np.random.default_rng(5)
    model, _, _, _ = _deform_model(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, 1, True, True, rng)
    with pytest.raises(ExportError, match="flavour"):
        convert_deform(model, "cuda")


def test_convert_file_writes_checked_model(tmp_path):
    rng = np.random.default_rng(6)
    model, feeds, _, _ = _deform_model(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, 1, True, True, rng)
    src = tmp_path / "m.onnx"
    onnx.save(model, src)
    out = convert_file(src, tmp_path / "m.decomposed.onnx", "decompose", inline=True)
    loaded = onnx.load(out)
    onnx.checker.check_model(loaded, full_check=True)
    assert not loaded.functions and loaded.ir_version <= 13
    np.testing.assert_allclose(run(loaded, feeds)[0], run(model, feeds)[0], rtol=1e-5, atol=2e-5)


def test_onnx_flavour_below_opset_19_is_a_clear_error():
    rng = np.random.default_rng(7)
    model, _, _, _ = _deform_model(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, 1, True, True, rng)
    plugin = convert_deform(model, "plugin")
    next(imp for imp in plugin.opset_import if imp.domain == "").version = 17
    with pytest.raises(ExportError, match="opset 19") as err:
        convert_deform(plugin, "onnx")
    assert "plugin or decompose" in err.value.hint


def test_rewrites_keep_node_name_doc_and_scope_metadata():
    rng = np.random.default_rng(8)
    model, _, _, _ = _deform_model(1, 4, 6, 6, 4, 3, 1, 1, 1, 1, 1, False, True, rng)
    node = model.graph.node[0]
    node.name, node.doc_string = "dcn", "deformable"
    node.metadata_props.add(key="pkg.torch.onnx.name_scopes", value="['', 'dcn_block']")
    for flavour in ("plugin", "decompose", "onnx"):
        model = convert_deform(model, flavour)
        (new,) = [n for n in model.graph.node if n.output[0] == "Y"]
        assert (new.name, new.doc_string) == ("dcn", "deformable"), flavour
        assert [(p.key, p.value) for p in new.metadata_props] == [
            ("pkg.torch.onnx.name_scopes", "['', 'dcn_block']")
        ], flavour
