"""The TensorRT plugin's pure decisions (hdm_plugin_core.h), exercised through the CPU library:
field parsing, output shapes, serialization, format combinations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdm_deploy.plugins import (
    F16,
    F32,
    PLUGIN_NAMESPACE,
    PLUGIN_OP_TYPE,
    PLUGIN_VERSION,
    DeformAttrs,
    DeformConvArgumentError,
    conv_out_extent,
    deserialize_attrs,
    fields_roundtrip,
    library_info,
    parse_plugin_fields,
    plugin_output_shape,
    plugin_selftest,
    serialize_attrs,
    supports_format,
    validate_attrs,
)

HDM = DeformAttrs(kernel_shape=(3, 3), pads=(1, 1, 1, 1))


def test_contract_constants():
    assert (PLUGIN_OP_TYPE, PLUGIN_VERSION, PLUGIN_NAMESPACE) == ("HdmDeformConv", "1", "hdm_deploy")
    assert HDM.onnx_attributes()["plugin_namespace"] == "hdm_deploy"
    assert "kernels=cpu" in library_info()


def test_native_selftest_passes():
    failures, report = plugin_selftest()
    assert failures == 0, report
    assert report.count("ok ") >= 15


def test_fields_default_to_onnx_defaults():
    assert parse_plugin_fields({}) == DeformAttrs()
    a = parse_plugin_fields({"kernel_shape": [3, 3], "pads": [1, 1, 1, 1]})
    assert a == HDM


def test_fields_accept_all_attributes_and_integer_widths():
    a = parse_plugin_fields(
        {
            "dilations": [2, 1],
            "group": 2,
            "kernel_shape": [3, 5],
            "offset_group": 4,
            "pads": [1, 2, 0, 2],
            "strides": (np.array([2, 1], np.int64), 10),  # kINT64
            "plugin_version": "1",
            "plugin_namespace": "hdm_deploy",
        }
    )
    assert a == DeformAttrs((3, 5), (2, 1), (1, 2, 0, 2), (2, 1), 2, 4)
    assert parse_plugin_fields({"group": (np.array([3], np.int16), 4)}).group == 3
    # ONNX parsers may pass strings with their terminating NUL
    assert parse_plugin_fields({"plugin_version": b"1\0"}) == DeformAttrs()


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"stride": [1, 1]}, "unknown field"),
        ({"pads": [1, 1]}, "4 value"),
        ({"kernel_shape": [3]}, "2 value"),
        ({"group": 0}, "group"),
        ({"offset_group": -1}, "offset_group"),
        ({"strides": [0, 1]}, "strides"),
        ({"dilations": [1, 0]}, "dilations"),
        ({"pads": [0, -1, 0, 0]}, "pads"),
        ({"kernel_shape": [0, 3]}, "kernel_shape"),
        ({"group": (np.array([1.0], np.float32), 1)}, "integer"),
        ({"plugin_version": "2"}, "plugin_version"),
        ({"plugin_namespace": "other"}, "plugin_namespace"),
    ],
)
def test_fields_rejected_with_a_reason(fields, match):
    with pytest.raises(DeformConvArgumentError, match=match):
        parse_plugin_fields(fields)


@settings(max_examples=150, deadline=None)
@given(
    k=st.tuples(st.integers(1, 9), st.integers(1, 9)) | st.none(),
    s=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    p=st.tuples(*[st.integers(0, 5)] * 4),
    d=st.tuples(st.integers(1, 4), st.integers(1, 4)),
    g=st.integers(1, 64),
    og=st.integers(1, 64),
    nb=st.sampled_from([0, 3, 4, 5]),
)
def test_serialization_and_field_round_trips(k, s, p, d, g, og, nb):
    a = DeformAttrs(k, s, p, d, g, og)
    blob = serialize_attrs(a, nb)
    assert len(blob) == 60
    assert deserialize_attrs(blob) == (a, nb)
    back, n_fields = fields_roundtrip(a)
    assert back == a
    assert n_fields == (6 if k is not None else 5)


def test_deserialize_rejects_damaged_buffers():
    blob = serialize_attrs(HDM, 5)
    with pytest.raises(DeformConvArgumentError, match="60 bytes"):
        deserialize_attrs(blob[:-1])
    with pytest.raises(DeformConvArgumentError, match="magic"):
        deserialize_attrs(b"\0" + blob[1:])
    with pytest.raises(DeformConvArgumentError, match="layout version"):
        deserialize_attrs(blob[:4] + b"\x09" + blob[5:])
    bad_group = bytearray(blob)
    bad_group[8 + 4 * 10 : 8 + 4 * 11] = (0).to_bytes(4, "little")
    with pytest.raises(DeformConvArgumentError, match="group"):
        deserialize_attrs(bytes(bad_group))
    bad_n = bytearray(blob)
    bad_n[-4:] = (7).to_bytes(4, "little")
    with pytest.raises(DeformConvArgumentError, match="input count"):
        deserialize_attrs(bytes(bad_n))


def test_serialization_layout_is_little_endian_words():
    blob = serialize_attrs(HDM, 5)
    words = np.frombuffer(blob, dtype="<i4")
    assert words[1] == 1 and words[2:4].tolist() == [3, 3] and words[-1] == 5
    assert blob[:4] == b"HMDM"


@settings(max_examples=300, deadline=None)
@given(
    size=st.integers(1, 5000),
    k=st.integers(1, 7),
    stride=st.integers(1, 4),
    pad=st.integers(0, 12),
    dil=st.integers(1, 4),
)
def test_output_extent_arithmetic(size, k, stride, pad, dil):
    expected = (size + pad - dil * (k - 1) - 1) // stride + 1  # Python // is floor division
    assert conv_out_extent(size, k, stride, pad, dil) == expected


def test_output_shape_validates_every_input():
    shapes = [(2, 64, 270, 480), (64, 64, 3, 3), (2, 18, 270, 480), (64,), (2, 9, 270, 480)]
    assert plugin_output_shape(HDM, shapes) == (2, 64, 270, 480)
    assert plugin_output_shape(HDM, shapes[:3]) == (2, 64, 270, 480)
    assert plugin_output_shape(DeformAttrs(pads=(1, 1, 1, 1)), shapes) == (2, 64, 270, 480)  # kernel from W
    strided = DeformAttrs((3, 3), (2, 2), (1, 1, 1, 1))
    assert plugin_output_shape(strided, [(1, 8, 11, 10), (4, 8, 3, 3), (1, 18, 6, 5)]) == (1, 4, 6, 5)
    cases = [
        ([(1, 64, 9, 9), (64, 64, 3, 3)], "3 to 5 inputs"),
        ([(1, 64, 9, 9), (64, 64, 3, 3), (1, 18, 9, 8)], "offset must have shape"),
        ([(1, 64, 9, 9), (64, 64, 3, 3), (1, 18, 9, 9), (63,)], "B must have shape"),
        ([(1, 64, 9, 9), (64, 64, 3, 3), (1, 18, 9, 9), (64,), (1, 18, 9, 9)], "mask must have shape"),
        ([(1, 64, 9, 9), (64, 32, 3, 3), (1, 18, 9, 9)], "W.shape\\[1\\] \\* group"),
        ([(1, 64, 9, 9), (64, 64, 5, 5), (1, 50, 7, 7)], "kernel_shape"),
        ([(64, 9, 9), (64, 64, 3, 3), (1, 18, 9, 9)], "rank"),
    ]
    for shapes_, match in cases:
        with pytest.raises(DeformConvArgumentError, match=match):
            plugin_output_shape(HDM, shapes_)
    with pytest.raises(DeformConvArgumentError, match="empty"):
        plugin_output_shape(DeformAttrs((5, 5)), [(1, 1, 3, 3), (1, 1, 5, 5), (1, 50, 1, 1)])
    with pytest.raises(DeformConvArgumentError, match="offset_group"):
        plugin_output_shape(
            DeformAttrs((3, 3), offset_group=3), [(1, 64, 3, 3), (1, 64, 3, 3), (1, 54, 1, 1)]
        )


def test_validate_attrs():
    validate_attrs(HDM)
    with pytest.raises(DeformConvArgumentError, match="strides"):
        validate_attrs(DeformAttrs(strides=(1, 0)))


def _expected_format(pos: int, dtypes: list[int], formats: list[int], nb_in: int) -> bool:
    """The documented rule: linear only; X, W, B, Y one type; offset, mask one type; FP32/FP16."""
    if formats[pos] != 0 or dtypes[pos] not in (F32, F16):
        return False
    role = "Y" if pos >= nb_in else ("X", "W", "offset", "B", "mask")[pos]
    if role in ("W", "B", "Y"):
        return dtypes[pos] == dtypes[0]
    if role == "mask":
        return dtypes[pos] == dtypes[2]
    return True


@pytest.mark.parametrize("nb_in", [3, 4, 5])
def test_format_combinations_exhaustive(nb_in):
    n = nb_in + 1
    types = [F32, F16, 2, 3]  # 2 = INT8, 3 = INT32 in TensorRT's DataType
    for dtypes in itertools.product(types, repeat=n):
        for pos in range(n):
            for fmt in (0, 1):
                formats = [0] * n
                formats[pos] = fmt
                got = supports_format(pos, list(dtypes), formats, nb_in, 1)
                assert got == _expected_format(pos, list(dtypes), formats, nb_in), (pos, dtypes, fmt)


def test_format_combination_rejects_bad_counts():
    assert not supports_format(0, [F32] * 3, nb_inputs=2)
    assert not supports_format(0, [F32] * 7, nb_inputs=6)
    assert not supports_format(4, [F32] * 5, nb_inputs=3, nb_outputs=2)
    assert not supports_format(9, [F32] * 4, nb_inputs=3)
