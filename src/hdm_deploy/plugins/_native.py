"""ctypes bindings: the CPU twin of the DeformConv kernel and the plugin's pure decisions.

Everything here goes through the C entry points of ``csrc/hdm_c_api.h``; the same C++ decides for the
TensorRT plugin, so these functions are the tested contract of the plugin on machines without
TensorRT or a GPU.
"""

from __future__ import annotations

import ctypes
import dataclasses
import functools
import os
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from hdm_deploy.core.contracts import PLUGIN_NAMESPACE, PLUGIN_VERSION
from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.plugins._build import build_cpu_library

F32, F16 = 0, 1  # TensorRT DataType codes
LINEAR = 0  # TensorRT TensorFormat::kLINEAR
_STATUS = {1: "field", 2: "value", 3: "shape", 4: "buffer", 5: "type", 6: "runtime"}
_ERR_LEN = 512


class DeformConvArgumentError(HdmDeployError, ValueError):
    """Arguments of a deformable convolution (attributes, shapes, dtypes) are inconsistent."""


@dataclasses.dataclass(frozen=True)
class DeformAttrs:
    """The ONNX ``DeformConv`` attributes, 2-D. ``kernel_shape=None``: taken from ``W``.

    ``pads`` is ONNX-ordered ``(top, left, bottom, right)``.
    """

    kernel_shape: tuple[int, int] | None = None
    strides: tuple[int, int] = (1, 1)
    pads: tuple[int, int, int, int] = (0, 0, 0, 0)
    dilations: tuple[int, int] = (1, 1)
    group: int = 1
    offset_group: int = 1

    def to_ints(self) -> list[int]:
        k = self.kernel_shape or (0, 0)
        return [*k, *self.strides, *self.pads, *self.dilations, self.group, self.offset_group]

    @classmethod
    def from_ints(cls, v: Sequence[int]) -> DeformAttrs:
        v = [int(i) for i in v]
        return cls(
            kernel_shape=None if v[0] == 0 and v[1] == 0 else (v[0], v[1]),
            strides=(v[2], v[3]),
            pads=(v[4], v[5], v[6], v[7]),
            dilations=(v[8], v[9]),
            group=v[10],
            offset_group=v[11],
        )

    def onnx_attributes(self) -> dict[str, object]:
        """Node attributes of the ``HdmDeformConv`` plugin op (ONNX DeformConv + plugin version/namespace)."""
        attrs: dict[str, object] = {
            "dilations": list(self.dilations),
            "group": self.group,
            "offset_group": self.offset_group,
            "pads": list(self.pads),
            "strides": list(self.strides),
            "plugin_version": PLUGIN_VERSION,
            "plugin_namespace": PLUGIN_NAMESPACE,
        }
        if self.kernel_shape is not None:
            attrs["kernel_shape"] = list(self.kernel_shape)
        return attrs


