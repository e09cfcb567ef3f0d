"""TensorRT op-support data (generated JSON), its generator's table parser, the rule list, the real parser."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from onnx import TensorProto, helper

from hdm_deploy.core.errors import TensorRTUnavailableError
from hdm_deploy.tensorrt.trt_ops import (
    KNOWN,
    OPSET_MAX,
    RULES,
    check_model,
    op_data,
    op_table,
    parser_support,
    supported_ops,
    unsupported_ops,
)

ROOT = Path(__file__).resolve().parents[2]


def test_json_loads_with_every_target_version():
    data = op_data()
    assert op_data() is data  # cached
    assert set(data["versions"]) == {"8.5", "8.6", "10.3", "10.13", "11"} == set(KNOWN)
    for key, entry in data["versions"].items():
        assert entry["ops"] and all(
            {"supported", "types", "restrictions"} <= set(e) for e in entry["ops"].values()
        )
        # own tag, or an explicit mapping to the nearest tag below
        assert bool(entry["source_tag"]) != bool(entry["derived_from"]), key
        ref = entry["derived_from"] or entry
        assert len(ref["commit"]) == 40


def test_facts_from_the_release_tags():
    """Facts read off docs/operators.md at release/8.5-GA, 8.6-GA and 10.1-GA."""
    data = op_data()["versions"]
    assert data["8.5"]["source_tag"] == "release/8.5-GA" and data["8.6"]["source_tag"] == "release/8.6-GA"
    assert data["10.3"]["derived_from"]["tag"] == "release/10.1-GA"
    assert OPSET_MAX["8.5"] == OPSET_MAX["8.6"] == 17 and OPSET_MAX["10.3"] == 20
    assert data["10.3"]["opset"]["min"] == 9
    # DeformConv: not in the 8.x tables at all, supported (FP32/FP16, symmetric pads) from 10.1
    assert "DeformConv" not in op_table("8.5") and "DeformConv" not in op_table("8.6")
    assert supported_ops("10.3")["DeformConv"] == "FP32 FP16"
    assert "pads" in op_table("10.3")["DeformConv"]["restrictions"]
    # TopK supported everywhere; K an initializer in 8.5
    assert all("TopK" in supported_ops(v) for v in KNOWN)
    assert supported_ops("8.5")["TopK"] == "FP32 FP16" and "INT32" in supported_ops("8.6")["TopK"]
    assert "initializer" in op_table("8.5")["TopK"]["restrictions"]
    # LayerNormalization: N in 8.5, Y in 8.6; Unique N everywhere
    assert "LayerNormalization" in unsupported_ops("8.5") and "LayerNormalization" in supported_ops("8.6")
    assert all("Unique" in unsupported_ops(v) for v in KNOWN)
    # 8.5: the 8.5-GA branch corrects the tag's table (Mod, OneHot, HardSwish marked supported)
    assert data["8.5"]["branch"]["changed_ops"] == ["HardSwish", "Mod", "OneHot"]
    assert {"Mod", "OneHot", "HardSwish"} <= set(supported_ops("8.5"))
    # upstream typo "INF64" (10.1-GA ConstantOfShape) is normalised
    assert "INT64" in supported_ops("10.3")["ConstantOfShape"].split()


def test_overlay_is_explicit():
    data = op_data()["versions"]
    assert data["10.3"]["overlay"] == []
    assert data["11"]["overlay"][-1] == "11.0"
    assert op_table("11")["Swish"]["source"] == "changelog 11.0"
    assert "Swish" not in op_table("10.13")


def _generator():
    spec = importlib.util.spec_from_file_location(
        "gen_trt_op_support", ROOT / "scripts" / "gen_trt_op_support.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_generator_parses_a_table():
    md = "\n".join(
        [
            "# Supported ONNX Operators",
            "TensorRT 9.9 supports operators in the inclusive range of opset 9 to opset 21.",
            "## Operator Support Matrix",
            "| Operator | Supported | Supported Types | Restrictions |",
            "|----------|-----------|-----------------|--------------|",
            "| Abs | Y | FP32, FP16, INF64 |",
            "| Foo | N | Not supported. Compose it. |",
            "| Bar | Y [EXPERIMENTAL] | FP32 | `k` must be an initializer |",
            "| Baz | N |",
            "| Baz | Y | FP16, |",
            "## Other section",
            "| Nope | Y | FP32 |",
        ]
    )
    doc = _generator().parse_operators_md(md)
    assert (doc["declared_trt"], doc["opset_min"], doc["opset_max"]) == ("9.9", 9, 21)
    ops = doc["ops"]
    assert set(ops) == {"Abs", "Foo", "Bar", "Baz"}
    assert ops["Abs"]["types"] == ["FP32", "FP16", "INT64"]
    assert (
        not ops["Foo"]["supported"] and ops["Foo"]["types"] == [] and "Compose" in ops["Foo"]["restrictions"]
    )
    assert ops["Bar"]["experimental"] and ops["Bar"]["restrictions"] == "`k` must be an initializer"
    assert ops["Baz"]["supported"] and ops["Baz"]["listed_twice"]


def test_rules_are_named_and_explained():
    names = [r.name for r in RULES]
    assert len(names) == len(set(names)) >= 12
    assert all(r.checks and r.reason for r in RULES)


def test_parser_support_without_tensorrt():
    model = helper.make_model(helper.make_graph([], "g", [], []))
    if importlib.util.find_spec("tensorrt") is None:
        with pytest.raises(TensorRTUnavailableError):
            parser_support(model)
        with pytest.raises(TensorRTUnavailableError):
            check_model(model, "10.3", use_parser=True)


@pytest.mark.tensorrt
def test_parser_support_with_tensorrt():
    pytest.importorskip("tensorrt")
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3, 8, 8])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 3, 8, 8])
    good = helper.make_model(
        helper.make_graph([helper.make_node("Relu", ["x"], ["y"])], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17)],
    )
    bad = helper.make_model(
        helper.make_graph([helper.make_node("Foo", ["x"], ["y"], domain="acme")], "g", [x], [y]),
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("acme", 1)],
    )
    try:
        ok = parser_support(good)
    except (RuntimeError, TypeError) as exc:  # no CUDA device for the builder
        pytest.skip(f"TensorRT builder unavailable: {exc}")
    assert ok.supported and ok.issues(good) == []
    assert not parser_support(bad.SerializeToString()).supported
    assert any(i.severity == "error" for i in check_model(bad, ok.trt_version, use_parser=True))
