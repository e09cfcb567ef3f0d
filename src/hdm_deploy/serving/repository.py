"""Write a Triton Inference Server model repository for exported models (torch-free).

Given ``.onnx`` graphs and/or TensorRT ``.engine`` files of any registered family, writes up to three
Triton models side by side (names from ``--name``, default the family's registry name):

``NAME`` (backend ``python``)
    :mod:`hdm_deploy.serving.triton_model` around our runner: any frame size (padding, frame checks and
    the family's contract live in the runner), requests of one batch grouped by frame size. One
    version per ONNX file (or, without ONNX files, per engine set).
``NAME_onnxruntime`` (backend ``onnxruntime``, for NGC GPU servers)
    the graph itself, one version per ONNX file (a ``plugin``-flavour graph is rewritten to standard
    ``DeformConv`` on the way, as the ONNX Runtime runner does in memory).
``NAME_tensorrt`` (platform ``tensorrt_plan``)
    the engines, one ``model_smXY.plan`` per GPU architecture (``cc_model_filenames``, from each
    engine's sidecar), the plugin library in ``plugins/`` for ``--backend-config=tensorrt,plugins=…``.

Per request the tensors are ``image`` uint8 ``[-1, -1, 3]`` (RGB; the batch dimension comes from
``max_batch_size``) and ``enhanced`` uint8 ``[-1, -1, 3]``, plus the family's extra outputs (HDM:
``masks``) which a client requests only when it wants them. Triton batches only requests of the same
shape, so frames of different sizes are never padded into one batch (see docs/serving.md).
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import onnx

from hdm_deploy.core.contracts import INPUT_NAME, OUTPUT_NAME
from hdm_deploy.core.errors import HdmDeployError, ModelFormatError, OutputPathError
from hdm_deploy.core.fs import atomic_write_text, probe_writable
from hdm_deploy.core.runner import model_kind
from hdm_deploy.graph import onnx_io
from hdm_deploy.graph.flavours import convert_file
from hdm_deploy.graph.metadata import ModelFacts, model_facts
from hdm_deploy.tensorrt.sidecar import read_sidecar

#: what the Python-backend model's ``model.py`` contains: the model lives in the installed package
MODEL_PY = (
    '"""Triton Python-backend model written by `hdm-deploy triton-repo` (see docs/serving.md)."""\n\n'
    "from hdm_deploy.serving.triton_model import TritonPythonModel\n\n"
    '__all__ = ["TritonPythonModel"]\n'
)
BACKENDS = ("python", "onnxruntime", "tensorrt")
INSTANCE_KINDS = ("cpu", "gpu", "auto")
_ONNX_TO_TRITON = {
    1: "TYPE_FP32",
    2: "TYPE_UINT8",
    3: "TYPE_INT8",
    5: "TYPE_INT16",
    6: "TYPE_INT32",
    7: "TYPE_INT64",
    9: "TYPE_BOOL",
    10: "TYPE_FP16",
    11: "TYPE_FP64",
}


@dataclass
class RepositoryOptions:
    """What the command line's options set (defaults: a CPU server with dynamic batching)."""

    name: str | None = None  #: model name (default: the family's registry name)
    backends: Sequence[str] | None = None  #: default: python, plus onnxruntime/tensorrt as files allow
    first_version: int = 1
    max_batch_size: int = 8
    instance_kind: str = "cpu"  #: "cpu" | "gpu" | "auto" (Triton's KIND_AUTO)
    instance_count: int = 1
    dynamic_batching: bool = True
    max_queue_delay_us: int = 2000
    preferred_batch_sizes: Sequence[int] = ()
    plugin_lib: str | os.PathLike | None = None  #: TensorRT plugin library (engines of plugin graphs)
    threads: int | None = None  #: ONNX Runtime intra-op threads of each Python-backend instance


@dataclass
class ModelSpec:
    """One input file, read: its kind, family facts, and for engines the compute capability."""

    path: Path
    kind: str  #: "onnx" | "engine"
    facts: ModelFacts
    #: per output name: (Triton data type, dims without the batch dimension)
    outputs: dict[str, tuple[str, list[int]]] = field(default_factory=dict)
    input: tuple[str, list[int]] = ("TYPE_UINT8", [-1, -1, 3])
    compute_capability: str | None = None
    flavour: str | None = None
    opset: int | None = None


@dataclass
class Repository:
    """What :func:`write_repository` wrote."""

    root: Path
    models: dict[str, list[int]]  #: Triton model name → versions
    server_args: list[str]  #: extra tritonserver arguments (the TensorRT plugin library)
    notes: list[str] = field(default_factory=list)


def _dims(shape: Sequence[object]) -> list[int]:
    return [int(d) if isinstance(d, int) and d > 0 else -1 for d in shape]


