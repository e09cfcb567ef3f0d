"""Reference DCP region masks: the published ``tran_mask`` re-implemented with numpy / OpenCV / Pillow.

On real photographs the result is **bit-identical** to the published code (transmission max |Δ| = 0,
masks 100 %; ``tests/families/hdm/test_dcp_reference.py`` checks stored outputs of the published code). To get
there it makes the same library calls with the same arguments and the same float64 operation order:

1. ``small`` = Pillow ``resize((W//4, H//4), LANCZOS)`` of the uint8 RGB image; ``I = small / 255``.
2. Atmospheric light ``a``: ``dc`` = per-pixel channel minimum of ``I``; ``p = cv2.erode(dc, 223×223 ones)``
   (OpenCV ignores outside pixels); ``dc'`` = guided filter (guide ``dc``, input ``p``, ``cv2.boxFilter``
   with a **111×111** box, eps 1e-3, reflect-101 borders); 2000-bin histogram of ``dc'``; ``lmax`` = the
   largest ``l`` in 1998…1 whose cumulative fraction ``≤ 0.999`` (else 1); ``a`` = max over pixels with
   ``dc' ≥ edge[lmax]`` of the channel mean of ``I``.
3. ``te = 1 − 0.95 · erode15(min_c(I / a))`` (15×15 rectangle).
4. ``t`` = guided filter (guide ``cvtColor(small, BGR2GRAY) / 255`` — the RGB array goes in as if it were
   BGR, a quirk we keep —, input ``te``, box **60**: even, so the window is −30…+29; eps 1e-4).
5. ``tn = (t − min t) / (max t − min t)``; region 1: ``tn ≥ 0.8``, 2: ``[0.6, 0.8)``, 3: ``[0.4, 0.6)``,
   4: ``[0.2, 0.4)``, 5: ``[0, 0.2)``; masks float32 ``[5, 1, h, w]``.

Defined behaviour where the published code crashes or misbehaves
-------------------------------------------------------------------
* **Input smaller than 4 px** in height or width (the quarter image would be empty): :class:`DCPError`.
  Other shapes/dtypes than uint8 ``[H, W, 3]``: :class:`DCPError`.
* **Sizes not a multiple of 4**: computed on ``(W//4, H//4)`` exactly like the published code (Pillow's
  scale is then ``W / (W//4)``, not 4). The HDM pipeline pads frames to multiples of 4 *before* calling
  this, so masks and quarter-resolution features agree there.
* **Tiny quarter images** (smaller than the 111 / 60 boxes): reflect-101 is applied repeatedly, as
  OpenCV's ``borderInterpolate`` does (period ``2(n−1)``; a 1-pixel axis reflects onto itself).
* **Nearly constant ``dc'``** — the rule for *every* image whose quarter fits in the 223×223 erosion
  window (both sides ≤ 112 px, i.e. inputs up to about 450×450, e.g. 320×240): ``p`` is then constant,
  so ``dc'`` is constant up to float64 rounding noise (spread ~1e-15). The published code then either
  crashes (``np.histogram`` "Too many bins") or picks ``a`` from whichever pixels the box filter's
  rounding noise lifted above the threshold — an arbitrary choice no float32 implementation can
  reproduce. We define: when ``max dc' − min dc' ≤ CONSTANT_RTOL · max(1, |min dc'|, |max dc'|)``,
  ``dc'`` is constant and **every pixel is selected** (``a`` = the image's largest channel mean). That is
  what numpy's histogram rule gives for an exactly constant ``dc'`` (edges ``c ∓ 0.5``, threshold
  ``c − 0.0005``), so the published result is unchanged wherever ``dc'`` is exactly constant.
  ``DCPResult.constant_dark_channel`` reports it. The masks do not depend on ``a`` anyway (up to
  rounding): ``t`` is affine in ``1/a`` and the normalisation removes it.
* **Histogram edges**: ``np.histogram(dc', 2000)`` raises "Too many bins for data range" when the
  2001 equally spaced edges are not strictly increasing. We never call it. The edges are numpy's own,
  ``np.linspace(min, max, 2001)`` (``min ∓ 0.5`` when ``min == max``, as numpy does), and the cumulative
  count below edge ``j`` is ``#{x < edges[j]}`` — exactly numpy's bin assignment (``edges[i] ≤ x <
  edges[i+1]``, last bin closed), so the result equals the published one wherever ``np.histogram``
  works (``tests/families/hdm/test_dcp_reference.py`` proves it with hypothesis), and stays defined (empty bins
  between repeated edges) where it raises.
* **a = 0** (every selected pixel is black, e.g. an all-black image): the published code divides by
  zero (NaN / inf transmission). We floor ``a`` at ``1/765`` — the smallest positive value the channel
  mean of a uint8 image can take — so nothing changes whenever the published code works (then
  ``a ≥ 1/765``) and ``te`` stays finite. ``DCPResult.light_floored`` reports it.
* **Constant or near-constant t**: the published normalisation divides 0 by 0 (all masks empty or NaN).
  When ``max t − min t ≤ CONSTANT_RTOL · max(1, |min t|, |max t|)`` every pixel goes to **region 1**:
  normalisation maps the maximum of t to exactly 1.0, and in a constant map every pixel is the maximum.
  ``DCPResult.constant_transmission`` reports it.
* **The tolerance** ``CONSTANT_RTOL = 2^-16`` (≈ 1.5e-5, 128 float32 ulps at 1.0): the float32
  implementations (:mod:`.torch_masks`, :mod:`.onnx_function`) compute ``t`` with errors of typically
  2e-7 (largest measured 2.9e-6, on photographs up to 1024×768; ``dc'``: ≤ 6e-8), float64 noise is
  ~1e-15. A spread below the tolerance — 5× the largest float32 error seen — is therefore rounding
  noise, and normalising it would let float32 and float64 disagree arbitrarily. Genuine spreads are
  far larger: ``p`` and the guide are multiples of 1/255, so a map that really varies spreads by ~1e-3
  or more (photographs: 0.1–1). Exactly constant maps (the common case: a dark channel that is 0
  everywhere) behave the same under both rules.

Never NaN, and every pixel is in exactly one region.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from hdm_deploy.families.hdm.dcp import DCPError
from hdm_deploy.families.hdm.family import MIN_SIDE  # the quarter image must not be empty

#: Guided-filter box and eps of the atmospheric-light step (the published ``get_dc_A(I, 111, 0.001, ...)``).
LIGHT_BOX = 111
LIGHT_EPS = 0.001
#: Erosion window of the atmospheric-light step: 2·111 + 1.
LIGHT_ERODE = 2 * LIGHT_BOX + 1
#: Histogram bins and the cumulative fraction of the atmospheric-light rule.
BINS = 2000
QUANTILE = 0.999
#: Transmission estimate: omega and erosion window.
OMEGA = 0.95
TRANSMISSION_ERODE = 15
#: Refinement guided filter: box (even: window −30…+29) and eps.
REFINE_BOX = 60
REFINE_EPS = 0.0001
#: Region lower bounds of regions 1…4 (region 5 is ``[0, 0.2)``).
REGION_BOUNDS = (0.8, 0.6, 0.4, 0.2)
NUM_REGIONS = 5
#: Floor of the atmospheric light: the smallest positive channel mean of a uint8 image.
MIN_LIGHT = 1.0 / 765.0
#: Relative spread below which dc' or t counts as constant (see the module docstring).
CONSTANT_RTOL = 2.0**-16
#: OpenCV 5 ``COLOR_BGR2GRAY`` fixed point for 8-bit data: weights of channels 0, 1, 2 and the shift
#: (used by the torch and ONNX mirrors, which compute the grey image themselves).
GRAY_WEIGHTS = (3735.0, 19235.0, 9798.0)
GRAY_SHIFT = 15
#: Offset the torch and ONNX mirrors subtract before cumulative sums of integer maps (small partial sums).
CENTER = 128.0


def box_window(k: int) -> tuple[int, int]:
    """OpenCV's default anchor: the window of a size-k box covers offsets ``−(k//2) … k − 1 − k//2``."""
    return k // 2, k - 1 - k // 2


