"""A TensorRT engine of a graph with several named inputs, run from host arrays through Polygraphy.

The frame runner (:class:`~hdm_deploy.tensorrt.runner.TensorRTRunner`) serves the one-image graphs;
this class serves the graphs of artifacts driven by a host loop (several inputs, named dynamic axes,
companion engines): ``TensorRTGraph("model.engine").run({"a": x, "b": y}) -> {"out": z}``. Same
machinery and guarantees: Polygraphy's ``TrtRunner(EngineFromBytes(...))`` (``LoadPlugins`` in front
when a plugin library is wanted), the sidecar check, every feed cast to the engine's input type and
checked against the engine's profile (:class:`~hdm_deploy.tensorrt.profiles.TensorProfile`) *before*
TensorRT sees it, outputs copied out of Polygraphy's reused host buffers.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.device import device_for
from hdm_deploy.core.errors import EngineMismatchError, HdmDeployError, HdmDeployWarning
from hdm_deploy.core.fs import sha256_file
from hdm_deploy.tensorrt import cudart
from hdm_deploy.tensorrt.builder import COMPANION_ENGINES_KEY, import_polygraphy_trt, import_tensorrt
from hdm_deploy.tensorrt.plugins import load_plugin_library
from hdm_deploy.tensorrt.profiles import TensorProfile
from hdm_deploy.tensorrt.runner import (
    NO_SIDECAR_WARNING,
    TensorInfo,
    describe_io,
    require_tensor_api,
    select_plugin_library,
)
from hdm_deploy.tensorrt.sidecar import RuntimeFacts, raise_on_mismatch, read_sidecar
from hdm_deploy.tensorrt.sidecar import check_sidecar as compare

# ---- pure decisions (tested without TensorRT) ------------------------------------------------------


def engine_loader(poly: Any, data: bytes, plugin_path: Path | None) -> Any:
    """Polygraphy's loader chain: ``EngineFromBytes(data)``, wrapped in ``LoadPlugins`` when a plugin
    library is used (so it is registered before deserialisation)."""
    loader = poly.EngineFromBytes(data)
    if plugin_path is not None:
        loader = poly.LoadPlugins(plugins=[str(plugin_path)], obj=loader)
    return loader


def profile_of_engine(shapes: Mapping[str, Sequence[Sequence[int]]]) -> TensorProfile:
    """Profile 0 of an engine without sidecar: ``{input: engine.get_tensor_profile_shape(input, 0)}``."""
    out = {}
    for name, s in shapes.items():
        if len(s) != 3:
            raise EngineMismatchError(f"engine profile of {name!r} is not 3 shapes: {list(s)}")
        out[name] = tuple(tuple(int(d) for d in shape) for shape in s)
    return TensorProfile(out)  # type: ignore[arg-type]


def prepare_feeds(feeds: Mapping[str, Any], inputs: Sequence[TensorInfo]) -> dict[str, np.ndarray]:
    """Host feeds in the engine's input types (an FP16 engine input gets FP16), C-contiguous; a
    missing or unknown input is a one-line error."""
    wanted = {t.name: t.dtype for t in inputs if t.is_input}
    missing, unknown = sorted(set(wanted) - set(feeds)), sorted(set(feeds) - set(wanted))
    if missing or unknown:
        raise HdmDeployError(
            f"engine inputs are {', '.join(wanted)}; "
            + "; ".join(
                x
                for x in (
                    missing and f"missing {', '.join(missing)}",
                    unknown and f"unknown {', '.join(unknown)}",
                )
                if x
            ),
            "the engine was built from another graph: rebuild it from this model's ONNX",
        )
    return {n: np.ascontiguousarray(np.asarray(feeds[n]).astype(wanted[n], copy=False)) for n in wanted}


def companion_engines(engine_path: str | Path, model_metadata: Mapping[str, str] | None) -> list[Path]:
    """The engines ``build-engine`` wrote beside this one for its companion graphs (sidecar metadata)."""
    text = (model_metadata or {}).get(COMPANION_ENGINES_KEY, "")
    return [Path(engine_path).with_name(n.strip()) for n in text.split(",") if n.strip()]


# ---- the runner (needs TensorRT and a GPU) ---------------------------------------------------------


class TensorRTGraph:
    """``TensorRTGraph("unet.engine").run({"x_t": ..., "feature": ..., "t": ...}) -> {"eps": ...}``."""

    backend = "tensorrt"

    def __init__(
        self,
        engine_path: str | Path,
        *,
        plugin_lib: str | Path | None = None,
        check_sidecar: bool = True,
        device: int | str | None = 0,
        verbose: bool = False,
    ):
        path = Path(engine_path)
        if not path.is_file():
            raise EngineMismatchError(
                f"engine not found: {path}", "build it with `hdm-deploy build-engine MODEL.onnx`"
            )
        self.path = path
        device = int(device_for("tensorrt", device) or 0)
        self.sidecar = read_sidecar(path, required=False)
        self.warnings: list[str] = []
        if self.sidecar is None and check_sidecar:
            self.warnings.append(NO_SIDECAR_WARNING)
            warnings.warn(f"{path.name}: {NO_SIDECAR_WARNING}", HdmDeployWarning, stacklevel=2)
        trt = import_tensorrt()
        poly = import_polygraphy_trt()
        self.trt = trt
        lib = cudart.cudart()
        cudart.set_device(device, lib)  # before Polygraphy creates its stream and buffers
        self.plugin_path = select_plugin_library(plugin_lib, self.sidecar)
        if self.plugin_path is not None:
            load_plugin_library(self.plugin_path)
        self.gpu_name, self.compute_capability = cudart.device_properties(device, lib)
        if self.sidecar is not None and check_sidecar:
            facts = RuntimeFacts(
                trt.__version__,
                self.gpu_name,
                self.compute_capability,
                sha256_file(self.plugin_path) if self.plugin_path else None,
            )
            for text in (str(m) for m in raise_on_mismatch(path, compare(self.sidecar, facts))):
                warnings.warn(f"{path.name}: {text}", HdmDeployWarning, stacklevel=2)
                self.warnings.append(text)

        from polygraphy.exception import PolygraphyException
        from polygraphy.logger import G_LOGGER

        self._severity = G_LOGGER.VERBOSE if verbose else G_LOGGER.WARNING
        try:
            with G_LOGGER.verbosity(self._severity):
                self._runner = poly.TrtRunner(engine_loader(poly, path.read_bytes(), self.plugin_path))
                self._runner.activate()
        except PolygraphyException:
            raise EngineMismatchError(
                f"TensorRT {trt.__version__} could not deserialize {path.name}",
                "it was built by another TensorRT version/GPU or needs the plugin library; rebuild it here",
            ) from None
        engine = self._runner.engine
        require_tensor_api(trt.__version__, hasattr(engine, "num_io_tensors"))
        self.tensors = describe_io(engine, trt.TensorIOMode.INPUT)
        profile = self.sidecar.profile(0) if self.sidecar is not None else None
        if not isinstance(profile, TensorProfile):  # no sidecar (trtexec), or a frame engine's
            profile = profile_of_engine(
                {t.name: engine.get_tensor_profile_shape(t.name, 0) for t in self.tensors if t.is_input}
            )
        self.profile = profile

    @property
    def model_metadata(self) -> dict[str, str]:
        return dict(self.sidecar.model_metadata) if self.sidecar is not None else {}

    def check(self, shapes: Mapping[str, Sequence[int]]) -> None:
        """Shapes (some or all inputs) against the engine's profile: a one-line error before any work."""
        self.profile.check(shapes)

    def run(self, feeds: Mapping[str, Any]) -> dict[str, np.ndarray]:
        x = prepare_feeds(feeds, self.tensors)
        self.profile.check({k: v.shape for k, v in x.items()})
        from polygraphy.exception import PolygraphyException
        from polygraphy.logger import G_LOGGER

        try:
            with G_LOGGER.verbosity(self._severity):
                outputs = self._runner.infer(x, copy_outputs_to_host=True)
        except PolygraphyException as exc:
            raise HdmDeployError(f"TensorRT execution failed: {exc}", "re-run with verbose=True") from None
        # Polygraphy reuses its host output buffers on the next call: hand back copies.
        return {k: np.array(v, copy=True) for k, v in outputs.items()}

    def describe(self) -> dict[str, Any]:
        return {
            "backend": self.backend,
            "device": f"{self.gpu_name} (sm_{self.compute_capability})",
            "provider": f"TensorRT {self.trt.__version__} (Polygraphy)",
            "precision": self.sidecar.precision if self.sidecar else "?",
            "profile": self.profile.describe(),
        }

    def close(self) -> None:
        runner = getattr(self, "_runner", None)
        if runner is not None and runner.is_active:
            runner.deactivate()
        self._runner = None
