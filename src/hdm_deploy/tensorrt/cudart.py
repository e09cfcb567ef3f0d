"""The few CUDA runtime calls we make ourselves, through Polygraphy's ``libcudart`` handle.

Polygraphy (``polygraphy.cuda``) loads ``libcudart`` with ``ctypes`` and wraps streams, memory and
copies, which is all the TensorRT runner needs; it has no device selection or device-property
calls. Those four (``cudaSetDevice``, ``cudaGetDeviceCount``, ``cudaRuntime/DriverGetVersion``,
``cudaDeviceGetAttribute`` / ``cudaGetDeviceProperties`` for the name) are made here on the same
``ctypes.CDLL`` (``polygraphy.cuda.wrapper().handle``), so neither pycuda nor cuda-python is needed.
"""

from __future__ import annotations

import ctypes
from typing import Any

from hdm_deploy.core.errors import TensorRTUnavailableError

#: ``cudaDeviceAttr`` values (stable since CUDA 5): compute capability major / minor.
ATTR_CC_MAJOR = 75
ATTR_CC_MINOR = 76
#: ``cudaDeviceProp`` starts with ``char name[256]``; the struct is < 2 KiB in every CUDA release,
#: so a 4 KiB buffer holds any version's layout and we read only the name.
_PROPS_BYTES = 4096


def cudart() -> Any:
    """Polygraphy's ``ctypes.CDLL`` of ``libcudart`` (:class:`TensorRTUnavailableError` without it)."""
    try:
        from polygraphy import cuda
        from polygraphy.logger import G_LOGGER

        with G_LOGGER.verbosity(G_LOGGER.ERROR):  # its "trying the default loader" notes stay quiet
            handle = cuda.wrapper().handle
    except Exception as exc:  # polygraphy missing, or libcudart not found / not loadable
        raise TensorRTUnavailableError(
            f"the CUDA runtime library (libcudart) could not be loaded: {exc}",
            "install Polygraphy (pip install polygraphy) and put libcudart.so on LD_LIBRARY_PATH "
            "(JetPack: /usr/local/cuda/lib64)",
        ) from exc
    if not handle:
        raise TensorRTUnavailableError("libcudart could not be loaded", "check the CUDA installation")
    return handle


def check(status: int, call: str) -> None:
    """Raise on a non-zero ``cudaError_t``."""
    code = int(getattr(status, "value", status))
    if code != 0:
        raise TensorRTUnavailableError(
            f"CUDA error {code} in {call}", "check the GPU driver (nvidia-smi / tegrastats) and --device"
        )


def version_text(value: int) -> str:
    """CUDA's integer versions (``12020``) → ``"12.2"``."""
    return f"{value // 1000}.{(value % 1000) // 10}"


def _int_call(lib: Any, name: str, *args: Any) -> int:
    out = ctypes.c_int(0)
    check(getattr(lib, name)(ctypes.byref(out), *args), name)
    return int(out.value)


def set_device(device: int, lib: Any = None) -> None:
    lib = lib if lib is not None else cudart()
    check(lib.cudaSetDevice(ctypes.c_int(int(device))), f"cudaSetDevice({device})")


def device_count(lib: Any = None) -> int:
    return _int_call(lib if lib is not None else cudart(), "cudaGetDeviceCount")


def runtime_version(lib: Any = None) -> str:
    return version_text(_int_call(lib if lib is not None else cudart(), "cudaRuntimeGetVersion"))


def driver_version(lib: Any = None) -> str | None:
    v = _int_call(lib if lib is not None else cudart(), "cudaDriverGetVersion")
    return version_text(v) if v else None  # 0: no driver


def device_properties(device: int = 0, lib: Any = None) -> tuple[str, str]:
    """(GPU name, compute capability ``"8.7"``) of ``device``."""
    lib = lib if lib is not None else cudart()
    major = _int_call(lib, "cudaDeviceGetAttribute", ctypes.c_int(ATTR_CC_MAJOR), ctypes.c_int(device))
    minor = _int_call(lib, "cudaDeviceGetAttribute", ctypes.c_int(ATTR_CC_MINOR), ctypes.c_int(device))
    buf = ctypes.create_string_buffer(_PROPS_BYTES)
    # CUDA 12 headers map cudaGetDeviceProperties to the _v2 symbol; both start with the name.
    fn = getattr(lib, "cudaGetDeviceProperties_v2", None) or lib.cudaGetDeviceProperties
    check(fn(buf, ctypes.c_int(device)), "cudaGetDeviceProperties")
    name = buf.raw[:256].split(b"\x00", 1)[0].decode(errors="replace").strip()
    return name, f"{major}.{minor}"
