"""Small hand-made ONNX graphs shaped like the HDM export (for precision/doctor/engine tests).

``uint8 NHWC image → Cast/Transpose → DCPMasks (local function, FP32) → masks``
``                 → Conv (scope conv0) → DeformConv (scope dcn_block.dcn) → Sigmoid (kernel gen.)``
``                 → Mul(masks) → Tanh (scope output.3) → enhanced float32``

Node scopes are written into ``metadata_props['namespace']`` the way torch's dynamo exporter does.
"""

from __future__ import annotations

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from _dcp_standin import FUNCTION_ID, standin_function

OPSET = 19
#: The stand-in DCP function's identity (an FP32 island: ``apply_fp16_policy(fp32_functions=[...])``).
DCP_FUNCTION = FUNCTION_ID  # the stand-in's (domain, name)


def _scoped(node: onnx.NodeProto, scope: str) -> onnx.NodeProto:
    parts = [": HDM"] + [f"{s}: X" for s in scope.split("/")]
    node.metadata_props.add(key="namespace", value="/".join(parts))
    return node


def hdm_like(
    deform: str = "onnx", channels: int = 4, seed: int = 0, with_function: bool = True
) -> onnx.ModelProto:
    """The small HDM-shaped graph; ``deform``: 'onnx' (DeformConv) or 'plugin' (HdmDeformConv)."""
    rng = np.random.default_rng(seed)
    c = channels
    inits = [
        numpy_helper.from_array(rng.normal(0, 0.3, (c, 3, 3, 3)).astype(np.float32), "conv0.w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (c,)).astype(np.float32), "conv0.b"),
        numpy_helper.from_array(rng.normal(0, 0.3, (18, c, 3, 3)).astype(np.float32) * 0.1, "off.w"),
        numpy_helper.from_array(rng.normal(0, 0.3, (c, c, 3, 3)).astype(np.float32), "dcn.w"),
        numpy_helper.from_array(rng.normal(0, 0.1, (c,)).astype(np.float32), "dcn.b"),
        numpy_helper.from_array(rng.normal(0, 0.3, (3, c, 1, 1)).astype(np.float32), "out.w"),
        numpy_helper.from_array(np.array([0, 3, 1, 2], np.int64), "perm_unused"),
        numpy_helper.from_array(np.array([1], np.int64), "sum_axes"),
    ]
    deform_domain, deform_op = ("", "DeformConv") if deform == "onnx" else ("hdm_deploy", "HdmDeformConv")
    deform_attrs = dict(
        kernel_shape=[3, 3], pads=[1, 1, 1, 1], strides=[1, 1], dilations=[1, 1], group=1, offset_group=1
    )
    if deform == "plugin":
        deform_attrs.update(plugin_version="1", plugin_namespace="hdm_deploy")
    nodes = [
        helper.make_node("Transpose", ["image"], ["nchw"], perm=[0, 3, 1, 2], name="node_transpose"),
        helper.make_node("Cast", ["nchw"], ["x01_255"], to=TensorProto.FLOAT, name="node_cast_in"),
        helper.make_node(
            "Constant",
            [],
            ["k255"],
            value=numpy_helper.from_array(np.array(1 / 255, np.float32)),
            name="node_k255",
        ),
        helper.make_node("Mul", ["x01_255", "k255"], ["x01"], name="node_scale"),
        _scoped(
            helper.make_node(
                "Conv", ["x01", "conv0.w", "conv0.b"], ["f0"], pads=[1, 1, 1, 1], name="node_conv0"
            ),
            "conv0/conv0.0",
        ),
        _scoped(helper.make_node("Relu", ["f0"], ["f1"], name="node_relu"), "conv0/conv0.1"),
        _scoped(
            helper.make_node("Conv", ["f1", "off.w"], ["offset"], pads=[1, 1, 1, 1], name="node_offconv"),
            "dcn_block/dcn_block.dcn/dcn_block.dcn.conv_offset_mask",
        ),
        _scoped(
            helper.make_node(
                deform_op,
                ["f1", "dcn.w", "offset", "dcn.b"],
                ["d"],
                domain=deform_domain,
                name="node_deform",
                **deform_attrs,
            ),
            "dcn_block/dcn_block.dcn/deform_conv2d",
        ),
        _scoped(
            helper.make_node("Sigmoid", ["d"], ["g"], name="node_sigmoid_kernel"),
            "drconv_phy/drconv_phy.conv_kernel/drconv_phy.conv_kernel.2",
        ),
        helper.make_node("Mul", ["g", "d"], ["gd"], name="node_gate"),
        _scoped(helper.make_node("Conv", ["gd", "out.w"], ["o"], name="node_out_conv"), "output/output.2"),
        _scoped(helper.make_node("Tanh", ["o"], ["enhanced"], name="node_tanh"), "output/output.3"),
    ]
    outputs = [helper.make_tensor_value_info("enhanced", TensorProto.FLOAT, ["N", 3, "H", "W"])]
    functions = []
    opsets = [helper.make_opsetid("", OPSET)]
    if with_function:
        nodes.insert(
            1,
            helper.make_node(
                FUNCTION_ID[1], ["nchw"], ["masks"], domain=FUNCTION_ID[0], name="node_DCPMasks_0"
            ),
        )
        outputs.append(helper.make_tensor_value_info("masks", TensorProto.FLOAT, ["N", 5, 1, "h", "w"]))
        functions.append(standin_function(OPSET))
        opsets.append(helper.make_opsetid(FUNCTION_ID[0], 1))
    if deform == "plugin":
        opsets.append(helper.make_opsetid("hdm_deploy", 1))
    graph = helper.make_graph(
        nodes,
        "hdm_like",
        [helper.make_tensor_value_info("image", TensorProto.UINT8, ["N", "H", "W", 3])],
        outputs,
        initializer=[i for i in inits if i.name not in ("perm_unused", "sum_axes")],
    )
    model = helper.make_model(graph, opset_imports=opsets, functions=functions, ir_version=10)
    model.metadata_props.add(key="model", value="hdm")
    model.metadata_props.add(key="flavour", value=deform)
    model.metadata_props.add(key="io", value="uint8")
    model.metadata_props.add(key="precision", value="fp32")
    return model


def random_frames(n: int = 1, h: int = 16, w: int = 16, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (n, h, w, 3), dtype=np.uint8)
