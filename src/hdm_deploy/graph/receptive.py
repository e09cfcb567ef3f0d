"""Receptive fields of an ONNX graph, by walking its layers (torch-free).

For tiled execution a stage graph (a purely local part of a network: convolutions, transposed
convolutions, pads, pools and pointwise ops) is run on a region of its inputs that is larger than the
tile it must produce. How much larger — the *halo* — follows from the layers: a ``Conv`` with kernel
``k``, stride ``s``, dilation ``d`` and leading pad ``p`` needs, for outputs ``[a, b)``, inputs
``[s·a − p, s·(b−1) − p + d·(k−1) + 1)``; a ``ConvTranspose`` needs inputs
``[⌈(a + p − d·(k−1)) / s⌉, ⌊(b − 1 + p) / s⌋ + 1)``; a ``Pad`` with leading pad ``p`` shifts by
``p``; pooling is a convolution; pointwise ops pass the interval through. :func:`required_inputs`
propagates an output interval backwards through the graph (a DAG: the union over consumers) and
returns, per graph input, the interval needed along each spatial axis, computed on the plane (no image
border: at the true border the graph's own padding is what the whole-frame model does too).

An op this module does not know is an error, never a guess: a graph with a global op (pooling to 1×1,
attention, reshapes of spatial axes) cannot be tiled exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import onnx
from onnx import numpy_helper

from hdm_deploy.core.errors import ModelFormatError

__all__ = ["Interval", "StageHalo", "required_inputs", "stage_halo"]

#: ops whose output position i depends only on input position i (with broadcasting of constants)
POINTWISE = frozenset(
    {
        "Abs", "Add", "Cast", "Ceil", "Clip", "Div", "Exp", "Floor", "HardSigmoid", "Identity",
        "LeakyRelu", "Log", "Max", "Min", "Mul", "Neg", "PRelu", "Pow", "Reciprocal", "Relu",
        "Round", "Sigmoid", "Sqrt", "Sub", "Tanh", "Where", "Erf", "Sign", "CastLike",
    }
)  # fmt: skip
WINDOWED = frozenset({"Conv", "AveragePool", "MaxPool"})

Interval = tuple[int, int]  #: [lo, hi) along one axis


def _attrs(node: onnx.NodeProto) -> dict:
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


def _union(a: Interval | None, b: Interval) -> Interval:
    return b if a is None else (min(a[0], b[0]), max(a[1], b[1]))


def _ceil_div(a: int, b: int) -> int:
    return -(-a // b)


class _Graph:
    def __init__(self, model: onnx.ModelProto):
        g = model.graph
        self.model = model
        self.constants: dict[str, np.ndarray] = {i.name: numpy_helper.to_array(i) for i in g.initializer}
        self.shapes: dict[str, list] = {}
        for vi in list(g.input) + list(g.value_info) + list(g.output):
            dims = vi.type.tensor_type.shape.dim
            self.shapes[vi.name] = [d.dim_value if d.HasField("dim_value") else None for d in dims]
        for node in g.node:
            if node.op_type == "Constant":
                self.constants[node.output[0]] = numpy_helper.to_array(_attrs(node)["value"])
        self.nodes = [n for n in g.node if n.op_type != "Constant"]

    def weight_kernel(self, node: onnx.NodeProto) -> list[int]:
        attrs = _attrs(node)
        if "kernel_shape" in attrs:
            return list(attrs["kernel_shape"])
        w = self.constants.get(node.input[1])
        if w is None:
            raise ModelFormatError(f"{node.op_type} {node.name}: no kernel_shape and a non-constant weight")
        return list(w.shape[2:])


def _window_back(node, kernel, iv: Interval, k_axis: int, transposed: bool) -> Interval:
    attrs = _attrs(node)
    nd = len(kernel)
    if attrs.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET"):
        raise ModelFormatError(f"{node.op_type} {node.name}: auto_pad is not supported for tiling")
    strides = list(attrs.get("strides", [1] * nd))
    dil = list(attrs.get("dilations", [1] * nd))
    pads = list(attrs.get("pads", [0] * (2 * nd)))
    k, s, d, p = kernel[k_axis], strides[k_axis], dil[k_axis], pads[k_axis]
    a, b = iv
    if not transposed:
        return s * a - p, s * (b - 1) - p + d * (k - 1) + 1
    # output o = s·i − p + d·j, j ∈ [0, k)
    return _ceil_div(a + p - d * (k - 1), s), (b - 1 + p) // s + 1


def required_inputs(
    model: onnx.ModelProto, outputs: dict[str, dict[int, Interval]], *, deform: bool = False
) -> dict[str, dict[int, Interval]]:
    """Walk ``model`` backwards from ``outputs`` (graph output name → {axis: [lo, hi)}) and return, for
    each graph input reached, {axis: [lo, hi)} — the input positions those outputs depend on.

    ``deform=True`` admits ``DeformConv`` with only its *static* reach (the window of a plain conv of
    the same kernel, pads, strides, dilations; offsets and mask at the output positions): the caller
    must add the offsets' displacement at run time (:class:`hdm_deploy.runtime.tiled.TiledRunner` does,
    from the manifest's ``displacement``). Without it a ``DeformConv`` is refused."""
    g = _Graph(model)
    need: dict[str, dict[int, Interval]] = {k: dict(v) for k, v in outputs.items()}

    def add(name: str, axis: int, iv: Interval) -> None:
        if name in g.constants or not name:
            return
        slot = need.setdefault(name, {})
        slot[axis] = _union(slot.get(axis), iv)

    for node in reversed(g.nodes):
        out_need = [need.get(o) for o in node.output]
        if not any(out_need):
            continue
        if len(node.output) != 1:
            raise ModelFormatError(
                f"{node.op_type} {node.name}: multi-output ops are not supported for tiling"
            )
        req = out_need[0]
        op = node.op_type
        if op in POINTWISE:
            out_rank = len(g.shapes.get(node.output[0]) or [])
            for name in node.input:
                if name in g.constants or not name:
                    continue
                rank = len(g.shapes.get(name) or []) or out_rank
                for axis, iv in req.items():
                    in_axis = axis - (out_rank - rank) if out_rank else axis
                    dims = g.shapes.get(name)
                    if dims and in_axis >= 0 and dims[in_axis] == 1:
                        continue  # broadcast along this axis
                    add(name, in_axis, iv)
        elif op in WINDOWED or op == "ConvTranspose":
            kernel = (
                g.weight_kernel(node)
                if op != "ConvTranspose" or "kernel_shape" not in _attrs(node)
                else list(_attrs(node)["kernel_shape"])
            )
            if op in ("AveragePool", "MaxPool"):
                kernel = list(_attrs(node)["kernel_shape"])
            nd = len(kernel)
            for axis, iv in req.items():
                k_axis = axis - 2
                if not 0 <= k_axis < nd:
                    raise ModelFormatError(f"{op} {node.name}: axis {axis} is not spatial")
                add(node.input[0], axis, _window_back(node, kernel, iv, k_axis, op == "ConvTranspose"))
            for name in node.input[1:]:
                if name and name not in g.constants:
                    raise ModelFormatError(f"{op} {node.name}: its weights are not constants")
        elif op == "DeformConv" and deform:
            kernel = g.weight_kernel(node)
            for axis, iv in req.items():
                k_axis = axis - 2
                if not 0 <= k_axis < len(kernel):
                    raise ModelFormatError(f"{op} {node.name}: axis {axis} is not spatial")
                add(node.input[0], axis, _window_back(node, kernel, iv, k_axis, False))
                for j in (2, 4):  # offsets, mask: one value per output position
                    if len(node.input) > j and node.input[j]:
                        add(node.input[j], axis, iv)
            for j in (1, 3):
                if len(node.input) > j and node.input[j] and node.input[j] not in g.constants:
                    raise ModelFormatError(f"{op} {node.name}: its weights are not constants")
        elif op == "Pad":
            attrs = _attrs(node)
            pads = g.constants.get(node.input[1]) if len(node.input) > 1 else attrs.get("pads")
            if pads is None:
                raise ModelFormatError(f"Pad {node.name}: pads are not constant")
            pads = [int(v) for v in np.asarray(pads).ravel()]
            axes_in = g.constants.get(node.input[3]) if len(node.input) > 3 and node.input[3] else None
            rank = len(pads) // 2
            axes = [int(a) for a in np.asarray(axes_in).ravel()] if axes_in is not None else list(range(rank))
            out_rank = len(g.shapes.get(node.output[0]) or []) or max(axes) + 1
            axes = [a % out_rank for a in axes]
            for axis, (lo, hi) in req.items():
                before = pads[axes.index(axis)] if axis in axes else 0
                add(node.input[0], axis, (lo - before, hi - before))
        elif op == "Transpose":
            perm = list(_attrs(node)["perm"])
            for axis, iv in req.items():
                add(node.input[0], perm[axis], iv)
        else:
            raise ModelFormatError(
                f"{op} ({node.name}) is not a local op: the graph cannot be tiled exactly",
                "tile only graphs of convolutions, pads, pools and pointwise ops",
            )
    inputs = {i.name for i in model.graph.input}
    return {name: iv for name, iv in need.items() if name in inputs}


