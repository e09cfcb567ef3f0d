"""A tiny stand-in for the DCP masks (torch + ONNX function, bit-identical to each other).

Region of a 4×4 block = interval of its mean channel sum (0…765) — not the dark channel prior, but
the same contract as ``hdm_deploy.dcp``: uint8 [N,3,H,W] → one-hot float32 [N,5,1,H/4,W/4].
All arithmetic is on small integers (exact in float32), so torch and ONNX Runtime agree exactly.
Export tests use it so that they exercise the exporter, not the DCP implementation.
"""

from __future__ import annotations

import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import TensorProto, helper, numpy_helper

from hdm_deploy.families.hdm.dcp.export_op import DCPImpl

#: lower edges of regions 1…5 on the block mean of R+G+B (0…765)
EDGES = (612.0, 459.0, 306.0, 153.0)


def standin_masks(images: torch.Tensor) -> torch.Tensor:
    s = F.avg_pool2d(images.to(torch.float32).sum(dim=1, keepdim=True), 4, 4)  # [N,1,h,w]
    ge = [(s >= e) for e in EDGES] + [torch.ones_like(s, dtype=torch.bool)]
    regions = [ge[0]] + [ge[i] & ~ge[i - 1] for i in range(1, 5)]
    return torch.stack(regions, dim=1).to(torch.float32)  # [N,5,1,h,w]


def standin_function(opset: int = 19) -> onnx.FunctionProto:
    def c(name, arr):
        return helper.make_node("Constant", [], [name], value=numpy_helper.from_array(np.asarray(arr)))

    nodes = [
        helper.make_node("Cast", ["images"], ["f"], to=TensorProto.FLOAT),
        c("ax1", np.array([1], np.int64)),
        helper.make_node("ReduceSum", ["f", "ax1"], ["s"], keepdims=1),
        helper.make_node("AveragePool", ["s"], ["m"], kernel_shape=[4, 4], strides=[4, 4]),
        c("lo", np.array([612, 459, 306, 153, -1], np.float32).reshape(1, 5, 1, 1)),
        c("hi", np.array([1e9, 612, 459, 306, 153], np.float32).reshape(1, 5, 1, 1)),
        helper.make_node("GreaterOrEqual", ["m", "lo"], ["ge"]),
        helper.make_node("Less", ["m", "hi"], ["lt"]),
        helper.make_node("And", ["ge", "lt"], ["inside"]),
        helper.make_node("Cast", ["inside"], ["mf"], to=TensorProto.FLOAT),
        c("ax2", np.array([2], np.int64)),
        helper.make_node("Unsqueeze", ["mf", "ax2"], ["masks"]),
    ]
    return helper.make_function(
        "hdm_deploy.dcp", "DCPMasks", ["images"], ["masks"], nodes, [helper.make_opsetid("", opset)]
    )


STANDIN = DCPImpl("test-standin", standin_masks, lambda opset: [standin_function(opset)])