class _Lib:
    """A loaded native library with the argtypes of the C API declared."""

    def __init__(self, path: Path):
        self.path = path
        self.dll = ctypes.CDLL(str(path))
        c = ctypes
        i32p, i64p, vp, cp = c.POINTER(c.c_int32), c.POINTER(c.c_int64), c.c_void_p, c.c_char_p
        sig = {
            "hdm_deploy_plugin_info": (c.c_char_p, []),
            "hdm_deploy_abi_version": (c.c_int32, []),
            "hdm_core_parse_fields": (
                c.c_int32,
                [c.c_int32, c.POINTER(c.c_char_p), i32p, c.POINTER(vp), i32p, i32p, cp, c.c_int32],
            ),
            "hdm_core_validate_attrs": (c.c_int32, [i32p, cp, c.c_int32]),
            "hdm_core_fields_roundtrip": (c.c_int32, [i32p, i32p, i32p]),
            "hdm_core_out_extent": (c.c_int64, [c.c_int64, c.c_int64, c.c_int32, c.c_int32, c.c_int32]),
            "hdm_core_output_shape": (c.c_int32, [i32p, c.c_int32, i64p, i64p, cp, c.c_int32]),
            "hdm_core_serialized_size": (c.c_int64, []),
            "hdm_core_serialize": (c.c_int64, [i32p, c.c_int32, vp, c.c_int64]),
            "hdm_core_deserialize": (c.c_int32, [vp, c.c_int64, i32p, i32p, cp, c.c_int32]),
            "hdm_core_supports_format": (c.c_int32, [c.c_int32, i32p, i32p, c.c_int32, c.c_int32]),
            "hdm_deploy_plugin_selftest": (c.c_int32, [cp, c.c_int32]),
            "hdm_deform_conv_cpu": (
                c.c_int32,
                [i32p, c.c_int32, i64p, c.c_int32, c.c_int32, c.POINTER(vp), vp, c.c_int32, cp, c.c_int32],
            ),
            "hdm_deform_conv_cuda": (
                c.c_int32,
                [i32p, c.c_int32, i64p, c.c_int32, c.c_int32, c.POINTER(vp), vp, vp, cp, c.c_int32],
            ),
            "hdm_half_from_float": (None, [vp, vp, c.c_int64]),
            "hdm_half_to_float": (None, [vp, vp, c.c_int64]),
        }
        for name, (restype, argtypes) in sig.items():
            fn = getattr(self.dll, name, None)
            if fn is not None:
                fn.restype = restype
                fn.argtypes = argtypes

    def has(self, name: str) -> bool:
        return hasattr(self.dll, name)

    def __getattr__(self, name: str):
        return getattr(self.dll, name)


@functools.cache
def cpu_library() -> _Lib:
    """The CPU twin library, built on first use (see :func:`build_cpu_library`)."""
    return _Lib(build_cpu_library())


@functools.cache
def native_library(path: str) -> _Lib:
    """Any hdm_deploy native library (e.g. the CUDA plugin library) with the C API declared."""
    return _Lib(Path(path))


def _i32(values: Sequence[int]):
    return (ctypes.c_int32 * len(values))(*[int(v) for v in values])


def _err() -> ctypes.Array:
    return ctypes.create_string_buffer(_ERR_LEN)


def _raise(status: int, err: ctypes.Array, what: str) -> None:
    msg = err.value.decode(errors="replace") or f"{_STATUS.get(status, status)} error"
    raise DeformConvArgumentError(f"{what}: {msg}", hint="check the DeformConv attributes and input shapes")


def _shapes(arrays: Sequence[object]):
    flat: list[int] = []
    for a in arrays:
        shape = tuple(int(d) for d in np.shape(a)) if not isinstance(a, tuple) else a
        if len(shape) > 4:
            raise DeformConvArgumentError(f"rank {len(shape)} input", hint="only 2-D DeformConv is supported")
        flat += [len(shape), *shape, *([0] * (4 - len(shape)))]
    return (ctypes.c_int64 * len(flat))(*flat)


# ---- decisions ---------------------------------------------------------------------------------


