"""ONNX ``DeformConv`` expressed with standard ops only, as a model-local function.

Each ``DeformConv`` node of a ``--deform decompose`` graph becomes a call to a function in domain
``hdm_deploy.deform`` whose name encodes the node's static configuration (strides, pads,
dilations, groups, offset groups, which optional inputs exist), e.g.
``DeformConv_s1x1_p1x1x1x1_d1x1_g1_og1_BM``. The call keeps DeformConv's inputs and attributes, so the
rewrite back to ``DeformConv`` (or to the plugin op) is exact; ``--inline-functions`` replaces the
calls by their bodies for parsers without local-function support (TensorRT < 9).

The body (per output pixel p and kernel tap k; DCNv2 semantics, identical to torchvision and to the
ONNX reference implementation):

    y = ho·sH − pH + i·dH + Δy[k, p],  x = wo·sW − pW + j·dW + Δx[k, p]
    v = Σ_corners bilinear weight · X[c, corner]  (corners outside the image read 0)
    cols[p, k, c] = v · mask[k, p]
    Y = cols @ W (per group) + B

using only Shape/Slice/Range/Reshape/Transpose/Unsqueeze/Expand/Concat, Cast, Floor, Add/Sub/Mul,
Greater/Less/And/Where, Max/Min, Gather (axis 0, row gather of a channels-last copy of X: no index
tensor as big as the feature map) and MatMul — all in TensorRT 8.5's ONNX parser.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto, helper

from hdm_deploy.core.contracts import DECOMPOSE_DOMAIN, DECOMPOSE_DOMAIN_VERSION, DECOMPOSE_NAME_PREFIX
from hdm_deploy.graph.ir_build import Builder, function_proto
from hdm_deploy.graph.onnx_io import OPSET

DOMAIN = DECOMPOSE_DOMAIN
DOMAIN_VERSION = DECOMPOSE_DOMAIN_VERSION
NAME_PREFIX = DECOMPOSE_NAME_PREFIX
#: DeformConv attributes (all optional in the standard); the call node may carry any of them.
ATTRIBUTES = ("dilations", "group", "kernel_shape", "offset_group", "pads", "strides")


def _ints(values: Sequence[int]) -> str:
    return "x".join(str(int(v)) for v in values)


@dataclass(frozen=True)
class DeformSpec:
    """The static configuration a decomposition body is specialised for (2-D only)."""

    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    group: int = 1
    offset_group: int = 1
    has_bias: bool = False
    has_mask: bool = False

    @classmethod
    def from_attrs(cls, attrs: Mapping[str, object], *, has_bias: bool, has_mask: bool) -> DeformSpec:
        """From DeformConv attribute values (defaults for the absent ones)."""
        return cls(
            strides=tuple(attrs.get("strides", (1, 1))),
            pads=tuple(attrs.get("pads", (0, 0, 0, 0))),
            dilations=tuple(attrs.get("dilations", (1, 1))),
            group=int(attrs.get("group", 1)),
            offset_group=int(attrs.get("offset_group", 1)),
            has_bias=has_bias,
            has_mask=has_mask,
        )

    @classmethod
    def from_node(cls, node: onnx.NodeProto) -> DeformSpec:
        attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        inputs = list(node.input) + [""] * (5 - len(node.input))
        return cls.from_attrs(attrs, has_bias=bool(inputs[3]), has_mask=bool(inputs[4]))

    @property
    def function_name(self) -> ir.Value:
        optional = ("B" if self.has_bias else "") + ("M" if self.has_mask else "")
        return (
            f"{NAME_PREFIX}s{_ints(self.strides)}_p{_ints(self.pads)}_d{_ints(self.dilations)}"
            f"_g{self.group}_og{self.offset_group}" + (f"_{optional}" if optional else "")
        )

    @property
    def input_names(self) -> list[str]:
        return ["X", "W", "offset"] + (["B"] if self.has_bias else []) + (["mask"] if self.has_mask else [])


def is_decomposed_call(node: onnx.NodeProto) -> bool:
    return node.domain == DOMAIN and node.op_type.startswith(NAME_PREFIX)


def build_function(spec: DeformSpec, opset: int = OPSET) -> onnx.FunctionProto:
    """:func:`decompose_function` as a FunctionProto."""
    return function_proto(decompose_function(spec, opset))


def decompose_function(spec: DeformSpec, opset: int = OPSET) -> ir.Function:
    """The function computing ``DeformConv`` for ``spec`` from standard ONNX ops (default-domain
    ``opset``: the model's, which local functions must match)."""
    if len(spec.strides) != 2 or len(spec.pads) != 4 or len(spec.dilations) != 2:
        raise ValueError(f"only 2-D DeformConv can be decomposed, got {spec}")
    b = Builder(opset, "d")
    args = {name: ir.Value(name=name) for name in spec.input_names}
    f32 = TensorProto.FLOAT
    sh, sw = spec.strides
    ph, pw = spec.pads[0], spec.pads[1]
    dh, dw = spec.dilations
    og, grp = spec.offset_group, spec.group

    def dim(shape: ir.Value, i: int) -> ir.Value:
        return b.op("Slice", shape, i64([i]), i64([i + 1]), name="dim")

    def scalar(v: ir.Value) -> ir.Value:
        return b.op("Squeeze", v, i64([0]))

    def i64(v) -> ir.Value:
        return b.const(v, np.int64, "c")

    def fconst(v: float) -> ir.Value:
        return b.const(v, np.float32, "f")

    sx, sk, so = b.op("Shape", args["X"]), b.op("Shape", args["W"]), b.op("Shape", args["offset"])
    n, c, h, w = (dim(sx, i) for i in range(4))
    cout, kh, kw = dim(sk, 0), dim(sk, 2), dim(sk, 3)
    ho, wo = dim(so, 2), dim(so, 3)
    taps = b.op("Mul", kh, kw, name="taps")
    cg = b.op("Div", c, i64([og]), name="cg")  # channels per offset group
    one_i, zero_i = i64(1), i64(0)

    def arange_f(count: ir.Value, step: int, start: int) -> ir.Value:
        r = b.op("Cast", b.op("Range", zero_i, scalar(count), one_i), to=f32)
        return b.op("Add", b.op("Mul", r, fconst(step)), fconst(start))

    # Integer-valued base coordinates (exact in float32) of every output pixel and kernel tap.
    ys = arange_f(ho, sh, -ph)  # [Ho]
    xs = arange_f(wo, sw, -pw)  # [Wo]
    ky, kx = arange_f(kh, dh, 0), arange_f(kw, dw, 0)  # [kH], [kW]
    khw = b.op("Concat", kh, kw, axis=0)
    tap_y = b.op("Reshape", b.op("Expand", b.op("Unsqueeze", ky, i64([1])), khw), i64([-1]))  # [K]
    tap_x = b.op("Reshape", b.op("Expand", b.op("Unsqueeze", kx, i64([0])), khw), i64([-1]))  # [K]
    base_y = b.op(
        "Unsqueeze",
        b.op("Add", b.op("Unsqueeze", ys, i64([1])), b.op("Unsqueeze", tap_y, i64([0]))),
        i64([1]),
    )  # [Ho,1,K]
    base_x = b.op("Add", b.op("Unsqueeze", xs, i64([1])), b.op("Unsqueeze", tap_x, i64([0])))  # [Wo,K]

    # offset [N, og·K·2, Ho, Wo] → [N, og, Ho, Wo, K, 2]; mask [N, og·K, Ho, Wo] → [N, og, Ho, Wo, K]
    og_c = i64([og])
    off = b.op("Reshape", args["offset"], b.op("Concat", n, og_c, taps, i64([2]), ho, wo, axis=0))
    off = b.op("Transpose", off, perm=[0, 1, 4, 5, 2, 3])
    dy = b.op("Gather", off, i64(0), axis=5)  # [N, og, Ho, Wo, K]
    dx = b.op("Gather", off, i64(1), axis=5)
    py = b.op("Add", base_y, dy, name="py")  # (h_in + i·dil) + Δy, the order torchvision adds in
    px = b.op("Add", base_x, dx, name="px")

    y0, x0 = b.op("Floor", py), b.op("Floor", px)
    ly, lx = b.op("Sub", py, y0), b.op("Sub", px, x0)
    one_f = fconst(1.0)
    hy, hx = b.op("Sub", one_f, ly), b.op("Sub", one_f, lx)
    y1, x1 = b.op("Add", y0, one_f), b.op("Add", x0, one_f)
    h_f = b.op("Cast", scalar(h), to=f32)
    w_f = b.op("Cast", scalar(w), to=f32)
    minus_one, zero_f = fconst(-1.0), fconst(0.0)
    hm1, wm1 = b.op("Sub", h_f, one_f), b.op("Sub", w_f, one_f)

    def inside(v: ir.Value, size: ir.Value) -> ir.Value:  # integer-valued v: 0 ≤ v ≤ size − 1
        return b.op("And", b.op("Greater", v, minus_one), b.op("Less", v, size))

    def clamp_index(v: ir.Value, hi: ir.Value) -> ir.Value:
        return b.op("Cast", b.op("Min", b.op("Max", v, zero_f), hi), to=TensorProto.INT64)

    # Row index of (sample, offset group, y, x) in the channels-last copy of X [N·og·H·W, C/og].
    ng = b.op(
        "Reshape",
        b.op("Range", zero_i, scalar(b.op("Mul", n, og_c)), one_i),
        b.op("Concat", n, og_c, i64([1, 1, 1]), axis=0),
    )
    plane = b.op("Mul", ng, scalar(h))  # [N, og, 1, 1, 1]
    w_i64 = scalar(w)
    xt = b.op("Reshape", args["X"], b.op("Concat", n, og_c, cg, i64([-1]), axis=0))  # [N, og, Cg, H·W]
    xt = b.op("Reshape", b.op("Transpose", xt, perm=[0, 1, 3, 2]), b.op("Concat", i64([-1]), cg, axis=0))

    vy = {0: inside(y0, h_f), 1: inside(y1, h_f)}
    vx = {0: inside(x0, w_f), 1: inside(x1, w_f)}
    iy = {0: clamp_index(y0, hm1), 1: clamp_index(y1, hm1)}
    ix = {0: clamp_index(x0, wm1), 1: clamp_index(x1, wm1)}
    wy = {0: hy, 1: ly}
    wx = {0: hx, 1: lx}
    value = None
    for cy, cx in ((0, 0), (0, 1), (1, 0), (1, 1)):  # torchvision's order: v1..v4
        weight = b.op("Mul", wy[cy], wx[cx])
        weight = b.op("Where", b.op("And", vy[cy], vx[cx]), weight, zero_f)
        row = b.op("Add", b.op("Mul", b.op("Add", plane, iy[cy]), w_i64), ix[cx])
        sample = b.op("Gather", xt, row, axis=0)  # [N, og, Ho, Wo, K, Cg]
        term = b.op("Mul", b.op("Unsqueeze", weight, i64([-1])), sample)
        value = term if value is None else b.op("Add", value, term)
    if spec.has_mask:
        m = b.op("Reshape", args["mask"], b.op("Concat", n, og_c, taps, ho, wo, axis=0))
        m = b.op("Transpose", m, perm=[0, 1, 3, 4, 2])
        value = b.op("Mul", value, b.op("Unsqueeze", m, i64([-1])))

    # Columns → per-group matrix product with the weights laid out as [(kh, kw, c_in), c_out].
    p_all = b.op("Mul", ho, wo)
    w_t = b.op("Transpose", args["W"], perm=[0, 2, 3, 1])  # [Cout, kH, kW, Cin/g]
    if og == 1 and grp == 1:
        cols = b.op("Reshape", value, b.op("Concat", n, p_all, i64([-1]), axis=0))  # [N, P, K·C]
        wm = b.op("Transpose", b.op("Reshape", w_t, b.op("Concat", cout, i64([-1]), axis=0)), perm=[1, 0])
        out = b.op("Transpose", b.op("MatMul", cols, wm), perm=[0, 2, 1])  # [N, Cout, P]
    else:
        value = b.op("Transpose", value, perm=[0, 2, 3, 4, 1, 5])  # [N, Ho, Wo, K, og, Cg]
        g_c = i64([grp])
        cols = b.op(
            "Reshape", value, b.op("Concat", n, p_all, taps, g_c, i64([-1]), axis=0)
        )  # [N,P,K,g,Cin/g]
        cols = b.op("Transpose", cols, perm=[0, 3, 1, 2, 4])
        cols = b.op("Reshape", cols, b.op("Concat", n, g_c, p_all, i64([-1]), axis=0))  # [N, g, P, K·Cin/g]
        per_group = b.op("Mul", taps, dim(sk, 1))  # K·Cin/g
        wm = b.op("Reshape", w_t, b.op("Concat", g_c, i64([-1]), per_group, axis=0))  # [g, Cout/g, K·Cin/g]
        wm = b.op("Transpose", wm, perm=[0, 2, 1])
        out = b.op("Transpose", b.op("MatMul", cols, wm), perm=[0, 1, 3, 2])  # [N, g, Cout/g, P]
    out_shape = b.op("Concat", n, cout, ho, wo, axis=0)
    if spec.has_bias:
        out = b.op("Reshape", out, out_shape)
        y = b.op("Add", out, b.op("Reshape", args["B"], i64([1, -1, 1, 1])), outputs=["Y"])
    else:
        y = b.op("Reshape", out, out_shape, outputs=["Y"])

    return b.function(
        DOMAIN,
        spec.function_name,
        list(args.values()),
        [y],
        attributes=ATTRIBUTES,
        doc_string=f"ONNX DeformConv (strides={list(spec.strides)}, pads={list(spec.pads)}, "
        f"dilations={list(spec.dilations)}, group={spec.group}, offset_group={spec.offset_group}) "
        "decomposed into standard ops by hdm-deploy.",
    )
