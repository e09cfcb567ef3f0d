"""Torch DCP masks: exact building blocks, parity with the reference on photographs, properties."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdm_deploy.families.hdm.dcp import DCPError
from hdm_deploy.families.hdm.dcp import reference as ref

torch = pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")
pytest.importorskip("skimage", reason="scikit-image provides the bundled photographs")

from hdm_deploy.families.hdm.dcp import torch_masks as tm  # noqa: E402
from hdm_deploy_dev.photos import PHOTOS, photo_at  # noqa: E402

#: 4 sizes per photo: multiple of 4, two not divisible by 4, and 320×240 (quarter 80×60 < the 111 box).
SIZES = [(512, 384), (457, 343), (320, 240), (259, 195)]


def _nchw(rgb: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))[None])


# ---- exact building blocks ----------------------------------------------------------------------------------


def test_gray_matches_opencv_on_all_colours():
    r, g, b = np.meshgrid(np.arange(256), np.arange(256), np.arange(256), indexing="ij")
    image = np.stack([r, g, b], -1).reshape(4096, 4096, 3).astype(np.uint8)
    expected = cv2.cvtColor(image, cv2.COLOR_BGR2GRAY)  # RGB data through BGR2GRAY, as published
    x = torch.from_numpy(image).float()
    ours = tm.gray_levels(x[..., 0], x[..., 1], x[..., 2]).numpy()
    assert int((ours != expected).sum()) == 0


def test_reflect101_matches_opencv():
    for n in [1, 2, 3, 5, 8, 17, 60]:
        positions = np.arange(-4 * n - 130, 5 * n + 130)
        expected = [cv2.borderInterpolate(int(p), n, cv2.BORDER_REFLECT_101) for p in positions]
        np.testing.assert_array_equal(tm.reflect101(positions, n), expected)


@pytest.mark.parametrize("shape", [(1, 1), (1, 7), (5, 3), (12, 9), (40, 130), (131, 60)])
def test_box_filters_match_opencv_for_any_size(shape):
    rng = np.random.default_rng(sum(shape))
    ints = rng.integers(0, 256, shape).astype(np.float64)
    reals = rng.random(shape)
    for k in (111, 60, 15):
        expected = cv2.boxFilter(ints, cv2.CV_64F, (k, k), normalize=False)
        got = tm.box_sum_int(torch.from_numpy(ints).float()[None], k)[0].double().numpy()
        np.testing.assert_array_equal(got, expected)  # exact integer sums
        expected = cv2.boxFilter(reals, cv2.CV_64F, (k, k))
        got = tm.box_mean(torch.from_numpy(reals).float()[None], k)[0].double().numpy()
        np.testing.assert_allclose(got, expected, rtol=0, atol=2e-6)


@pytest.mark.parametrize("shape", [(1, 1), (3, 2), (9, 14), (70, 240), (250, 60)])
def test_erosion_matches_opencv(shape):
    rng = np.random.default_rng(shape[0])
    x = rng.integers(0, 256, shape).astype(np.float64)
    for k in (15, 223):
        expected = cv2.erode(x, np.ones((k, k)))
        got = tm.erode(torch.from_numpy(x).float()[None], k)[0].numpy()
        np.testing.assert_array_equal(got, expected)


def _published_rule_float32(values: np.ndarray) -> float:
    """The published loop over np.histogram, run on float32 edges built like the torch code."""
    flat = values.astype(np.float32).ravel()
    lo, hi = flat.min(), flat.max()
    if lo == hi:
        lo, hi = np.float32(lo - np.float32(0.5)), np.float32(hi + np.float32(0.5))
    step = np.float32((hi - lo) / np.float32(ref.BINS))
    edges = np.append(np.arange(ref.BINS, dtype=np.float32) * step + lo, hi)
    sorted_values = np.sort(flat)
    below = np.searchsorted(sorted_values, edges[1:-1], side="left")  # #{x < edge[l+1]}, l = 0..1998
    cumulative = np.append(below, flat.size) / float(flat.size)
    lmax = 1
    for lmax in range(ref.BINS - 1, 0, -1):
        if cumulative[lmax] <= ref.QUANTILE:
            break
    return float(edges[lmax])


@settings(max_examples=150, deadline=None)
@given(
    st.integers(1, 3000),
    st.sampled_from(["uniform", "skewed", "ties", "clustered"]),
    st.integers(0, 2**31 - 1),
)
def test_topk_threshold_is_the_histogram_rule(n, kind, seed):
    rng = np.random.default_rng(seed)
    if kind == "uniform":
        values = rng.random(n)
    elif kind == "skewed":
        values = rng.random(n) ** 8
    elif kind == "ties":
        values = rng.integers(0, 5, n) / 7
    else:
        values = 0.3 + rng.random(n) * 1e-3
    values = values.astype(np.float32)
    threshold, constant = tm.light_threshold(torch.from_numpy(values)[None, None])
    if constant.item():
        assert threshold.item() == values.min()
    else:
        assert threshold.item() == _published_rule_float32(values)


# ---- parity with the reference on photographs ------------------------------------------------------------


@pytest.mark.parametrize("name", PHOTOS)
def test_torch_matches_reference_on_photographs(name):
    for size in SIZES:
        rgb = photo_at(name, size)
        expected = ref.tran_mask(rgb)
        got = tm.dcp_details(_nchw(rgb))
        masks = got.masks[0].numpy()
        assert masks.shape == expected.masks.shape
        agree = float((masks == expected.masks).all(axis=0).mean())
        d_light = abs(float(got.atmospheric_light[0]) - expected.atmospheric_light)
        d_t = float(np.abs(got.transmission[0].double().numpy() - expected.transmission).max())
        print(f"{name:22s} {size}: masks agree {agree:.5%}, |Δa| = {d_light:.2e}, max|Δt| = {d_t:.2e}")
        assert agree >= 0.999, f"{name} {size}: masks agree on {agree:.4%}"
        assert d_light <= 1e-4
        assert bool(got.constant_dark_channel[0]) == expected.constant_dark_channel


def test_float_input_and_batch():
    images = np.stack([photo_at(n, (160, 120)) for n in ("astronaut", "rocket", "retina")])
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2)))
    batch = tm.dcp_masks(x)
    assert batch.shape == (3, 5, 1, 30, 40) and batch.dtype == torch.float32
    for i in range(3):
        torch.testing.assert_close(batch[i], tm.dcp_masks(x[i : i + 1])[0], rtol=0, atol=0)
    torch.testing.assert_close(tm.dcp_masks(x.float() / 255), batch, rtol=0, atol=0)


@pytest.mark.parametrize("shape", [(1, 3, 3, 100), (1, 3, 100, 3), (1, 4, 16, 16), (3, 16, 16), (0, 3, 8, 8)])
def test_torch_rejects_bad_shapes(shape):
    with pytest.raises(DCPError):
        tm.dcp_masks(torch.zeros(shape, dtype=torch.uint8))


# ---- properties over random sizes and contents --------------------------------------------------------------


@st.composite
def _images(draw):
    h = draw(st.integers(4, 64))
    w = draw(st.integers(4, 64))
    kind = draw(st.sampled_from(["random", "smooth", "constant", "near_constant", "black", "binary"]))
    rng = np.random.default_rng(draw(st.integers(0, 2**31 - 1)))
    if kind == "random":
        return kind, rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
    if kind == "smooth":
        yy, xx = np.mgrid[0:h, 0:w]
        base = 128 + 100 * np.sin(xx / (3 + w / 4)) * np.cos(yy / (3 + h / 5))
        return kind, np.clip(base[..., None] + rng.integers(-20, 20, (h, w, 3)), 0, 255).astype(np.uint8)
    if kind == "constant":
        return kind, np.full((h, w, 3), draw(st.integers(0, 255)), np.uint8)
    if kind == "near_constant":
        return kind, (draw(st.integers(0, 254)) + rng.integers(0, 2, (h, w, 3))).astype(np.uint8)
    if kind == "black":
        return kind, np.zeros((h, w, 3), np.uint8)
    return kind, (rng.random((h, w, 1)) > 0.5).astype(np.uint8).repeat(3, axis=2) * 255


#: Error bound used to decide where the float32 result is determined: |Δt| of the float32 code.
T_ERROR = 2e-5


@settings(max_examples=80, deadline=None)
@given(_images())
def test_properties_and_agreement_where_defined(case):
    kind, image = case
    got = tm.dcp_details(_nchw(image))
    masks = got.masks[0].numpy()
    assert not np.isnan(masks).any() and np.isfinite(got.transmission.numpy()).all()
    assert (masks.sum(axis=0) == 1).all()
    expected = ref.tran_mask(image)
    t = expected.transmission
    spread = float(t.max() - t.min())
    scale = max(1.0, float(np.abs(t).max()))
    if spread == 0.0:
        assert bool(got.constant_transmission[0]) and (masks[0] == 1).all()
        return
    if spread < 100 * ref.CONSTANT_RTOL * scale:
        return  # too close to the constant-t tolerance for float32 to decide like float64
    assert not bool(got.constant_transmission[0])
    tn = (t - t.min()) / spread
    margin = 2 * T_ERROR / spread
    decided = np.all([np.abs(tn - b) > margin for b in ref.REGION_BOUNDS], axis=0)
    got_regions = masks[:, 0].argmax(axis=0)
    assert (got_regions[decided] == expected.regions[decided]).all(), f"{kind}: regions differ where decided"
