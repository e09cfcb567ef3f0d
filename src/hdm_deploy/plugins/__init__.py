"""HdmDeformConv: CUDA kernels, their CPU twin, and TensorRT plugins (no torch import here).

* :func:`cpu_deform_conv` - modulated deformable convolution on the CPU, compiled on first use from
  the same C++ source as the CUDA kernel (numpy in, numpy out).
* :func:`build_plugin` / ``hdm-deploy build-plugin`` - CMake build of ``libhdm_deploy_plugins.so``
  (CUDA kernels + TensorRT creator ``HdmDeformConv`` v1, namespace ``hdm_deploy``).
* :func:`find_plugin_library` / :func:`load_plugin_library` - locate it and register its creator with
  the TensorRT of this process.
* Plugin decisions (fields, output shape, serialization, formats) callable without TensorRT:
  :func:`parse_plugin_fields`, :func:`plugin_output_shape`, :func:`serialize_attrs`,
  :func:`deserialize_attrs`, :func:`supports_format`, :func:`plugin_selftest`.
"""

from __future__ import annotations

import ctypes
import os
from pathlib import Path

from hdm_deploy.core.contracts import PLUGIN_DOMAIN, PLUGIN_NAMESPACE, PLUGIN_OP_TYPE, PLUGIN_VERSION
from hdm_deploy.core.errors import PluginBuildError, TensorRTUnavailableError
from hdm_deploy.plugins._build import (
    CPU_LIB_NAME,
    ENV_PLUGIN_LIB,
    PLUGIN_LIB_NAME,
    PluginBuildResult,
    build_cpu_library,
    build_plugin,
    build_plugin_cached,
    cache_root,
    default_build_dir,
    find_plugin_library,
    plugin_library_candidates,
)
from hdm_deploy.plugins._native import (
    F16,
    F32,
    DeformAttrs,
    DeformConvArgumentError,
    conv_out_extent,
    cpu_deform_conv,
    cpu_deform_conv_onnx,
    cpu_library,
    cuda_deform_conv_raw,
    cuda_deform_conv_tensors,
    deform_conv_attrs,
    deserialize_attrs,
    fields_roundtrip,
    half_from_float,
    half_to_float,
    library_info,
    native_library,
    parse_plugin_fields,
    plugin_output_shape,
    plugin_selftest,
    serialize_attrs,
    supports_format,
    validate_attrs,
)

__all__ = [
    "CPU_LIB_NAME",
    "ENV_PLUGIN_LIB",
    "F16",
    "F32",
    "PLUGIN_DOMAIN",
    "PLUGIN_LIB_NAME",
    "PLUGIN_NAMESPACE",
    "PLUGIN_OP_TYPE",
    "PLUGIN_VERSION",
    "DeformAttrs",
    "DeformConvArgumentError",
    "PluginBuildError",
    "PluginBuildResult",
    "build_cpu_library",
    "build_plugin",
    "build_plugin_cached",
    "cache_root",
    "conv_out_extent",
    "cpu_deform_conv",
    "cpu_deform_conv_onnx",
    "cpu_library",
    "cuda_deform_conv_raw",
    "cuda_deform_conv_tensors",
    "default_build_dir",
    "deform_conv_attrs",
    "deserialize_attrs",
    "fields_roundtrip",
    "find_plugin_library",
    "half_from_float",
    "half_to_float",
    "library_info",
    "load_plugin_library",
    "native_library",
    "parse_plugin_fields",
    "plugin_library_candidates",
    "plugin_output_shape",
    "plugin_selftest",
    "serialize_attrs",
    "supports_format",
    "validate_attrs",
]


def _check_shared_library(lib_path: Path) -> None:
    """Refuse a missing file or one that is not an ELF object before importing TensorRT."""
    try:
        with open(lib_path, "rb") as f:
            magic = f.read(4)
    except OSError as exc:
        raise PluginBuildError(
            f"cannot load {lib_path}: {exc}", hint="build it with `hdm-deploy build-plugin`"
        ) from exc
    if magic != b"\x7fELF":
        raise PluginBuildError(
            f"cannot load {lib_path}: not a shared library",
            hint="rebuild with `hdm-deploy build-plugin` for this machine's CUDA/TensorRT",
        )


def load_plugin_library(path: str | os.PathLike | None = None, *, register: bool = True) -> ctypes.CDLL:
    """Load ``libhdm_deploy_plugins.so`` into this process and register ``HdmDeformConv`` with TensorRT.

    Imports ``tensorrt`` first (so its libnvinfer is loaded: the library finds the plugin registry in
    it), then loads the library and calls its idempotent ``initHdmDeployPlugins``. With
    ``register=False`` only the kernels' C API is needed (no TensorRT).
    """
    lib_path = Path(path) if path is not None else find_plugin_library()
    _check_shared_library(lib_path)  # a wrong file is a plugin error, with or without TensorRT
    if register:
        try:
            import tensorrt  # noqa: F401  (loads libnvinfer into the process)
        except ImportError as exc:
            raise TensorRTUnavailableError(
                "TensorRT is not installed, cannot register the HdmDeformConv plugin",
                hint="pip install tensorrt (or use JetPack's python3-libnvinfer)",
            ) from exc
    try:
        lib = ctypes.CDLL(str(lib_path))
    except OSError as exc:
        raise PluginBuildError(
            f"cannot load {lib_path}: {exc}",
            hint="rebuild with `hdm-deploy build-plugin` for this machine's CUDA/TensorRT",
        ) from exc
    if register:
        init = getattr(lib, "initHdmDeployPlugins", None)
        if init is None:
            raise PluginBuildError(
                f"{lib_path} was built without TensorRT headers (kernels only)",
                hint="rebuild with `hdm-deploy build-plugin --tensorrt-root DIR`",
            )
        init.restype = ctypes.c_bool
        init.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        if not init(None, PLUGIN_NAMESPACE.encode()):
            raise TensorRTUnavailableError(
                "HdmDeformConv could not be registered with TensorRT's plugin registry",
                hint="the library and the running TensorRT must share a major version; rebuild the plugin",
            )
    return lib
