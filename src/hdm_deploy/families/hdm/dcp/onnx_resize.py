"""Pillow's ``resize(reducing_gap=None)`` Lanczos ÷4 as ONNX nodes (onnx-ir builder), for :mod:`.onnx_function`.

Mirror of :func:`.torch_masks.downscale4`: Pillow's pass order (:func:`.lanczos.vertical_first`) and the
choice between the exact multiple-of-4 pass and the general one are ``If`` nodes.

Sizes that are not multiples of 4 (the exporter pads to multiples of 4, so only the standalone model
sees them): Pillow's coefficients then depend on ``W / (W//4)`` and are computed in the graph in
float32 (``Sin``), which can put a 22-bit weight one unit off Pillow's in rare taps; a ÷4 value then
differs by 1 in rare cases (measured 0.009 % of values; masks ≥ 99.99 % equal to the reference).
Multiples of 4 use Pillow's exact integer tables and are bit-exact.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from onnx import TensorProto

from hdm_deploy.families.hdm.dcp import lanczos
from hdm_deploy.graph.ir_build import Builder, Value

#: Taps gathered per output in the general (not multiple of 4) Lanczos pass.
GENERAL_TAPS = 32
INT_MAX = np.iinfo(np.int64).max
#: Swaps the last two axes.
PERM = [0, 1, 3, 2]

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


def _round_parts(g: Builder, u: Value, w: Value) -> Value:
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


def _border4(g: Builder, x: Value, axis: int, n: Value, out: Value) -> Value:
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


def _resample4(g: Builder, x: Value, axis: int) -> Value:
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


def _sinc(g: Builder, z: Value) -> Value:
    pz = g.op("Mul", z, g.f(math.pi))
    zero = g.op("Equal", z, g.f(0.0))
    safe = g.op("Where", zero, g.f(1.0), pz)
    return g.op("Where", zero, g.f(1.0), g.op("Div", g.op("Sin", safe), safe))


def _resample_general(g: Builder, x: Value, axis: int) -> Value:
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

    def col(v: Value) -> Value:
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

    def weighted(wt: Value) -> Value:
        return g.reduce("ReduceSum", g.op("Mul", gathered, g.op("Unsqueeze", wt, g.ints(2))), [3], keepdims=0)

    return _round_parts(g, g.op("Add", weighted(hi), g.f(_BIAS_HI)), g.op("Add", weighted(lo), g.f(_BIAS_LO)))


def _resample(g: Builder, x: Value, axis: int) -> Value:
    """One Pillow pass along ``axis``: ``If`` n % 4 == 0 (exact tables, one Conv), else float32 coefficients."""
    n = g.op("Shape", x, start=axis, end=axis + 1)
    is4 = g.op("Squeeze", g.op("Equal", g.op("Mul", g.op("Div", n, g.ints(4)), g.ints(4)), n), g.ints(0))
    exact = g.sub()
    exact_out = _resample4(exact, x, axis)
    general = g.sub()
    general_out = _resample_general(general, x, axis)
    return g.if_(is4, exact, exact_out, general, general_out)


def downscale4(g: Builder, x: Value) -> Value:
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
