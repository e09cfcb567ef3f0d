"""The receptive-field walk over ONNX graphs (hdm_deploy.graph.receptive), on hand-built graphs whose
intervals are derived by hand here."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hdm_deploy.core.errors import ModelFormatError
from hdm_deploy.graph.receptive import required_inputs, stage_halo


def _model(nodes, inits, out="y"):
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4, None, None])
    y = helper.make_tensor_value_info(out, TensorProto.FLOAT, [1, 4, None, None])
    graph = helper.make_graph(nodes, "g", [x], [y], initializer=inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


def _w(name, shape):
    return numpy_helper.from_array(np.zeros(shape, np.float32), name)


def test_conv_chain_with_stride_and_dilation():
    # conv k5 p2 → conv k3 s2 p1 → conv k3 d2 p2: outputs [a, b) need
    # k3 d2 p2: [a − 2, (b − 1) − 2 + 4 + 1) = [a − 2, b + 2)
    # → k3 s2 p1: [2(a − 2) − 1, 2(b + 1) − 1 + 3) = [2a − 5, 2b + 4) → k5 p2: [2a − 7, 2b + 6)
    nodes = [
        helper.make_node("Conv", ["x", "w0"], ["a"], kernel_shape=[5, 5], pads=[2, 2, 2, 2]),
        helper.make_node("Relu", ["a"], ["b"]),
        helper.make_node("Conv", ["b", "w1"], ["c"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
        helper.make_node(
            "Conv", ["c", "w1"], ["y"], kernel_shape=[3, 3], dilations=[2, 2], pads=[2, 2, 2, 2]
        ),
    ]
    m = _model(nodes, [_w("w0", (4, 4, 5, 5)), _w("w1", (4, 4, 3, 3))])
    need = required_inputs(m, {"y": {2: (10, 20), 3: (0, 1)}})
    assert need["x"] == {2: (2 * 10 - 7, 2 * 20 + 6), 3: (-7, 2 + 6)}


def test_transposed_conv_pad_and_pool():
    # ConvTranspose k4 s2 p1: o = 2i − 1 + j, j ∈ [0, 4) → outputs [a, b) need i ∈ [⌈(a − 2)/2⌉, ⌊b/2⌋ + 1);
    # before it, in forward order: Pad (before 1) and AvgPool k2 s1
    nodes = [
        helper.make_node(
            "ConvTranspose", ["x", "w"], ["t"], kernel_shape=[4, 4], strides=[2, 2], pads=[1, 1, 1, 1]
        ),
        helper.make_node("Pad", ["t", "pads"], ["p"], mode="reflect"),
        helper.make_node("AveragePool", ["p"], ["y"], kernel_shape=[2, 2], strides=[1, 1]),
    ]
    pads = numpy_helper.from_array(np.array([0, 0, 1, 1, 0, 0, 0, 0], np.int64), "pads")
    m = _model(nodes, [_w("w", (4, 4, 4, 4)), pads])
    need = required_inputs(m, {"y": {2: (8, 16)}})
    # pool: [8, 17) of p → pad: [7, 16) of t → deconv: [⌈5/2⌉, ⌊16/2⌋ + 1) = [3, 9)
    assert need["x"] == {2: (3, 9)}


def test_global_op_is_refused_not_guessed():
    nodes = [
        helper.make_node("GlobalAveragePool", ["x"], ["g"]),
        helper.make_node("Mul", ["x", "g"], ["y"]),
    ]
    with pytest.raises(ModelFormatError, match="not a local op"):
        required_inputs(_model(nodes, []), {"y": {2: (0, 4)}})


def test_stage_halo_rounds_the_start_to_the_stride_grid():
    nodes = [
        helper.make_node("Conv", ["x", "w"], ["y"], kernel_shape=[3, 3], strides=[2, 2], pads=[1, 1, 1, 1]),
    ]
    m = _model(nodes, [_w("w", (4, 4, 3, 3))])
    rows, cols = stage_halo(m, {"x": 1.0}, {"y": 0.5}, {"x": (2, 3), "y": (2, 3)})
    assert (rows.before, rows.after, rows.align) == (1, 0, 2)
    assert rows.before_aligned == 2 and rows.after_aligned == 0 and cols == rows
    onnx.checker.check_model(m)
