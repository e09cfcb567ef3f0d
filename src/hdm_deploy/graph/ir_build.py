"""Building ONNX functions with onnx-ir: a thin layer over :class:`onnx_ir.tape.Tape`.

``b.op("Add", x, y)`` records a node and returns its output :class:`onnx_ir.Value` (a list for
``n_out > 1``); values and nodes get readable unique names (``{prefix}_{hint}_{n}``, one counter shared
with the ``If`` branches built by :meth:`Builder.sub`). Constants are ``Constant`` nodes (functions
cannot hold initializers). :meth:`Builder.function` wraps the recorded nodes into an
:class:`onnx_ir.Function`; :func:`function_proto` serializes one for callers that need protos.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence

import numpy as np
import onnx
import onnx_ir as ir

Value = ir.Value


class Builder(ir.tape.Tape):
    """A tape with fresh names, constants and the few opset-dependent forms our graphs use."""

    def __init__(self, opset: int, prefix: str = "t", counter: itertools.count | None = None):
        super().__init__()
        self.opset = opset
        self.prefix = prefix
        self._counter = counter if counter is not None else itertools.count()

    def fresh(self, hint: str) -> str:
        return f"{self.prefix}_{hint}_{next(self._counter)}"

    def op(  # type: ignore[override]  # positional inputs, keyword attributes
        self,
        op_type: str,
        *inputs: Value | None,
        n_out: int = 1,
        name: str | None = None,
        outputs: Sequence[str] | None = None,
        domain: str = "",
        **attrs,
    ) -> Value | list[Value]:
        """Record ``op_type(*inputs, **attrs)``; ``outputs`` names the results (else fresh names)."""
        names = (
            list(outputs)
            if outputs is not None
            else [self.fresh(name or op_type.lower()) for _ in range(n_out)]
        )
        values = super().op_multi_out(
            op_type,
            list(inputs),
            dict(sorted(attrs.items())) or None,  # sorted like onnx.helper.make_node
            outputs=[ir.Value(name=n) for n in names],
            domain=domain,
            name=self.fresh(op_type),
        )
        return values[0] if len(values) == 1 else list(values)

    def const(self, value, dtype=np.float32, name: str = "c") -> Value:
        out = self.fresh(name)
        return self.op("Constant", value=ir.tensor(np.asarray(value, dtype=dtype), name=out), outputs=[out])

    def ints(self, *values: int) -> Value:
        return self.const(list(values), np.int64, "i")

    def f(self, value: float) -> Value:
        return self.const(value, np.float32, "f")

    def sub(self) -> Builder:
        """A builder for a subgraph (``If`` branch) sharing this one's name counter."""
        return Builder(self.opset, self.prefix, self._counter)

    def graph(self, name: str, outputs: Sequence[Value], dtype: ir.DataType = ir.DataType.FLOAT) -> ir.Graph:
        """The recorded nodes as a subgraph without inputs; ``outputs`` typed ``dtype`` (shape unknown)."""
        for out in outputs:
            out.dtype = dtype
        return ir.Graph([], outputs, nodes=self.nodes, name=self.fresh(name))

    # ---- opset-dependent forms ----
    def reduce(self, op_type: str, x: Value, axes: Sequence[int], keepdims: int = 1) -> Value:
        """``ReduceSum`` takes axes as an input since opset 13, the other reductions since 18."""
        if op_type == "ReduceSum" or self.opset >= 18:
            return self.op(op_type, x, self.ints(*axes), keepdims=keepdims)
        return self.op(op_type, x, axes=list(axes), keepdims=keepdims)

    def slice(self, x: Value, start: int, end: int, axis: int) -> Value:
        return self.op("Slice", x, self.ints(start), self.ints(end), self.ints(axis))

    def slice_dyn(self, x: Value, start: Value, end: Value, axis: int) -> Value:
        return self.op("Slice", x, start, end, self.ints(axis))

    def if_(self, cond: Value, then: Builder, then_out: Value, other: Builder, other_out: Value) -> Value:
        return self.op(
            "If",
            cond,
            then_branch=then.graph("then", [then_out]),
            else_branch=other.graph("else", [other_out]),
        )

    def function(
        self,
        domain: str,
        name: str,
        inputs: Sequence[Value],
        outputs: Sequence[Value],
        *,
        attributes: Iterable[str] = (),
        doc_string: str = "",
    ) -> ir.Function:
        """The recorded nodes as a function importing the default domain at :attr:`opset`;
        ``attributes``: names of attribute parameters (no defaults)."""
        graph = ir.Graph(inputs, outputs, nodes=self.nodes, opset_imports={"": self.opset}, name=name)
        fn = ir.Function(
            domain,
            name,
            graph=graph,
            attributes=[ir.Attr(a, ir.AttributeType.UNDEFINED, None) for a in attributes],
        )
        fn.doc_string = doc_string or None
        return fn


def function_proto(fn: ir.Function) -> onnx.FunctionProto:
    return ir.serde.serialize_function(fn)
