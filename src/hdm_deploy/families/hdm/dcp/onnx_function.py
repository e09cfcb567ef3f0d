"""DCP region masks as an ONNX model-local function (domain ``hdm_deploy.dcp``, name ``DCPMasks``).

Input ``images`` uint8 ``[N, 3, H, W]`` (any ``H, W ≥ 4``), output ``masks`` float32
``[N, 5, 1, H//4, W//4]``. The body mirrors :mod:`.torch_masks` node for node — the same float32
operations in the same order, the same exact integer formulations; only the erosions, exact in any
order, are organised differently (:func:`_erosions`) — so ONNX Runtime reproduces the
torch masks and transmission bit for bit, and both follow :mod:`.reference` (see there for the
algorithm and the defined degenerate cases).

Built for TensorRT 8.5's ONNX parser as well (JetPack 5.1):

* only ops its ``docs/operators.md`` (release/8.5-GA) lists as supported — ``tests/test_dcp_onnx.py``
  checks the set —, FP32 data throughout (int64 only for shapes and indices, which TensorRT casts to
  int32); no ``Mod``, ``NonZero``, ``Loop``; no data-dependent output shapes;
* ``TopK`` with a constant ``K`` (< 3840, from ``max_pixels``, default 3840×2160 → K = 519; see
  :func:`topk_for`): the flattened dc' is padded with ``−FLT_MAX`` up to ``K`` values and the dynamic
  rank ``⌈L/1000⌉`` is gathered from the sorted result;
* ``Slice`` axes and all window-operation starts/ends are constants; ``Pad`` only in constant (zeros) and
  edge modes (TensorRT's kFILL / kCLAMP); ``CumSum`` (constant axis, integer data) only in the default
  ``int_sums="cumsum"`` flavour: TensorRT imports CumSum as a loop, so export with
  ``int_sums="doubling"`` for TensorRT (identical results: the sums are exact either way);
* the only GEMMs (``Gemm``/``MatMul``) multiply integer pixels by Pillow's integer Lanczos weights split
  into parts of ≤ 11 significant bits: exact in FP32 and under TF32; the guided filters use no GEMM;
* reflect-101 borders are ``Gather``s of whole rows with indices computed from the shape (float32
  ``Floor`` instead of ``Mod``), valid for any size, including pads wider than the image;
* Pillow's pass order (:func:`.lanczos.vertical_first`), lengths divisible by 32 (no padding copy), by
  4 (exact tables) or neither (see below) are chosen with ``If`` nodes.

Opset: 19 by default (the project's), 17 or 18 on request (``ReduceMin/Max`` take ``axes`` as an
attribute before 18; nothing else differs). TensorRT 8.5 parses opsets ≤ 17, so export with
``opset=17`` for it, and keep these layers in FP32 (no FP16 for this subgraph: integer pixel sums up to
2^24 and the 1e-4 guided-filter eps need it).

ONNX Runtime CPU speed (issue 3 target: ≥ 2× the numpy reference at 1080p, ``benchmarks/bench_dcp.py``):
every ``Slice`` is a copy there and ``Gather``/``CumSum`` along the last axis are ~25× slower than along
axis 2, so window operations run along axis 2 (with one ``Transpose`` per box); the exact Lanczos passes
are one strided ``Conv`` each (see below); the two erosions share one ``MaxPool`` and a doubling chain.

Sizes that are not multiples of 4 (the exporter pads to multiples of 4, so only the standalone model
sees them): Pillow's coefficients then depend on ``W / (W//4)`` and are computed in the graph in
float32 (``Sin``), which can put a 22-bit weight one unit off Pillow's in rare taps; a ÷4 value then
differs by 1 in rare cases (measured 0.009 % of values; masks ≥ 99.99 % equal to the reference).
Multiples of 4 use Pillow's exact integer tables and are bit-exact.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from hdm_deploy.core.contracts import ir_version_for
from hdm_deploy.families.hdm.dcp import lanczos
from hdm_deploy.families.hdm.dcp.reference import (
    BINS,
    CENTER,
    CONSTANT_RTOL,
    GRAY_SHIFT,
    GRAY_WEIGHTS,
    LIGHT_BOX,
    LIGHT_EPS,
    LIGHT_ERODE,
    NUM_REGIONS,
    OMEGA,
    REFINE_BOX,
    REFINE_EPS,
    REGION_BOUNDS,
    TRANSMISSION_ERODE,
    box_window,
)

DOMAIN = "hdm_deploy.dcp"
FUNCTION = "DCPMasks"
#: TensorRT 8.5 needs TopK's K to be a constant below 3840.
TOPK_LIMIT = 3839
#: Default size bound of the function (sets the TopK constant): 3840 × 2160 pixels (K = 519). ORT's
#: TopK is ~2.5× cheaper for K ≤ ~520 than for K ≈ 1000 at 1080p; pass ``max_pixels`` for larger inputs.
DEFAULT_MAX_PIXELS = 7680 * 4320
#: Taps gathered per output in the general (not multiple of 4) Lanczos pass.
GENERAL_TAPS = 32
INT_MAX = np.iinfo(np.int64).max
FLOAT_LOWEST = float(np.finfo(np.float32).min)


class _Graph:
    """A tiny SSA node emitter; subgraphs (``If`` branches) share the name counter."""

    def __init__(
        self,
        opset: int,
        counter: itertools.count | None = None,
        prefix: str = "dcp",
        int_sums: str = "cumsum",
    ):
        self.opset = opset
        self.int_sums = int_sums
        self.nodes: list[onnx.NodeProto] = []
        self._counter = counter if counter is not None else itertools.count()
        self._prefix = prefix

    def fresh(self, hint: str) -> str:
        return f"{self._prefix}_{hint}_{next(self._counter)}"

    def op(
        self, op_type: str, *inputs: str, n_out: int = 1, name: str | None = None, **attrs
    ) -> str | list[str]:
        outs = [self.fresh(name or op_type.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op_type, list(inputs), outs, name=self.fresh(op_type), **attrs))
        return outs[0] if n_out == 1 else outs

    def const(self, value, dtype=np.float32, name: str = "c") -> str:
        arr = np.asarray(value, dtype=dtype)
        out = self.fresh(name)
        self.nodes.append(
            helper.make_node(
                "Constant", [], [out], name=self.fresh("Constant"), value=numpy_helper.from_array(arr, out)
            )
        )
        return out

    def ints(self, *values: int) -> str:
        return self.const(list(values), np.int64, "i")

    def f(self, value: float) -> str:
        return self.const(value, np.float32, "f")

    def sub(self) -> _Graph:
        return _Graph(self.opset, self._counter, self._prefix, self.int_sums)

    def to_graph(self, name: str, outputs: Sequence[str]) -> onnx.GraphProto:
        return helper.make_graph(
            self.nodes,
            self.fresh(name),
            [],
            [helper.make_tensor_value_info(o, TensorProto.FLOAT, None) for o in outputs],
        )

    # ---- opset-dependent helpers ----
    def reduce(self, op_type: str, x: str, axes: Sequence[int], keepdims: int = 1) -> str:
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, x, self.ints(*axes), keepdims=keepdims)
        return self.op(op_type, x, axes=list(axes), keepdims=keepdims)

    def slice(self, x: str, start: int, end: int, axis: int) -> str:
        return self.op("Slice", x, self.ints(start), self.ints(end), self.ints(axis))

    def slice_dyn(self, x: str, start: str, end: str, axis: int) -> str:
        return self.op("Slice", x, start, end, self.ints(axis))

    def if_(self, cond: str, then: _Graph, then_out: str, other: _Graph, other_out: str) -> str:
        return self.op(
            "If",
            cond,
            then_branch=then.to_graph("then", [then_out]),
            else_branch=other.to_graph("else", [other_out]),
        )


# ---- exact Lanczos ÷4 ------------------------------------------------------------------------------------------
#
# A pass along axis 3 computes, per output, Sh = Σ px·KH and Sl = Σ px·KL (K = KH·2^10 + KL, KL ≥ 0) and
# Pillow's clip((2^21 + 2^10·Sh + Sl) >> 22) as  clip(Round((Sh + ½ + floor(Sl/2^10)) · 2^-12)):
#   * floor(Sl/2^10) = Round(Sl/2^10 − ½ + 2^-11) (no ties: Sl/2^10 lies on the 2^-10 grid);
#   * Sh + ½ + floor(...) is an integer plus ½, so Round(· 2^-12) never ties either, and equals
#     floor((Sh + floor(Sl/2^10) + 2^11) / 2^12) = floor((2^10·Sh + Sl + 2^21) / 2^22).
# The ½ and −½ + 2^-11 are the Conv biases; the hi weights are the integers KH (< 2^11) and the lo weights
# KL · 2^-10 (10-bit mantissas): every partial sum (bias included) is exact in float32, in any order,
# and the products are exact under TF32 too.
#
# Lengths that are multiples of 4 (scale exactly 4) use one strided Conv: a step of 32 input samples
# yields 8 outputs (phases q = 0…7, output 8j + q reads the 24 taps 32j − 10 + 4q + t), as 16 output
# channels (hi of the 8 phases, then lo), kernel 52 = 4·7 + 24 taps, zero padding 10 / 38 (so that
# ⌈n/32⌉ steps come out). ONNX Runtime runs it as a direct (NCHWc) convolution: 104 multiply-adds per
# output, no im2col, no block shifts. The phases are interleaved back by one Transpose of the (4×
# smaller) result. The 3 outputs at each end, whose kernels Pillow renormalises, are recomputed from
# 24 gathered taps with their border-class kernels (:func:`.lanczos.scale4_class_table`).


_LO = 2.0**-lanczos.SPLIT_BITS  # lo weights are KL · 2^-10
_BIAS_HI = 0.5
_BIAS_LO = -0.5 + 2.0**-11
#: Outputs per step of the ÷4 Conv, its stride, taps and zero padding (before, after).
CONV_PHASES = 8
CONV_STRIDE = 4 * CONV_PHASES
CONV_TAPS = 4 * (CONV_PHASES - 1) + lanczos.TAPS4
CONV_PADS = (10, 38)
#: Conv bias of the hi parts: ``2^21 >> 10`` (the rounding offset of Pillow's ``>> 22``).
_CONV_BIAS_HI = 2.0**11
#: Tap ``t`` of output ``xx`` (exact ÷4) is input sample ``4·xx + t − TAP_OFFSET``.
TAP_OFFSET = 10
#: Samples at each end that the border outputs read.
BLOCK = 32


@functools.lru_cache(maxsize=1)
def _conv_tables() -> tuple[np.ndarray, np.ndarray]:
    """Weights [16, 52] (rows: hi of phases 0…7, then lo; columns: taps of one step) and biases [16]."""
    hi, lo = lanczos.split(lanczos.scale4_class_table()[3, 3])
    w = np.zeros((2 * CONV_PHASES, CONV_TAPS))
    for q in range(CONV_PHASES):
        w[q, 4 * q : 4 * q + lanczos.TAPS4] = hi
        w[CONV_PHASES + q, 4 * q : 4 * q + lanczos.TAPS4] = lo * _LO
    bias = np.r_[np.full(CONV_PHASES, _CONV_BIAS_HI), np.zeros(CONV_PHASES)]
    return w.astype(np.float32), bias.astype(np.float32)


#: [16, 8]: output q = 2^-12 · (hi part q + lo part q) (exact: multiples of 2^-12 below 2^9).
_COMBINE = (np.vstack([np.eye(CONV_PHASES), np.eye(CONV_PHASES)]) * 2.0**-12).astype(np.float32)


@functools.lru_cache(maxsize=1)
def _class_tables() -> tuple[np.ndarray, np.ndarray]:
    """hi [16, 24] and lo·2^-10 [16, 24] kernels of the 16 border classes (index ``4·left + right``)."""
    hi, lo = lanczos.split(lanczos.scale4_class_table().reshape(16, lanczos.TAPS4))
    return hi.astype(np.float32), (lo * _LO).astype(np.float32)


def _round_parts(g: _Graph, u: str, w: str) -> str:
    """``clip(Round((u + Round(w)) · 2^-12), 0, 255)`` (biases already in u and w; see above)."""
    z = g.op("Mul", g.op("Add", u, g.op("Round", w)), g.f(2.0**-12))
    return g.op("Clip", g.op("Round", z), g.f(0.0), g.f(255.0))


@functools.lru_cache(maxsize=1)
def _end_tables() -> np.ndarray:
    """Weights [6, 64, 12] of the border outputs of an exact ÷4 pass, for ``out = 1 … 5`` and ``out ≥ 6``.

    Rows: the first 32 samples (zeros past the end) and the last 32 (zeros before the start); columns: hi
    (0–5) and lo·2^-10 (6–11) of the outputs ``clip([0, 1, 2, out−3, out−2, out−1], 0, out−1)``.
    Below ``out = 6`` every tap lies in the first block; from 6 on, the kernels (border classes) and the
    positions relative to each end no longer depend on ``out``.
    """
    table = lanczos.scale4_class_table()
    tables = np.zeros((6, 2 * BLOCK, 12))
    for out in range(1, 7):
        pos = np.clip(np.array([0, 1, 2, out - 3, out - 2, out - 1]), 0, out - 1)
        for i, p in enumerate(pos):
            khi, klo = lanczos.split(table[min(p, 3), min(out - 1 - p, 3)])
            right = out == 6 and i >= 3
            base = 4 * (p - out) + BLOCK + BLOCK - TAP_OFFSET if right else 4 * p - TAP_OFFSET
            for tap in range(lanczos.TAPS4):
                row = base + tap
                if (BLOCK if right else 0) <= row < (2 * BLOCK if right else BLOCK):
                    tables[out - 1, row, i] = khi[tap]
                    tables[out - 1, row, 6 + i] = klo[tap] * _LO
                else:
                    assert khi[tap] == 0 and klo[tap] == 0  # outside the image: zero weight
    return tables.astype(np.float32)


def _border4(g: _Graph, x: str, axis: int, n: str, out: str) -> str:
    """The 6 border outputs (see :func:`_end_tables`) of an exact ÷4 pass along ``axis``."""
    fill = g.op("Sub", g.ints(BLOCK), g.op("Min", n, g.ints(BLOCK)))
    zeros = g.ints(0, 0, 0) if axis == 3 else g.ints(0, 0)
    tail = g.ints() if axis == 3 else g.ints(0)
    first = g.op(
        "Pad", g.slice(x, 0, BLOCK, axis), g.op("Concat", zeros, g.ints(0), tail, zeros, fill, tail, axis=0)
    )
    last = g.op(
        "Pad",
        g.slice(x, -BLOCK, INT_MAX, axis),
        g.op("Concat", zeros, fill, tail, zeros, g.ints(0), tail, axis=0),
    )
    ends = g.op("Concat", first, last, axis=axis)
    which = g.op("Sub", g.op("Min", out, g.ints(6)), g.ints(1))
    weights = g.op("Squeeze", g.op("Gather", g.const(_end_tables()), which, axis=0), g.ints(0))  # [64, 12]
    bias = np.r_[np.full(6, _BIAS_HI), np.full(6, _BIAS_LO)].astype(np.float32)
    if axis == 3:
        sums = g.op("Add", g.op("MatMul", ends, weights), g.const(bias))
    else:
        sums = g.op(
            "Add", g.op("MatMul", g.op("Transpose", weights, perm=[1, 0]), ends), g.const(bias[:, None])
        )
    return _round_parts(g, g.slice(sums, 0, 6, axis), g.slice(sums, 6, 12, axis))


def _resample4(g: _Graph, x: str, axis: int) -> str:
    """Exact Pillow pass along ``axis`` (3: width, 2: height) when its length ``n`` is ``4·out``."""
    n = g.op("Shape", x, start=axis, end=axis + 1)
    out = g.op("Div", n, g.ints(4))
    lead = g.op("Shape", x, start=0, end=2)  # N, C
    x1 = g.op("Reshape", x, g.op("Concat", g.ints(-1, 1), g.op("Shape", x, start=2, end=4), axis=0))
    w, bias = _conv_tables()
    before, after = CONV_PADS
    if axis == 3:
        kernel, strides, pads = w[:, None, None, :], [1, CONV_STRIDE], [0, before, 0, after]
    else:
        kernel, strides, pads = w[:, None, :, None], [CONV_STRIDE, 1], [before, 0, after, 0]
    y = g.op("Conv", x1, g.const(kernel), g.const(bias), strides=strides, pads=pads)  # [NC, 16, ., .]
    if axis == 3:  # channels last: [NC, H, M, 16] (ONNX Runtime folds this Transpose into its NCHWc reorder)
        y = g.op("Transpose", y, perm=[0, 2, 3, 1])
        r = g.op("MatMul", g.op("Floor", y), g.const(_COMBINE))  # [NC, H, M, 8]
        shape = g.op("Concat", lead, g.op("Shape", x, start=2, end=3), g.ints(-1), axis=0)
    else:  # [NC, 16, M, W] → [NC, 2, 8, M, W] → sum of the two parts → [NC, M, 8, W]
        split = g.op("Concat", g.ints(0, 2, CONV_PHASES, -1), g.op("Shape", y, start=3, end=4), axis=0)
        y = g.op("Floor", g.op("Reshape", y, split))
        r = g.op("Mul", g.reduce("ReduceSum", y, [1], keepdims=0), g.f(2.0**-12))
        r = g.op("Transpose", r, perm=[0, 2, 1, 3])
        shape = g.op("Concat", lead, g.ints(-1), g.op("Shape", x, start=3, end=4), axis=0)
    r = g.op("Clip", g.op("Floor", r), g.f(0.0), g.f(255.0))
    interior = g.op("Reshape", r, shape)
    border = _border4(g, x, axis, n, out)
    three = g.ints(3)
    a = g.op("Min", out, three)
    c = g.op("Max", g.op("Sub", out, three), three)
    d = g.op("Add", three, g.op("Max", g.op("Sub", g.ints(6), out), g.ints(0)))
    return g.op(
        "Concat",
        g.slice_dyn(border, g.ints(0), a, axis),
        g.slice_dyn(interior, three, c, axis),
        g.slice_dyn(border, d, g.ints(6), axis),
        axis=axis,
    )


def _sinc(g: _Graph, z: str) -> str:
    pz = g.op("Mul", z, g.f(math.pi))
    zero = g.op("Equal", z, g.f(0.0))
    safe = g.op("Where", zero, g.f(1.0), pz)
    return g.op("Where", zero, g.f(1.0), g.op("Div", g.op("Sin", safe), safe))


def _resample_general(g: _Graph, x: str, axis: int) -> str:
    """Pillow pass along ``axis`` for any length, coefficients computed in float32 (see the module docstring)."""
    if axis == 3:
        return g.op("Transpose", _resample_general(g, g.op("Transpose", x, perm=PERM), 2), perm=PERM)
    n = g.op("Shape", x, start=2, end=3)
    out = g.op("Div", n, g.ints(4))
    nf = g.op("Cast", n, to=TensorProto.FLOAT)
    scale = g.op("Div", nf, g.op("Cast", out, to=TensorProto.FLOAT))
    support = g.op("Mul", scale, g.f(lanczos.SUPPORT))
    inv = g.op("Div", g.f(1.0), scale)
    count = g.op("Squeeze", out, g.ints(0))
    xx = g.op("Cast", g.op("Range", g.const(0, np.int64), count, g.const(1, np.int64)), to=TensorProto.FLOAT)
    center = g.op("Mul", g.op("Add", xx, g.f(0.5)), scale)  # [out]
    xmin = g.op("Max", g.op("Floor", g.op("Add", g.op("Sub", center, support), g.f(0.5))), g.f(0.0))
    xmax = g.op("Min", g.op("Floor", g.op("Add", g.op("Add", center, support), g.f(0.5))), nf)

    def col(v: str) -> str:
        return g.op("Unsqueeze", v, g.ints(1))

    pos = g.op("Add", col(xmin), g.const(np.arange(GENERAL_TAPS, dtype=np.float32)[None, :]))  # [out, T]
    arg = g.op("Mul", g.op("Add", g.op("Sub", pos, col(center)), g.f(0.5)), inv)
    inside = g.op(
        "And",
        g.op("Less", pos, col(xmax)),
        g.op("And", g.op("GreaterOrEqual", arg, g.f(-3.0)), g.op("Less", arg, g.f(3.0))),
    )
    weight = g.op("Where", inside, g.op("Mul", _sinc(g, arg), _sinc(g, g.op("Div", arg, g.f(3.0)))), g.f(0.0))
    total = g.reduce("ReduceSum", weight, [1], keepdims=1)
    k = g.op("Mul", g.op("Div", weight, total), g.f(float(1 << lanczos.PRECISION_BITS)))
    fixed = g.op("Mul", g.op("Sign", k), g.op("Floor", g.op("Add", g.op("Abs", k), g.f(0.5))))
    hi = g.op("Floor", g.op("Mul", fixed, g.f(_LO)))
    lo = g.op("Mul", g.op("Sub", fixed, g.op("Mul", hi, g.f(float(1 << lanczos.SPLIT_BITS)))), g.f(_LO))
    index = g.op("Cast", g.op("Min", pos, g.op("Sub", nf, g.f(1.0))), to=TensorProto.INT64)
    gathered = g.op("Gather", x, g.op("Reshape", index, g.ints(-1)), axis=2)  # whole rows: fast
    gathered = g.op(
        "Reshape",
        gathered,
        g.op("Concat", g.op("Shape", x, start=0, end=2), out, g.ints(GENERAL_TAPS, -1), axis=0),
    )

    def weighted(wt: str) -> str:
        return g.reduce("ReduceSum", g.op("Mul", gathered, g.op("Unsqueeze", wt, g.ints(2))), [3], keepdims=0)

    return _round_parts(g, g.op("Add", weighted(hi), g.f(_BIAS_HI)), g.op("Add", weighted(lo), g.f(_BIAS_LO)))


def _resample(g: _Graph, x: str, axis: int) -> str:
    """One Pillow pass along ``axis``: ``If`` n % 4 == 0 (exact tables, one Conv), else float32 coefficients."""
    n = g.op("Shape", x, start=axis, end=axis + 1)
    is4 = g.op("Squeeze", g.op("Equal", g.op("Mul", g.op("Div", n, g.ints(4)), g.ints(4)), n), g.ints(0))
    exact = g.sub()
    exact_out = _resample4(exact, x, axis)
    general = g.sub()
    general_out = _resample_general(general, x, axis)
    return g.if_(is4, exact, exact_out, general, general_out)


def _downscale4(g: _Graph, x: str) -> str:
    """Mirror of :func:`.torch_masks.downscale4` (Pillow 13 pass order as an ``If``)."""
    h = g.op("Shape", x, start=2, end=3)
    w = g.op("Shape", x, start=3, end=4)
    four = g.ints(4)
    lhs = g.op("Sub", h, g.op("Div", h, four))
    rhs = g.op("Mul", g.op("Sub", w, g.op("Div", w, four)), g.ints(2))
    cond = g.op("Squeeze", g.op("Greater", lhs, rhs), g.ints(0))
    vertical = g.sub()
    v_out = _resample(vertical, _resample(vertical, x, 2), 3)
    horizontal = g.sub()
    h_out = _resample(horizontal, _resample(horizontal, x, 3), 2)
    return g.if_(cond, vertical, v_out, horizontal, h_out)


PERM = [0, 1, 3, 2]


# ---- window operations -----------------------------------------------------------------------------------------


def _axis_len(g: _Graph, x: str, axis: int) -> str:
    return g.op("Shape", x, start=axis, end=axis + 1)


def _reflect_gather(g: _Graph, x: str, before: int, after: int, axis: int = 2) -> str:
    """Reflect-101 padding by gathering whole rows (repeated reflection, period 2(n−1); n = 1 maps to 0)."""
    n = _axis_len(g, x, axis)
    q = g.op(
        "Range",
        g.const(-before, np.int64),
        g.op("Squeeze", g.op("Add", n, g.ints(after)), g.ints(0)),
        g.const(1, np.int64),
    )
    qf = g.op("Cast", q, to=TensorProto.FLOAT)
    nf = g.op("Cast", n, to=TensorProto.FLOAT)
    period = g.op("Max", g.op("Mul", g.op("Sub", nf, g.f(1.0)), g.f(2.0)), g.f(1.0))
    qm = g.op("Sub", qf, g.op("Mul", period, g.op("Floor", g.op("Div", qf, period))))
    idx = g.op("Where", g.op("Less", qm, nf), qm, g.op("Sub", period, qm))
    idx = g.op("Where", g.op("Equal", nf, g.f(1.0)), g.f(0.0), idx)
    return g.op("Gather", x, g.op("Cast", idx, to=TensorProto.INT64), axis=axis)


def _max_pool_axis(g: _Graph, x: str, k: int, axis: int, pad: int = 0) -> str:
    kernel, pads = ([1, k], [0, pad, 0, pad]) if axis == 3 else ([k, 1], [pad, 0, pad, 0])
    return g.op("MaxPool", x, kernel_shape=kernel, pads=pads)


def _erosions(g: _Graph, dark: str) -> tuple[str, str]:
    """The LIGHT_ERODE² and TRANSMISSION_ERODE² erosions of ``dark``, sharing their work.

    Erosion is exact in any order, so this need not mirror :func:`.torch_masks.erode` op for op. On the
    negated map, a ``MaxPool`` (padding ignored: OpenCV's border rule) gives the small window along W in
    one node; the large one extends that window from an edge-padded copy by doubling (15 → 30 → 60 →
    120 → 223): 30 nodes instead of ~80 ``Slice``/``Min`` pairs, the cheaper for ONNX Runtime and TensorRT.
    """
    big, small = LIGHT_ERODE, TRANSMISSION_ERODE
    r = big // 2

    def extend(m: str, axis: int) -> str:
        window = small
        while 2 * window <= big:
            m = g.op("Max", g.slice(m, 0, -window, axis), g.slice(m, window, INT_MAX, axis))
            window *= 2
        shift = big - window
        return g.op("Max", g.slice(m, 0, -shift, axis), g.slice(m, shift, INT_MAX, axis)) if shift else m

    def padded_pool(
        x: str, axis: int
    ) -> str:  # window `small` over x edge-padded by r: length n + 2r − small + 1
        pads = [0] * 8
        pads[axis] = pads[axis + 4] = r
        return _max_pool_axis(g, g.op("Pad", x, g.ints(*pads), mode="edge"), small, axis)

    neg = g.op("Neg", dark)
    pooled_w = padded_pool(neg, 3)
    inset = r - small // 2
    small_w = g.slice(pooled_w, inset, -inset, 3)
    small_hw = _max_pool_axis(g, small_w, small, 2, pad=small // 2)
    big_hw = extend(padded_pool(extend(pooled_w, 3), 2), 2)
    return g.op("Neg", big_hw), g.op("Neg", small_hw)


def _window_sum(g: _Graph, x: str, k: int, axis: int = 2) -> str:
    """Mirror of :func:`.torch_masks.window_sum` (same levels, same add order)."""
    levels = {1: x}
    p = 1
    while 2 * p <= k:
        s = levels[p]
        levels[2 * p] = g.op("Add", g.slice(s, 0, -p, axis), g.slice(s, p, INT_MAX, axis))
        p *= 2
    acc = None
    offset = 0
    for bit in sorted(levels, reverse=True):
        if k & bit:
            shortfall = k - offset - bit  # the level is this much longer than the output, past the window
            part = g.slice(levels[bit], offset, -shortfall if shortfall else INT_MAX, axis)
            acc = part if acc is None else g.op("Add", acc, part)
            offset += bit
    assert acc is not None
    return acc


def _box_mean_t(g: _Graph, xt: str, k: int) -> str:
    """Mirror of :func:`.torch_masks.box_mean` for maps given TRANSPOSED ([N, M, w, h]); returns [N, M, h, w]."""
    before, after = box_window(k)
    rows = _window_sum(g, _reflect_gather(g, xt, before, after), k)  # along W
    cols = _window_sum(g, _reflect_gather(g, g.op("Transpose", rows, perm=PERM), before, after), k)  # along H
    return g.op("Mul", cols, g.f(np.float32(1.0 / (k * k))))


def _box_sum_int_t(g: _Graph, x: str, k: int) -> str:
    """Mirror of :func:`.torch_masks.box_sum_int` for [N, M, h, w]; returns the sums TRANSPOSED [N, M, w, h].

    Exact integer sums either way: ``CumSum`` differences (``int_sums="cumsum"``, fastest in ONNX
    Runtime) or doubling (``"doubling"``, for TensorRT, whose CumSum is a loop); identical results.
    """
    before, after = box_window(k)
    y = g.op("Sub", x, g.f(CENTER))
    for step in range(2):
        if g.int_sums == "cumsum":
            c = g.op("CumSum", _reflect_gather(g, y, before + 1, after), g.const(2, np.int64))
            y = g.op("Sub", g.slice(c, k, INT_MAX, 2), g.slice(c, 0, -k, 2))
        else:
            y = _window_sum(g, _reflect_gather(g, y, before, after), k)
        if step == 0:
            y = g.op("Transpose", y, perm=PERM)
    return g.op("Add", y, g.f(CENTER * k * k))


def _split_bytes(g: _Graph, x: str) -> tuple[str, str]:
    hi = g.op("Floor", g.op("Mul", x, g.f(1.0 / 256.0)))
    return hi, g.op("Sub", x, g.op("Mul", hi, g.f(256.0)))


def _split1(g: _Graph, x: str, count: int) -> list[str]:
    return [g.slice(x, i, i + 1, 1) for i in range(count)]


def _integer_moments_t(g: _Graph, i: str, p: str, k: int) -> list[str]:
    """Mirror of :func:`.torch_masks.integer_moments` ([N,1,h,w] maps); the means come out TRANSPOSED."""
    ip_hi, ip_lo = _split_bytes(g, g.op("Mul", i, p))
    ii_hi, ii_lo = _split_bytes(g, g.op("Mul", i, i))
    sums = _box_sum_int_t(g, g.op("Concat", i, p, ip_hi, ip_lo, ii_hi, ii_lo, axis=1), k)
    s_i, s_p, s_iph, s_ipl, s_iih, s_iil = _split1(g, sums, 6)
    c1 = g.f(np.float32(1.0 / (255.0 * k * k)))
    c2 = g.f(np.float32(1.0 / (255.0 * 255.0 * k * k)))
    c256 = g.f(256.0)
    return [
        g.op("Mul", s_i, c1),
        g.op("Mul", s_p, c1),
        g.op("Mul", g.op("Add", g.op("Mul", s_iph, c256), s_ipl), c2),
        g.op("Mul", g.op("Add", g.op("Mul", s_iih, c256), s_iil), c2),
    ]


def _finish_guided(g: _Graph, a: str, b: str, guide: str, k: int) -> str:
    mean_a, mean_b = _split1(g, _box_mean_t(g, g.op("Concat", a, b, axis=1), k), 2)
    return g.op("Add", g.op("Mul", mean_a, g.op("Div", guide, g.f(255.0))), mean_b)


def _refined_dark_channel(g: _Graph, dark: str, eroded: str) -> str:
    mean_i, mean_p, mean_ip, mean_ii = _integer_moments_t(g, dark, eroded, LIGHT_BOX)
    cov = g.op("Sub", mean_ip, g.op("Mul", mean_i, mean_p))
    var = g.op("Sub", mean_ii, g.op("Mul", mean_i, mean_i))
    a = g.op("Div", cov, g.op("Add", var, g.f(LIGHT_EPS)))
    b = g.op("Sub", mean_p, g.op("Mul", a, mean_i))
    return _finish_guided(g, a, b, dark, LIGHT_BOX)


def _refined_transmission(g: _Graph, gray: str, eroded: str, light: str) -> str:
    mean_g, mean_e, mean_ge, mean_gg = _integer_moments_t(g, gray, eroded, REFINE_BOX)
    mean_p = g.op("Sub", g.f(1.0), g.op("Mul", g.op("Div", mean_e, light), g.f(OMEGA)))
    cov = g.op("Mul", g.op("Div", g.op("Sub", g.op("Mul", mean_g, mean_e), mean_ge), light), g.f(OMEGA))
    var = g.op("Sub", mean_gg, g.op("Mul", mean_g, mean_g))
    a = g.op("Div", cov, g.op("Add", var, g.f(REFINE_EPS)))
    b = g.op("Sub", mean_p, g.op("Mul", a, mean_g))
    return _finish_guided(g, a, b, gray, REFINE_BOX)


def _near_constant(g: _Graph, lo: str, hi: str) -> str:
    scale = g.op("Max", g.op("Max", g.op("Abs", lo), g.op("Abs", hi)), g.f(1.0))
    return g.op("LessOrEqual", g.op("Sub", hi, lo), g.op("Mul", scale, g.f(CONSTANT_RTOL)))


def _light_threshold(g: _Graph, refined: str, topk: int) -> str:
    """Mirror of :func:`.torch_masks.light_threshold`; returns [N, 1, 1, 1]."""
    flat = g.op("Reshape", refined, g.ints(0, -1))  # [N, L]
    length = g.op("Shape", flat, start=1, end=2)
    rank = g.op("Div", g.op("Add", length, g.ints(999)), g.ints(1000))  # ⌈L/1000⌉ = N − ⌊999·N/1000⌋
    batch = g.op("Shape", flat, start=0, end=1)
    filler = g.op("Expand", g.const([[FLOAT_LOWEST]]), g.op("Concat", batch, g.ints(topk), axis=0))
    values, _ = g.op(
        "TopK", g.op("Concat", flat, filler, axis=1), g.ints(topk), n_out=2, axis=1, largest=1, sorted=1
    )
    # Ranks beyond TopK's reach (inputs above max_pixels) read its last value; see dcp_function.
    last = g.op("Min", g.op("Sub", rank, g.ints(1)), g.ints(topk - 1))
    v = g.op("Gather", values, last, axis=1)  # [N, 1]
    lo = g.reduce("ReduceMin", flat, [1])
    hi = g.reduce("ReduceMax", flat, [1])
    constant = _near_constant(g, lo, hi)
    same = g.op("Equal", lo, hi)
    lo2 = g.op("Where", same, g.op("Sub", lo, g.f(0.5)), lo)
    hi2 = g.op("Where", same, g.op("Add", hi, g.f(0.5)), hi)
    step = g.op("Div", g.op("Sub", hi2, lo2), g.f(float(BINS)))
    edges = g.op("Add", g.op("Mul", g.const(np.arange(BINS, dtype=np.float32)[None, :]), step), lo2)
    count = g.op(
        "Add",
        g.reduce("ReduceSum", g.op("Cast", g.op("LessOrEqual", edges, v), to=TensorProto.FLOAT), [1]),
        g.op("Cast", g.op("LessOrEqual", hi2, v), to=TensorProto.FLOAT),
    )
    lmax = g.op("Clip", g.op("Sub", count, g.f(2.0)), g.f(1.0), g.f(float(BINS - 2)))
    threshold = g.op("Where", constant, lo, g.op("Add", g.op("Mul", lmax, step), lo2))
    return g.op("Reshape", threshold, g.ints(-1, 1, 1, 1))


def _body(g: _Graph, images: str, topk: int) -> dict[str, str]:
    """All nodes of the computation; returns the names of masks and diagnostics."""
    x = g.op("Cast", images, to=TensorProto.FLOAT)
    small = _downscale4(g, x)
    r, gr, b = _split1(g, small, 3)
    dark = g.op("Min", g.op("Min", r, gr), b)
    brightness = g.op("Add", g.op("Add", r, gr), b)

    eroded_light, eroded_transmission = _erosions(g, dark)
    refined = _refined_dark_channel(g, dark, eroded_light)
    threshold = _light_threshold(g, refined, topk)
    selected = g.op("GreaterOrEqual", refined, threshold)
    peak = g.reduce("ReduceMax", g.op("Where", selected, brightness, g.f(-1.0)), [1, 2, 3])
    light = g.op("Div", g.op("Max", peak, g.f(1.0)), g.f(765.0))

    gray_sum = g.op(
        "Add",
        g.op("Add", g.op("Mul", r, g.f(GRAY_WEIGHTS[0])), g.op("Mul", gr, g.f(GRAY_WEIGHTS[1]))),
        g.op("Add", g.op("Mul", b, g.f(GRAY_WEIGHTS[2])), g.f(float(2 ** (GRAY_SHIFT - 1)))),
    )
    gray = g.op("Floor", g.op("Mul", gray_sum, g.f(2.0**-GRAY_SHIFT)))
    t = _refined_transmission(g, gray, eroded_transmission, light)

    t_min = g.reduce("ReduceMin", t, [1, 2, 3])
    t_max = g.reduce("ReduceMax", t, [1, 2, 3])
    constant = _near_constant(g, t_min, t_max)
    denom = g.op("Where", constant, g.f(1.0), g.op("Sub", t_max, t_min))
    tn = g.op("Div", g.op("Sub", t, t_min), denom)
    above = None
    for bound in REGION_BOUNDS:
        hit = g.op("Cast", g.op("GreaterOrEqual", tn, g.f(bound)), to=TensorProto.FLOAT)
        above = hit if above is None else g.op("Add", above, hit)
    regions = g.op("Where", constant, g.f(0.0), g.op("Sub", g.f(float(NUM_REGIONS - 1)), above))
    onehot = g.op("Equal", regions, g.const(np.arange(NUM_REGIONS, dtype=np.float32).reshape(1, -1, 1, 1)))
    masks = g.op("Unsqueeze", g.op("Cast", onehot, to=TensorProto.FLOAT), g.ints(2))
    return {
        "masks": masks,
        "transmission": t,
        "atmospheric_light": light,
        "light_threshold": threshold,
        "small": small,
        "refined_dark_channel": refined,
    }


# ---- public API -------------------------------------------------------------------------------------------------


def _check_opset(opset: int) -> None:
    if not 17 <= opset <= 19:
        raise ValueError(f"opset must be 17, 18 or 19, got {opset}")


def topk_for(max_pixels: int) -> int:
    """TopK constant for inputs of up to ``max_pixels`` pixels: ``⌈(max_pixels/16)/1000⌉`` (TensorRT: < 3840)."""
    k = max(1, -(-(max_pixels // 16) // 1000))
    if k > TOPK_LIMIT:
        raise ValueError(
            f"max_pixels={max_pixels} needs TopK K={k}, above TensorRT's limit {TOPK_LIMIT}: "
            f"at most {TOPK_LIMIT * 16000} pixels are supported"
        )
    return k


#: How the exact integer window sums are formed: "cumsum" (ONNX Runtime) or "doubling" (TensorRT).
INT_SUMS = ("cumsum", "doubling")


def _check_int_sums(int_sums: str) -> None:
    if int_sums not in INT_SUMS:
        raise ValueError(f"int_sums must be one of {INT_SUMS}, got {int_sums!r}")


@functools.lru_cache(maxsize=8)
def _function(opset: int, max_pixels: int, int_sums: str) -> onnx.FunctionProto:
    g = _Graph(opset, int_sums=int_sums)
    outs = _body(g, "images", topk_for(max_pixels))
    g.nodes.append(helper.make_node("Identity", [outs["masks"]], ["masks"], name=g.fresh("Identity")))
    return helper.make_function(
        DOMAIN,
        FUNCTION,
        ["images"],
        ["masks"],
        g.nodes,
        [helper.make_opsetid("", opset)],
        doc_string=(
            "DCP region masks (hdm_deploy.dcp): uint8 [N,3,H,W] (H, W >= 4) -> float32 [N,5,1,H//4,W//4]; "
            f"inputs up to {max_pixels} pixels."
        ),
    )


def dcp_function(
    opset: int = 19, *, max_pixels: int = DEFAULT_MAX_PIXELS, int_sums: str = "cumsum"
) -> onnx.FunctionProto:
    """The ``hdm_deploy.dcp::DCPMasks`` local function (a fresh copy). It calls no other function.

    ``max_pixels`` bounds ``H·W`` (it sets the TopK constant, see :func:`topk_for`); larger inputs give
    a wrong atmospheric light (the masks barely depend on it, but parity is lost) — check sizes first.
    ``int_sums``: ``"cumsum"`` (default; fastest in ONNX Runtime) or ``"doubling"`` (use it for
    TensorRT, which imports ``CumSum`` as a loop). Both give identical results (exact integer sums).
    """
    _check_opset(opset)
    _check_int_sums(int_sums)
    fn = onnx.FunctionProto()
    fn.CopyFrom(_function(opset, max_pixels, int_sums))
    return fn


def dcp_functions(
    opset: int = 19, *, max_pixels: int = DEFAULT_MAX_PIXELS, int_sums: str = "cumsum"
) -> list[onnx.FunctionProto]:
    """Every local function a model calling ``DCPMasks`` must carry (just ``DCPMasks`` itself)."""
    return [dcp_function(opset, max_pixels=max_pixels, int_sums=int_sums)]


def _io(names_shapes: Sequence[tuple[str, int, list]]) -> list[onnx.ValueInfoProto]:
    return [helper.make_tensor_value_info(n, t, s) for n, t, s in names_shapes]


def dcp_masks_model(
    inline: bool = False,
    *,
    opset: int = 19,
    max_pixels: int = DEFAULT_MAX_PIXELS,
    int_sums: str = "cumsum",
    diagnostics: bool = False,
) -> onnx.ModelProto:
    """Standalone model ``images`` uint8 [N,3,H,W] → ``masks`` float32 [N,5,1,H//4,W//4].

    ``inline=False`` calls the local function; ``inline=True`` has the body inlined (no
    ``model.functions``; what TensorRT < 9 needs). ``diagnostics=True`` (always inlined) also outputs
    ``transmission`` [N,1,h,w], ``atmospheric_light`` [N,1,1,1], ``light_threshold`` [N,1,1,1],
    ``small`` [N,3,h,w] and ``refined_dark_channel`` [N,1,h,w] for parity tests.
    """
    _check_opset(opset)
    _check_int_sums(int_sums)
    images = [("images", TensorProto.UINT8, ["N", 3, "H", "W"])]
    masks = [("masks", TensorProto.FLOAT, ["N", NUM_REGIONS, 1, "h", "w"])]
    if diagnostics:
        g = _Graph(opset, int_sums=int_sums)
        outs = _body(g, "images", topk_for(max_pixels))
        names = [
            "masks",
            "transmission",
            "atmospheric_light",
            "light_threshold",
            "small",
            "refined_dark_channel",
        ]
        for name in names:
            g.nodes.append(helper.make_node("Identity", [outs[name]], [name], name=g.fresh("Identity")))
        shapes = {
            "masks": masks[0][2],
            "transmission": ["N", 1, "h", "w"],
            "atmospheric_light": ["N", 1, 1, 1],
            "light_threshold": ["N", 1, 1, 1],
            "small": ["N", 3, "h", "w"],
            "refined_dark_channel": ["N", 1, "h", "w"],
        }
        graph = helper.make_graph(
            g.nodes,
            "dcp_masks_diagnostics",
            _io(images),
            _io([(n, TensorProto.FLOAT, shapes[n]) for n in names]),
        )
        model = helper.make_model(
            graph, opset_imports=[helper.make_opsetid("", opset)], producer_name="hdm-deploy"
        )
    else:
        node = helper.make_node(FUNCTION, ["images"], ["masks"], domain=DOMAIN, name="dcp_masks")
        graph = helper.make_graph([node], "dcp_masks", _io(images), _io(masks))
        model = helper.make_model(
            graph,
            opset_imports=[helper.make_opsetid("", opset), helper.make_opsetid(DOMAIN, 1)],
            functions=dcp_functions(opset, max_pixels=max_pixels, int_sums=int_sums),
            producer_name="hdm-deploy",
        )
        if inline:
            import onnx.inliner

            model = onnx.inliner.inline_local_functions(model)
            del model.opset_import[:]
            model.opset_import.extend([helper.make_opsetid("", opset)])
    model.ir_version = ir_version_for(opset)
    return model
