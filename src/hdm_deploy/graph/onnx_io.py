"""Small torch-free helpers for the ONNX post-processing passes (flavour rewrites, finalisation).

Everything the exporter can emit comes from the exporter; these helpers only build what it cannot
(the DeformConv decomposition function) and patch graphs after export.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper

from hdm_deploy.core.contracts import DEFAULT_IR_VERSION, DEFAULT_OPSET, ONNX_DOMAINS
from hdm_deploy.core.errors import ExportError, first_line
from hdm_deploy.core.fs import atomic_path

#: Default opset of every graph we write, and the IR version we stamp (ORT 1.31 accepts ≤ 13;
#: onnx 1.23 would write 14). IR 10 keeps node ``metadata_props`` (scopes) and local functions.
OPSET = DEFAULT_OPSET
IR_VERSION = DEFAULT_IR_VERSION


class FunctionBuilder:
    """Appends nodes with fresh value names; ``b.op("Add", x, y)`` returns the output name(s)."""

    def __init__(self, prefix: str = "t"):
        self.nodes: list[onnx.NodeProto] = []
        self._names = itertools.count()
        self.prefix = prefix

    def fresh(self, hint: str = "") -> str:
        return f"{self.prefix}{next(self._names)}{'_' + hint if hint else ''}"

    def op(
        self, op_type: str, *inputs: str, outputs: int | Sequence[str] = 1, hint: str = "", **attrs
    ) -> str | list[str]:
        names = (
            [self.fresh(hint or op_type.lower()) for _ in range(outputs)]
            if isinstance(outputs, int)
            else list(outputs)
        )
        self.nodes.append(helper.make_node(op_type, list(inputs), names, **attrs))
        return names[0] if len(names) == 1 else names

    def const(self, value, dtype=np.int64, hint: str = "c") -> str:
        arr = np.asarray(value, dtype=dtype)
        return self.op("Constant", hint=hint, value=numpy_helper.from_array(arr))


def opset_version(model: onnx.ModelProto, domain: str = "") -> int | None:
    for imp in model.opset_import:
        if imp.domain == domain or (domain in ONNX_DOMAINS and imp.domain in ONNX_DOMAINS):
            return imp.version
    return None


def set_opset(model: onnx.ModelProto, domain: str, version: int) -> None:
    for imp in model.opset_import:
        if imp.domain == domain:
            imp.version = version
            return
    model.opset_import.append(helper.make_opsetid(domain, version))


def domains_in_use(model: onnx.ModelProto) -> set[str]:
    used = {n.domain for n in model.graph.node}
    for f in model.functions:
        used.add(f.domain)
        used.update(n.domain for n in f.node)
    return used


def prune_opsets(model: onnx.ModelProto, keep: Iterable[str] = ("",)) -> None:
    """Drop opset imports of custom domains that no node (or function) uses any more."""
    used = domains_in_use(model) | set(keep)
    kept = [imp for imp in model.opset_import if imp.domain in used or imp.domain in ONNX_DOMAINS]
    del model.opset_import[:]
    model.opset_import.extend(kept)


def metadata(model: onnx.ModelProto) -> dict[str, str]:
    return {p.key: p.value for p in model.metadata_props}


def set_metadata(model: onnx.ModelProto, values: dict[str, object]) -> None:
    """Merge ``values`` (stringified) into ``metadata_props``, replacing existing keys."""
    current = metadata(model)
    current.update({k: str(v) for k, v in values.items() if v is not None})
    del model.metadata_props[:]
    for key in sorted(current):
        model.metadata_props.add(key=key, value=current[key])


def load(
    model_or_path: onnx.ModelProto | str | os.PathLike, *, external_data: bool = True
) -> onnx.ModelProto:
    """A model passed through, or the ONNX file at a path; a missing or unreadable file is a
    :class:`~hdm_deploy.errors.ModelFormatError`. ``external_data=False`` leaves external tensors
    unloaded (enough for metadata, inputs and ops). Torch-free: ``runtime/`` and ``engines/`` use it."""
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = Path(model_or_path)
    if not path.is_file():
        from hdm_deploy.core.errors import ModelFormatError

        raise ModelFormatError(f"ONNX model not found: {path}", "export one with `hdm-deploy export`")
    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception as exc:  # onnx raises DecodeError, OSError, …
        from hdm_deploy.core.errors import ModelFormatError

        raise ModelFormatError(f"{path} is not a readable ONNX model ({exc})") from exc


def finalize(
    model: onnx.ModelProto, ir_version: int = IR_VERSION, full_check: bool = True
) -> onnx.ModelProto:
    """Stamp the IR version and run ``onnx.checker`` (with full shape/type inference)."""
    model.ir_version = ir_version
    try:
        onnx.checker.check_model(model, full_check=full_check)
    except (onnx.checker.ValidationError, onnx.shape_inference.InferenceError) as exc:
        first = first_line(exc)
        raise ExportError(
            f"the ONNX graph fails onnx.checker: {first}", "re-run with --debug and report it"
        ) from exc
    return model


def save(model: onnx.ModelProto, path: str | os.PathLike) -> Path:
    """Write atomically (models above 2 GB would need external data; HDM is ~12 MB)."""
    with atomic_path(path) as tmp:
        onnx.save_model(model, str(tmp))
    return Path(path)
