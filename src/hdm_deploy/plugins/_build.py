"""Building and finding the native libraries.

* ``libhdm_deploy_cpu.so`` - the CPU twin (plain C++, no CUDA): compiled on first use with the system
  C++ compiler straight from ``csrc/`` into a cache directory keyed by the sources' hash.
* ``libhdm_deploy_plugins.so`` - CUDA kernels + TensorRT creators: built with CMake
  (:func:`build_plugin`, ``hdm-deploy build-plugin``) and located with :func:`find_plugin_library`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import importlib.util
import os
import platform as _platform
import re
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hdm_deploy.core.contracts import PLUGIN_LIB_ENV, PLUGIN_LIB_NAME
from hdm_deploy.core.errors import PluginBuildError
from hdm_deploy.core.fs import atomic_path

PLUGIN_DIR = Path(__file__).resolve().parent
CSRC_DIR = PLUGIN_DIR / "csrc"
CPU_LIB_NAME = "libhdm_deploy_cpu.so"
CPU_SOURCES = ("cpu_api.cpp", "core_api.cpp")
CPU_FLAGS = (
    "-std=c++17",
    "-O2",
    "-fPIC",
    "-shared",
    "-pthread",
    "-fvisibility=hidden",
    '-DHDM_BUILD_KIND="cpu"',
)
TRT_COMMON_SOURCES = ("trt_plugin_common.cpp", "core_api.cpp")
MIN_CMAKE = (3, 18)
ENV_PLUGIN_LIB = PLUGIN_LIB_ENV
ENV_CACHE_DIR = "HDM_DEPLOY_CACHE_DIR"


def cache_root() -> Path:
    """``$HDM_DEPLOY_CACHE_DIR``, else ``$XDG_CACHE_HOME/hdm_deploy``, else ``~/.cache/hdm_deploy``."""
    if env := os.environ.get(ENV_CACHE_DIR):
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "hdm_deploy"


def default_build_dir() -> Path:
    """Where ``hdm-deploy build-plugin`` builds by default (and :func:`find_plugin_library` looks)."""
    return cache_root() / "plugin-build"


def source_digest(extra: str = "") -> str:
    """sha256 over every file in ``csrc/`` (name + content) plus ``extra``."""
    h = hashlib.sha256()
    for path in sorted(p for p in CSRC_DIR.rglob("*") if p.is_file()):
        h.update(path.relative_to(CSRC_DIR).as_posix().encode())
        h.update(b"\0")
        h.update(path.read_bytes())
    h.update(extra.encode())
    return h.hexdigest()


def find_cxx() -> str | None:
    """``$CXX`` if set, else the first of g++, c++, clang++ on PATH."""
    if env := os.environ.get("CXX"):
        return shutil.which(env) or (env if Path(env).exists() else None)
    for name in ("g++", "c++", "clang++"):
        if found := shutil.which(name):
            return found
    return None


def _tail(text: str, lines: int = 25) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def build_cpu_library(force: bool = False, cache_dir: str | os.PathLike | None = None) -> Path:
    """Compile the CPU twin (once per source/compiler hash) and return the library path."""
    cxx = find_cxx()
    if cxx is None:
        raise PluginBuildError(
            "no C++ compiler found to build the DeformConv CPU twin",
            hint="install g++ (e.g. `apt-get install g++`) or set CXX to a C++17 compiler",
        )
    try:
        version = subprocess.run(
            [cxx, "--version"], capture_output=True, text=True, check=False, timeout=60
        ).stdout.splitlines()[:1]
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginBuildError(f"cannot run the C++ compiler {cxx}: {exc}", hint="set CXX") from exc
    key = source_digest("|".join([cxx, *version, *CPU_FLAGS]))[:20]
    root = Path(cache_dir) if cache_dir is not None else cache_root() / "cpu"
    target = root / key / CPU_LIB_NAME
    if target.exists() and not force:
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{CPU_LIB_NAME}.{os.getpid()}.tmp")
    cmd = [cxx, *CPU_FLAGS, f"-I{CSRC_DIR}", *(str(CSRC_DIR / s) for s in CPU_SOURCES), "-o", str(tmp)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, timeout=900)
    except (OSError, subprocess.SubprocessError) as exc:
        raise PluginBuildError(
            f"could not run {cxx}: {exc}", hint="check the C++ compiler installation"
        ) from exc
    if proc.returncode != 0 or not tmp.exists():
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise PluginBuildError(
            f"building the DeformConv CPU twin failed ({cxx}):\n{_tail(proc.stderr or proc.stdout)}",
            hint="a C++17 compiler (g++ >= 9) is required",
        )
    os.replace(tmp, target)  # atomic: concurrent builders produce the same file
    return target


# ---- the CUDA/TensorRT plugin ----------------------------------------------------------------


def trt_adapter_sources(trt_major: int) -> tuple[str, ...]:
    """The ``csrc/`` sources of the TensorRT adapter for a TensorRT major version, as CMake picks them:
    ``trt_plugin_v2.cpp`` (IPluginV2DynamicExt) for 8.x, ``trt_plugin_v3.cpp`` (IPluginV3) for >= 10."""
    if trt_major < 8:
        raise PluginBuildError(f"TensorRT {trt_major} is not supported", hint="TensorRT >= 8.5 is required")
    adapter = "trt_plugin_v3.cpp" if trt_major >= 10 else "trt_plugin_v2.cpp"
    return (adapter, *TRT_COMMON_SOURCES)


@dataclasses.dataclass(frozen=True)
class PlatformInfo:
    """What ``plugins/cmake/HdmPlatform.cmake`` decides (this is its Python mirror)."""

    kind: str  # x86_64 | sbsa | jetson | other
    soc: str  # xavier | orin | thor | unknown (Jetson), "" otherwise
    source: str  # what the decision was read from

    @property
    def name(self) -> str:
        return f"jetson-{self.soc}" if self.kind == "jetson" else self.kind


_TEGRA_SOCS = {"nvidia,tegra194": "xavier", "nvidia,tegra234": "orin", "nvidia,tegra264": "thor"}


def detect_platform(root: str | os.PathLike = "/", machine: str | None = None) -> PlatformInfo:
    """Jetson from ``/proc/device-tree/compatible`` (nvidia,tegra194/234/264 = Xavier/Orin/Thor), else
    ``/etc/nv_tegra_release``, else ``/usr/lib/aarch64-linux-gnu/tegra``; any other aarch64 is an SBSA
    server (GH200, GB200, GB10). ``root`` lets tests point at a fake file system."""
    base = Path(root)
    proc = (machine or _platform.machine()).lower()
    if proc in ("x86_64", "amd64"):
        return PlatformInfo("x86_64", "", f"processor {proc}")
    if proc not in ("aarch64", "arm64"):
        return PlatformInfo("other", "", f"processor {proc}")
    compat_file = base / "proc/device-tree/compatible"
    compat: list[str] = []
    with contextlib.suppress(OSError):
        compat = [c for c in compat_file.read_bytes().decode("ascii", "replace").split("\0") if c]
    tegra = ""
    for c in compat:
        if c.startswith("nvidia,tegra"):
            tegra = c
            if c in _TEGRA_SOCS:
                break
    if tegra:
        return PlatformInfo(
            "jetson", _TEGRA_SOCS.get(tegra, "unknown"), f"/proc/device-tree/compatible: {tegra}"
        )
    if (base / "etc/nv_tegra_release").exists():
        return PlatformInfo("jetson", "unknown", "/etc/nv_tegra_release")
    if (base / "usr/lib/aarch64-linux-gnu/tegra").is_dir():
        return PlatformInfo("jetson", "unknown", "/usr/lib/aarch64-linux-gnu/tegra")
    return PlatformInfo(
        "sbsa",
        "",
        "aarch64 without /proc/device-tree nvidia,tegra, /etc/nv_tegra_release or /usr/lib/aarch64-linux-gnu/tegra",
    )


def default_cuda_archs(platform: PlatformInfo, cuda_major: int) -> tuple[str, ...]:
    """Default architectures before filtering by what nvcc supports (``hdm_default_archs`` in CMake).
    Raises :class:`PluginBuildError` where the platform cannot be served by this CUDA major."""
    if platform.kind == "jetson":
        if platform.soc == "xavier":
            if cuda_major >= 13:
                raise PluginBuildError(
                    f"Jetson Xavier (sm_72) needs CUDA <= 12 - JetPack 5 ships CUDA 11.4; CUDA {cuda_major} dropped sm_72",
                    hint="use JetPack 5's nvcc (CUDA 11.4)",
                )
            return ("72",)
        if platform.soc == "orin":
            return ("87",)
        if platform.soc == "thor":
            if cuda_major < 13:
                raise PluginBuildError(
                    f"Jetson Thor (sm_110) needs CUDA >= 13 (JetPack 7); this nvcc is CUDA {cuda_major}",
                    hint="use JetPack 7's nvcc (CUDA 13)",
                )
            return ("110",)
        if cuda_major < 12:
            return ("72", "87")
        return ("87",) if cuda_major < 13 else ("87", "110")
    return ("75", "80", "86", "89", "90", "100", "120")


@dataclasses.dataclass(frozen=True)
class PluginBuildResult:
    library: Path
    build_dir: Path
    cuda_archs: tuple[str, ...]
    cuda_version: str
    tensorrt_version: str | None  # None: built without TensorRT headers (kernels only)
    tensorrt_include: str | None
    platform: str | None = None  # x86_64 | sbsa | jetson-<soc> (cmake/HdmPlatform.cmake)
    platform_source: str | None = None  # what the platform was detected from

    @property
    def has_tensorrt(self) -> bool:
        return self.tensorrt_version is not None

    def platform_line(self) -> str:
        """``platform jetson-orin (from /proc/device-tree/compatible: nvidia,tegra234)`` for the CLI."""
        return f"platform {self.platform or 'unknown'} (from {self.platform_source or 'unknown'})"


def normalize_archs(cuda_archs: str | int | Iterable[str | int] | None) -> tuple[str, ...]:
    """``"87;90"``, ``"87,90"``, ``"sm_87"``, ``[87, 90]`` -> ``("87", "90")``."""
    if cuda_archs is None:
        return ()
    items = (
        str(cuda_archs).replace(",", ";").replace(" ", ";").split(";")
        if isinstance(cuda_archs, str | int)
        else [str(a) for a in cuda_archs]
    )
    out: list[str] = []
    for item in items:
        item = item.strip().lower().removeprefix("sm_").removeprefix("compute_")
        if not item:
            continue
        if not item.isdigit():
            raise PluginBuildError(f"invalid CUDA architecture {item!r}", hint="use numbers such as 87 or 90")
        out.append(item)
    return tuple(out)


def _find_nvcc() -> str | None:
    if env := os.environ.get("CUDACXX"):
        return env
    if found := shutil.which("nvcc"):
        return found
    for root in (os.environ.get("CUDA_HOME"), os.environ.get("CUDA_PATH"), "/usr/local/cuda"):
        if root and (Path(root) / "bin" / "nvcc").exists():
            return str(Path(root) / "bin" / "nvcc")
    return None


def _pip_tensorrt_lib_dir() -> Path | None:
    """Directory of the pip ``tensorrt_libs`` package (libnvinfer.so.N), located without importing it."""

    for name in ("tensorrt_libs", "tensorrt_cu13_libs", "tensorrt_cu12_libs"):
        try:
            spec = importlib.util.find_spec(name)
        except (ImportError, ValueError):
            spec = None
        if spec is not None and spec.submodule_search_locations:
            return Path(next(iter(spec.submodule_search_locations)))
    return None


def _parse_build_info(path: Path) -> dict[str, str]:
    info: dict[str, str] = {}
    if path.exists():
        for line in path.read_text().splitlines():
            key, sep, value = line.partition("=")
            if sep:
                info[key.strip()] = value.strip()
    return info


def _cmake_version(cmake: str) -> tuple[int, ...] | None:
    try:
        out = subprocess.run(
            [cmake, "--version"], capture_output=True, text=True, check=False, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None

    m = re.search(r"version (\d+)\.(\d+)", out)
    return (int(m.group(1)), int(m.group(2))) if m else None


def _tensorrt_headers_under(root: Path) -> Path | None:
    """The directory holding NvInfer.h under a TensorRT root (as CMake searches it), else None."""
    arch = f"{_platform.machine()}-linux-gnu"
    for d in (root, root / "include", root / "include" / arch, root / arch):
        if (d / "NvInfer.h").is_file():
            return d
    return None


def build_plugin(
    build_dir: str | os.PathLike | None = None,
    cuda_archs: str | int | Sequence[str | int] | None = None,
    tensorrt_root: str | os.PathLike | None = None,
    *,
    output_dir: str | os.PathLike | None = None,
    build_type: str = "Release",
    jobs: int | None = None,
    with_tensorrt: bool = True,
    cmake_args: Sequence[str] = (),
    log: Callable[[str], None] | None = None,
    kernels_only: bool = False,
    require_tensorrt: bool | None = None,
) -> PluginBuildResult:
    """Configure and build ``libhdm_deploy_plugins.so`` with CMake.

    ``cuda_archs`` default per platform (``plugins/cmake/HdmPlatform.cmake``); ``tensorrt_root`` (or env
    ``TENSORRT_ROOT``) points at a TensorRT install whose ``include/NvInfer.h`` selects the plugin
    interface (V2 for TensorRT 8.x, V3 for >= 10).

    TensorRT headers: ``kernels_only=True`` (or the older ``with_tensorrt=False``) builds the CUDA kernels
    alone, on request. ``require_tensorrt=True`` fails with :class:`PluginBuildError` when no
    ``NvInfer.h`` is found; the default (``None``) requires them whenever a TensorRT root was given
    (``tensorrt_root`` or env ``TENSORRT_ROOT``), and otherwise keeps the old behaviour (kernels only,
    with a CMake warning). ``output_dir``: also copy the library there (atomically). ``log`` receives
    build output lines.
    """
    if kernels_only:
        with_tensorrt = False
    env_root = os.environ.get("TENSORRT_ROOT") or None
    if require_tensorrt is None:
        require_tensorrt = with_tensorrt and (tensorrt_root is not None or env_root is not None)
    if require_tensorrt and not with_tensorrt:
        raise PluginBuildError(
            "the TensorRT plugin was required and a kernels-only build requested at the same time",
            hint="drop kernels_only / with_tensorrt=False, or require_tensorrt",
        )
    root = tensorrt_root if tensorrt_root is not None else env_root
    if require_tensorrt and root is not None:
        root_path = Path(root).expanduser()
        if _tensorrt_headers_under(root_path) is None:
            raise PluginBuildError(
                f"no TensorRT headers (NvInfer.h) under {root_path}",
                hint="point --tensorrt-root at a TensorRT with include/NvInfer.h (libnvinfer-dev, JetPack, "
                "a TensorRT tar/zip), or build the CUDA kernels alone with --kernels-only",
            )
    cmake = shutil.which("cmake")
    if cmake is None:
        raise PluginBuildError(
            "cmake not found", hint="install CMake >= 3.18 (`pip install cmake` or `apt-get install cmake`)"
        )
    version = _cmake_version(cmake)
    if version is not None and version < MIN_CMAKE:
        raise PluginBuildError(
            f"CMake {version[0]}.{version[1]} is too old (the plugin needs >= 3.18; JetPack 5.1 ships 3.16)",
            hint="`pip install cmake` (then make sure its cmake comes first on PATH)",
        )
    nvcc = _find_nvcc()
    if nvcc is None:
        raise PluginBuildError(
            "no CUDA compiler (nvcc) found to build the TensorRT plugin",
            hint="install the CUDA toolkit (JetPack includes it) or set CUDACXX=/usr/local/cuda/bin/nvcc",
        )
    bdir = Path(build_dir) if build_dir is not None else default_build_dir()
    bdir.mkdir(parents=True, exist_ok=True)
    archs = normalize_archs(cuda_archs)
    configure = [
        cmake,
        "-S",
        str(PLUGIN_DIR),
        "-B",
        str(bdir),
        f"-DCMAKE_BUILD_TYPE={build_type}",
        f"-DCMAKE_CUDA_COMPILER={nvcc}",
        f"-DHDM_WITH_TENSORRT={'ON' if with_tensorrt else 'OFF'}",
        f"-DHDM_REQUIRE_TENSORRT={'ON' if require_tensorrt else 'OFF'}",
        f"-DHDM_CUDA_ARCHS={';'.join(archs)}",
    ]
    if not (bdir / "CMakeCache.txt").exists() and shutil.which("ninja"):
        configure += ["-G", "Ninja"]
    if tensorrt_root is not None:
        configure.append(f"-DTENSORRT_ROOT={Path(tensorrt_root).expanduser()}")
    if (lib_dir := _pip_tensorrt_lib_dir()) is not None:
        configure.append(f"-DTENSORRT_LIB_DIR={lib_dir}")
    configure += list(cmake_args)
    build = [cmake, "--build", str(bdir), "-j", str(jobs or os.cpu_count() or 2)]

    for step, cmd in (("configure", configure), ("build", build)):
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        output = (proc.stdout or "") + (proc.stderr or "")
        if log is not None:
            for line in output.splitlines():
                log(line)
        if proc.returncode != 0:
            hint = "see the CMake output above; pass --cuda-arch for your GPU (e.g. 87 for Orin)"
            if "TensorRT headers" in output and "not found" in output:
                hint = "point --tensorrt-root at a TensorRT with include/NvInfer.h, or use --kernels-only"
            elif "cannot compile for sm_" in output or "needs CUDA" in output:
                hint = (
                    "choose an architecture your nvcc supports (sm_72 needs CUDA <= 12, sm_110 needs CUDA 13)"
                )
            raise PluginBuildError(f"plugin {step} failed:\n{_tail(output, 30)}", hint=hint)

    info = _parse_build_info(bdir / "hdm_build_info.txt")
    library = Path(info.get("library", bdir / PLUGIN_LIB_NAME))
    if not library.exists():
        raise PluginBuildError(
            f"CMake finished but {library} is missing", hint="re-run with a clean build dir"
        )
    if output_dir is not None:
        dest = Path(output_dir) / PLUGIN_LIB_NAME
        with atomic_path(dest) as tmp:
            shutil.copyfile(library, tmp)
            shutil.copymode(library, tmp)  # mkstemp creates 0600; keep the library's 0755
        library = dest
    trt = info.get("tensorrt_version", "none")
    if require_tensorrt and trt in ("", "none"):
        raise PluginBuildError(
            "CMake built the kernels without the TensorRT plugin although TensorRT was required",
            hint="re-run with a clean --build-dir and --tensorrt-root",
        )
    return PluginBuildResult(
        library=library,
        build_dir=bdir,
        cuda_archs=normalize_archs(info.get("cuda_archs", ";".join(archs))),
        cuda_version=info.get("cuda_version", "unknown"),
        tensorrt_version=None if trt in ("", "none") else trt,
        tensorrt_include=info.get("tensorrt_include") or None,
        platform=info.get("platform") or None,
        platform_source=info.get("platform_source") or None,
    )


def build_plugin_cached(
    cuda_archs: str | int | Sequence[str | int],
    tensorrt_root: str | os.PathLike | None = None,
    *,
    with_tensorrt: bool = True,
    log: Callable[[str], None] | None = None,
    kernels_only: bool = False,
) -> PluginBuildResult:
    """:func:`build_plugin` into a cache directory keyed by architectures, TensorRT root and sources
    (an unchanged tree rebuilds incrementally in about a second). Used by the GPU tests and benchmark."""
    archs = normalize_archs(cuda_archs)
    trt = (
        str(Path(tensorrt_root).expanduser())
        if tensorrt_root is not None
        else os.environ.get("TENSORRT_ROOT", "")
    )
    with_tensorrt = with_tensorrt and not kernels_only
    key = source_digest(f"{archs}|{trt}|{with_tensorrt}")[:16]
    return build_plugin(
        cache_root() / "plugin-cached" / f"sm{'_'.join(archs)}-{key}",
        archs,
        tensorrt_root,
        with_tensorrt=with_tensorrt,
        log=log,
    )


def plugin_library_candidates(extra_dirs: Iterable[str | os.PathLike] = ()) -> list[Path]:
    """Where :func:`find_plugin_library` looks, in order (the env override excluded)."""
    dirs = [Path(d) for d in extra_dirs]
    dirs += [PLUGIN_DIR / "lib", PLUGIN_DIR, default_build_dir(), Path.cwd() / "build" / "plugins"]
    repo = PLUGIN_DIR.parent.parent.parent  # src/hdm_deploy/plugins → the checkout, in a source tree
    dirs += [repo / "build", repo / "build" / "plugins", PLUGIN_DIR / "build"]
    return [d / PLUGIN_LIB_NAME for d in dirs]


def find_plugin_library(extra_dirs: Iterable[str | os.PathLike] = ()) -> Path:
    """Locate ``libhdm_deploy_plugins.so``.

    Order: ``$HDM_DEPLOY_PLUGIN_LIB`` (must exist when set), ``extra_dirs``, the package's ``lib/``
    directory, the package directory, the default build dir (``hdm-deploy build-plugin``),
    ``./build/plugins``. Raises :class:`PluginBuildError` listing every place it looked.
    """
    if env := os.environ.get(ENV_PLUGIN_LIB):
        path = Path(env).expanduser()
        if path.is_file():
            return path
        raise PluginBuildError(
            f"{ENV_PLUGIN_LIB}={env} does not name an existing file",
            hint=f"point {ENV_PLUGIN_LIB} at libhdm_deploy_plugins.so or unset it",
        )
    candidates = plugin_library_candidates(extra_dirs)
    for path in candidates:
        if path.is_file():
            return path
    looked = ", ".join(str(p) for p in candidates)
    raise PluginBuildError(
        f"{PLUGIN_LIB_NAME} not found (looked in ${ENV_PLUGIN_LIB} (unset), {looked})",
        hint=f"build it with `hdm-deploy build-plugin` or set {ENV_PLUGIN_LIB}",
    )
