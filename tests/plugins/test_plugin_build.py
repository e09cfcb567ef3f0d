"""Building and finding the native libraries: nvcc compile-only checks of the CUDA kernels (sm_87
Orin, sm_90 Hopper), the CMake build behind `hdm-deploy build-plugin`, and library discovery."""

from __future__ import annotations

import ctypes
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from hdm_deploy.core.errors import PluginBuildError
from hdm_deploy.plugins import (
    ENV_PLUGIN_LIB,
    PLUGIN_LIB_NAME,
    build_cpu_library,
    find_plugin_library,
    native_library,
    plugin_selftest,
)
from hdm_deploy.plugins._build import CSRC_DIR, _find_nvcc, normalize_archs, trt_adapter_sources

NVCC = _find_nvcc()
needs_nvcc = pytest.mark.skipif(NVCC is None, reason="nvcc (CUDA toolkit) not installed")


def _nvcc_archs() -> set[str]:
    out = subprocess.run([NVCC, "--list-gpu-arch"], capture_output=True, text=True, check=False).stdout
    return set(re.findall(r"compute_(\d+)", out))


@needs_nvcc
def test_cuda_kernels_compile_for_orin_and_hopper(tmp_path):
    """Compile-only (no GPU needed): sm_87 (Jetson Orin) and sm_90, no register spills."""
    archs = [a for a in ("87", "90") if a in _nvcc_archs()]
    assert archs == ["87", "90"], f"nvcc lacks {set(['87', '90']) - set(archs)}"
    cmd = [NVCC, "-std=c++17", "-O3", "-c", str(CSRC_DIR / "cuda_kernels.cu"), "-o", str(tmp_path / "k.o")]
    cmd += ["-Xptxas", "-v", "-Xcompiler", "-fPIC"]
    for a in archs:
        cmd += ["-gencode", f"arch=compute_{a},code=sm_{a}"]
    proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = proc.stdout + proc.stderr
    for a in archs:
        assert f"for 'sm_{a}'" in log
    assert len(re.findall(r"deform_conv_kernel", log)) >= 8  # 4 dtype variants x 2 archs
    spills = re.findall(r"(\d+) bytes spill stores", log)
    assert spills and all(s == "0" for s in spills), log[-2000:]
    smem = {int(s) for s in re.findall(r"(\d+) bytes smem", log)}
    assert smem and max(smem) <= 48 * 1024  # static shared memory, independent of the image size


