"""The TensorRT plugin against the real public headers of every TensorRT we support (8.6, 10.3, 10.13,
10.16, 11.1 in ../shared/third_party/tensorrt-headers), without TensorRT libraries or a GPU:

* CMake + nvcc 13 build for sm_87 and sm_90 per header version, exported entry points (`nm -D`);
* the mock harness (csrc/testing/trt_mock_harness.cpp) per version;
* registration in each loading route, against a fake libnvinfer.so.<major> built from the same headers
  (csrc/testing/fake_libnvinfer.cpp): (a) ctypes load after libnvinfer, (b) IPluginRegistry::loadLibrary,
  (c) LD_PRELOAD before libnvinfer, (d) Triton-style dlopen from a backend that links libnvinfer.

Everything is built once per session in one temporary directory (about 15 s per header version on 2 cores).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hdm_deploy.plugins._build import (
    CSRC_DIR,
    PLUGIN_DIR,
    _find_nvcc,
    build_plugin,
    default_cuda_archs,
    detect_platform,
    trt_adapter_sources,
)

PROJECT_ROOT = Path(__file__).resolve().parents[2]
HEADERS_ROOT = PROJECT_ROOT / ".." / "shared" / "third_party" / "tensorrt-headers"
SUPPORTED = ("8.6", "10.3", "10.13", "10.16", "11.1")
VERSIONS = tuple(
    sorted(
        set(SUPPORTED) | {p.name for p in HEADERS_ROOT.glob("*") if (p / "include" / "NvInfer.h").exists()},
        key=lambda v: tuple(int(x) for x in v.split(".")),
    )
)
NVCC = _find_nvcc()
CXX = shutil.which("g++") or shutil.which("c++")
PLUGIN = ("HdmDeformConv", "1", "hdm_deploy")


def _headers(version: str) -> Path:
    inc = HEADERS_ROOT / version / "include"
    if not (inc / "NvInfer.h").exists():
        pytest.skip(f"TensorRT {version} headers not present at {inc} (only in the hdm-deploy CI checkout)")
    return inc


def _major(version: str) -> int:
    return int(version.split(".")[0])


def _cuda_include() -> Path | None:
    for d in filter(
        None, [os.environ.get("CUDA_HOME"), NVCC and str(Path(NVCC).resolve().parents[1]), "/usr/local/cuda"]
    ):
        if (Path(d) / "include" / "cuda_runtime_api.h").exists():
            return Path(d) / "include"
    return None


def _run(cmd, **kw) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(c) for c in cmd], capture_output=True, text=True, check=False, timeout=600, **kw
    )


def _compile(cmd) -> None:
    proc = _run(cmd)
    assert proc.returncode == 0, proc.stderr[-4000:]


class Builds:
    """Session cache: one directory, each artifact built at most once."""

    def __init__(self, root: Path):
        self.root = root
        self.cache: dict[tuple, Path] = {}

    def cuda_inc(self) -> Path:
        inc = _cuda_include()
        if inc is None:
            pytest.skip("CUDA headers (cuda_runtime_api.h) not found; the TensorRT headers include them")
        if CXX is None:
            pytest.skip("no C++ compiler")
        return inc

    def plugin(self, version: str):
        """libhdm_deploy_plugins.so built by CMake + nvcc for sm_87;sm_90 (build_plugin, as the CLI does)."""
        key = ("plugin", version)
        if key not in self.cache:
            inc = _headers(version)
            if NVCC is None:
                pytest.skip("nvcc (CUDA toolkit) not installed")
            if shutil.which("cmake") is None:
                pytest.skip("cmake not installed")
            self.cache[key] = build_plugin(
                self.root / f"cmake-{version}", "87;90", inc.parent, jobs=2, require_tensorrt=True
            )
        return self.cache[key]

    def fake_nvinfer(self, version: str) -> Path:
        key = ("nvinfer", version)
        if key not in self.cache:
            inc, cuda = _headers(version), self.cuda_inc()
            soname = f"libnvinfer.so.{_major(version)}"
            out = self.root / f"fake-{version}" / soname
            out.parent.mkdir(parents=True, exist_ok=True)
            _compile([CXX, "-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-Wno-deprecated-declarations",
                      f"-Wl,-soname,{soname}", f"-isystem{inc}", f"-isystem{cuda}",
                      CSRC_DIR / "testing" / "fake_libnvinfer.cpp", "-ldl", "-o", out])  # fmt: skip
            self.cache[key] = out
        return self.cache[key]

    def driver(self) -> Path:
        key = ("driver",)
        if key not in self.cache:
            out = self.root / "route_driver"
            _compile(
                [
                    CXX,
                    "-std=c++17",
                    "-O1",
                    "-Wall",
                    CSRC_DIR / "testing" / "route_driver.cpp",
                    "-ldl",
                    "-o",
                    out,
                ]
            )
            self.cache[key] = out
        return self.cache[key]

    def backend(self, version: str) -> Path:
        """A fake Triton TensorRT backend: links the fake libnvinfer, dlopens plugins RTLD_NOW|RTLD_LOCAL."""
        key = ("backend", version)
        if key not in self.cache:
            nvinfer = self.fake_nvinfer(version)
            out = nvinfer.parent / "libtriton_fake_tensorrt.so"
            _compile([CXX, "-std=c++17", "-O1", "-shared", "-fPIC", "-Wall", "-DHDM_ROUTE_BACKEND",
                      CSRC_DIR / "testing" / "route_driver.cpp", f"-L{nvinfer.parent}", f"-l:{nvinfer.name}",
                      f"-Wl,-rpath,{nvinfer.parent}", "-Wl,--no-as-needed", "-ldl", "-o", out])  # fmt: skip
            self.cache[key] = out
        return self.cache[key]


@pytest.fixture(scope="session")
def builds(tmp_path_factory) -> Builds:
    return Builds(tmp_path_factory.mktemp("trt-matrix"))


def _env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HDM_DEPLOY_PLUGIN")}
    env.pop("LD_PRELOAD", None)
    if NVCC is not None:  # libcudart of the toolkit that built the plugin
        lib = Path(NVCC).resolve().parents[1] / "lib64"
        env["LD_LIBRARY_PATH"] = os.pathsep.join(filter(None, [str(lib), env.get("LD_LIBRARY_PATH")]))
    for k, v in extra.items():
        env[k] = v if k != "LD_LIBRARY_PATH" else os.pathsep.join([v, env.get("LD_LIBRARY_PATH", "")])
    return env


def _kv(text: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for line in text.splitlines():
        key, sep, value = line.partition("=")
        if sep and " " not in key and ":" not in key:
            out[key] = value
        elif line.startswith("registry: "):
            out.update(
                {
                    k: v
                    for k, _, v in (
                        item.partition("=") for item in line.removeprefix("registry: ").split(" ")
                    )
                }
            )
    return out


# ---- 1. build per header version + exported entry points ---------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_plugin_builds_against_real_headers(builds, version):
    result = builds.plugin(version)
    assert result.tensorrt_version is not None and result.tensorrt_version.startswith(version)
    assert result.cuda_archs == ("87", "90")
    symbols = _run(["nm", "-D", "--defined-only", result.library]).stdout.split()
    entry, other = (
        ("getCreators", "getPluginCreators")
        if _major(version) >= 10
        else ("getPluginCreators", "getCreators")
    )
    assert entry in symbols and other not in symbols
    for name in (
        "initHdmDeployPlugins",
        "hdm_deploy_plugin_registration",
        "setLoggerFinder",
        "hdm_deform_conv_cuda",
    ):
        assert name in symbols, name
    if shutil.which("cuobjdump"):
        elves = _run(["cuobjdump", "--list-elf", result.library]).stdout
        assert "sm_87" in elves and "sm_90" in elves, elves
    # Never linked against libnvinfer: it is found in the loading process.
    assert "libnvinfer" not in _run(["readelf", "-d", result.library]).stdout


# ---- 2. the mock harness per header version ---------------------------------------------------------


@pytest.mark.parametrize("version", VERSIONS)
def test_mock_harness_per_version(builds, version, tmp_path):
    inc, cuda = _headers(version), builds.cuda_inc()
    exe = tmp_path / "harness"
    sources = [
        CSRC_DIR / "testing" / "trt_mock_harness.cpp",
        *(CSRC_DIR / s for s in trt_adapter_sources(_major(version))),
    ]
    _compile([CXX, "-std=c++17", "-O1", "-Wall", "-Wno-deprecated-declarations", "-DHDM_WITH_TENSORRT",
              f"-I{CSRC_DIR}", f"-isystem{inc}", f"-isystem{cuda}", *sources, "-rdynamic", "-ldl", "-pthread",
              "-o", exe])  # fmt: skip
    run = _run([exe], env=_env())
    assert run.returncode == 0 and "ALL OK" in run.stdout, run.stdout[-3000:]
    assert f"TensorRT headers {version}" in run.stdout


# ---- 3. registration routes against a fake libnvinfer -------------------------------------------------


def _assert_one_creator(kv: dict[str, str]) -> None:
    assert kv.get("has_creator") == "1", kv
    assert kv["entries"] == "1" and kv["creators"] == "/".join(PLUGIN), kv
    assert kv["refused"] == "0", kv  # nobody tried to register a duplicate


_ROUTE_A = """
import ctypes, sys
nvinfer = ctypes.CDLL(sys.argv[1])            # like `import tensorrt` (RTLD_LOCAL)
plugin = ctypes.CDLL(sys.argv[2])             # like polygraphy LoadPlugins / ctypes.CDLL
plugin.hdm_deploy_plugin_registration.restype = ctypes.c_char_p
print("plugin_state=" + plugin.hdm_deploy_plugin_registration().decode())
init = plugin.initHdmDeployPlugins
init.restype, init.argtypes = ctypes.c_bool, [ctypes.c_void_p, ctypes.c_char_p]
print("init=%d" % init(None, b"hdm_deploy"))  # load_plugin_library calls it: idempotent
print("init_again=%d" % init(None, None))
buf = ctypes.create_string_buffer(2048)
nvinfer.fake_trt_describe(buf, 2048)
print("registry: " + buf.value.decode())
print("has_creator=%d" % nvinfer.fake_trt_has(b"HdmDeformConv", b"1", b"hdm_deploy"))
if len(sys.argv) > 3:                         # then IPluginRegistry::loadLibrary of the same library
    print("load_library=%d" % nvinfer.fake_trt_load_library(sys.argv[2].encode()))
    print("plugin_state_after=" + plugin.hdm_deploy_plugin_registration().decode())
    nvinfer.fake_trt_describe(buf, 2048)
    print("registry: " + buf.value.decode())
    print("has_creator=%d" % nvinfer.fake_trt_has(b"HdmDeformConv", b"1", b"hdm_deploy"))
