"""Batched DCP region masks in PyTorch: ``[N, 3, H, W]`` → ``[N, 5, 1, H//4, W//4]`` on any device.

Step by step the same computation as :mod:`.reference` (see its docstring for the published algorithm
and the defined degenerate cases), vectorised over the batch, in **float32 only** (TensorRT has no
float64), and formulated so that every integer-valued step is exact:

* **Lanczos ÷4** (:mod:`.lanczos`): Pillow's 22-bit integer coefficients are split as
  ``K = KH·2^10 + KL`` and pre-scaled by powers of two, so every partial sum of ``pixel · weight`` is an
  integer multiple of a power of two below 2^24 — exact in float32 in any summation order (and under
  TF32, as both weight parts have ≤ 11 significant bits). The ``>> 22`` rounding is then done exactly
  with two floors (ONNX: two no-tie ``Round``s, see :mod:`.onnx_function`). Sizes that are multiples of 4 use a block-Toeplitz matmul (32 inputs → 8 outputs per
  block) plus an exact recomputation of the three outputs at each border; other sizes gather the taps.
  Pass order follows Pillow 13 (:func:`.lanczos.vertical_first`). Bit-exact to Pillow.
* **Erosions** (15, 223): separable running minima with edge-replicated borders — the same as OpenCV
  ignoring outside pixels — by doubling windows (1, 2, 4, … and one overlapping final step). Exact.
* **Guided filters** (boxes 111 and the even 60, window −30…+29; reflect-101 for any size, i.e. repeated
  reflection with period 2(n−1)). The first-stage statistics are box means of integer maps: ``dc·255``,
  ``erode(dc)·255``, gray levels, the eroded dark channel, and their products (split into two bytes).
  Their window sums are computed **exactly** (cumulative sums of values centred on 128; every partial
  sum is an integer below 2^24 for quarter widths up to 1069 px (box 111) / 2124 px (box 60)), then
  scaled once. ``te = 1 − 0.95·(erode15/255)/a`` is affine in an integer map, so ``mean(te)`` and
  ``cov(gray, te)`` come from those exact sums too. The second-stage maps ``a, b`` are real: their box
  sums use doubling (S2 = S1 + S1 shifted, S4, …, combined along the binary digits of the box size),
  along W then H, in a fixed float32 order — O(log k) adds per pixel, error a few ulps.
* **Atmospheric light**: the 2000-bin histogram rule as an exact equivalent. With ``K = ⌊999·N/1000⌋``
  (integer arithmetic; for ``N < 10^12`` the published float64 test ``count/N ≤ 0.999`` is exactly
  ``count ≤ K``) and ``v`` the (K+1)-th smallest value of dc' (the ``N−K``-th largest, found with TopK),
  ``lmax = clip(#{j : edge_j ≤ v} − 2, 1, 1998)`` and the threshold is ``edge[lmax]``. The edges are
  numpy's formula ``lo + j·(hi − lo)/2000`` (``lo ∓ 0.5`` when ``lo == hi``), evaluated in float32.
* **BGR→gray on RGB**: OpenCV's fixed point, ``(3735·ch0 + 19235·ch1 + 9798·ch2 + 2^14) >> 15``
  (OpenCV 5.0; checked against ``cv2.cvtColor`` on all 2^24 colours), exact in float32.

Every other step is one IEEE float32 operation per element in a fixed order, mirrored node for node by
:mod:`.onnx_function`, so ONNX Runtime reproduces these masks (and t, dc', a) bit for bit (tested).
Against the float64 reference, t differs by float32 rounding only (measured ≤ 1.4e-6, typically 2e-7)
and ``a`` by ≤ 2e-8 on photographs, so masks agree except at pixels whose normalised t lies within
~1e-6 of a region bound (100 % on the 8 × 4 test photographs).

TF32 is disabled inside these functions on CUDA (a guard: the only matmuls are TF32-exact anyway).
Tensors move to the device once per table (``_on``); the rest is ~200 vectorised kernels per call.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from hdm_deploy.families.hdm.dcp import DCPError, lanczos
from hdm_deploy.families.hdm.dcp.reference import (
    BINS,
    CENTER,
    CONSTANT_RTOL,
    GRAY_SHIFT,
    GRAY_WEIGHTS,
    LIGHT_BOX,
    LIGHT_EPS,
    LIGHT_ERODE,
    MIN_SIDE,
    NUM_REGIONS,
    OMEGA,
    REFINE_BOX,
    REFINE_EPS,
    REGION_BOUNDS,
    TRANSMISSION_ERODE,
    box_window,
)

#: Lanczos weight scaling: high part × 2^-12, low part × 2^-22 (see the module docstring).
HI_SCALE = 2.0 ** (lanczos.SPLIT_BITS - lanczos.PRECISION_BITS)
LO_SCALE = 2.0**-lanczos.PRECISION_BITS
#: Block-Toeplitz layout of the ÷4 pass: 32 padded inputs → 8 outputs; 10 zeros before the first pixel.
BLOCK_IN = 32
BLOCK_OUT = 8
LEFT_PAD = 10


@dataclass(frozen=True)
class DCPTorchResult:
    """Batched masks plus the intermediate values parity tests compare."""

    masks: torch.Tensor  #: float32 [N, 5, 1, h, w]
    transmission: torch.Tensor  #: float32 [N, h, w] refined t
    atmospheric_light: torch.Tensor  #: float32 [N] (after the 1/765 floor)
    light_threshold: torch.Tensor  #: float32 [N] dc' threshold of the light rule (min dc' when constant)
    small: torch.Tensor  #: float32 [N, 3, h, w] Lanczos ÷4 image (integer values)
    refined_dark_channel: torch.Tensor  #: float32 [N, h, w] dc'
    constant_dark_channel: torch.Tensor  #: bool [N]
    constant_transmission: torch.Tensor  #: bool [N]
    light_floored: torch.Tensor  #: bool [N]


# ---- index helpers (host side, cached) --------------------------------------------------------------------

_DEVICE_CACHE: dict[tuple[int, str], tuple[np.ndarray, torch.Tensor]] = {}


def _on(array: np.ndarray, device: torch.device) -> torch.Tensor:
    """A host table (from the lru caches below) as a tensor on ``device``, copied once per device."""
    key = (id(array), str(device))
    hit = _DEVICE_CACHE.get(key)
    if hit is not None and hit[0] is array:  # the array object itself, not a recycled id
        return hit[1]
    if len(_DEVICE_CACHE) > 512:
        _DEVICE_CACHE.clear()
    tensor = torch.as_tensor(np.ascontiguousarray(array), device=device)
    _DEVICE_CACHE[key] = (array, tensor)
    return tensor


def reflect101(positions: np.ndarray, n: int) -> np.ndarray:
    """OpenCV ``BORDER_REFLECT_101`` for any offset: repeated reflection with period 2(n−1)."""
    if n == 1:
        return np.zeros_like(positions)
    period = 2 * (n - 1)
    q = np.mod(positions, period)
    return np.where(q < n, q, period - q)


@functools.lru_cache(maxsize=64)
def _reflect_index(n: int, before: int, after: int) -> np.ndarray:
    return reflect101(np.arange(-before, n + after), n)


@functools.lru_cache(maxsize=64)
def _edge_index(n: int, radius: int) -> np.ndarray:
    return np.clip(np.arange(-radius, n + radius), 0, n - 1)


# ---- exact Lanczos ÷4 -------------------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _block_weights() -> np.ndarray:
    """float32 [32, 32]: rows = a padded 32-sample block, columns = [hi own | lo own | hi next | lo next]."""
    kernel = lanczos.scale4_class_table()[3, 3]
    hi, lo = lanczos.split(kernel)
    w = np.zeros((BLOCK_IN, 4 * BLOCK_OUT), np.float64)
    for o in range(BLOCK_OUT):
        for tap in range(lanczos.TAPS4):
            pos = 4 * o + tap
            col = o if pos < BLOCK_IN else 2 * BLOCK_OUT + o
            w[pos % BLOCK_IN, col] = hi[tap] * HI_SCALE
            w[pos % BLOCK_IN, col + BLOCK_OUT] = lo[tap] * LO_SCALE
    return w.astype(np.float32)


@functools.lru_cache(maxsize=1)
def _class_weights() -> tuple[np.ndarray, np.ndarray]:
    """float32 [16, 24] scaled hi / lo kernels of the 16 border classes (index ``4·left + right``)."""
    hi, lo = lanczos.split(lanczos.scale4_class_table().reshape(16, lanczos.TAPS4))
    return (hi * HI_SCALE).astype(np.float32), (lo * LO_SCALE).astype(np.float32)


@functools.lru_cache(maxsize=64)
def _border_plan(out: int) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int, int]]:
    """Border positions, their class indices and the concat bounds for a ÷4 pass with ``out`` outputs."""
    pos = np.clip(np.array([0, 1, 2, out - 3, out - 2, out - 1]), 0, out - 1)
    classes = 4 * np.minimum(pos, 3) + np.minimum(out - 1 - pos, 3)
    taps = (4 * pos[:, None] + np.arange(lanczos.TAPS4)[None, :]).reshape(-1)  # positions in the padded row
    bounds = (min(3, out), 3, max(out - 3, 3), 3 + max(6 - out, 0))
    return taps, classes, bounds


def round_shift(u: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """Exact ``clip((2^21 + Σ px·K) >> 22, 0, 255)`` from ``u = Σ px·KH·2^-12`` and ``w = Σ px·KL·2^-22``."""
    u = u + 0.5
    whole = torch.floor(u)
    r = whole + torch.floor((u - whole) + w)
    return torch.clamp(r, 0.0, 255.0)


def _resample4_last(x: torch.Tensor, out: int) -> torch.Tensor:
    """Exact Pillow pass along the last axis when its length is ``4·out``."""
    n = x.shape[-1]
    nbo = -(-out // BLOCK_OUT)
    padded = torch.nn.functional.pad(x, (LEFT_PAD, BLOCK_IN * (nbo + 1) - n - LEFT_PAD))
    weights = _on(_block_weights(), x.device)
    p = padded.reshape(*x.shape[:-1], nbo + 1, BLOCK_IN) @ weights
    y = p[..., :nbo, : 2 * BLOCK_OUT] + p[..., 1:, 2 * BLOCK_OUT :]
    u = y[..., :BLOCK_OUT].reshape(*x.shape[:-1], nbo * BLOCK_OUT)[..., :out]
    w = y[..., BLOCK_OUT:].reshape(*x.shape[:-1], nbo * BLOCK_OUT)[..., :out]
    interior = round_shift(u, w)
    taps, _, (a, b, c, d) = _border_plan(out)
    hi, lo = (_on(t, x.device) for t in _border_weights(out))
    g = padded[..., _on(taps, x.device)].reshape(*x.shape[:-1], 6, lanczos.TAPS4)
    border = round_shift((g * hi).sum(-1), (g * lo).sum(-1))
    return torch.cat([border[..., :a], interior[..., b:c], border[..., d:]], dim=-1)


@functools.lru_cache(maxsize=64)
def _border_weights(out: int) -> tuple[np.ndarray, np.ndarray]:
    _, classes, _ = _border_plan(out)
    hi, lo = _class_weights()
    return hi[classes], lo[classes]


@functools.lru_cache(maxsize=64)
def _general_plan(n: int, out: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    xmin, kk = lanczos.coefficients(n, out)
    hi, lo = lanczos.split(kk)
    # Exactness bounds of round_shift: |Σ px·KH| < 2^24 and Σ px·KL < 2^23 (so w < 2) for px ≤ 255.
    assert (255 * np.abs(hi).sum(1) < 2**24).all() and (255 * lo.sum(1) < 2**23).all()
    index = np.minimum(xmin[:, None] + np.arange(kk.shape[1])[None, :], n - 1)
    return index.reshape(-1), (hi * HI_SCALE).astype(np.float32), (lo * LO_SCALE).astype(np.float32)


def _resample_general_last(x: torch.Tensor, out: int) -> torch.Tensor:
    """Exact Pillow pass along the last axis for any length (gathers each output's taps)."""
    index, hi, lo = _general_plan(x.shape[-1], out)
    g = x[..., _on(index, x.device)].reshape(*x.shape[:-1], out, hi.shape[1])
    return round_shift((g * _on(hi, x.device)).sum(-1), (g * _on(lo, x.device)).sum(-1))


def resample_last(x: torch.Tensor, out: int) -> torch.Tensor:
    """One Pillow Lanczos pass (uint8 semantics, float32 storage) along the last axis."""
    if x.shape[-1] == 4 * out:
        return _resample4_last(x, out)
    return _resample_general_last(x, out)


def downscale4(x: torch.Tensor) -> torch.Tensor:
    """float32 [N, C, H, W] integer-valued → [N, C, H//4, W//4], equal to Pillow's Lanczos resize."""
    h, w = x.shape[-2:]
    if lanczos.vertical_first(h, w):
        y = resample_last(x.transpose(-1, -2), h // 4).transpose(-1, -2)
        return resample_last(y, w // 4)
    y = resample_last(x, w // 4)
    return resample_last(y.transpose(-1, -2), h // 4).transpose(-1, -2).contiguous()


# ---- separable window operations ---------------------------------------------------------------------------


def _gather(x: torch.Tensor, index: np.ndarray, dim: int) -> torch.Tensor:
    return torch.index_select(x, dim, _on(index, x.device))


def erode_axis(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Minimum over a centred window of odd size k, outside pixels ignored (edge replication)."""
    n = x.shape[dim]
    m = _gather(x, _edge_index(n, k // 2), dim)
    p = 1
    while 2 * p <= k:
        length = m.shape[dim] - p
        m = torch.minimum(m.narrow(dim, 0, length), m.narrow(dim, p, length))
        p *= 2
    return torch.minimum(m.narrow(dim, 0, n), m.narrow(dim, k - p, n))


def erode(x: torch.Tensor, k: int) -> torch.Tensor:
    """k×k erosion of [..., h, w] (exact: any order gives the same minima)."""
    return erode_axis(erode_axis(x, k, -1), k, -2)


def window_sum(x: torch.Tensor, k: int, dim: int) -> torch.Tensor:
    """Sums of k consecutive samples along ``dim`` (length L → L − k + 1) by doubling; fixed add order."""
    levels = {1: x}
    p = 1
    while 2 * p <= k:
        s = levels[p]
        length = s.shape[dim] - p
        levels[2 * p] = s.narrow(dim, 0, length) + s.narrow(dim, p, length)
        p *= 2
    n_out = x.shape[dim] - k + 1
    acc = None
    offset = 0
    for bit in sorted(levels, reverse=True):
        if k & bit:
            part = levels[bit].narrow(dim, offset, n_out)
            acc = part if acc is None else acc + part
            offset += bit
    assert acc is not None
    return acc


def box_mean(x: torch.Tensor, k: int) -> torch.Tensor:
    """Normalised k×k box filter (reflect-101) of real-valued [..., h, w]: sums along W, then H, × 1/k².

    The order of these float32 additions is part of the numerical definition (ONNX mirrors it).
    """
    before, after = box_window(k)
    rows = window_sum(_gather(x, _reflect_index(x.shape[-1], before, after), -1), k, -1)
    cols = window_sum(_gather(rows, _reflect_index(x.shape[-2], before, after), -2), k, -2)
    return cols * np.float32(1.0 / (k * k))


def box_sum_int(x: torch.Tensor, k: int) -> torch.Tensor:
    """Exact k×k window sums (reflect-101) of integer-valued maps in [0, 255], [..., h, w].

    Cumulative sums of the centred values along H, then W. Every partial sum is an integer of
    magnitude below 2^24 (so float32 is exact, in any summation order) when
    ``(W//4 + k) · 128 · k < 2^24`` — quarter widths up to 1069 px for k = 111 (inputs up to 4279 px
    wide) and 2124 px for k = 60. Beyond that the sums are rounded and ONNX Runtime may differ from
    torch in the last bits.
    """
    before, after = box_window(k)
    y = x - np.float32(CENTER)
    for dim in (-2, -1):
        ext = _gather(y, _reflect_index(y.shape[dim], before + 1, after), dim)
        c = torch.cumsum(ext, dim=dim)
        n = y.shape[dim]
        y = c.narrow(dim, k, n) - c.narrow(dim, 0, n)
    return y + np.float32(CENTER * k * k)


def split_bytes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """An integer 0…65025 as ``256·hi + lo`` with hi, lo in 0…255 (exact)."""
    hi = torch.floor(x * np.float32(1.0 / 256.0))
    return hi, x - hi * np.float32(256.0)


def integer_moments(i: torch.Tensor, p: torch.Tensor, k: int) -> tuple[torch.Tensor, ...]:
    """Box means of ``i/255``, ``p/255``, ``i·p/255²``, ``i²/255²`` from exact integer window sums.

    ``i`` and ``p`` are integer maps in [0, 255]; products are split into bytes so every window sum is
    exact; each mean is then one rounded ``256·hi + lo`` and one rounded scaling.
    """
    ip_hi, ip_lo = split_bytes(i * p)
    ii_hi, ii_lo = split_bytes(i * i)
    sums = box_sum_int(torch.stack([i, p, ip_hi, ip_lo, ii_hi, ii_lo], dim=1), k)
    s_i, s_p, s_iph, s_ipl, s_iih, s_iil = sums.unbind(1)
    c1 = np.float32(1.0 / (255.0 * k * k))
    c2 = np.float32(1.0 / (255.0 * 255.0 * k * k))
    return (
        s_i * c1,
        s_p * c1,
        (s_iph * np.float32(256.0) + s_ipl) * c2,
        (s_iih * np.float32(256.0) + s_iil) * c2,
    )


def _finish_guided(a: torch.Tensor, b: torch.Tensor, guide: torch.Tensor, k: int) -> torch.Tensor:
    mean_a, mean_b = box_mean(torch.stack([a, b], dim=1), k).unbind(1)
    return mean_a * guide + mean_b


def refined_dark_channel(dark: torch.Tensor, eroded: torch.Tensor) -> torch.Tensor:
    """dc': guided filter (box 111, eps 1e-3) of ``eroded/255`` guided by ``dark/255`` (integer maps)."""
    mean_i, mean_p, mean_ip, mean_ii = integer_moments(dark, eroded, LIGHT_BOX)
    cov = mean_ip - mean_i * mean_p
    var = mean_ii - mean_i * mean_i
    a = cov / (var + np.float32(LIGHT_EPS))
    b = mean_p - a * mean_i
    return _finish_guided(a, b, dark / np.float32(255.0), LIGHT_BOX)


def refined_transmission(gray: torch.Tensor, eroded: torch.Tensor, light: torch.Tensor) -> torch.Tensor:
    """t: guided filter (box 60, eps 1e-4) of ``te = 1 − 0.95·(eroded/255)/a`` guided by ``gray/255``.

    ``te`` is affine in the integer map ``eroded``, so its box means come from exact integer sums:
    ``mean(te) = 1 − 0.95·mean(e)/a`` and ``cov(g, te) = 0.95·(mean(g)·mean(e) − mean(g·e))/a``.
    """
    light = light[:, None, None]
    mean_g, mean_e, mean_ge, mean_gg = integer_moments(gray, eroded, REFINE_BOX)
    mean_p = 1.0 - (mean_e / light) * np.float32(OMEGA)
    cov = ((mean_g * mean_e - mean_ge) / light) * np.float32(OMEGA)
    var = mean_gg - mean_g * mean_g
    a = cov / (var + np.float32(REFINE_EPS))
    b = mean_p - a * mean_g
    return _finish_guided(a, b, gray / np.float32(255.0), REFINE_BOX)


def gray_levels(c0: torch.Tensor, c1: torch.Tensor, c2: torch.Tensor) -> torch.Tensor:
    """OpenCV ``COLOR_BGR2GRAY`` of uint8 channels (float32 integer values; exact): the published code
    passes RGB data, so ``c0`` is red here but weighted as blue."""
    total = (c0 * np.float32(GRAY_WEIGHTS[0]) + c1 * np.float32(GRAY_WEIGHTS[1])) + (
        c2 * np.float32(GRAY_WEIGHTS[2]) + np.float32(2 ** (GRAY_SHIFT - 1))
    )
    return torch.floor(total * np.float32(2.0**-GRAY_SHIFT))


# ---- the light rule ------------------------------------------------------------------------------------------


def quantile_rank(count: int) -> int:
    """How many of the largest values lie above the published 0.999 cut: ``N − ⌊999·N/1000⌋``."""
    return (count + 999) // 1000


def near_constant(lo: torch.Tensor, hi: torch.Tensor) -> torch.Tensor:
    """Spread ``hi − lo`` below ``CONSTANT_RTOL · max(1, |lo|, |hi|)`` (see the reference)."""
    scale = torch.maximum(torch.maximum(lo.abs(), hi.abs()), torch.ones_like(lo))
    return (hi - lo) <= scale * np.float32(CONSTANT_RTOL)


def light_threshold(refined: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Threshold of the light rule for each sample of [N, h, w], and the constant-dc' flag.

    ``edge[lmax]`` of the published 2000-bin rule, or ``min dc'`` (every pixel) when dc' is constant.
    """
    flat = refined.reshape(refined.shape[0], -1)
    v = torch.topk(flat, quantile_rank(flat.shape[1]), dim=1).values[:, -1:]
    lo = flat.amin(dim=1, keepdim=True)
    hi = flat.amax(dim=1, keepdim=True)
    constant = near_constant(lo, hi)
    same = lo == hi
    lo = torch.where(same, lo - 0.5, lo)
    hi = torch.where(same, hi + 0.5, hi)
    step = (hi - lo) / np.float32(BINS)
    j = torch.arange(BINS, device=flat.device, dtype=torch.float32)[None, :]
    edges = j * step + lo
    count = (edges <= v).sum(dim=1, keepdim=True) + (hi <= v).to(torch.int64)
    lmax = torch.clamp(count - 2, 1, BINS - 2).to(torch.float32)
    threshold = torch.where(constant, flat.amin(dim=1, keepdim=True), lmax * step + lo)
    return threshold[:, 0], constant[:, 0]


# ---- the whole computation ---------------------------------------------------------------------------------


@contextlib.contextmanager
def _no_tf32() -> Iterator[None]:
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def to_pixels(images: torch.Tensor) -> torch.Tensor:
    """Validate [N, 3, H, W] uint8 or float in [0, 1] and return float32 integer pixel values 0…255."""
    if not isinstance(images, torch.Tensor):
        images = torch.as_tensor(np.asarray(images))
    if images.ndim != 4 or images.shape[1] != 3:
        raise DCPError(
            f"DCP masks need images shaped [N, 3, H, W], got {list(images.shape)}", "stack RGB frames as NCHW"
        )
    n, _, h, w = images.shape
    if n == 0:
        raise DCPError("DCP masks got an empty batch")
    if h < MIN_SIDE or w < MIN_SIDE:
        raise DCPError(
            f"image {w}×{h} is too small for DCP masks: they are computed on a {w // 4}×{h // 4} quarter image",
            f"use an image of at least {MIN_SIDE}×{MIN_SIDE} pixels",
        )
    if images.dtype == torch.uint8:
        return images.to(torch.float32)
    if images.is_floating_point():
        # round half to even, like hdm_deploy.core.runner.quantize
        return torch.round(torch.clamp(images.to(torch.float32), 0.0, 1.0) * np.float32(255.0))
    raise DCPError(
        f"DCP masks need uint8 or float images, got {images.dtype}", "use uint8 0…255 or float 0…1"
    )


def dcp_details(images: torch.Tensor) -> DCPTorchResult:
    """Masks, transmission, atmospheric light and intermediates for a batch [N, 3, H, W]."""
    with torch.no_grad(), _no_tf32():
        x = to_pixels(images)
        small = downscale4(x)  # [N, 3, h, w], integer values
        r, g, b = small.unbind(1)
        dark = torch.minimum(torch.minimum(r, g), b)  # integer dark channel 0…255
        brightness = (r + g) + b  # 3 × channel mean × 255, exact

        eroded = erode(dark, LIGHT_ERODE)
        refined = refined_dark_channel(dark, eroded)
        threshold, constant_dc = light_threshold(refined)
        selected = refined >= threshold[:, None, None]
        peak = torch.where(selected, brightness, torch.full_like(brightness, -1.0)).amax(dim=(1, 2))
        floored = peak <= 0
        light = torch.clamp(peak, min=1.0) / np.float32(765.0)

        t = refined_transmission(gray_levels(r, g, b), erode(dark, TRANSMISSION_ERODE), light)

        regions, constant = regions_from_transmission(t)
        masks = (regions[:, None] == torch.arange(NUM_REGIONS, device=t.device)[None, :, None, None]).to(
            torch.float32
        )
        return DCPTorchResult(
            masks=masks[:, :, None],
            transmission=t,
            atmospheric_light=light,
            light_threshold=threshold,
            small=small,
            refined_dark_channel=refined,
            constant_dark_channel=constant_dc,
            constant_transmission=constant,
            light_floored=floored,
        )


def regions_from_transmission(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Region index [N, h, w] (int64, 0 = region 1) and the constant-t flag [N] (see the reference)."""
    t_min = t.amin(dim=(1, 2))
    t_max = t.amax(dim=(1, 2))
    spread = t_max - t_min
    constant = near_constant(t_min, t_max)
    denom = torch.where(constant, torch.ones_like(spread), spread)
    tn = (t - t_min[:, None, None]) / denom[:, None, None]
    above = sum((tn >= np.float32(bound)).to(torch.int64) for bound in REGION_BOUNDS)
    regions = (NUM_REGIONS - 1) - above
    return torch.where(constant[:, None, None], torch.zeros_like(regions), regions), constant


def dcp_masks(images: torch.Tensor) -> torch.Tensor:
    """float32 [N, 5, 1, H//4, W//4] one-hot DCP region masks of [N, 3, H, W] uint8 (or float 0…1) images."""
    return dcp_details(images).masks