@dataclass(frozen=True)
class DCPResult:
    """Everything :func:`tran_mask` computes, for the pipeline and for parity checks."""

    transmission: np.ndarray  #: float64 [h, w], refined transmission t (before normalisation)
    masks: np.ndarray  #: float32 [5, 1, h, w], one-hot regions 1…5
    atmospheric_light: float  #: a (after the floor)
    regions: np.ndarray  #: uint8 [h, w], region index 0…4 (0 = region 1, t ≥ 0.8)
    small: np.ndarray  #: uint8 [h, w, 3], the Lanczos ÷4 image
    refined_dark_channel: np.ndarray  #: float64 [h, w], dc' (guided-filtered dark channel)
    light_threshold: float  #: edge[lmax] (min dc' when constant): pixels with dc' ≥ this give a
    constant_dark_channel: bool  #: dc' spread below the tolerance: every pixel selected for a
    histogram_fallback: bool  #: np.histogram would have raised "Too many bins" on dc' here
    light_floored: bool  #: a was 0 and got floored to 1/765
    constant_transmission: bool  #: t range below the tolerance: every pixel in region 1


def _check_rgb(rgb: np.ndarray) -> np.ndarray:
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise DCPError(
            f"DCP masks need an RGB image shaped [H, W, 3], got {list(rgb.shape)}",
            "convert grey/RGBA images to RGB first (hdm_deploy.runtime.image_io.read_image does)",
        )
    if rgb.dtype != np.uint8:
        raise DCPError(f"DCP masks need uint8 pixels, got {rgb.dtype}", "scale to 0…255 and cast to uint8")
    h, w = rgb.shape[:2]
    if h < MIN_SIDE or w < MIN_SIDE:
        raise DCPError(
            f"image {w}×{h} is too small for DCP masks: they are computed on a {w // 4}×{h // 4} quarter image",
            f"use an image of at least {MIN_SIDE}×{MIN_SIDE} pixels",
        )
    return np.ascontiguousarray(rgb)