def read_onnx(path: Path) -> ModelSpec:
    try:
        model = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise ModelFormatError(f"{path} is not a readable ONNX model: {exc}", "re-export it") from exc
    if not model.graph.input:
        raise ModelFormatError(f"{path} has no inputs", "re-export it with `hdm-deploy export`")
    first = model.graph.input[0]
    elem = onnx.helper.tensor_dtype_to_np_dtype(first.type.tensor_type.elem_type)
    facts = model_facts(onnx_io.metadata(model), first.name, str(elem), [o.name for o in model.graph.output])
    if facts.family is None:
        raise ModelFormatError(
            f"{path} has no hdm-deploy metadata (no model family)",
            "serve graphs written by `hdm-deploy export`",
        )

    def spec(value) -> tuple[str, list[int]]:
        t = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else -1 for d in t.shape.dim]
        return _ONNX_TO_TRITON.get(t.elem_type, "TYPE_FP32"), _dims(shape[1:])

    return ModelSpec(
        path=path,
        kind="onnx",
        facts=facts,
        outputs={o.name: spec(o) for o in model.graph.output},
        input=spec(first),
        flavour=facts.flavour,
        opset=onnx_io.opset_version(model),
    )


def read_engine(path: Path) -> ModelSpec:
    sidecar = read_sidecar(path)
    meta = dict(sidecar.model_metadata)
    names = [n for n in meta.get("outputs", OUTPUT_NAME).split(",") if n]
    facts = model_facts(meta, INPUT_NAME, "uint8" if meta.get("io", "uint8") == "uint8" else "float32", names)
    if facts.family is None:
        raise ModelFormatError(
            f"the sidecar of {path} names no model family", "rebuild it with `hdm-deploy build-engine`"
        )
    if facts.io != "uint8":
        raise ModelFormatError(
            f"{path} was built from a float-I/O graph; the repository serves uint8 frames",
            "build the engine from an `--io uint8` export",
        )
    # the extra outputs' shapes are not in the sidecar (their rank is the family's business), so an
    # engine-only repository serves ``enhanced`` alone; give the ONNX graph too to serve the extras
    outputs = {OUTPUT_NAME: ("TYPE_UINT8", [-1, -1, 3])}
    return ModelSpec(
        path=path,
        kind="engine",
        facts=facts,
        outputs=outputs,
        compute_capability=sidecar.compute_capability,
        flavour=facts.flavour,
    )


def read_model(path: str | os.PathLike) -> ModelSpec:
    path = Path(path)
    if not path.is_file():
        raise ModelFormatError(f"model not found: {path}", "give .onnx graphs or .engine files")
    kind = model_kind(path)
    if kind == "onnx":
        return read_onnx(path)
    if kind == "engine":
        return read_engine(path)
    raise ModelFormatError(
        f"{path} is a checkpoint; a Triton repository serves exported models",
        f"export it first: hdm-deploy export {path} -o model.onnx",
    )


# ---- config.pbtxt ---------------------------------------------------------------------------------------------


def _tensor(name: str, dtype: str, dims: Sequence[int]) -> str:
    return f'  {{ name: "{name}" data_type: {dtype} dims: [ {", ".join(str(d) for d in dims)} ] }}'


def _config(
    name: str,
    header: str,
    spec: ModelSpec,
    versions: Sequence[int],
    opts: RepositoryOptions,
    *,
    outputs: dict[str, tuple[str, list[int]]],
    input_spec: tuple[str, list[int]],
    input_name: str,
    kind: str,
    parameters: dict[str, str] | None = None,
    tail: str = "",
) -> str:
    lines = [f'name: "{name}"', header, f"max_batch_size: {opts.max_batch_size}"]
    lines.append(f"version_policy: {{ specific: {{ versions: [ {', '.join(map(str, versions))} ] }} }}")
    lines.append("input [\n" + _tensor(input_name, *input_spec) + "\n]")
    lines.append("output [\n" + ",\n".join(_tensor(n, t, d) for n, (t, d) in outputs.items()) + "\n]")
    lines.append(f"instance_group [ {{ count: {opts.instance_count} kind: KIND_{kind.upper()} }} ]")
    if opts.dynamic_batching:
        preferred = (
            f" preferred_batch_size: [ {', '.join(map(str, opts.preferred_batch_sizes))} ]"
            if opts.preferred_batch_sizes
            else ""
        )
        lines.append(
            f"dynamic_batching {{ max_queue_delay_microseconds: {opts.max_queue_delay_us}{preferred} }}"
        )
    for key, value in (parameters or {}).items():
        lines.append(f'parameters {{ key: "{key}" value: {{ string_value: {json.dumps(value)} }} }}')
    if tail:
        lines.append(tail)
    return "\n".join(lines) + "\n"