def parse_plugin_fields(fields: Mapping[str, object], lib: _Lib | None = None) -> DeformAttrs:
    """Parse plugin fields the way the TensorRT creator does (ints -> kINT32 arrays, str -> kCHAR).

    Values may also be ``(numpy_array, field_type_code)`` pairs to test other field types.
    """
    lib = lib or cpu_library()
    keep: list[object] = []
    names, types, data, lengths = [], [], [], []
    for name, value in fields.items():
        if (
            isinstance(value, tuple)
            and len(value) == 2
            and isinstance(value[1], int)
            and isinstance(value[0], np.ndarray)
        ):
            arr, ftype = np.ascontiguousarray(value[0]), value[1]
            ptr, length = arr.ctypes.data, arr.size
            keep.append(arr)
        elif isinstance(value, str | bytes):
            raw = value.encode() if isinstance(value, str) else value
            buf = ctypes.create_string_buffer(raw, len(raw))
            keep.append(buf)
            ptr, length, ftype = ctypes.addressof(buf), len(raw), 6
        else:
            arr = np.ascontiguousarray(np.atleast_1d(np.asarray(value, dtype=np.int32)))
            keep.append(arr)
            ptr, length, ftype = arr.ctypes.data, arr.size, 5
        names.append(name.encode())
        types.append(ftype)
        data.append(ptr)
        lengths.append(length)
    n = len(names)
    out = (ctypes.c_int32 * 12)()
    err = _err()
    status = lib.hdm_core_parse_fields(
        n,
        (ctypes.c_char_p * max(n, 1))(*names),
        _i32(types or [0]),
        (ctypes.c_void_p * max(n, 1))(*data),
        _i32(lengths or [0]),
        out,
        err,
        _ERR_LEN,
    )
    if status:
        _raise(status, err, "invalid plugin fields")
    return DeformAttrs.from_ints(list(out))


def fields_roundtrip(attrs: DeformAttrs, lib: _Lib | None = None) -> tuple[DeformAttrs, int]:
    """V3 ``getFieldsToSerialize`` -> ``createPlugin`` round trip; returns (attrs, number of fields)."""
    lib = lib or cpu_library()
    out = (ctypes.c_int32 * 12)()
    nb = ctypes.c_int32()
    status = lib.hdm_core_fields_roundtrip(_i32(attrs.to_ints()), out, ctypes.byref(nb))
    if status:
        raise DeformConvArgumentError(f"fields round trip failed (status {status})")
    return DeformAttrs.from_ints(list(out)), nb.value


def validate_attrs(attrs: DeformAttrs, lib: _Lib | None = None) -> None:
    lib = lib or cpu_library()
    err = _err()
    if status := lib.hdm_core_validate_attrs(_i32(attrs.to_ints()), err, _ERR_LEN):
        _raise(status, err, "invalid DeformConv attributes")


def conv_out_extent(size: int, kernel: int, stride: int = 1, pad_sum: int = 0, dilation: int = 1) -> int:
    """``floor((size + pad_sum - dilation*(kernel-1) - 1) / stride) + 1`` (the plugin's arithmetic)."""
    return int(cpu_library().hdm_core_out_extent(size, kernel, stride, pad_sum, dilation))


def plugin_output_shape(
    attrs: DeformAttrs, shapes: Sequence[Sequence[int]], lib: _Lib | None = None
) -> tuple[int, int, int, int]:
    """Validate input shapes ``X, W, offset[, B[, mask]]`` against each other; return ``Y``'s shape."""
    lib = lib or cpu_library()
    out = (ctypes.c_int64 * 4)()
    err = _err()
    status = lib.hdm_core_output_shape(
        _i32(attrs.to_ints()),
        len(shapes),
        _shapes([tuple(int(d) for d in s) for s in shapes]),
        out,
        err,
        _ERR_LEN,
    )
    if status:
        _raise(status, err, "invalid DeformConv inputs")
    return tuple(int(v) for v in out)  # type: ignore[return-value]


def serialize_attrs(attrs: DeformAttrs, nb_inputs: int = 0, lib: _Lib | None = None) -> bytes:
    """The IPluginV2 serialization buffer (``nb_inputs`` 0 = not configured yet)."""
    lib = lib or cpu_library()
    size = int(lib.hdm_core_serialized_size())
    buf = ctypes.create_string_buffer(size)
    written = lib.hdm_core_serialize(_i32(attrs.to_ints()), nb_inputs, buf, size)
    if written != size:
        raise DeformConvArgumentError("serialization failed")
    return buf.raw


