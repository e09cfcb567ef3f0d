"""Small torch-free helpers for ONNX files: load/save, metadata, opset imports, onnx-ir pass pipelines.

Everything the exporter can emit comes from the exporter; graph rewrites after export are onnx-ir
passes (:mod:`.flavours`), functions are built with :mod:`.ir_build`.
"""

from __future__ import annotations

import os
from pathlib import Path

import onnx
import onnx_ir as ir
from onnx import helper
from onnx_ir.passes import common

from hdm_deploy.core.contracts import DEFAULT_IR_VERSION, DEFAULT_OPSET, ONNX_DOMAINS
from hdm_deploy.core.errors import ExportError, HdmDeployError, ModelFormatError, first_line
from hdm_deploy.core.fs import atomic_path

#: Default opset of every graph we write, and the IR version we stamp (ORT 1.31 accepts ≤ 13;
#: onnx 1.23 would write 14). IR 10 keeps node ``metadata_props`` (scopes) and local functions.
OPSET = DEFAULT_OPSET
IR_VERSION = DEFAULT_IR_VERSION


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
    :class:`~hdm_deploy.core.errors.ModelFormatError`. ``external_data=False`` leaves external tensors
    unloaded (enough for metadata, inputs and ops). Torch-free: ``runtime/`` and ``tensorrt/`` use it."""
    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    path = Path(model_or_path)
    if not path.is_file():
        raise ModelFormatError(f"ONNX model not found: {path}", "export one with `hdm-deploy export`")
    try:
        return onnx.load(str(path), load_external_data=external_data)
    except Exception as exc:  # onnx raises DecodeError, OSError, …
        raise ModelFormatError(f"{path} is not a readable ONNX model ({exc})") from exc


def inline_passes() -> ir.passes.PassManager:
    """Inline every model-local function call (onnx-ir's ``InlinePass``), then drop the functions and
    opset imports nothing uses any more (the functions' domains)."""
    return ir.passes.PassManager([common.InlinePass(), *tidy_passes().passes])


def tidy_passes() -> ir.passes.PassManager:
    """Drop local functions nothing calls and opset imports nothing uses (custom domains; the default
    domain stays)."""
    return ir.passes.PassManager([common.RemoveUnusedFunctionsPass(), common.RemoveUnusedOpsetsPass()])


def apply(passes: ir.passes.PassManager, model: onnx.ModelProto) -> onnx.ModelProto:
    """Run onnx-ir ``passes`` on a proto; returns the new proto (metadata, IR version, names kept)."""
    ir_model = ir.serde.deserialize_model(model)
    try:
        passes(ir_model)
    except ir.passes.PassError as exc:  # a pass refused: re-raise our typed error (with its hint)
        cause = exc.__cause__
        while isinstance(cause, ir.passes.PassError):
            cause = cause.__cause__
        if isinstance(cause, HdmDeployError):
            raise cause from None
        raise
    return ir.serde.serialize_model(ir_model)


def finalize(
    model: onnx.ModelProto, ir_version: int = IR_VERSION, full_check: bool = True
) -> onnx.ModelProto:
    """Stamp the IR version and run ``onnx.checker`` (with full shape/type inference), in place.

    On the proto we write, not through onnx-ir's ``CheckerPass``: that pass serializes its IR model and
    calls the same ``onnx.checker.check_model``, so it would check a re-serialized copy instead."""
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