def _facts_parameters(spec: ModelSpec) -> dict[str, str]:
    """The family facts a client reads back from the model config (min side, padding, largest frame)."""
    f = spec.facts
    return {
        "family": f.family or "",
        "min_side": str(f.min_side),
        "pad_multiple": str(f.pad_multiple),
        "max_pixels": str(f.max_pixels or 0),
        "extras": ",".join(f.extras),
    }


def _check_options(opts: RepositoryOptions) -> None:
    if opts.max_batch_size < 1:
        raise HdmDeployError(
            "--max-batch-size must be at least 1", "the batch dimension of `image` comes from it"
        )
    if opts.instance_kind not in INSTANCE_KINDS:
        raise HdmDeployError(
            f"unknown instance kind {opts.instance_kind!r}", f"use one of {', '.join(INSTANCE_KINDS)}"
        )
    if opts.instance_count < 1:
        raise HdmDeployError("--instances must be at least 1")
    if opts.first_version < 1:
        raise HdmDeployError("--first-version must be at least 1", "Triton versions start at 1")
    if any(b < 1 or b > opts.max_batch_size for b in opts.preferred_batch_sizes):
        raise HdmDeployError(
            "--preferred-batch-size must lie in 1..--max-batch-size",
            f"max batch size is {opts.max_batch_size}",
        )
    unknown = sorted(set(opts.backends or ()) - set(BACKENDS))
    if unknown:
        raise HdmDeployError(f"unknown backend {', '.join(unknown)}", f"use {', '.join(BACKENDS)}")


def _engine_versions(engines: list[ModelSpec]) -> list[dict[str, ModelSpec]]:
    """Engines → versions: one engine per GPU architecture in each version (the k-th engine built
    for an architecture goes into the k-th version)."""
    versions: list[dict[str, ModelSpec]] = []
    for e in engines:
        cc = e.compute_capability or "any"
        for v in versions:
            if cc not in v:
                v[cc] = e
                break
        else:
            versions.append({cc: e})
    for v in versions:
        if "any" in v and len(v) > 1:
            raise ModelFormatError(
                f"engine {v['any'].path} records no compute capability, so it cannot sit beside engines "
                "for other GPUs",
                "rebuild it with `hdm-deploy build-engine` (the sidecar records the GPU), or serve it alone",
            )
    return versions


def _plan_name(cc: str, suffix: str = ".plan") -> str:
    return "model" + suffix if cc == "any" else f"model_sm{cc.replace('.', '')}{suffix}"


