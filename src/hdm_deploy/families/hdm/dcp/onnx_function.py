"""DCP region masks as an ONNX model-local function (``hdm_deploy.dcp::DCPMasks``: :mod:`hdm_deploy.families.hdm.dcp`).

Input ``images`` uint8 ``[N, 3, H, W]`` (any ``H, W ≥ 4``), output ``masks`` float32
``[N, 5, 1, H//4, W//4]``. The body mirrors :mod:`.torch_masks` node for node — the same float32
operations in the same order, the same exact integer formulations; only the erosions, exact in any
order, are organised differently (:func:`_erosions`) — so ONNX Runtime reproduces the
torch masks and transmission bit for bit, and both follow :mod:`.reference` (see there for the
algorithm and the defined degenerate cases). The ÷4 Lanczos resize is built by :mod:`.onnx_resize`;
nodes are recorded with onnx-ir (:class:`hdm_deploy.graph.ir_build.Builder`).

Built for TensorRT 8.5's ONNX parser as well (JetPack 5.1):

* only ops its ``docs/operators.md`` (release/8.5-GA) lists as supported — ``tests/families/hdm/test_dcp_onnx.py``
  checks the set —, FP32 data throughout (int64 only for shapes and indices, which TensorRT casts to
  int32); no ``Mod``, ``NonZero``, ``Loop``; no data-dependent output shapes;
* ``TopK`` with a constant ``K`` (< 3840, from ``max_pixels``, default 7680×4320 → K = 2074; see
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
  4 (exact tables) or neither (see :mod:`.onnx_resize`) are chosen with ``If`` nodes.

Opset: 19 by default (the project's), 17 or 18 on request (``ReduceMin/Max`` take ``axes`` as an
attribute before 18; nothing else differs). TensorRT 8.5 parses opsets ≤ 17, so export with
``opset=17`` for it, and keep these layers in FP32 (no FP16 for this subgraph: integer pixel sums up to
2^24 and the 1e-4 guided-filter eps need it).

ONNX Runtime CPU speed (issue 3 target: ≥ 2× the numpy reference at 1080p, ``benchmarks/bench_dcp.py``):
every ``Slice`` is a copy there and ``Gather``/``CumSum`` along the last axis are ~25× slower than along
axis 2, so window operations run along axis 2 (with one ``Transpose`` per box); the exact Lanczos passes
are one strided ``Conv`` each (see :mod:`.onnx_resize`); the two erosions share one ``MaxPool`` and a
doubling chain.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import onnx_ir as ir
from onnx import TensorProto

from hdm_deploy.core.contracts import ir_version_for
from hdm_deploy.families.hdm.dcp import DCP_DOMAIN, DCP_DOMAIN_VERSION, DCP_FUNCTION
from hdm_deploy.families.hdm.dcp.onnx_resize import INT_MAX, PERM, downscale4
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
from hdm_deploy.graph.ir_build import Builder, Value, function_proto

#: Kept for callers of the old spelling; the contract lives in :mod:`hdm_deploy.families.hdm.dcp`.
DOMAIN = DCP_DOMAIN
FUNCTION = DCP_FUNCTION
#: TensorRT 8.5 needs TopK's K to be a constant below 3840.
TOPK_LIMIT = 3839
#: Default size bound of the function (sets the TopK constant): 7680 × 4320 pixels (K = 2074), so 8K
#: frames and 12 MP phone photos (4032 × 3024) export with the defaults; ``benchmarks/dcp_topk.py``
#: measures what K costs in ONNX Runtime. Pass ``max_pixels`` for larger inputs.
DEFAULT_MAX_PIXELS = 7680 * 4320
FLOAT_LOWEST = float(np.finfo(np.float32).min)


# ---- window operations -----------------------------------------------------------------------------------------


def _axis_len(g: Builder, x: Value, axis: int) -> Value:
    return g.op("Shape", x, start=axis, end=axis + 1)


def _reflect_gather(g: Builder, x: Value, before: int, after: int, axis: int = 2) -> Value:
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


def _max_pool_axis(g: Builder, x: Value, k: int, axis: int, pad: int = 0) -> Value:
    kernel, pads = ([1, k], [0, pad, 0, pad]) if axis == 3 else ([k, 1], [pad, 0, pad, 0])
    return g.op("MaxPool", x, kernel_shape=kernel, pads=pads)


def _erosions(g: Builder, dark: Value) -> tuple[Value, Value]:
    """The LIGHT_ERODE² and TRANSMISSION_ERODE² erosions of ``dark``, sharing their work.

    Erosion is exact in any order, so this need not mirror :func:`.torch_masks.erode` op for op. On the
    negated map, a ``MaxPool`` (padding ignored: OpenCV's border rule) gives the small window along W in
    one node; the large one extends that window from an edge-padded copy by doubling (15 → 30 → 60 →
    120 → 223): 30 nodes instead of ~80 ``Slice``/``Min`` pairs, the cheaper for ONNX Runtime and TensorRT.
    """
    big, small = LIGHT_ERODE, TRANSMISSION_ERODE
    r = big // 2

    def extend(m: Value, axis: int) -> Value:
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


def _window_sum(g: Builder, x: Value, k: int, axis: int = 2) -> Value:
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


def _box_mean_t(g: Builder, xt: Value, k: int) -> Value:
    """Mirror of :func:`.torch_masks.box_mean` for maps given TRANSPOSED ([N, M, w, h]); returns [N, M, h, w]."""
    before, after = box_window(k)
    rows = _window_sum(g, _reflect_gather(g, xt, before, after), k)  # along W
    cols = _window_sum(g, _reflect_gather(g, g.op("Transpose", rows, perm=PERM), before, after), k)  # along H
    return g.op("Mul", cols, g.f(np.float32(1.0 / (k * k))))


def _box_sum_int_t(g: Builder, x: Value, k: int, int_sums: str) -> Value:
    """Mirror of :func:`.torch_masks.box_sum_int` for [N, M, h, w]; returns the sums TRANSPOSED [N, M, w, h].

    Exact integer sums either way: ``CumSum`` differences (``int_sums="cumsum"``, fastest in ONNX
    Runtime) or doubling (``"doubling"``, for TensorRT, whose CumSum is a loop); identical results.
    """
    before, after = box_window(k)
    y = g.op("Sub", x, g.f(CENTER))
    for step in range(2):
        if int_sums == "cumsum":
            c = g.op("CumSum", _reflect_gather(g, y, before + 1, after), g.const(2, np.int64))
            y = g.op("Sub", g.slice(c, k, INT_MAX, 2), g.slice(c, 0, -k, 2))
        else:
            y = _window_sum(g, _reflect_gather(g, y, before, after), k)
        if step == 0:
            y = g.op("Transpose", y, perm=PERM)
    return g.op("Add", y, g.f(CENTER * k * k))


def _split_bytes(g: Builder, x: Value) -> tuple[Value, Value]:
    hi = g.op("Floor", g.op("Mul", x, g.f(1.0 / 256.0)))
    return hi, g.op("Sub", x, g.op("Mul", hi, g.f(256.0)))


def _split1(g: Builder, x: Value, count: int) -> list[Value]:
    return [g.slice(x, i, i + 1, 1) for i in range(count)]


def _integer_moments_t(g: Builder, i: Value, p: Value, k: int, int_sums: str) -> list[Value]:
    """Mirror of :func:`.torch_masks.integer_moments` ([N,1,h,w] maps); the means come out TRANSPOSED."""
    ip_hi, ip_lo = _split_bytes(g, g.op("Mul", i, p))
    ii_hi, ii_lo = _split_bytes(g, g.op("Mul", i, i))
    sums = _box_sum_int_t(g, g.op("Concat", i, p, ip_hi, ip_lo, ii_hi, ii_lo, axis=1), k, int_sums)
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


def _finish_guided(g: Builder, a: Value, b: Value, guide: Value, k: int) -> Value:
    mean_a, mean_b = _split1(g, _box_mean_t(g, g.op("Concat", a, b, axis=1), k), 2)
    return g.op("Add", g.op("Mul", mean_a, g.op("Div", guide, g.f(255.0))), mean_b)


def _refined_dark_channel(g: Builder, dark: Value, eroded: Value, int_sums: str) -> Value:
    mean_i, mean_p, mean_ip, mean_ii = _integer_moments_t(g, dark, eroded, LIGHT_BOX, int_sums)
    cov = g.op("Sub", mean_ip, g.op("Mul", mean_i, mean_p))
    var = g.op("Sub", mean_ii, g.op("Mul", mean_i, mean_i))
    a = g.op("Div", cov, g.op("Add", var, g.f(LIGHT_EPS)))
    b = g.op("Sub", mean_p, g.op("Mul", a, mean_i))
    return _finish_guided(g, a, b, dark, LIGHT_BOX)


def _refined_transmission(g: Builder, gray: Value, eroded: Value, light: Value, int_sums: str) -> Value:
    mean_g, mean_e, mean_ge, mean_gg = _integer_moments_t(g, gray, eroded, REFINE_BOX, int_sums)
    mean_p = g.op("Sub", g.f(1.0), g.op("Mul", g.op("Div", mean_e, light), g.f(OMEGA)))
    cov = g.op("Mul", g.op("Div", g.op("Sub", g.op("Mul", mean_g, mean_e), mean_ge), light), g.f(OMEGA))
    var = g.op("Sub", mean_gg, g.op("Mul", mean_g, mean_g))
    a = g.op("Div", cov, g.op("Add", var, g.f(REFINE_EPS)))
    b = g.op("Sub", mean_p, g.op("Mul", a, mean_g))
    return _finish_guided(g, a, b, gray, REFINE_BOX)


def _near_constant(g: Builder, lo: Value, hi: Value) -> Value:
    scale = g.op("Max", g.op("Max", g.op("Abs", lo), g.op("Abs", hi)), g.f(1.0))
    return g.op("LessOrEqual", g.op("Sub", hi, lo), g.op("Mul", scale, g.f(CONSTANT_RTOL)))


def _light_threshold(g: Builder, refined: Value, topk: int) -> Value:
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


def _body(g: Builder, images: Value, topk: int, int_sums: str) -> dict[str, Value]:
    """All nodes of the computation; returns the masks and diagnostics values."""
    x = g.op("Cast", images, to=TensorProto.FLOAT)
    small = downscale4(g, x)
    r, gr, b = _split1(g, small, 3)
    dark = g.op("Min", g.op("Min", r, gr), b)
    brightness = g.op("Add", g.op("Add", r, gr), b)

    eroded_light, eroded_transmission = _erosions(g, dark)
    refined = _refined_dark_channel(g, dark, eroded_light, int_sums)
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
    t = _refined_transmission(g, gray, eroded_transmission, light, int_sums)

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


def _check(opset: int, int_sums: str) -> None:
    _check_opset(opset)
    if int_sums not in INT_SUMS:
        raise ValueError(f"int_sums must be one of {INT_SUMS}, got {int_sums!r}")


def _images(typed: bool) -> Value:
    if not typed:  # function inputs carry no type
        return ir.Value(name="images")
    return ir.Value(name="images", type=ir.TensorType(ir.DataType.UINT8), shape=ir.Shape(["N", 3, "H", "W"]))


#: Outputs of the diagnostics model and their shapes (``masks`` first: the function's only output).
_OUTPUTS = {
    "masks": ["N", NUM_REGIONS, 1, "h", "w"],
    "transmission": ["N", 1, "h", "w"],
    "atmospheric_light": ["N", 1, 1, 1],
    "light_threshold": ["N", 1, 1, 1],
    "small": ["N", 3, "h", "w"],
    "refined_dark_channel": ["N", 1, "h", "w"],
}


def _build(opset: int, max_pixels: int, int_sums: str, outputs: tuple[str, ...], typed: bool):
    """A builder holding the body, the ``images`` input and the named (``Identity``) ``outputs``."""
    g = Builder(opset, "dcp")
    images = _images(typed)
    values = _body(g, images, topk_for(max_pixels), int_sums)
    outs = [g.op("Identity", values[name], outputs=[name]) for name in outputs]
    if typed:
        for out in outs:
            out.dtype, out.shape = ir.DataType.FLOAT, ir.Shape(_OUTPUTS[out.name])
    return g, images, outs


@functools.lru_cache(maxsize=8)
def _function(opset: int, max_pixels: int, int_sums: str) -> onnx.FunctionProto:
    g, images, outs = _build(opset, max_pixels, int_sums, ("masks",), typed=False)
    return function_proto(
        g.function(
            DCP_DOMAIN,
            DCP_FUNCTION,
            [images],
            outs,
            doc_string=(
                "DCP region masks (hdm_deploy.dcp): uint8 [N,3,H,W] (H, W >= 4) -> float32 [N,5,1,H//4,W//4]; "
                f"inputs up to {max_pixels} pixels."
            ),
        )
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
    _check(opset, int_sums)
    fn = onnx.FunctionProto()
    fn.CopyFrom(_function(opset, max_pixels, int_sums))
    return fn


def dcp_functions(
    opset: int = 19, *, max_pixels: int = DEFAULT_MAX_PIXELS, int_sums: str = "cumsum"
) -> list[onnx.FunctionProto]:
    """Every local function a model calling ``DCPMasks`` must carry (just ``DCPMasks`` itself)."""
    return [dcp_function(opset, max_pixels=max_pixels, int_sums=int_sums)]


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
    _check(opset, int_sums)
    if inline or diagnostics:  # the body built straight into the graph: what inlining the call gives
        outputs = tuple(_OUTPUTS) if diagnostics else ("masks",)
        g, images, outs = _build(opset, max_pixels, int_sums, outputs, typed=True)
        name = "dcp_masks_diagnostics" if diagnostics else "dcp_masks"
        graph = ir.Graph([images], outs, nodes=g.nodes, opset_imports={"": opset}, name=name)
        functions = []
    else:
        images = _images(typed=True)
        masks = ir.Value(
            name="masks", type=ir.TensorType(ir.DataType.FLOAT), shape=ir.Shape(_OUTPUTS["masks"])
        )
        call = ir.Node(DCP_DOMAIN, DCP_FUNCTION, [images], outputs=[masks], name="dcp_masks")
        opsets = {"": opset, DCP_DOMAIN: DCP_DOMAIN_VERSION}
        graph = ir.Graph([images], [masks], nodes=[call], opset_imports=opsets, name="dcp_masks")
        functions = [ir.serde.deserialize_function(_function(opset, max_pixels, int_sums))]
    model = ir.Model(graph, ir_version=ir_version_for(opset), producer_name="hdm-deploy", functions=functions)
    return ir.serde.serialize_model(model)
