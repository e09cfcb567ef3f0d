"""The JSON sidecar written beside every engine (``model.engine.json``) and its checks.

A TensorRT engine only runs with the TensorRT version that built it and on GPUs of the same
compute capability (we do not build hardware-/version-compatible engines). The sidecar records
what the engine was built for, so :func:`check_sidecar` can say *why* an engine will not load —
before TensorRT fails with a deserialisation error.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hdm_deploy.core.errors import EngineMismatchError, ModelFormatError
from hdm_deploy.core.fs import atomic_write_bytes, atomic_write_text
from hdm_deploy.tensorrt.flags import parse_version
from hdm_deploy.tensorrt.profiles import Profile, TensorProfile

SCHEMA = 1


def sidecar_path(engine_path: str | Path) -> Path:
    engine_path = Path(engine_path)
    return engine_path.with_name(engine_path.name + ".json")


@dataclass
class EngineSidecar:
    trt_version: str
    gpu_name: str | None  #: None: the builder could not ask the GPU (then not checked at load time)
    compute_capability: str | None  #: "8.7"; None when unknown (not checked)
    precision: str  #: "fp32" | "fp16"
    strongly_typed: bool
    tf32: bool
    profiles: list[dict]
    onnx_sha256: str
    onnx_file: str | None = None
    plugin_sha256: str | None = None
    plugin_file: str | None = None
    cuda_version: str | None = None
    hdm_deploy_version: str | None = None
    model_metadata: dict[str, str] = field(default_factory=dict)
    build_flags: dict[str, Any] = field(default_factory=dict)
    fp32_layers: int = 0
    build_seconds: float | None = None
    schema: int = SCHEMA

    def profile(self, index: int = 0) -> Profile | TensorProfile:
        """The image profile of a frame engine, or the per-input profile of a multi-input engine."""
        data = self.profiles[index]
        return TensorProfile.from_dict(data) if data.get("kind") == "tensors" else Profile.from_dict(data)

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> EngineSidecar:
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        missing = [
            k
            for k in ("trt_version", "gpu_name", "compute_capability", "precision", "profiles")
            if k not in known
        ]
        if missing:
            raise ModelFormatError(
                f"engine sidecar lacks {', '.join(missing)}",
                "rebuild the engine with hdm-deploy build-engine",
            )
        known.setdefault("strongly_typed", False)
        known.setdefault("tf32", False)
        known.setdefault("onnx_sha256", "")
        return cls(**known)


def write_sidecar(engine_path: str | Path, sidecar: EngineSidecar) -> Path:
    path = sidecar_path(engine_path)
    atomic_write_text(path, sidecar.to_json() + "\n")
    return path


def publish_engine(engine_path: str | Path, serialized: bytes, sidecar: EngineSidecar) -> Path:
    """Write the sidecar, then the engine, each atomically: an engine never exists without its
    sidecar (a crash in between leaves at most a sidecar, which nothing loads on its own)."""

    side = write_sidecar(engine_path, sidecar)
    atomic_write_bytes(engine_path, serialized)
    return side


def read_sidecar(engine_path: str | Path, required: bool = True) -> EngineSidecar | None:
    path = sidecar_path(engine_path)
    if not path.is_file():
        if required:
            raise ModelFormatError(
                f"no sidecar {path.name} beside the engine",
                "engines built by `hdm-deploy build-engine` have one: rebuild the engine with it "
                "(from Python, load_runner(path, check_sidecar=False) skips the checks)",
            )
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFormatError(f"unreadable engine sidecar {path}: {exc}") from exc
    return EngineSidecar.from_mapping(data)


@dataclass(frozen=True)
class RuntimeFacts:
    """What is running now: TensorRT version and GPU (from ``tensorrt`` and the CUDA runtime)."""

    trt_version: str
    gpu_name: str | None = None
    compute_capability: str | None = None
    plugin_sha256: str | None = None


@dataclass(frozen=True)
class Mismatch:
    what: str
    built: str
    running: str
    fatal: bool

    def __str__(self) -> str:
        return f"{self.what}: built for {self.built}, running {self.running}"


def _known(value: str | None) -> str | None:
    """``None`` for a fact nobody could find out (older sidecars wrote ``"unknown"``)."""
    return None if value in (None, "", "unknown") else value


def check_sidecar(sidecar: EngineSidecar, facts: RuntimeFacts) -> list[Mismatch]:
    """Differences between build and run. Fatal: TensorRT major.minor.patch, compute capability,
    a different plugin library. Not fatal: GPU name (same architecture, other SKU — it runs, maybe
    slower), TensorRT build number. A fact unknown on either side (``None``) is not compared."""
    out: list[Mismatch] = []
    built_v, run_v = parse_version(sidecar.trt_version), parse_version(facts.trt_version)
    if built_v[:3] != run_v[:3]:
        out.append(Mismatch("TensorRT version", sidecar.trt_version, facts.trt_version, True))
    elif built_v != run_v:
        out.append(Mismatch("TensorRT build", sidecar.trt_version, facts.trt_version, False))
    built_cc, run_cc = _known(sidecar.compute_capability), _known(facts.compute_capability)
    if built_cc and run_cc and built_cc != run_cc:
        out.append(Mismatch("GPU compute capability", f"sm_{built_cc}", f"sm_{run_cc}", True))
    built_gpu, run_gpu = _known(sidecar.gpu_name), _known(facts.gpu_name)
    if built_gpu and run_gpu and built_gpu != run_gpu:
        out.append(Mismatch("GPU", built_gpu, run_gpu, False))
    if sidecar.plugin_sha256 and facts.plugin_sha256 and sidecar.plugin_sha256 != facts.plugin_sha256:
        out.append(
            Mismatch("plugin library sha256", sidecar.plugin_sha256[:12], facts.plugin_sha256[:12], True)
        )
    return out


def raise_on_mismatch(engine_path: str | Path, mismatches: list[Mismatch]) -> list[Mismatch]:
    """Raise :class:`EngineMismatchError` for fatal mismatches; return the non-fatal ones (warnings)."""
    fatal = [m for m in mismatches if m.fatal]
    if fatal:
        raise EngineMismatchError(
            f"engine {Path(engine_path).name} cannot run here — " + "; ".join(map(str, fatal)),
            "engines are specific to the TensorRT version and GPU: rebuild it on this device with "
            "`hdm-deploy build-engine MODEL.onnx -o " + Path(engine_path).name + "`",
        )
    return [m for m in mismatches if not m.fatal]