"""


@pytest.mark.parametrize("version", VERSIONS)
def test_route_a_ctypes_after_libnvinfer(builds, version):
    lib, nvinfer = builds.plugin(version).library, builds.fake_nvinfer(version)
    run = _run([sys.executable, "-c", _ROUTE_A, nvinfer, lib], env=_env())
    assert run.returncode == 0, run.stderr[-3000:]
    kv = _kv(run.stdout)
    assert kv["plugin_state"].startswith("registered: at load (libnvinfer already loaded"), kv
    assert kv["init"] == "1" and kv["init_again"] == "1"
    _assert_one_creator(kv)
    assert kv["registers"] == "1", kv  # load-time registration only; init found it there


@pytest.mark.parametrize("version", VERSIONS)
def test_route_a_then_load_library_hands_over(builds, version):
    """Loaded by ctypes first (registered at load), then IPluginRegistry::loadLibrary of the same file:
    getCreators withdraws the load-time registration, TensorRT registers it, no duplicate error."""
    lib, nvinfer = builds.plugin(version).library, builds.fake_nvinfer(version)
    run = _run([sys.executable, "-c", _ROUTE_A, nvinfer, lib, "then-loadLibrary"], env=_env())
    assert run.returncode == 0, run.stderr[-3000:]
    kv = _kv(run.stdout)
    assert kv["load_library"] == "1", run.stdout
    assert kv["plugin_state_after"].startswith("withdrawn:"), kv
    _assert_one_creator(kv)
    assert kv["deregisters"] == "1" and kv["libraries"] == "1", kv


@pytest.mark.parametrize("version", VERSIONS)
def test_route_b_load_library(builds, version):
    """trtexec --dynamicPlugins: libnvinfer dlopens the library; it must not self-register."""
    lib, nvinfer = builds.plugin(version).library, builds.fake_nvinfer(version)
    run = _run([builds.driver(), "loadlibrary", nvinfer, lib], env=_env())
    assert run.returncode == 0, run.stdout + run.stderr
    first, _, second = run.stdout.partition("load_library_again=")
    kv = _kv(first)
    assert kv["load_library"] == "1", run.stdout
    assert kv["plugin_state"].startswith(f"deferred: loaded by TensorRT (libnvinfer.so.{_major(version)})"), (
        kv
    )
    _assert_one_creator(kv)
    assert kv["registers"] == "1" and kv["deregisters"] == "0" and kv["libraries"] == "1", kv
    assert kv["logger_finders"] == "1", kv  # setLoggerFinder exported (>= 8.6)
    # A second loadLibrary of the same library is refused like TensorRT does; still one creator.
    kv2 = _kv("load_library_again=" + second)
    assert kv2["load_library_again"] == "0" and "is already registered" in second, second
    assert kv2["entries"] == "1", kv2


@pytest.mark.parametrize("version", VERSIONS)
def test_route_c_ld_preload_before_libnvinfer(builds, version):
    """LD_PRELOAD=libhdm_deploy_plugins.so; the program loads TensorRT (by full path) only later."""
    lib, nvinfer = builds.plugin(version).library, builds.fake_nvinfer(version)
    driver = builds.driver()
    control = _run([driver, "later", nvinfer, lib], env=_env(LD_LIBRARY_PATH=str(nvinfer.parent)))
    assert control.returncode == 0, control.stdout + control.stderr
    assert _kv(control.stdout)["has_creator"] == "0"  # the program alone registers nothing
    run = _run(
        [driver, "later", nvinfer, lib],
        env=_env(LD_PRELOAD=str(lib), LD_LIBRARY_PATH=str(nvinfer.parent), HDM_DEPLOY_PLUGIN_DEBUG="1"),
    )
    assert run.returncode == 0, run.stdout + run.stderr
    kv = _kv(run.stdout)
    soname = f"libnvinfer.so.{_major(version)}"
    assert kv["plugin_state"] == f"registered: at load (LD_PRELOAD, loaded {soname})", kv
    _assert_one_creator(kv)
    assert kv["registers"] == "1"
    assert "HdmDeformConv registration: registered" in run.stderr  # HDM_DEPLOY_PLUGIN_DEBUG
    # Without libnvinfer on the loader path, a preloaded process is left alone.
    bare = _run([driver, "later", "/nonexistent/libnvinfer.so"], env=_env(LD_PRELOAD=str(lib)))
    assert "dlopen_error" in bare.stdout and bare.stderr == ""


@pytest.mark.parametrize("version", VERSIONS)
def test_route_d_triton_backend_dlopen(builds, version):
    """Triton: the TensorRT backend (linked against libnvinfer, itself dlopen'ed RTLD_LOCAL) dlopens
    each `plugins=` path with RTLD_NOW | RTLD_LOCAL and calls nothing in it."""
    lib, backend = builds.plugin(version).library, builds.backend(version)
    soname = f"libnvinfer.so.{_major(version)}"
    run = _run([builds.driver(), "triton", backend, lib, soname], env=_env())
    assert run.returncode == 0, run.stdout + run.stderr
    kv = _kv(run.stdout)
    assert kv["backend_initialize"] == "0" and kv["nvinfer_global"] == "0", kv  # not in the global scope
    assert kv["plugin_state"] == f"registered: at load (libnvinfer already loaded {soname})", kv
    _assert_one_creator(kv)


def test_no_autoregister_env_and_wrong_namespace(builds):
    version = next((v for v in VERSIONS if (HEADERS_ROOT / v / "include" / "NvInfer.h").exists()), None)
    if version is None:
        pytest.skip(f"no TensorRT headers under {HEADERS_ROOT}")
    lib, nvinfer = builds.plugin(version).library, builds.fake_nvinfer(version)
    script = _ROUTE_A.replace('b"hdm_deploy"))  #', 'b"other"))  #')
    run = _run([sys.executable, "-c", script, nvinfer, lib], env=_env(HDM_DEPLOY_PLUGIN_NO_AUTOREGISTER="1"))
    assert run.returncode == 0, run.stderr
    kv = _kv(run.stdout)
    assert kv["plugin_state"].startswith("none: HDM_DEPLOY_PLUGIN_NO_AUTOREGISTER"), kv
    assert kv["init"] == "0" and "namespace is fixed" in run.stderr  # explicit init refuses other namespaces
    assert kv["init_again"] == "1"  # ... and registers with the default one
    _assert_one_creator(kv)


# ---- 4. platform detection: CMake and its Python mirror agree --------------------------------------------

_PLATFORMS = {
    "orin-dt": ({"proc/device-tree/compatible": b"nvidia,p3737-0000+p3701-0000\0nvidia,tegra234\0nvidia,tegra\0"}, "jetson", "orin"),
    "xavier-dt": ({"proc/device-tree/compatible": b"nvidia,p2972-0000\0nvidia,tegra194\0"}, "jetson", "xavier"),
    "thor-dt": ({"proc/device-tree/compatible": b"nvidia,p3971-0000\0nvidia,tegra264\0"}, "jetson", "thor"),
    "tegra-release": ({"etc/nv_tegra_release": b"# R36 (release), REVISION: 4.0\n"}, "jetson", "unknown"),
    "tegra-libdir": ({"usr/lib/aarch64-linux-gnu/tegra/libnvos.so": b""}, "jetson", "unknown"),
    "gh200": ({"proc/device-tree/compatible": b"linux,dummy-virt\0"}, "sbsa", ""),
    "bare": ({}, "sbsa", ""),
}  # fmt: skip
_EXPECTED_ARCHS = {  # (platform, cuda major) -> archs (before nvcc filtering), or "error"
    ("orin-dt", 11): "87", ("orin-dt", 12): "87", ("orin-dt", 13): "87",
    ("xavier-dt", 11): "72", ("xavier-dt", 13): "error",
    ("thor-dt", 12): "error", ("thor-dt", 13): "110",
    ("tegra-release", 11): "72,87", ("tegra-release", 12): "87", ("tegra-release", 13): "87,110",
    ("tegra-libdir", 13): "87,110",
    ("gh200", 13): "75,80,86,89,90,100,120", ("bare", 12): "75,80,86,89,90,100,120",
}  # fmt: skip


@pytest.mark.skipif(shutil.which("cmake") is None, reason="cmake not installed")
@pytest.mark.parametrize(("name", "cuda"), sorted(_EXPECTED_ARCHS))
def test_platform_detection_cmake_matches_python(tmp_path, name, cuda):
    files, kind, soc = _PLATFORMS[name]
    for rel, data in files.items():
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(data)
    proc = _run(["cmake", f"-DHDM_PLATFORM_ROOT={tmp_path}", "-DHDM_PROCESSOR=aarch64", f"-DHDM_CUDA_MAJOR={cuda}",
                 "-P", PLUGIN_DIR / "cmake" / "HdmPlatform.cmake"])  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    line = proc.stdout.strip().removeprefix("-- ")
    m = re.fullmatch(r"platform=(\S*) soc=(\S*) archs=(\S*) error=(.*) source=(.*)", line)
    assert m, line
    cm = dict(zip(("platform", "soc", "archs", "error", "source"), m.groups(), strict=True))
    py = detect_platform(tmp_path, "aarch64")
    assert (cm["platform"], cm["soc"]) == (py.kind, py.soc) == (kind, soc)
    assert cm["source"] == py.source
    expected = _EXPECTED_ARCHS[(name, cuda)]
    if expected == "error":
        assert cm["archs"] and cm["error"]
        with pytest.raises(Exception, match="needs CUDA"):
            default_cuda_archs(py, cuda)
    else:
        assert cm["archs"] == expected == ",".join(default_cuda_archs(py, cuda)) and not cm["error"]


def test_x86_is_never_jetson(tmp_path):
    (tmp_path / "etc").mkdir()
    (tmp_path / "etc" / "nv_tegra_release").write_text("# R36\n")
    assert detect_platform(tmp_path, "x86_64").name == "x86_64"
    assert detect_platform(tmp_path, "aarch64").name == "jetson-unknown"


# ---- 5. build_plugin: TensorRT asked for but absent ------------------------------------------------------


def test_tensorrt_root_without_headers_fails_before_cmake(tmp_path, monkeypatch):
    from hdm_deploy.plugins import PluginBuildError

    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    (tmp_path / "trt" / "lib").mkdir(parents=True)
    with pytest.raises(PluginBuildError, match="no TensorRT headers") as info:
        build_plugin(tmp_path / "b", "87", tmp_path / "trt")
    assert "--kernels-only" in (info.value.hint or "")
    monkeypatch.setenv("TENSORRT_ROOT", str(tmp_path / "trt"))
    with pytest.raises(PluginBuildError, match="no TensorRT headers"):
        build_plugin(tmp_path / "b", "87")
    with pytest.raises(PluginBuildError, match="kernels-only build requested"):
        build_plugin(tmp_path / "b", "87", kernels_only=True, require_tensorrt=True)


def test_old_cmake_is_a_clear_error(tmp_path, monkeypatch):
    from hdm_deploy.plugins import PluginBuildError

    fake = tmp_path / "cmake"
    fake.write_text("#!/bin/sh\necho 'cmake version 3.16.3'\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("TENSORRT_ROOT", raising=False)
    with pytest.raises(PluginBuildError, match=r"CMake 3\.16 is too old") as info:
        build_plugin(tmp_path / "b", "87", kernels_only=True)
    assert "pip install cmake" in (info.value.hint or "")


@pytest.mark.skipif(NVCC is None or shutil.which("cmake") is None, reason="needs nvcc and cmake")
def test_cmake_require_tensorrt_fails_without_headers(tmp_path):
    proc = _run(["cmake", "-S", PLUGIN_DIR, "-B", tmp_path / "b", f"-DCMAKE_CUDA_COMPILER={NVCC}",
                 f"-DTENSORRT_ROOT={tmp_path}", "-DHDM_REQUIRE_TENSORRT=ON", "-DHDM_CUDA_ARCHS=87"])  # fmt: skip
    assert proc.returncode != 0
    err = " ".join(proc.stderr.split())
    assert "TensorRT headers (NvInfer.h + NvInferVersion.h) not found under TENSORRT_ROOT" in err
