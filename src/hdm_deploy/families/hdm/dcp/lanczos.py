"""Pillow's Lanczos ÷4 downscale as integer arithmetic, written from its documented behaviour.

The published mask code shrinks the uint8 RGB photo with ``PIL.Image.resize((W//4, H//4), LANCZOS)``.
Pillow's 8-bit resampler (``Resample.c``) works like this, separably, horizontal pass first:

* ``scale = in / out`` (double), ``filterscale = max(scale, 1)``, ``support = 3 · filterscale``.
* Output pixel ``xx`` is centred at ``c = (xx + 0.5) · scale``; its taps are the input pixels
  ``xmin = trunc(c − support + 0.5)`` (clamped to ≥ 0) up to ``xmax = trunc(c + support + 0.5)``
  (exclusive, clamped to ≤ in).
* Tap ``x`` weighs ``lanczos3((x − c + 0.5) / filterscale)`` with ``lanczos3(t) = sinc(t)·sinc(t/3)`` on
  ``[−3, 3)``; the weights are divided by their sum (so the borders are renormalised, not padded).
* Each weight becomes a 22-bit fixed-point integer (``PRECISION_BITS = 32 − 8 − 2``), rounded half away
  from zero; the pass accumulates ``2^21 + Σ pixel · weight`` in integers, shifts right by 22 and clips
  to 0…255. The second pass reads that uint8 intermediate.
* Pass order: Pillow < 13 always resizes horizontally first. Pillow 13 (python-pillow PR #9549) resizes
  vertically first when the height shrinks much more than the width; for a ÷4 resize the observed rule is
  ``H − H//4 > 2·(W − W//4)`` (checked against Pillow 13.0 on every size up to 90×48 and at the threshold
  for widths up to 131; see :func:`vertical_first`). Only images more than about twice as tall as wide
  are affected; we follow the installed Pillow 13.

Everything here is computed in float64 with Python's ``math.sin`` (the C library's ``sin``, as Pillow
uses), so the integer tables equal Pillow's; ``tests/families/hdm/test_dcp_lanczos.py`` checks the resampler against
Pillow bit for bit. The tables are what :mod:`.torch_masks` and :mod:`.onnx_function` consume.
"""

from __future__ import annotations

import functools
import math

import numpy as np

#: Pillow's fixed-point precision for 8-bit images.
PRECISION_BITS = 32 - 8 - 2
#: Lanczos-3 support.
SUPPORT = 3.0
#: Split of an integer coefficient ``K = KH · 2^SPLIT_BITS + KL`` (0 ≤ KL < 2^SPLIT_BITS) used by the
#: float32 formulations: every partial sum of ``pixel · KH`` and ``pixel · KL`` over ≤ 24 taps stays an
#: integer below 2^24, and both parts fit in 11 significant bits, so even TF32 matmuls are exact.
SPLIT_BITS = 10
#: Taps of the ÷4 kernel when the size is a multiple of 4 (scale exactly 4: 2·12 taps).
TAPS4 = 24


def _sinc(x: float) -> float:
    if x == 0.0:
        return 1.0
    x = x * math.pi
    return math.sin(x) / x


def lanczos3(x: float) -> float:
    """Pillow's truncated Lanczos-3 window (nonzero on ``[−3, 3)``)."""
    if -3.0 <= x < 3.0:
        return _sinc(x) * _sinc(x / 3.0)
    return 0.0


def _fixed(k: float) -> int:
    # C's (int) truncates toward zero: round half away from zero.
    scaled = k * (1 << PRECISION_BITS)
    return int(-0.5 + scaled) if k < 0 else int(0.5 + scaled)


