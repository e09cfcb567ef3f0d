"""Packaging invariants of pyproject.toml (issue 12): ONNX Runtime is an extra, never a hard dependency.

`onnxruntime` and `onnxruntime-gpu` install the same `onnxruntime` module; a hard dependency on the
CPU package makes pip reinstall it over an onnxruntime-gpu environment, and the CUDA execution
provider disappears. These tests read pyproject.toml only (no pip, no network).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

try:
    import tomllib
except ImportError:  # Python 3.10
    tomllib = pytest.importorskip("tomli", reason="Python 3.10 needs tomli to read pyproject.toml")

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


@pytest.fixture(scope="module")
def project() -> dict:
    return tomllib.loads(PYPROJECT.read_text())["project"]


def _name(requirement: str) -> str:
    """Normalised distribution name of a PEP 508 requirement (extras, versions, markers dropped)."""
    name = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)", requirement).group(1)
    return re.sub(r"[-_.]+", "-", name).lower()


def _extras_of_self(requirement: str, project_name: str) -> set[str]:
    """`hdm-deploy[cpu,torch]` → {'cpu', 'torch'}; anything else → empty set."""
    m = re.match(r"\s*([A-Za-z0-9._-]+)\s*\[([^\]]*)\]", requirement)
    if not m or _name(m.group(1)) != _name(project_name):
        return set()
    return {e.strip() for e in m.group(2).split(",") if e.strip()}


def _expanded(project: dict, extra: str, seen: frozenset[str] = frozenset()) -> set[str]:
    """Distribution names an extra pulls in, self-references (hdm-deploy[...]) followed."""
    names: set[str] = set()
    for req in project["optional-dependencies"][extra]:
        inner = _extras_of_self(req, project["name"])
        if inner:
            for e in inner - seen:
                names |= _expanded(project, e, seen | {extra})
        else:
            names.add(_name(req))
    return names


def test_no_hard_dependency_on_onnxruntime(project):
    names = {_name(r) for r in project["dependencies"]}
    assert "onnxruntime" not in names, "onnxruntime must be an extra ([cpu]), see pyproject.toml"
    assert "onnxruntime-gpu" not in names


def test_cpu_extra_is_the_cpu_build(project):
    names = _expanded(project, "cpu")
    assert "onnxruntime" in names
    assert "onnxruntime-gpu" not in names


def test_gpu_extra_has_onnxruntime_gpu_and_not_the_cpu_build(project):
    names = _expanded(project, "gpu")
    assert "onnxruntime-gpu" in names
    assert "onnxruntime" not in names


def test_gpu_extra_asks_for_a_cuda13_build(project):
    """onnxruntime-gpu on PyPI is a CUDA 13 build from 1.27.0 (1.26 and older: CUDA 12)."""
    (req,) = [r for r in project["optional-dependencies"]["gpu"] if _name(r) == "onnxruntime-gpu"]
    floor = re.search(r">=\s*([0-9]+)\.([0-9]+)", req)
    assert floor and (int(floor.group(1)), int(floor.group(2))) >= (1, 27), req


def test_dev_pulls_the_cpu_build(project):
    """README's first command, `pip install -e '.[dev]'`, must still give ONNX Runtime on a CPU machine."""
    assert "cpu" in set().union(
        *(_extras_of_self(r, project["name"]) for r in project["optional-dependencies"]["dev"])
    )
    names = _expanded(project, "dev")
    assert "onnxruntime" in names
    assert "onnxruntime-gpu" not in names


@pytest.mark.parametrize("extra", ["trt", "dev"])
def test_trt_needs_no_cuda_python_or_pycuda(project, extra):
    """Engines run through polygraphy.cuda (libcudart via ctypes): no CUDA-version-specific Python pin."""
    names = _expanded(project, extra)
    assert not names & {"cuda-python", "cuda-bindings", "pycuda"}, names
    assert "polygraphy" in _expanded(project, "trt")


def test_no_extra_mixes_the_two_onnxruntime_builds(project):
    for extra in project["optional-dependencies"]:
        names = _expanded(project, extra)
        assert not {"onnxruntime", "onnxruntime-gpu"} <= names, extra