def deserialize_attrs(data: bytes, lib: _Lib | None = None) -> tuple[DeformAttrs, int]:
    lib = lib or cpu_library()
    buf = ctypes.create_string_buffer(bytes(data), len(data))
    out = (ctypes.c_int32 * 12)()
    nb = ctypes.c_int32()
    err = _err()
    status = lib.hdm_core_deserialize(buf, len(data), out, ctypes.byref(nb), err, _ERR_LEN)
    if status:
        _raise(status, err, "invalid serialized HdmDeformConv")
    return DeformAttrs.from_ints(list(out)), nb.value


def supports_format(
    pos: int,
    dtypes: Sequence[int],
    formats: Sequence[int] | None = None,
    nb_inputs: int | None = None,
    nb_outputs: int = 1,
    lib: _Lib | None = None,
) -> bool:
    """The plugin's ``supportsFormatCombination`` (dtype codes 0 = FP32, 1 = FP16; format 0 = linear)."""
    lib = lib or cpu_library()
    nb_in = len(dtypes) - nb_outputs if nb_inputs is None else nb_inputs
    formats = [LINEAR] * len(dtypes) if formats is None else formats
    return bool(lib.hdm_core_supports_format(pos, _i32(dtypes), _i32(formats), nb_in, nb_outputs))


def plugin_selftest(lib: _Lib | None = None) -> tuple[int, str]:
    """Run the library's built-in decision checks: (number of failures, report)."""
    lib = lib or cpu_library()
    buf = ctypes.create_string_buffer(8192)
    failures = int(lib.hdm_deploy_plugin_selftest(buf, 8192))
    return failures, buf.value.decode()


def library_info(lib: _Lib | None = None) -> str:
    lib = lib or cpu_library()
    return lib.hdm_deploy_plugin_info().decode()


def half_from_float(values: np.ndarray, lib: _Lib | None = None) -> np.ndarray:
    """The kernels' float -> binary16 rounding (returns float16)."""
    lib = lib or cpu_library()
    src = np.ascontiguousarray(values, dtype=np.float32)
    out = np.empty(src.shape, dtype=np.float16)
    lib.hdm_half_from_float(src.ctypes.data, out.ctypes.data, src.size)
    return out


def half_to_float(values: np.ndarray, lib: _Lib | None = None) -> np.ndarray:
    lib = lib or cpu_library()
    src = np.ascontiguousarray(values, dtype=np.float16)
    out = np.empty(src.shape, dtype=np.float32)
    lib.hdm_half_to_float(src.ctypes.data, out.ctypes.data, src.size)
    return out


def cuda_deform_conv_raw(
    lib: _Lib,
    attrs: DeformAttrs,
    shapes: Sequence[Sequence[int]],
    x_dtype: int,
    coord_dtype: int,
    input_ptrs: Sequence[int],
    output_ptr: int,
    stream: int = 0,
) -> None:
    """Launch the CUDA kernel of ``libhdm_deploy_plugins.so`` on device pointers (asynchronous).

    ``shapes``/``input_ptrs``: X, W, offset[, B[, mask]]; ``x_dtype`` for X/W/B/Y and ``coord_dtype``
    for offset/mask: :data:`F32` or :data:`F16`; ``stream``: a ``cudaStream_t`` as an int (0 = legacy
    default stream). Used by the GPU tests and the benchmark (torch tensors' ``data_ptr()``).
    """
    if not lib.has("hdm_deform_conv_cuda"):
        raise DeformConvArgumentError(f"{lib.path} has no CUDA kernels", hint="use libhdm_deploy_plugins.so")
    err = _err()
    ptrs = (ctypes.c_void_p * len(input_ptrs))(*[int(p) for p in input_ptrs])
    status = lib.hdm_deform_conv_cuda(
        _i32(attrs.to_ints()),
        len(shapes),
        _shapes([tuple(int(d) for d in s) for s in shapes]),
        int(x_dtype),
        int(coord_dtype),
        ptrs,
        int(output_ptr),
        int(stream) or None,
        err,
        _ERR_LEN,
    )
    if status:
        _raise(status, err, "DeformConv CUDA kernel failed")