@needs_nvcc
def test_jetson_architectures_have_clear_rules(tmp_path):
    """sm_72 (Xavier, JetPack 5) needs CUDA <= 12; CMake says so instead of failing in nvcc."""
    if "72" in _nvcc_archs():
        pytest.skip("this nvcc still supports sm_72")
    if shutil.which("cmake") is None:
        pytest.skip("cmake not installed")
    proc = subprocess.run(
        ["cmake", "-S", str(CSRC_DIR.parent), "-B", str(tmp_path / "b"), "-DHDM_CUDA_ARCHS=72;87",
         f"-DCMAKE_CUDA_COMPILER={NVCC}"],
        capture_output=True, text=True, check=False, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0
    assert "sm_72" in proc.stderr and "CUDA 11.4" in proc.stderr


def test_normalize_archs():
    assert normalize_archs("87;90") == ("87", "90")
    assert normalize_archs("sm_87, 110") == ("87", "110")
    assert normalize_archs([72, "87"]) == ("72", "87")
    assert normalize_archs(None) == ()
    with pytest.raises(PluginBuildError, match="invalid CUDA architecture"):
        normalize_archs("orin")


def test_find_plugin_library_env_and_search(tmp_path, monkeypatch):
    monkeypatch.setenv("HDM_DEPLOY_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(ENV_PLUGIN_LIB, raising=False)
    packaged = [
        Path(__file__).resolve().parents[2] / "src/hdm_deploy/plugins" / d / PLUGIN_LIB_NAME
        for d in ("lib", ".")
    ]
    if any(p.exists() for p in packaged):
        pytest.skip("a plugin library is installed in the package directory")
    with pytest.raises(PluginBuildError) as info:
        find_plugin_library()
    text = str(info.value)
    assert "plugin-build" in text and "build-plugin" in text and ENV_PLUGIN_LIB in text

    lib = tmp_path / "custom" / PLUGIN_LIB_NAME
    lib.parent.mkdir()
    lib.write_bytes(b"")
    assert find_plugin_library(extra_dirs=[lib.parent]) == lib
    built = tmp_path / "cache" / "plugin-build" / PLUGIN_LIB_NAME
    built.parent.mkdir(parents=True)
    built.write_bytes(b"")
    assert find_plugin_library() == built

    monkeypatch.setenv(ENV_PLUGIN_LIB, str(lib))
    assert find_plugin_library() == lib
    monkeypatch.setenv(ENV_PLUGIN_LIB, str(tmp_path / "missing.so"))
    with pytest.raises(PluginBuildError, match="does not name an existing file"):
        find_plugin_library()


def test_cpu_build_without_compiler_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("CXX", str(tmp_path / "no-such-g++"))
    with pytest.raises(PluginBuildError, match="no C\\+\\+ compiler") as info:
        build_cpu_library(cache_dir=tmp_path)
    assert "g++" in (info.value.hint or "")


def test_cpu_build_is_cached_by_source_hash(tmp_path):
    first = build_cpu_library(cache_dir=tmp_path)
    mtime = first.stat().st_mtime_ns
    assert build_cpu_library(cache_dir=tmp_path) == first
    assert first.stat().st_mtime_ns == mtime
    assert first.parent.parent == tmp_path and len(first.parent.name) == 20


def test_build_plugin_without_cmake_is_a_clear_error(tmp_path, monkeypatch):
    from hdm_deploy.plugins import build_plugin

    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PluginBuildError, match="cmake not found"):
        build_plugin(tmp_path / "b")


@pytest.mark.slow
@needs_nvcc
@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
def test_build_plugin_cli_kernels_only(tmp_path, monkeypatch):
    """`hdm-deploy build-plugin --kernels-only` end to end for one architecture: it builds the kernels
    only and says so; the library's C API (decisions, selftest) then loads via ctypes."""
    from typer.testing import CliRunner

    from hdm_deploy.cli import app

    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    runner = CliRunner()
    res = runner.invoke(
        app,
        [
            "build-plugin",
            "--cuda-arch",
            "87",
            "--build-dir",
            str(tmp_path / "b"),
            "-o",
            str(tmp_path / "out"),
            "--kernels-only",
        ],
    )
    assert res.exit_code == 0, res.output + repr(res.exception)
    lib = tmp_path / "out" / PLUGIN_LIB_NAME
    assert lib.exists()
    assert lib.stat().st_mode & 0o055 == 0o055  # readable/executable by others, like the build output
    assert str(lib) in res.output.replace("\n", "")
    info_text = (tmp_path / "b" / "hdm_build_info.txt").read_text()
    assert "cuda_archs=87" in info_text
    try:
        loaded = native_library(str(lib))
    except OSError as exc:  # libcudart not on the loader path
        pytest.skip(f"cannot load the CUDA library here: {exc}")
    info = loaded.hdm_deploy_plugin_info().decode()
    assert "kernels=cuda" in info
    has_trt = "tensorrt=none" not in info
    assert has_trt == hasattr(ctypes.CDLL(str(lib)), "initHdmDeployPlugins")
    failures, report = plugin_selftest(loaded)
    assert failures == 0, report


def _tensorrt_include() -> Path | None:
    roots = [os.environ.get("TENSORRT_ROOT"), "/usr", "/usr/local/TensorRT", "/opt/tensorrt"]
    for root in filter(None, roots):
        for sub in ("include", "include/x86_64-linux-gnu", "include/aarch64-linux-gnu"):
            if (Path(root) / sub / "NvInfer.h").exists():
                return Path(root) / sub
    return None


def _cuda_include() -> Path | None:
    cuda_dirs = [
        os.environ.get("CUDA_HOME"),
        NVCC and str(Path(NVCC).resolve().parents[1]),
        "/usr/local/cuda",
    ]
    for d in filter(None, cuda_dirs):
        if (Path(d) / "include/cuda_runtime_api.h").exists():
            return Path(d) / "include"
    return None


def test_tensorrt_adapters_against_mock_tensorrt(tmp_path):
    """Compile the TensorRT adapter (trt_plugin_v2.cpp or _v3.cpp + trt_plugin_common.cpp) against whatever TensorRT headers this machine has (TENSORRT_ROOT or a
    system install) and run it inside a mock TensorRT (registry, expression builder, stub launch):
    registration paths, field parsing, symbolic output shapes, formats, V2 serialization / V3 field
    round trips, enqueue argument checks. No GPU or libnvinfer needed."""
    include, cuda_inc = _tensorrt_include(), _cuda_include()
    if include is None:
        pytest.skip("no TensorRT headers (NvInfer.h) found; set TENSORRT_ROOT to check the adapters")
    if cuda_inc is None:
        pytest.skip("CUDA headers (cuda_runtime_api.h) not found (TensorRT headers include them)")
    cxx = shutil.which("g++") or shutil.which("c++")
    if cxx is None:
        pytest.skip("no C++ compiler")
    exe = tmp_path / "harness"
    flags = [
        "-std=c++17",
        "-O1",
        "-Wall",
        "-Wno-deprecated-declarations",
        "-DHDM_WITH_TENSORRT",
        f"-I{CSRC_DIR}",
    ]
    flags += [f"-isystem{include}", f"-isystem{cuda_inc}"]
    version_h = (include / "NvInferVersion.h").read_text()
    major = re.search(r"#define (?:NV_TENSORRT_MAJOR|TRT_MAJOR_ENTERPRISE) +(\d+)", version_h)
    assert major, f"no TensorRT major in {include / 'NvInferVersion.h'}"
    sources = [
        CSRC_DIR / "testing" / "trt_mock_harness.cpp",
        *(CSRC_DIR / s for s in trt_adapter_sources(int(major.group(1)))),
    ]
    build = subprocess.run(
        [cxx, *flags, *map(str, sources), "-rdynamic", "-ldl", "-pthread", "-o", str(exe)],
        capture_output=True, text=True, check=False, timeout=600,
    )  # fmt: skip
    assert build.returncode == 0, build.stderr[-3000:]
    run = subprocess.run([str(exe)], capture_output=True, text=True, check=False, timeout=120)
    assert run.returncode == 0, run.stdout[-3000:]
    assert "ALL OK" in run.stdout


def test_build_plugin_cli_without_headers_fails_unless_kernels_only(tmp_path, monkeypatch):
    """Asked for the TensorRT plugin (the default) with a root that has no NvInfer.h: exit 3 (the
    environment), one line naming --kernels-only, nothing built."""
    from typer.testing import CliRunner

    from hdm_deploy.cli import app

    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    empty = tmp_path / "trt"
    empty.mkdir()
    res = CliRunner().invoke(
        app,
        [
            "build-plugin",
            "--cuda-arch",
            "87",
            "--build-dir",
            str(tmp_path / "b"),
            "--tensorrt-root",
            str(empty),
        ],
    )
    assert res.exit_code == 3, res.output
    assert "--kernels-only" in res.output and "Traceback" not in res.output
    assert not (tmp_path / "b" / PLUGIN_LIB_NAME).exists()
