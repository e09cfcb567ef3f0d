"""The one stand-in for HDM's DCP masks in the tests: a torch function and an ONNX local function,
bit-identical to each other (export, FP16 and TensorRT-naming tests use it so that they exercise the
exporter and the passes, not the DCP implementation).

Region of a 4×4 block = interval of its mean dark channel (min over R, G, B, then /255) — not the dark
channel prior, but its contract: uint8 [N,3,H,W] → one-hot float32 [N,5,1,H/4,W/4]. The block sums are
of small integers and the mean's division by 16 is exact, so torch and ONNX Runtime agree bit for bit.
The ONNX body's nodes are named (``dcp_*``) like the real function's, for the TensorRT layer-name tests.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from hdm_deploy.core.contracts import DEFAULT_OPSET
from hdm_deploy.families.hdm.dcp import DCP_DOMAIN, DCP_FUNCTION
from hdm_deploy.families.hdm.dcp.export_op import DCPImpl

#: ``(domain, name)`` of the function, as the FP16 policy's ``fp32_functions`` takes it
FUNCTION_ID = (DCP_DOMAIN, DCP_FUNCTION)
#: lower and upper edges of regions 1…5 on the block's mean dark channel in [0, 1]
LOWER = (0.8, 0.6, 0.4, 0.2, -1.0)
UPPER = (2.0, 0.8, 0.6, 0.4, 0.2)


def standin_masks(images: torch.Tensor) -> torch.Tensor:
    dark = images.to(torch.float32).amin(dim=1, keepdim=True)  # [N,1,H,W], integers
    mean = F.avg_pool2d(dark, 4, 4) / 255  # exact block mean, then one rounding
    lo = torch.tensor(LOWER).view(1, 5, 1, 1)
    hi = torch.tensor(UPPER).view(1, 5, 1, 1)
    return ((mean >= lo) & (mean < hi)).to(torch.float32).unsqueeze(2)  # [N,5,1,h,w]


def standin_function(opset: int = DEFAULT_OPSET) -> onnx.FunctionProto:
    def const(name: str, value) -> onnx.NodeProto:
        return helper.make_node(
            "Constant", [], [name], value=numpy_helper.from_array(np.asarray(value)), name=f"dcp_{name}"
        )

    nodes = [
        helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT, name="dcp_cast"),
        *(  # ReduceMin takes its axes as an input from opset 18, as an attribute before
            [
                const("ax1", np.array([1], np.int64)),
                helper.make_node("ReduceMin", ["f", "ax1"], ["dark"], keepdims=1, name="dcp_min"),
            ]
            if opset >= 18
            else [helper.make_node("ReduceMin", ["f"], ["dark"], axes=[1], keepdims=1, name="dcp_min")]
        ),
        helper.make_node(
            "AveragePool", ["dark"], ["pooled"], kernel_shape=[4, 4], strides=[4, 4], name="dcp_pool"
        ),
        const("s255", np.array(255, np.float32)),
        helper.make_node("Div", ["pooled", "s255"], ["mean"], name="dcp_div"),
        const("lo", np.array(LOWER, np.float32).reshape(1, 5, 1, 1)),
        const("hi", np.array(UPPER, np.float32).reshape(1, 5, 1, 1)),
        helper.make_node("GreaterOrEqual", ["mean", "lo"], ["ge"], name="dcp_ge"),
        helper.make_node("Less", ["mean", "hi"], ["lt"], name="dcp_lt"),
        helper.make_node("And", ["ge", "lt"], ["inside"], name="dcp_and"),
        helper.make_node("Cast", ["inside"], ["mf"], to=TensorProto.FLOAT, name="dcp_castm"),
        const("ax2", np.array([2], np.int64)),
        helper.make_node("Unsqueeze", ["mf", "ax2"], ["masks"], name="dcp_unsq"),
    ]
    return helper.make_function(
        DCP_DOMAIN, DCP_FUNCTION, ["images"], ["masks"], nodes, [helper.make_opsetid("", opset)]
    )


STANDIN = DCPImpl("test-standin", standin_masks, lambda opset: [standin_function(opset)])