@dataclass(frozen=True)
class StageHalo:
    """How far a tiled stage's input region must reach beyond its output tile, in frame pixels.

    ``before``/``after``: the exact halo (from :func:`required_inputs`); ``align``: region starts must be
    multiples of it (strides and the coarsest tensor's grid), so ``before`` is rounded up to it;
    ``end_align``: region ends must map to whole pixels of every input, so ``after`` rounds up to it."""

    before: int
    after: int
    align: int
    end_align: int

    @property
    def before_aligned(self) -> int:
        return _ceil_div(self.before, self.align) * self.align

    @property
    def after_aligned(self) -> int:
        return _ceil_div(self.after, self.end_align) * self.end_align


def stage_halo(
    model: onnx.ModelProto,
    input_scales: dict[str, float],
    output_scales: dict[str, float],
    spatial_axes: dict[str, tuple[int, int]],
    probe: int = 64,
    *,
    deform: bool = False,
) -> tuple[StageHalo, StageHalo]:
    """The (rows, columns) halos of a stage whose tensors sit on grids ``scale`` × the frame grid
    (1, 1/2, 1/4 …); ``spatial_axes`` names each tensor's (row, column) axes (NCHW: (2, 3), NHWC: (1, 2)).

    An output tile ``[A, A + T)`` (frame pixels, ``A`` a multiple of every grid's step) is walked
    back for several ``A``; the worst reach before ``A`` and after ``A + T`` over all inputs is the halo."""
    steps = [round(1 / s) for s in (*input_scales.values(), *output_scales.values())]
    align = int(np.lcm.reduce(steps))
    end_align = int(np.lcm.reduce([round(1 / s) for s in input_scales.values()]))
    result = []
    for dim in (0, 1):
        before = after = 0
        for start in (align * probe, align * (probe + 1), align * (probe + 3)):
            tile = align * 8
            outs = {}
            for name, scale in output_scales.items():
                axis = spatial_axes[name][dim]
                outs[name] = {axis: (round(start * scale), round((start + tile) * scale))}
            need = required_inputs(model, outs, deform=deform)
            for name, scale in input_scales.items():
                if name not in need:
                    continue
                axis = spatial_axes[name][dim]
                lo, hi = need[name][axis]
                before = max(before, start - lo / scale)
                after = max(after, hi / scale - (start + tile))
        result.append(StageHalo(int(np.ceil(before)), int(np.ceil(after)), align, end_align))
    return result[0], result[1]
