"""The Triton Python-backend model around our runners (torch-free).

Each version folder of a repository written by :func:`hdm_deploy.serving.write_repository` holds a
``model.py`` that re-exports :class:`TritonPythonModel` and the model file: ``model.onnx`` (ONNX
Runtime) or ``model.engine`` / ``model_smXY.engine`` (TensorRT; the one for this GPU's compute
capability is picked). ``triton_python_backend_utils`` exists only inside Triton's Python stub, so it is
imported when Triton calls :meth:`TritonPythonModel.initialize`.

Requests: ``image`` uint8 ``[B, H, W, 3]`` (``B`` ≥ 1, the batch dimension Triton adds for
``max_batch_size``). One :meth:`execute` call gets the requests the dynamic batcher gathered; Triton
gathers only requests of identical shape, and requests of different frame sizes that still arrive
together are run as one batch per frame size (never padded into one batch: HDM's dark-channel prior is
computed over the whole frame). A request whose frames the runner refuses (too small, too large for the
graph) is answered with that one-line error; the other requests are served.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.contracts import INPUT_NAME, OUTPUT_NAME
from hdm_deploy.core.errors import HdmDeployError, ModelFormatError, first_line
from hdm_deploy.core.runner import Runner
from hdm_deploy.runtime import load_runner
from hdm_deploy.tensorrt import cudart


def pick_model_file(version_dir: Path, compute_capability: str | None = None) -> Path:
    """The model file of a version folder: ``model.onnx``, else the engine for this GPU."""
    onnx_file = version_dir / "model.onnx"
    if onnx_file.is_file():
        return onnx_file
    engines = sorted(version_dir.glob("model*.engine"))
    if not engines:
        raise ModelFormatError(
            f"{version_dir} holds neither model.onnx nor model*.engine", "rewrite it with triton-repo"
        )
    if len(engines) == 1:
        return engines[0]
    if compute_capability:
        wanted = version_dir / f"model_sm{compute_capability.replace('.', '')}.engine"
        if wanted.is_file():
            return wanted
    raise ModelFormatError(
        f"{version_dir} has no engine for this GPU (sm {compute_capability or '?'}): "
        + ", ".join(e.name for e in engines),
        "build an engine on this GPU with `hdm-deploy build-engine` and add it with triton-repo",
    )


def group_by_shape(frames: list[np.ndarray]) -> dict[tuple[int, ...], list[int]]:
    """Indices of ``frames`` (each ``[B, H, W, C]``) grouped by frame shape ``(H, W, C)``, in order."""
    groups: dict[tuple[int, ...], list[int]] = {}
    for i, f in enumerate(frames):
        groups.setdefault(tuple(f.shape[1:]), []).append(i)
    return groups


def run_grouped(runner: Runner, batches: list[np.ndarray]) -> list[Any]:
    """Run request batches through ``runner``: same-size requests concatenated into one call.

    Returns, per request, the :class:`~hdm_deploy.core.runner.Prediction` slice for its frames or the
    :class:`HdmDeployError` that refused it (frames are validated per request first, so one bad request
    does not fail its neighbours).
    """
    results: list[Any] = [None] * len(batches)
    valid: list[int] = []
    checked: dict[int, np.ndarray] = {}
    for i, b in enumerate(batches):
        try:
            checked[i] = runner.validate(b)
            valid.append(i)
        except HdmDeployError as exc:
            results[i] = exc
    for indices in group_by_shape([checked[i] for i in valid]).values():
        members = [valid[j] for j in indices]
        try:
            pred = runner.run(np.concatenate([checked[i] for i in members]))
        except HdmDeployError as exc:
            for i in members:
                results[i] = exc
            continue
        start = 0
        for i in members:
            n = checked[i].shape[0]
            results[i] = (
                pred.image[start : start + n],
                {k: v[start : start + n] for k, v in pred.extras.items()},
            )
            start += n
    return results


class TritonPythonModel:
    """What Triton's Python backend instantiates once per model instance."""

    runner: Runner

    def initialize(self, args: dict[str, str]) -> None:
        config = json.loads(args["model_config"])
        params = {k: v.get("string_value", "") for k, v in config.get("parameters", {}).items()}
        model_dir = Path(args["model_repository"])
        version_dir = model_dir / str(args["model_version"])
        gpu = args.get("model_instance_kind", "CPU").upper() == "GPU"
        device_id = int(args.get("model_instance_device_id", 0) or 0)
        cc = None
        if not (version_dir / "model.onnx").is_file():
            cc = cudart.device_properties(device_id)[1]
        path = pick_model_file(version_dir, cc)
        # an engine runs on a GPU whatever the instance kind says (a KIND_CPU instance gets device 0)
        on_gpu = gpu or path.suffix != ".onnx"
        options: dict[str, Any] = {"device": f"cuda:{device_id}" if on_gpu else "cpu"}
        if path.suffix == ".onnx" and params.get("threads"):
            options["threads"] = int(params["threads"])
        if path.suffix != ".onnx" and params.get("plugin_lib"):
            options["plugin_lib"] = str(model_dir / params["plugin_lib"])
        self.runner = load_runner(path, **options)
        self.output_names = [o["name"] for o in config.get("output", [])]
        self.output_types = {o["name"]: o["data_type"] for o in config.get("output", [])}

    def execute(self, requests: list[Any]) -> list[Any]:
        import triton_python_backend_utils as pb_utils

        batches = [pb_utils.get_input_tensor_by_name(r, INPUT_NAME).as_numpy() for r in requests]
        responses = []
        for request, result in zip(requests, run_grouped(self.runner, batches), strict=True):
            if isinstance(result, HdmDeployError):
                responses.append(pb_utils.InferenceResponse(error=pb_utils.TritonError(first_line(result))))
                continue
            image, extras = result
            requested = set(request.requested_output_names() or self.output_names)
            tensors = [pb_utils.Tensor(OUTPUT_NAME, np.ascontiguousarray(image))]
            for name in self.output_names:
                if name != OUTPUT_NAME and name in requested and name in extras:
                    dtype = pb_utils.triton_string_to_numpy(self.output_types[name])
                    tensors.append(pb_utils.Tensor(name, np.ascontiguousarray(extras[name], dtype=dtype)))
            responses.append(pb_utils.InferenceResponse(output_tensors=tensors))
        return responses

    def finalize(self) -> None:
        runner = getattr(self, "runner", None)
        if runner is not None:
            runner.close()