def _dtype_code(t: object, what: str) -> int:
    name = str(getattr(t, "dtype", "")).rsplit(".", 1)[-1]
    if name in ("float32", "float"):
        return F32
    if name in ("float16", "half"):
        return F16
    raise DeformConvArgumentError(f"{what} has dtype {name or '?'}", hint="use float32 or float16 tensors")


def cuda_deform_conv_tensors(
    lib: _Lib,
    attrs: DeformAttrs,
    x: object,
    weight: object,
    offset: object,
    bias: object | None,
    mask: object | None,
    out: object,
    stream: int = 0,
) -> None:
    """:func:`cuda_deform_conv_raw` for contiguous CUDA tensors (anything with ``data_ptr()``,
    ``shape`` and ``dtype``, e.g. torch tensors - duck-typed, no torch import). ``out`` is written."""
    if mask is not None and bias is None:
        raise DeformConvArgumentError("mask without bias", hint="pass a zero bias (the plugin contract)")
    tensors = [t for t in (x, weight, offset, bias, mask) if t is not None]
    shapes = [tuple(int(d) for d in t.shape) for t in tensors]  # type: ignore[attr-defined]
    expected = plugin_output_shape(attrs, shapes, lib)
    if tuple(int(d) for d in out.shape) != expected:  # type: ignore[attr-defined]
        raise DeformConvArgumentError(f"out has shape {tuple(out.shape)}, expected {expected}")  # type: ignore[attr-defined]
    if _dtype_code(out, "out") != _dtype_code(x, "x"):
        raise DeformConvArgumentError("out must have the dtype of x")
    cuda_deform_conv_raw(
        lib,
        attrs,
        shapes,
        _dtype_code(x, "x"),
        _dtype_code(offset, "offset"),
        [t.data_ptr() for t in tensors],  # type: ignore[attr-defined]
        out.data_ptr(),  # type: ignore[attr-defined]
        stream,
    )


# ---- the CPU twin ------------------------------------------------------------------------------


def _pair(value: int | Sequence[int], name: str) -> tuple[int, int]:
    if isinstance(value, int | np.integer):
        return int(value), int(value)
    v = tuple(int(i) for i in value)
    if len(v) != 2:
        raise DeformConvArgumentError(f"{name} must be an int or a pair, got {value!r}")
    return v  # type: ignore[return-value]


def _pads(padding: int | Sequence[int]) -> tuple[int, int, int, int]:
    if isinstance(padding, int | np.integer):
        p = int(padding)
        return p, p, p, p
    v = tuple(int(i) for i in padding)
    if len(v) == 2:
        return v[0], v[1], v[0], v[1]
    if len(v) == 4:
        return v  # type: ignore[return-value]
    raise DeformConvArgumentError(
        f"padding must be an int, (pad_h, pad_w) or ONNX (top, left, bottom, right), got {padding!r}"
    )


def _data_dtype(x: np.ndarray) -> np.dtype:
    return np.dtype(np.float16) if x.dtype == np.float16 else np.dtype(np.float32)


def _prepare(x, weight, offset, bias, mask):
    x = np.asarray(x)
    ddt = _data_dtype(x)
    offset = np.asarray(offset)
    cdt = np.dtype(np.float16) if offset.dtype == np.float16 else np.dtype(np.float32)
    arrays = [
        np.ascontiguousarray(x, dtype=ddt),
        np.ascontiguousarray(weight, dtype=ddt),
        np.ascontiguousarray(offset, dtype=cdt),
    ]
    if mask is not None and bias is None:
        bias = np.zeros(arrays[1].shape[0], dtype=ddt)  # the plugin contract: never an empty input
    if bias is not None:
        arrays.append(np.ascontiguousarray(bias, dtype=ddt))
    if mask is not None:
        arrays.append(np.ascontiguousarray(mask, dtype=cdt))
    return arrays, (F16 if ddt == np.float16 else F32), (F16 if cdt == np.float16 else F32)


