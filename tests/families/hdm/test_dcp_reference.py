"""Reference DCP masks: bit-identity with the published code, numpy-exact histogram, defined edge cases."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hdm_deploy.families.hdm.dcp import DCPError
from hdm_deploy.families.hdm.dcp import reference as ref

pytest.importorskip("skimage", reason="scikit-image provides the bundled photographs")
from hdm_deploy_dev.photos import photo_at

EXPECTED = Path(__file__).resolve().parents[2] / "data" / "dcp_published_expected.npz"


def _expected():
    data = np.load(EXPECTED)
    meta = json.loads(str(data["meta"]))
    return data, meta


_DATA, _META = _expected()
_CASES = [c for c in _META["cases"] if "error" not in c]
_CRASHES = [c for c in _META["cases"] if "error" in c]


def _assert_one_hot(masks: np.ndarray) -> None:
    assert masks.dtype == np.float32 and masks.ndim == 4 and masks.shape[:2] == (5, 1)
    assert not np.isnan(masks).any()
    assert set(np.unique(masks)) <= {0.0, 1.0}
    assert (masks.sum(axis=0) == 1).all(), "every pixel must be in exactly one region"


def test_expected_file_covers_acceptance():
    photos = {c["key"].split("__")[0] for c in _CASES}
    per_photo = {p: sum(c["key"].startswith(p + "__") for c in _CASES) for p in photos}
    assert sum(n >= 3 for n in per_photo.values()) >= 5, per_photo
    assert any(c["size"][0] % 4 and c["size"][1] % 4 for c in _CASES)
    assert EXPECTED.stat().st_size < 3.2e6


@pytest.mark.parametrize("case", _CASES, ids=[c["key"] for c in _CASES])
def test_bit_identical_to_published(case):
    name = case["key"].split("__")[0]
    result = ref.tran_mask(photo_at(name, tuple(case["size"])))
    t = _DATA[case["key"] + "__t"]
    max_delta = float(np.abs(result.transmission - t).max())
    assert result.transmission.dtype == np.float64
    assert np.array_equal(result.transmission, t), f"transmission max|Δ| = {max_delta:.3e}"
    assert result.atmospheric_light == float(_DATA[case["key"] + "__a"])
    regions = _DATA[case["key"] + "__regions"]
    agree = float((result.regions == regions).mean())
    assert agree == 1.0, f"masks agree on {agree:.6%} of pixels"
    _assert_one_hot(result.masks)
    assert result.masks.sum(axis=(1, 2, 3)).tolist() == case["mask_sums"]


@pytest.mark.parametrize("case", _CRASHES, ids=[c["key"] for c in _CRASHES])
def test_defined_where_published_crashes(case):
    assert "Too many bins" in case["error"]
    name = case["key"].split("__")[0]
    result = ref.tran_mask(photo_at(name, tuple(case["size"])))
    assert result.constant_dark_channel
    assert np.isfinite(result.transmission).all()
    _assert_one_hot(result.masks)


# ---- the histogram rule ------------------------------------------------------------------------------------


def _numpy_histogram_or_none(values: np.ndarray):
    try:
        return np.histogram(values, ref.BINS)
    except ValueError as exc:
        assert "Too many bins" in str(exc)
        return None


_floats = st.floats(min_value=-2.0, max_value=3.0, allow_nan=False, width=64)


@st.composite
def _histogram_data(draw):
    kind = draw(st.sampled_from(["uniform", "clustered", "near_constant", "constant", "ties"]))
    n = draw(st.integers(1, 300))
    base = draw(_floats)
    if kind == "uniform":
        values = np.array(draw(st.lists(_floats, min_size=n, max_size=n)))
    elif kind == "clustered":
        spread = draw(st.sampled_from([1e-3, 1e-6, 1e-9, 1e-12]))
        values = base + spread * np.array(draw(st.lists(st.floats(0, 1), min_size=n, max_size=n)))
    elif kind == "near_constant":
        ulps = np.array(draw(st.lists(st.integers(0, 5000), min_size=n, max_size=n)))
        values = base + ulps * np.spacing(max(abs(base), 1e-300))
    elif kind == "constant":
        values = np.full(n, base)
    else:
        levels = np.array(draw(st.lists(_floats, min_size=1, max_size=5)))
        values = levels[np.array(draw(st.lists(st.integers(0, len(levels) - 1), min_size=n, max_size=n)))]
    return values.reshape(-1, 1) if draw(st.booleans()) else values


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_histogram_data())
def test_histogram_identical_to_numpy_where_numpy_works(values):
    edges = ref.histogram_edges(values)
    counts = ref.histogram_counts(values, edges)
    assert counts.sum() == values.size and (counts >= 0).all()
    expected = _numpy_histogram_or_none(values)
    fallback = bool(np.any(edges[:-1] >= edges[1:]))
    if expected is None:
        assert fallback  # numpy raises exactly when the edges are not strictly increasing
        return
    assert not fallback
    np.testing.assert_array_equal(edges, expected[1])
    np.testing.assert_array_equal(counts, expected[0])
    threshold, flag = ref.light_threshold(values)
    assert not flag and threshold in expected[1]


def test_quantile_rule_equivalence_in_float64():
    # count/N <= 0.999 (float64, as published)  <=>  count <= floor(999·N/1000) = N − ceil(N/1000)
    for n in [*range(1, 3000), 129_600, 518_400, 1_000_000, 2_073_600, 33_177_600]:
        k = n - (n + 999) // 1000
        for count in {k - 1, k, k + 1} & set(range(n + 1)):
            assert (count / float(n) <= 0.999) == (count <= k), (n, count)


def test_histogram_defined_when_numpy_raises():
    values = 0.25 + np.arange(100) * np.spacing(0.25)
    with pytest.raises(ValueError, match="Too many bins"):
        np.histogram(values, ref.BINS)
    threshold, fallback = ref.light_threshold(values)
    assert fallback and values.min() <= threshold <= values.max()


# ---- defined behaviour on degenerate inputs --------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 100, 3), (100, 3, 3), (0, 8, 3)])
def test_too_small_is_a_clear_error(shape):
    with pytest.raises(DCPError, match="too small"):
        ref.tran_mask(np.zeros(shape, np.uint8))


@pytest.mark.parametrize(
    "image",
    [np.zeros((8, 8, 4), np.uint8), np.zeros((8, 8), np.uint8), np.zeros((8, 8, 3), np.float32)],
    ids=["rgba", "gray", "float"],
)
def test_wrong_kind_is_a_clear_error(image):
    with pytest.raises(DCPError):
        ref.tran_mask(image)


@pytest.mark.parametrize("size", [(4, 4), (16, 16), (17, 23), (23, 17), (5, 300), (300, 5), (320, 240)])
def test_small_and_odd_sizes(size):
    result = ref.tran_mask(photo_at("coffee", size))
    w, h = size
    assert result.masks.shape == (5, 1, h // 4, w // 4)
    assert result.transmission.shape == (h // 4, w // 4)
    assert np.isfinite(result.transmission).all() and result.atmospheric_light > 0
    _assert_one_hot(result.masks)


def test_constant_grey_is_region_1():
    result = ref.tran_mask(np.full((40, 52, 3), 128, np.uint8))
    assert result.constant_transmission and result.constant_dark_channel
    assert (result.regions == 0).all()
    _assert_one_hot(result.masks)


def test_black_floors_the_light():
    result = ref.tran_mask(np.zeros((32, 48, 3), np.uint8))
    assert result.light_floored and result.atmospheric_light == ref.MIN_LIGHT
    assert np.isfinite(result.transmission).all()
    assert result.constant_transmission and (result.regions == 0).all()


def test_near_constant_image():
    rng = np.random.default_rng(3)
    image = (120 + rng.integers(0, 2, (60, 80, 3))).astype(np.uint8)
    result = ref.tran_mask(image)
    assert np.isfinite(result.transmission).all()
    _assert_one_hot(result.masks)


@st.composite
def _images(draw):
    h = draw(st.integers(4, 72))
    w = draw(st.integers(4, 72))
    kind = draw(
        st.sampled_from(["random", "constant", "near_constant", "black", "white", "binary", "gradient"])
    )
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    if kind == "random":
        return rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "constant":
        return np.full((h, w, 3), draw(st.integers(0, 255)), np.uint8)
    if kind == "near_constant":
        return np.clip(draw(st.integers(0, 254)) + rng.integers(0, 2, (h, w, 3)), 0, 255).astype(np.uint8)
    if kind == "black":
        return np.zeros((h, w, 3), np.uint8)
    if kind == "white":
        return np.full((h, w, 3), 255, np.uint8)
    if kind == "binary":
        return (rng.random((h, w, 1)) > 0.5).astype(np.uint8).repeat(3, axis=2) * 255
    ramp = np.linspace(0, 255, w)[None, :, None] * np.ones((h, 1, 3))
    return ramp.astype(np.uint8)


@settings(max_examples=60, deadline=None)
@given(_images())
def test_reference_never_nan_and_one_region(image):
    result = ref.tran_mask(image)
    assert np.isfinite(result.transmission).all()
    assert result.atmospheric_light >= ref.MIN_LIGHT
    _assert_one_hot(result.masks)
    np.testing.assert_array_equal(ref.region_masks(image), result.masks)