def downscale(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] → uint8 [H//4, W//4, 3] with Pillow's Lanczos filter (the published ANTIALIAS)."""
    rgb = _check_rgb(rgb)
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb, "RGB").resize((w // 4, h // 4), Image.Resampling.LANCZOS))


def guided_filter(guide: np.ndarray, src: np.ndarray, box: int, eps: float) -> np.ndarray:
    """He et al.'s guided filter with normalised ``box × box`` OpenCV box filters (float64, reflect-101).

    Operation order as in the published code (``guidedfilter`` / ``Guidedfilter`` compute the same).
    """

    def mean(x: np.ndarray) -> np.ndarray:
        return cv2.boxFilter(x, cv2.CV_64F, (box, box))

    mean_i = mean(guide)
    mean_p = mean(src)
    mean_ip = mean(guide * src)
    cov_ip = mean_ip - mean_i * mean_p
    mean_ii = mean(guide * guide)
    var_i = mean_ii - mean_i * mean_i
    a = cov_ip / (var_i + eps)
    b = mean_p - a * mean_i
    return mean(a) * guide + mean(b)


def histogram_edges(values: np.ndarray, bins: int = BINS) -> np.ndarray:
    """numpy's equal-width histogram edges for ``values`` (float64), without the "Too many bins" check."""
    lo, hi = values.min(), values.max()
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    return np.linspace(lo, hi, bins + 1, endpoint=True, dtype=np.result_type(lo, hi, values))


def histogram_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Counts with numpy's bin assignment (``edges[i] ≤ x < edges[i+1]``, last bin closed), int64 [bins].

    Identical to ``np.histogram(values, len(edges) - 1)[0]`` whenever that call works; defined (empty
    bins between equal edges) when it raises "Too many bins".
    """
    flat = np.sort(values, axis=None)
    below = np.searchsorted(flat, edges[:-1], side="left")  # #{x < edges[i]}
    upper = np.append(below[1:], flat.size)  # the last bin takes everything from edges[-2] on
    return upper - below


def is_constant(values: np.ndarray) -> bool:
    """Spread below ``CONSTANT_RTOL · max(1, |min|, |max|)`` (rounding noise; see the module docstring)."""
    lo, hi = float(values.min()), float(values.max())
    return hi - lo <= CONSTANT_RTOL * max(1.0, abs(lo), abs(hi))


def light_threshold(refined: np.ndarray) -> tuple[float, bool]:
    """The published 2000-bin rule: ``(edge[lmax], np.histogram would raise)``."""
    edges = histogram_edges(refined)
    fallback = bool(np.any(edges[:-1] >= edges[1:]))
    cumulative = np.cumsum(histogram_counts(refined, edges)) / float(refined.size)
    lmax = 1
    for lmax in range(BINS - 1, 0, -1):  # the loop variable is the result, as published
        if cumulative[lmax] <= QUANTILE:
            break
    return float(edges[lmax]), fallback


def atmospheric_light(img: np.ndarray) -> tuple[float, np.ndarray, float, bool, bool]:
    """The published ``get_dc_A(I, 111, 0.001, ...)`` atmospheric light, with the constant-dc' rule.

    ``img`` is ``small / 255`` (float64 [h, w, 3]). Returns
    ``(a, dc', threshold, constant_dark_channel, histogram_fallback)``; ``a`` is not floored here.
    """
    dc = np.minimum(np.minimum(img[:, :, 0], img[:, :, 1]), img[:, :, 2])
    dark = cv2.erode(dc, np.ones((LIGHT_ERODE, LIGHT_ERODE)))
    refined = guided_filter(dc, dark, LIGHT_BOX, LIGHT_EPS)
    threshold, fallback = light_threshold(refined)
    constant = is_constant(refined)
    if constant:
        threshold = float(refined.min())
    light = float(np.mean(img, 2)[refined >= threshold].max())
    return light, refined, threshold, constant, fallback


def regions_from_transmission(t: np.ndarray) -> tuple[np.ndarray, bool]:
    """Region index per pixel (0 = region 1 … 4 = region 5) and whether the constant-t rule fired."""
    if is_constant(t):
        return np.zeros(t.shape, np.uint8), True
    t_min, t_max = float(t.min()), float(t.max())
    tn = (t - t_min) / (t_max - t_min)
    regions = np.full(t.shape, NUM_REGIONS - 1, np.uint8)
    # Published intervals: region 1 is tn ≥ 0.8, region k is [bound_k, bound_{k-1}); assign low → high.
    for index in range(NUM_REGIONS - 2, -1, -1):
        regions[tn >= REGION_BOUNDS[index]] = index
    return regions, False


def masks_from_regions(regions: np.ndarray) -> np.ndarray:
    """One-hot float32 [5, 1, h, w] masks from region indices."""
    return (regions[None, None] == np.arange(NUM_REGIONS).reshape(NUM_REGIONS, 1, 1, 1)).astype(np.float32)


def tran_mask(rgb: np.ndarray) -> DCPResult:
    """DCP region masks of one uint8 RGB image ``[H, W, 3]`` (``H, W ≥ 4``); see the module docstring."""
    small = downscale(rgb)
    img = small / 255
    light, refined, threshold, constant_dc, fallback = atmospheric_light(img)
    floored = light <= 0.0
    if floored:
        light = MIN_LIGHT
    # Published: I / A per channel (A = [a, a, a]), dark channel with a 15×15 rectangle, 1 − 0.95·dark.
    ratio = img / light
    dark = cv2.erode(
        np.minimum(np.minimum(ratio[:, :, 0], ratio[:, :, 1]), ratio[:, :, 2]),
        cv2.getStructuringElement(cv2.MORPH_RECT, (TRANSMISSION_ERODE, TRANSMISSION_ERODE)),
    )
    estimate = 1 - OMEGA * dark
    gray = np.float64(cv2.cvtColor(small, cv2.COLOR_BGR2GRAY)) / 255
    t = guided_filter(gray, estimate, REFINE_BOX, REFINE_EPS)
    regions, constant = regions_from_transmission(t)
    return DCPResult(
        transmission=t,
        masks=masks_from_regions(regions),
        atmospheric_light=float(light),
        regions=regions,
        small=small,
        refined_dark_channel=refined,
        light_threshold=threshold,
        constant_dark_channel=constant_dc,
        histogram_fallback=fallback,
        light_floored=floored,
        constant_transmission=constant,
    )


def region_masks(rgb: np.ndarray) -> np.ndarray:
    """float32 [5, 1, H//4, W//4] one-hot region masks of a uint8 RGB image (the published ``tran_mask``)."""
    return tran_mask(rgb).masks
