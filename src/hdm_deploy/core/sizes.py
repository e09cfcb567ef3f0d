"""The size strings of the command line, parsed in one place.

``WIDTHxHEIGHT`` (``bench --size 640x480``, ``export --max-size 3840x2160``) and ``NxHxW`` / ``HxW``
(``build-engine --min/--opt/--max 1x1080x1920``). ``x``, ``×``, ``X`` and ``,`` separate numbers.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from hdm_deploy.core.errors import InputImageError

__all__ = ["NHW", "parse_nhw", "parse_size"]

NHW = tuple[int, int, int]
_SEP = r"[x×X,\s]+"


def _ints(text: str) -> tuple[int, ...]:
    parts = [p for p in re.split(_SEP, text.strip()) if p]
    try:
        return tuple(int(p) for p in parts)
    except ValueError:
        return ()


def parse_size(text: str, *, min_side: int = 1) -> tuple[int, int]:
    """``"640x480"`` → ``(640, 480)`` = (width, height); each side at least ``min_side``."""
    values = _ints(text)
    if len(values) != 2:
        raise InputImageError(f"cannot read size {text!r}", "write it as WIDTHxHEIGHT, e.g. 640x480")
    w, h = values
    if w < min_side or h < min_side:
        raise InputImageError(f"size {w}×{h} is too small (minimum {min_side}×{min_side})")
    return w, h


def parse_nhw(text: str | Sequence[int]) -> NHW:
    """``"1x720x1280"`` / ``"720x1280"`` (N=1) / ``(1, 720, 1280)`` → ``(N, H, W)``."""
    values = tuple(int(v) for v in text) if not isinstance(text, str) else _ints(text)
    if len(values) == 2:
        values = (1, *values)
    if len(values) != 3 or min(values) < 1:
        raise ValueError(f"shape {text!r} is not NxHxW (e.g. 1x720x1280) or HxW")
    return values  # type: ignore[return-value]
