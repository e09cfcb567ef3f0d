"""``order_for_ort``: ONNX Runtime's default execution order then follows the program order (an
accumulation runs term by term instead of computing every term first), and the result is unchanged."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hdm_deploy.graph.schedule import order_for_ort

ort = pytest.importorskip("onnxruntime")


def _accumulation(terms: int = 6) -> onnx.ModelProto:
    """acc = t0 + t1 + …, t_k = MatMul(W_k, Relu(x)) — written in program order, term by term."""
    rng = np.random.default_rng(0)
    nodes, inits, acc = [], [], None
    for k in range(terms):
        inits.append(numpy_helper.from_array(rng.standard_normal((4, 4)).astype(np.float32), f"w{k}"))
        nodes.append(helper.make_node("Relu", ["x"], [f"r{k}"], name=f"relu{k}"))
        nodes.append(helper.make_node("MatMul", [f"w{k}", f"r{k}"], [f"t{k}"], name=f"term{k}"))
        if acc is not None:
            nodes.append(helper.make_node("Add", [acc, f"t{k}"], [f"a{k}"], name=f"add{k}"))
        acc = f"a{k}" if acc is not None else f"t{k}"
    nodes.append(helper.make_node("Identity", [acc], ["y"], name="out"))
    graph = helper.make_graph(
        nodes,
        "acc",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [4, 8])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [4, 8])],
        inits,
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def _run_order(model: onnx.ModelProto, tmp_path, x: np.ndarray) -> tuple[list[str], np.ndarray]:
    o = ort.SessionOptions()
    o.enable_profiling = True
    o.profile_file_prefix = str(tmp_path / "prof")
    o.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    s = ort.InferenceSession(model.SerializeToString(), o, providers=["CPUExecutionProvider"])
    (y,) = s.run(None, {"x": x})
    events = json.loads(Path(s.end_profiling()).read_text())
    names = [e["name"][: -len("_kernel_time")] for e in events if e["name"].endswith("_kernel_time")]
    return names, y


def test_runs_in_program_order_with_the_same_result(tmp_path):
    x = np.random.default_rng(1).standard_normal((4, 8)).astype(np.float32)
    model = _accumulation()
    program = [n.name for n in model.graph.node]
    before, y0 = _run_order(model, tmp_path, x)
    assert before != program  # ORT's own walk computes the late terms first (what this fixes)
    reordered = order_for_ort(onnx.ModelProto.FromString(model.SerializeToString()))
    onnx.checker.check_model(reordered)
    after, y1 = _run_order(reordered, tmp_path, x)
    assert after == program
    np.testing.assert_array_equal(y0, y1)