def deform_conv_attrs(
    attrs: DeformAttrs,
    x: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray,
    bias: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """Run the CPU twin with explicit :class:`DeformAttrs` (the plugin's own entry)."""
    lib = cpu_library()
    arrays, xdt, cdt = _prepare(x, weight, offset, bias, mask)
    err = _err()
    attr_ints = _i32(attrs.to_ints())
    shapes = _shapes(arrays)
    out_shape = (ctypes.c_int64 * 4)()
    status = lib.hdm_core_output_shape(attr_ints, len(arrays), shapes, out_shape, err, _ERR_LEN)
    if status:
        _raise(status, err, "invalid DeformConv inputs")
    y = np.empty(tuple(out_shape), dtype=arrays[0].dtype)
    if threads is None:
        threads = int(os.environ.get("HDM_DEPLOY_CPU_THREADS", "0") or 0)
    ptrs = (ctypes.c_void_p * len(arrays))(*[a.ctypes.data for a in arrays])
    status = lib.hdm_deform_conv_cpu(
        attr_ints, len(arrays), shapes, xdt, cdt, ptrs, y.ctypes.data, int(threads), err, _ERR_LEN
    )
    if status:
        _raise(status, err, "DeformConv CPU twin failed")
    return y


def cpu_deform_conv(
    x: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray,
    bias: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    stride: int | Sequence[int] = 1,
    padding: int | Sequence[int] = 0,
    dilation: int | Sequence[int] = 1,
    groups: int = 1,
    offset_groups: int = 1,
    *,
    threads: int | None = None,
) -> np.ndarray:
    """Modulated deformable convolution on the CPU - the twin of the CUDA kernel (same source).

    Semantics of ``torchvision.ops.deform_conv2d`` / ONNX ``DeformConv``: ``x`` [N,C,H,W], ``weight``
    [O, C/groups, kh, kw], ``offset`` [N, 2*offset_groups*kh*kw, Ho, Wo] (y, x per tap), ``mask``
    [N, offset_groups*kh*kw, Ho, Wo], ``bias`` [O]. ``padding``: int, (pad_h, pad_w) or ONNX
    (top, left, bottom, right). ``offset_groups`` may also be inferred by the caller; it must divide C.

    dtypes: ``x``/``weight``/``bias`` float32 or float16 (float16 runs the tensor-core path of the CUDA
    kernel: FP32 coordinates and accumulation, FP16-rounded samples); ``offset``/``mask`` float32 or
    float16. Other floating inputs are cast to float32. Returns ``x``'s dtype (float32 or float16).
    """
    w = np.asarray(weight)
    if w.ndim != 4:
        raise DeformConvArgumentError(f"weight must be [O, C/groups, kh, kw], got shape {w.shape}")
    attrs = DeformAttrs(
        kernel_shape=(int(w.shape[2]), int(w.shape[3])),
        strides=_pair(stride, "stride"),
        pads=_pads(padding),
        dilations=_pair(dilation, "dilation"),
        group=int(groups),
        offset_group=int(offset_groups),
    )
    return deform_conv_attrs(attrs, x, w, offset, bias, mask, threads=threads)


def cpu_deform_conv_onnx(
    x: np.ndarray,
    weight: np.ndarray,
    offset: np.ndarray,
    bias: np.ndarray | None = None,
    mask: np.ndarray | None = None,
    *,
    threads: int | None = None,
    **onnx_attributes: object,
) -> np.ndarray:
    """The CPU twin driven by ONNX ``DeformConv`` node attributes, parsed by the plugin's field parser."""
    attrs = parse_plugin_fields(onnx_attributes)
    return deform_conv_attrs(attrs, x, weight, offset, bias, mask, threads=threads)