def write_repository(
    models: Sequence[str | os.PathLike], output: str | os.PathLike, options: RepositoryOptions | None = None
) -> Repository:
    """Write the repository for ``models`` into ``output`` (created; its existing Triton model
    folders of the same names are replaced, anything else is left alone)."""
    opts = options or RepositoryOptions()
    _check_options(opts)
    if not models:
        raise HdmDeployError("no model given", "pass one or more .onnx / .engine files")
    specs = [read_model(m) for m in models]
    families = {s.facts.family for s in specs}
    if len(families) > 1:
        raise ModelFormatError(
            f"the models belong to different families ({', '.join(sorted(map(str, families)))})",
            "write one repository per family, or give --name and one family's models",
        )
    onnx_specs = [s for s in specs if s.kind == "onnx"]
    engine_specs = [s for s in specs if s.kind == "engine"]
    wanted = list(opts.backends or ["python"])
    if not opts.backends:
        wanted += ["onnxruntime"] if onnx_specs else []
        wanted += ["tensorrt"] if engine_specs else []
    if "onnxruntime" in wanted and not onnx_specs:
        raise HdmDeployError("--backend onnxruntime needs at least one .onnx model")
    if "tensorrt" in wanted and not engine_specs:
        raise HdmDeployError("--backend tensorrt needs at least one .engine file")
    plugin = Path(opts.plugin_lib) if opts.plugin_lib else None
    if plugin is not None and not plugin.is_file():
        raise ModelFormatError(
            f"plugin library not found: {plugin}", "build it with `hdm-deploy build-plugin`"
        )
    if "tensorrt" in wanted and plugin is None and any(s.flavour == "plugin" for s in engine_specs):
        raise HdmDeployError(
            "the engines were built from a plugin-flavour graph and need the plugin library",
            "pass --plugin-lib libhdm_deploy_plugins.so (`hdm-deploy build-plugin` builds it)",
        )
    name = opts.name or str(next(iter(families)))
    if not name.replace("_", "").replace("-", "").isalnum():
        raise HdmDeployError(f"model name {name!r} must be letters, digits, - and _")

    root = Path(output)
    if root.exists() and not root.is_dir():
        raise OutputPathError(f"repository {root} is a file", "give a folder")
    root.mkdir(parents=True, exist_ok=True)
    probe_writable(root)
    repo = Repository(root=root, models={}, server_args=[])
    first = opts.first_version
    kind = opts.instance_kind

    if "python" in wanted:
        # the Python model serves each ONNX file as a version; without ONNX files, each engine set
        sets: list[dict[str, ModelSpec]] = (
            [{"onnx": s} for s in onnx_specs] if onnx_specs else _engine_versions(engine_specs)
        )
        folder = _fresh(root / name)
        versions = []
        for i, files in enumerate(sets):
            v = first + i
            vdir = folder / str(v)
            vdir.mkdir(parents=True)
            for key, s in files.items():
                target = "model.onnx" if s.kind == "onnx" else _plan_name(key, ".engine")
                shutil.copy2(s.path, vdir / target)
                if s.kind == "engine":
                    shutil.copy2(Path(str(s.path) + ".json"), vdir / (target + ".json"))
            atomic_write_text(vdir / "model.py", MODEL_PY)
            versions.append(v)
        spec = next(iter(sets[0].values()))
        params = _facts_parameters(spec)
        if opts.threads:
            params["threads"] = str(opts.threads)
        if plugin is not None:
            (folder / "plugins").mkdir()
            shutil.copy2(plugin, folder / "plugins" / plugin.name)
            params["plugin_lib"] = f"plugins/{plugin.name}"
        outputs = {OUTPUT_NAME: ("TYPE_UINT8", [-1, -1, 3])}
        outputs.update({n: spec.outputs[n] for n in spec.facts.extras if n in spec.outputs})
        text = _config(
            name,
            'backend: "python"',
            spec,
            versions,
            opts,
            outputs=outputs,
            input_spec=("TYPE_UINT8", [-1, -1, 3]),
            input_name=INPUT_NAME,
            kind=kind,
            parameters=params,
        )
        atomic_write_text(folder / "config.pbtxt", text)
        repo.models[name] = versions

    if "onnxruntime" in wanted:
        ort_name = f"{name}_onnxruntime"
        folder = _fresh(root / ort_name)
        versions = []
        for i, s in enumerate(onnx_specs):
            v = first + i
            (folder / str(v)).mkdir(parents=True)
            target = folder / str(v) / "model.onnx"
            if s.flavour == "plugin":  # Triton's ONNX Runtime has no plugin op: the lossless rewrite
                rewrite = "onnx" if (s.opset or 19) >= 19 else "decompose"
                convert_file(s.path, target, rewrite)
                repo.notes.append(f"{ort_name}/{v}: plugin graph rewritten to deform={rewrite}")
            else:
                shutil.copy2(s.path, target)
            versions.append(v)
        spec = onnx_specs[0]
        text = _config(
            ort_name,
            'backend: "onnxruntime"',
            spec,
            versions,
            opts,
            outputs=dict(spec.outputs),
            input_spec=spec.input,
            input_name=spec.facts.input_name,
            kind=kind,
            parameters=_facts_parameters(spec),
        )
        atomic_write_text(folder / "config.pbtxt", text)
        repo.models[ort_name] = versions

    if "tensorrt" in wanted:
        trt_name = f"{name}_tensorrt"
        folder = _fresh(root / trt_name)
        versions = []
        sets = _engine_versions(engine_specs)
        cc_names: dict[str, str] = {}
        for i, files in enumerate(sets):
            v = first + i
            (folder / str(v)).mkdir(parents=True)
            for cc, s in files.items():
                shutil.copy2(s.path, folder / str(v) / _plan_name(cc))
                if cc != "any":
                    cc_names[cc] = _plan_name(cc)
            versions.append(v)
        if plugin is not None:
            (folder / "plugins").mkdir()
            shutil.copy2(plugin, folder / "plugins" / plugin.name)
            repo.server_args.append(
                f"--backend-config=tensorrt,plugins={(folder / 'plugins' / plugin.name).resolve()}"
            )
        spec = engine_specs[0]
        tail = "\n".join(
            f'cc_model_filenames {{ key: "{cc}" value: "{fname}" }}' for cc, fname in sorted(cc_names.items())
        )
        if not cc_names:
            tail = 'default_model_filename: "model.plan"'
        text = _config(
            trt_name,
            'platform: "tensorrt_plan"',
            spec,
            versions,
            opts,
            outputs=dict(spec.outputs),
            input_spec=("TYPE_UINT8", [-1, -1, 3]),
            input_name=INPUT_NAME,
            kind="gpu" if kind == "cpu" else kind,  # TensorRT plans run on GPUs only
            parameters=_facts_parameters(spec),
            tail=tail,
        )
        atomic_write_text(folder / "config.pbtxt", text)
        repo.models[trt_name] = versions
    return repo


def _fresh(folder: Path) -> Path:
    """An empty model folder (an earlier one of the same name is replaced)."""
    if folder.exists():
        if not (folder / "config.pbtxt").exists():
            raise OutputPathError(
                f"{folder} exists and is not a Triton model folder", "choose another -o or --name"
            )
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    return folder
