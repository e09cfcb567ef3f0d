"""``hdm-deploy doctor``: what is installed, which Jetson guide applies, and whether a graph will import
into a TensorRT version's ONNX parser. Never imports torch (versions come from package metadata).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

from hdm_deploy.graph import onnx_io as _graph
from hdm_deploy.tensorrt import cudart
from hdm_deploy.tensorrt.plugins import find_plugin_library
from hdm_deploy.tensorrt.trt_ops import KNOWN, OpIssue, check_model, nearest_known, summarize

TEGRA_RELEASE = Path("/etc/nv_tegra_release")

#: Jetson guide sections in docs/jetson.md, by TensorRT version family.
GUIDES = {
    "8.5": ("JetPack 5.1 (L4T R35, TensorRT 8.5)", "docs/jetson.md#jetpack-51-tensorrt-85"),
    "8.6": ("JetPack 6.0 (L4T R36.2/36.3, TensorRT 8.6)", "docs/jetson.md#jetpack-60-tensorrt-86"),
    "10.3": ("JetPack 6.1/6.2 (L4T R36.4, TensorRT 10.3)", "docs/jetson.md#jetpack-61--62-tensorrt-103"),
    "10.13": ("JetPack 7 / Thor (L4T R38, TensorRT 10.13+)", "docs/jetson.md#jetpack-7-thor-tensorrt-1013"),
    "11": ("TensorRT 11 (strongly typed only)", "docs/jetson.md#tensorrt-11"),
}


@dataclass
class Versions:
    python_packages: dict[str, str | None] = field(default_factory=dict)
    tensorrt: str | None = None
    cuda_runtime: str | None = None
    cuda_driver: str | None = None
    gpus: list[str] = field(default_factory=list)
    jetson_l4t: str | None = None  #: "R35.3.1"


def package_version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


def parse_tegra_release(text: str) -> str | None:
    """``# R35 (release), REVISION: 3.1, GCID: …`` → ``"R35.3.1"``."""
    m = re.search(r"R(\d+)\s*\(release\),\s*REVISION:\s*([\d.]+)", text)
    return f"R{m.group(1)}.{m.group(2)}" if m else None


def l4t_to_trt(l4t: str) -> str | None:
    """The TensorRT version family JetPack ships for an L4T release."""
    m = re.match(r"R(\d+)\.(\d+)", l4t)
    if not m:
        return None
    major, minor = int(m.group(1)), int(m.group(2))
    if major == 35:
        return "8.5"
    if major == 36:
        return "8.6" if minor < 4 else "10.3"
    if major >= 38:
        return "10.13"
    return None


def guide_for(trt_version: str | None, l4t: str | None = None) -> tuple[str, str] | None:
    """(title, docs anchor) of the guide that applies: from the TensorRT found, else from L4T."""
    family = None
    if trt_version:
        family = nearest_known(trt_version)
    elif l4t:
        family = l4t_to_trt(l4t)
    return GUIDES.get(family) if family else None


def detect_versions() -> Versions:  # pragma: no cover - environment probing; the parts are tested
    v = Versions()
    for name in (
        "torch",
        "torchvision",
        "onnx",
        "onnxruntime",
        "onnxruntime-gpu",
        "polygraphy",
        "numpy",
        "opencv-python-headless",
    ):
        v.python_packages[name] = package_version(name)
    try:
        import tensorrt

        v.tensorrt = tensorrt.__version__
    except Exception:
        v.tensorrt = package_version("tensorrt")
    try:  # libcudart through Polygraphy's ctypes wrapper (no cuda-python / pycuda)
        lib = cudart.cudart()
        v.cuda_runtime = cudart.runtime_version(lib)
        v.cuda_driver = cudart.driver_version(lib)
        for i in range(cudart.device_count(lib)):
            name, cc = cudart.device_properties(i, lib)
            v.gpus.append(f"{name} (sm_{cc.replace('.', '')})")
    except Exception:
        pass
    if TEGRA_RELEASE.is_file():
        with contextlib.suppress(OSError):
            v.jetson_l4t = parse_tegra_release(TEGRA_RELEASE.read_text(errors="replace"))
    return v


@dataclass
class GraphReport:
    trt_version: str
    table: str
    issues: list[OpIssue]
    ops: int

    @property
    def ok(self) -> bool:
        return summarize(self.issues)["error"] == 0


def check_graph(path: str | Path, trt_version: str, plugin_available: bool | None = None) -> GraphReport:
    """Load an ONNX file (no external data) and check it against ``trt_version``'s parser."""

    model = _graph.load(path, external_data=False)
    ops = len(model.graph.node) + sum(len(f.node) for f in model.functions)
    return GraphReport(
        trt_version, nearest_known(trt_version), check_model(model, trt_version, plugin_available), ops
    )


def plugin_available() -> bool:

    return find_plugin_library(required=False) is not None


__all__ = [
    "GUIDES",
    "KNOWN",
    "GraphReport",
    "Versions",
    "check_graph",
    "detect_versions",
    "guide_for",
    "l4t_to_trt",
    "parse_tegra_release",
]