@functools.lru_cache(maxsize=256)
def coefficients(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray]:
    """Pillow's integer Lanczos coefficients for resizing ``in_size`` → ``out_size`` along one axis.

    Returns ``(xmin, kk)``: ``xmin`` int64 [out] first input tap of each output, ``kk`` int64
    [out, ksize] fixed-point weights (zeros past each output's last tap). Output ``xx`` is
    ``clip((2^21 + Σ_j in[xmin[xx] + j] · kk[xx, j]) >> 22, 0, 255)``.
    """
    if in_size < 1 or out_size < 1:
        raise ValueError(f"sizes must be positive, got {in_size} → {out_size}")
    scale = float(np.float32(in_size)) / out_size  # Pillow: (double)(in1 - in0) / outSize, in floats
    filterscale = max(scale, 1.0)
    support = SUPPORT * filterscale
    ksize = math.ceil(support) * 2 + 1
    ss = 1.0 / filterscale
    xmin_all = np.zeros(out_size, np.int64)
    kk = np.zeros((out_size, ksize), np.int64)
    for xx in range(out_size):
        center = 0.0 + (xx + 0.5) * scale
        xmin = max(int(center - support + 0.5), 0)
        xmax = min(int(center + support + 0.5), in_size) - xmin
        w = [lanczos3((x + xmin - center + 0.5) * ss) for x in range(xmax)]
        ww = 0.0
        for v in w:
            ww += v
        if ww != 0.0:
            w = [v / ww for v in w]
        xmin_all[xx] = xmin
        kk[xx, :xmax] = [_fixed(v) for v in w]
    xmin_all.setflags(write=False)
    kk.setflags(write=False)
    return xmin_all, kk


def dense_matrix(in_size: int, out_size: int) -> np.ndarray:
    """The coefficients as a dense int64 matrix ``M[in, out]`` (output = input @ M, before rounding)."""
    xmin, kk = coefficients(in_size, out_size)
    m = np.zeros((in_size, out_size), np.int64)
    for xx in range(out_size):
        for j in range(kk.shape[1]):
            if kk[xx, j]:
                m[xmin[xx] + j, xx] = kk[xx, j]
    return m


def resample_axis(values: np.ndarray, out_size: int, axis: int) -> np.ndarray:
    """One Pillow pass in exact integer arithmetic (numpy int64); returns uint8."""
    moved = np.moveaxis(np.asarray(values, np.int64), axis, -1)
    acc = moved @ dense_matrix(moved.shape[-1], out_size) + (1 << (PRECISION_BITS - 1))
    out = np.clip(acc >> PRECISION_BITS, 0, 255).astype(np.uint8)
    return np.moveaxis(out, -1, axis)


def vertical_first(height: int, width: int) -> bool:
    """Whether Pillow 13 runs the vertical pass first for a ÷4 resize of a ``height × width`` image."""
    return height - height // 4 > 2 * (width - width // 4)


def downscale4(rgb: np.ndarray) -> np.ndarray:
    """uint8 [H, W, C] → uint8 [H//4, W//4, C], equal to Pillow's ``resize((W//4, H//4), LANCZOS)``."""
    h, w = rgb.shape[:2]
    if vertical_first(h, w):
        return resample_axis(resample_axis(rgb, h // 4, axis=0), w // 4, axis=1)
    return resample_axis(resample_axis(rgb, w // 4, axis=1), h // 4, axis=0)


# ---- the tables the float32 implementations use -----------------------------------------------------------


def split(k: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``K = KH · 2^SPLIT_BITS + KL`` with ``0 ≤ KL < 2^SPLIT_BITS`` (floor split, also for negative K)."""
    k = np.asarray(k, np.int64)
    hi = np.floor_divide(k, 1 << SPLIT_BITS)
    return hi, k - hi * (1 << SPLIT_BITS)


@functools.lru_cache(maxsize=1)
def scale4_class_table() -> np.ndarray:
    """Integer kernels of the exact-÷4 case, int64 [4, 4, 24], indexed ``[left, right, tap]``.

    For ``in = 4·out`` output ``xx`` reads the 24 taps ``4·xx − 10 + j`` (j < 24); taps outside the
    image are dropped and the rest renormalised. How many are dropped depends only on
    ``left = min(xx, 3)`` and ``right = min(out − 1 − xx, 3)`` (3 = none), so 16 kernels cover every
    size that is a multiple of 4; ``[3, 3]`` is the interior kernel.
    """
    table = np.zeros((4, 4, TAPS4), np.int64)
    # out = 7 realises every (left, right) with left + right ≥ 3 ... small outs realise the others.
    for out in range(1, 8):
        xmin, kk = coefficients(4 * out, out)
        for xx in range(out):
            left, right = min(xx, 3), min(out - 1 - xx, 3)
            first = 4 * xx - 10  # tap 0 of the full window
            row = np.zeros(TAPS4, np.int64)
            for j in range(kk.shape[1]):
                if kk[xx, j]:
                    row[xmin[xx] + j - first] = kk[xx, j]
            if table[left, right].any() and not np.array_equal(table[left, right], row):
                raise AssertionError("÷4 kernel is not determined by its border class")  # pragma: no cover
            table[left, right] = row
    table.setflags(write=False)
    return table
