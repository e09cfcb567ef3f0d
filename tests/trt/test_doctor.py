"""doctor: TensorRT parser op tables, caveats, Jetson guide selection (no TensorRT needed)."""

from __future__ import annotations

import onnx
import onnx.inliner
import onnx.version_converter
import pytest
from onnx import helper

from _onnx_graphs import hdm_like
from hdm_deploy.tensorrt.doctor import check_graph, guide_for, l4t_to_trt, parse_tegra_release
from hdm_deploy.tensorrt.trt_ops import (
    KNOWN,
    check_model,
    nearest_known,
    summarize,
    supported_ops,
    unsupported_ops,
)


def _errors(model, version, **kw):
    return {(i.op, i.severity) for i in check_model(model, version, **kw) if i.severity == "error"}


def test_tables_transcribed():
    assert (
        nearest_known("10.3.0.30") == "10.3"
        and nearest_known("8.6.2") == "8.6"
        and nearest_known("10.16") == "10.13"
    )
    assert nearest_known("11.1") == "11"
    for v in KNOWN:
        ops = supported_ops(v)
        assert {"Conv", "Resize", "ReduceMin", "Cast", "Where", "ConvTranspose", "MatMul"} <= set(ops)
    assert "DeformConv" not in supported_ops("8.6") and "DeformConv" in supported_ops("10.3")
    assert "LayerNormalization" not in supported_ops("8.5") and "LayerNormalization" in supported_ops("8.6")
    assert "Attention" in supported_ops("11") and "Attention" not in supported_ops("10.13")
    assert "STFT" in supported_ops("10.13") and "STFT" not in unsupported_ops("10.13")
    assert "UINT8" in supported_ops("10.3")["Cast"]


def test_default_graph_on_each_version():
    m = hdm_like("onnx")
    e85 = _errors(m, "8.5")
    assert ("hdm_deploy.dcp::DCPMasks", "error") in e85  # local functions need TRT ≥ 9
    assert ("DeformConv", "error") in e85  # standard DeformConv from 10.1
    assert ("ReduceMin", "error") in e85  # opset-18 axes input silently ignored by 8.x
    assert ("opset", "error") in e85
    assert _errors(m, "10.3") == set() and _errors(m, "11") == set()


def test_plugin_flavour_and_inlined_opset17_graph_passes_on_85():
    m = onnx.inliner.inline_local_functions(hdm_like("plugin"))
    m = onnx.version_converter.convert_version(m, 17)
    assert _errors(m, "8.5", plugin_available=True) == set()
    assert ("HdmDeformConv", "error") in _errors(m, "8.5", plugin_available=False)


def _single(node, inputs, initializers=(), opset=19):
    graph = helper.make_graph(
        [node],
        "g",
        inputs,
        [helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, None)],
        list(initializers),
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", opset)])


def test_caveats_resize_topk_uint8_custom():
    x = helper.make_tensor_value_info("x", onnx.TensorProto.FLOAT, [1, 3, 8, 8])
    scales = helper.make_tensor("s", onnx.TensorProto.FLOAT, [4], [1, 1, 2, 2])
    r = _single(helper.make_node("Resize", ["x", "", "s"], ["y"], mode="linear", antialias=1), [x], [scales])
    assert ("Resize", "error") in _errors(r, "10.13")
    r2 = _single(helper.make_node("Resize", ["x", "", "s"], ["y"], mode="cubic"), [x], [scales])
    assert ("Resize", "error") in _errors(r2, "8.5") and ("Resize", "error") not in _errors(r2, "10.3")
    k = helper.make_tensor_value_info("k", onnx.TensorProto.INT64, [1])
    t = _single(helper.make_node("TopK", ["x", "k"], ["y", "i"]), [x, k])
    assert ("TopK", "error") in _errors(t, "8.6")
    u8 = helper.make_tensor_value_info("u", onnx.TensorProto.UINT8, [1, 8, 8, 3])
    pads = helper.make_tensor("p", onnx.TensorProto.INT64, [8], [0] * 8)
    p = _single(helper.make_node("Pad", ["u", "p"], ["y"]), [u8], [pads])
    assert ("Pad", "error") in _errors(p, "10.3")
    c = _single(helper.make_node("Cast", ["u"], ["y"], to=onnx.TensorProto.FLOAT), [u8], opset=17)
    assert _errors(c, "8.5") == set()
    custom = _single(helper.make_node("Foo", ["x"], ["y"], domain="acme"), [x])
    assert ("acme::Foo", "error") in _errors(custom, "10.3")
    un = _single(helper.make_node("Unique", ["x"], ["y"]), [x])
    assert ("Unique", "error") in _errors(un, "11")
    slice_dyn = _single(
        helper.make_node("Slice", ["x", "st", "en", "ax"], ["y"]),
        [x] + [helper.make_tensor_value_info(n, onnx.TensorProto.INT64, [1]) for n in ("st", "en", "ax")],
    )
    assert ("Slice", "error") in _errors(slice_dyn, "8.6") and ("Slice", "error") not in _errors(
        slice_dyn, "10.3"
    )
    assert summarize(check_model(custom, "10.3"))["error"] == 1


def test_check_graph_file(tmp_path):
    path = tmp_path / "m.onnx"
    onnx.save(hdm_like("onnx"), path)
    report = check_graph(path, "10.3")
    assert report.ok and report.table == "10.3" and report.ops > 20
    assert not check_graph(path, "8.5").ok


def test_jetson_guide_selection():
    assert parse_tegra_release("# R35 (release), REVISION: 3.1, GCID: 32827747, BOARD: t186ref") == "R35.3.1"
    assert parse_tegra_release("garbage") is None
    assert (
        l4t_to_trt("R35.3.1") == "8.5" and l4t_to_trt("R36.3.0") == "8.6" and l4t_to_trt("R36.4.3") == "10.3"
    )
    assert l4t_to_trt("R38.2.0") == "10.13" and l4t_to_trt("R32.7") is None
    assert "JetPack 5.1" in guide_for(None, "R35.4.1")[0]
    assert "6.1/6.2" in guide_for("10.3.0.30")[0]
    assert "JetPack 7" in guide_for("10.13.3")[0]
    assert guide_for(None, None) is None


def test_doctor_cli(tmp_path):
    from typer.testing import CliRunner

    from hdm_deploy.cli import app

    path = tmp_path / "m.onnx"
    onnx.save(hdm_like("onnx"), path)
    res = CliRunner().invoke(app, ["doctor", str(path), "--trt", "10.3"])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(app, ["doctor", str(path), "--trt", "8.5"])
    assert res.exit_code == 1 and "DCPMasks" in res.output


@pytest.mark.parametrize("version", KNOWN)
def test_every_known_version_has_a_guide(version):
    assert guide_for(version) is not None
