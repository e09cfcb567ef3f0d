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
import os
import shutil
import subprocess
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

from hdm_deploy.core.contracts import PLUGIN_LIB_ENV, PLUGIN_LIB_NAME
from hdm_deploy.core.errors import PluginBuildError

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


@dataclasses.dataclass(frozen=True)
class PluginBuildResult:
    library: Path
    build_dir: Path
    cuda_archs: tuple[str, ...]
    cuda_version: str
    tensorrt_version: str | None  # None: built without TensorRT headers (kernels only)
    tensorrt_include: str | None

    @property
    def has_tensorrt(self) -> bool:
        return self.tensorrt_version is not None


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
    import importlib.util

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
) -> PluginBuildResult:
    """Configure and build ``libhdm_deploy_plugins.so`` with CMake.

    ``cuda_archs`` default per platform (see ``plugins/CMakeLists.txt``); ``tensorrt_root`` (or env
    ``TENSORRT_ROOT``) points at a TensorRT install whose ``include/NvInfer.h`` selects the plugin
    interface (V2 for TensorRT 8.x, V3 for >= 10). Without TensorRT headers the kernels are built alone.
    ``output_dir``: also copy the library there (atomically). ``log`` receives build output lines.
    """
    cmake = shutil.which("cmake")
    if cmake is None:
        raise PluginBuildError(
            "cmake not found", hint="install CMake >= 3.18 (`pip install cmake` or `apt-get install cmake`)"
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
            if "cannot compile for sm_" in output:
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
        from hdm_deploy.core.fs import atomic_path

        dest = Path(output_dir) / PLUGIN_LIB_NAME
        with atomic_path(dest) as tmp:
            shutil.copyfile(library, tmp)
            shutil.copymode(library, tmp)  # mkstemp creates 0600; keep the library's 0755
        library = dest
    trt = info.get("tensorrt_version", "none")
    return PluginBuildResult(
        library=library,
        build_dir=bdir,
        cuda_archs=normalize_archs(info.get("cuda_archs", ";".join(archs))),
        cuda_version=info.get("cuda_version", "unknown"),
        tensorrt_version=None if trt in ("", "none") else trt,
        tensorrt_include=info.get("tensorrt_include") or None,
    )


def build_plugin_cached(
    cuda_archs: str | int | Sequence[str | int],
    tensorrt_root: str | os.PathLike | None = None,
    *,
    with_tensorrt: bool = True,
    log: Callable[[str], None] | None = None,
) -> PluginBuildResult:
    """:func:`build_plugin` into a cache directory keyed by architectures, TensorRT root and sources
    (an unchanged tree rebuilds incrementally in about a second). Used by the GPU tests and benchmark."""
    archs = normalize_archs(cuda_archs)
    trt = (
        str(Path(tensorrt_root).expanduser())
        if tensorrt_root is not None
        else os.environ.get("TENSORRT_ROOT", "")
    )
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
