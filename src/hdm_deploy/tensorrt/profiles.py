"""Optimisation profiles: from ``--min/--opt/--max NxHxW`` (or the model's metadata) to input shapes.

Pure functions, no TensorRT: the builder turns a :class:`Profile` into ``IOptimizationProfile``
calls, the sidecar stores it, and the TensorRT runner checks every batch against it *before*
touching TensorRT (:func:`check_in_profile`), so a frame of the wrong size fails with a clear
:class:`~hdm_deploy.core.errors.ShapeOutOfProfileError` instead of a TensorRT error code.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from hdm_deploy.core.errors import ShapeOutOfProfileError
from hdm_deploy.core.runner import check_max_pixels
from hdm_deploy.core.sizes import NHW, parse_nhw

#: Defaults: batch dynamic, from a thumbnail to 1080p, tuned for 720p.
DEFAULT_MIN = (1, 64, 64)
DEFAULT_OPT = (1, 720, 1280)
DEFAULT_MAX = (1, 1080, 1920)


@dataclass(frozen=True)
class Profile:
    """One optimisation profile for the image input, in ``(N, H, W)`` terms plus the layout."""

    input_name: str
    layout: str  #: "NHWC" (uint8 io) or "NCHW" (float io)
    min: NHW
    opt: NHW
    max: NHW

    def __post_init__(self) -> None:
        for axis, label in enumerate("NHW"):
            lo, mid, hi = self.min[axis], self.opt[axis], self.max[axis]
            if not lo <= mid <= hi:
                raise ValueError(f"profile {label}: need min ≤ opt ≤ max, got {lo}, {mid}, {hi}")
        if self.layout not in ("NHWC", "NCHW"):
            raise ValueError(f"layout must be NHWC or NCHW, got {self.layout}")

    def tensor_shape(self, nhw: NHW) -> tuple[int, int, int, int]:
        n, h, w = nhw
        return (n, h, w, 3) if self.layout == "NHWC" else (n, 3, h, w)

    def shapes(self) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """(min, opt, max) tensor shapes for ``IOptimizationProfile.set_shape``."""
        return self.tensor_shape(self.min), self.tensor_shape(self.opt), self.tensor_shape(self.max)

    def as_dict(self) -> dict:
        return {
            "input": self.input_name,
            "layout": self.layout,
            "min": list(self.min),
            "opt": list(self.opt),
            "max": list(self.max),
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> Profile:
        return cls(
            str(data["input"]),
            str(data["layout"]),
            parse_nhw(data["min"]),
            parse_nhw(data["opt"]),
            parse_nhw(data["max"]),
        )

    def describe(self) -> str:
        f = lambda s: "×".join(map(str, s))  # noqa: E731
        return f"{self.input_name} {self.layout}: min {f(self.min)}, opt {f(self.opt)}, max {f(self.max)}"


def layout_for(io: str | None, input_dims: Sequence[int | str | None] | None = None) -> str:
    """``io`` metadata ('uint8' / 'float') or the input's static dims → "NHWC" | "NCHW"."""
    if io in ("uint8", "u8", "nhwc"):
        return "NHWC"
    if io in ("float", "float32", "nchw"):
        return "NCHW"
    if input_dims is not None and len(input_dims) == 4:
        if input_dims[-1] == 3:
            return "NHWC"
        if input_dims[1] == 3:
            return "NCHW"
    return "NHWC"


def compute_profile(
    metadata: Mapping[str, str] | None = None,
    input_name: str = "image",
    input_dims: Sequence[int | str | None] | None = None,
    min_shape: str | Sequence[int] | None = None,
    opt_shape: str | Sequence[int] | None = None,
    max_shape: str | Sequence[int] | None = None,
) -> Profile:
    """The build profile: explicit ``--min/--opt/--max`` win, then the model's metadata
    (``profile_min``/``profile_opt``/``profile_max`` if the exporter wrote them), then the defaults.

    Static dims in the ONNX input (an export with a fixed size) pin that axis for all three.
    When only some of min/opt/max are given, the others are clamped so that min ≤ opt ≤ max.
    """
    meta = dict(metadata or {})
    layout = layout_for(meta.get("io"), input_dims)

    def pick(given, key, default) -> tuple[NHW, bool]:
        if given is not None:
            return parse_nhw(given), True
        if meta.get(key):
            return parse_nhw(meta[key]), True
        return default, False

    lo, lo_set = pick(min_shape, "profile_min", DEFAULT_MIN)
    mid, mid_set = pick(opt_shape, "profile_opt", DEFAULT_OPT)
    hi, hi_set = pick(max_shape, "profile_max", DEFAULT_MAX)

    # Fill what the user did not give around what they did.
    if hi_set and not mid_set:
        mid = tuple(min(m, h) for m, h in zip(mid, hi, strict=True))  # type: ignore[assignment]
    if lo_set and not mid_set:
        mid = tuple(max(m, lo_) for m, lo_ in zip(mid, lo, strict=True))  # type: ignore[assignment]
    if not hi_set:
        hi = tuple(max(h, m) for h, m in zip(hi, mid, strict=True))  # type: ignore[assignment]
    if not lo_set:
        lo = tuple(min(lo_, m) for lo_, m in zip(lo, mid, strict=True))  # type: ignore[assignment]

    # Static dims of the ONNX input pin an axis.
    if input_dims is not None and len(input_dims) == 4:
        axes = (0, 1, 2) if layout == "NHWC" else (0, 2, 3)
        fixed = [
            input_dims[a] if isinstance(input_dims[a], int) and input_dims[a] > 0 else None for a in axes
        ]
        lo, mid, hi = (
            tuple(f if f is not None else v for f, v in zip(fixed, s, strict=True)) for s in (lo, mid, hi)
        )  # type: ignore[assignment]
    min_side = int(meta.get("min_side") or 1)
    if min(lo[1:]) < min_side:
        raise ValueError(f"profile min H/W must be ≥ {min_side} for this model, got {lo[1]}×{lo[2]}")
    check_max_pixels(
        hi,
        meta.get("max_pixels"),
        what="profile max (W×H)",
        fix="lower --max",
        pad_multiple=int(meta.get("pad_multiple") or 1),
    )
    return Profile(input_name, layout, lo, mid, hi)


def frames_nhw(shape: Sequence[int], layout: str) -> NHW:
    if len(shape) != 4:
        raise ShapeOutOfProfileError(f"expected a 4-D input, got shape {list(shape)}")
    return (shape[0], shape[1], shape[2]) if layout == "NHWC" else (shape[0], shape[2], shape[3])


def check_in_profile(shape: Sequence[int], profile: Profile) -> None:
    """Raise :class:`ShapeOutOfProfileError` (with the profile and a fix) when ``shape`` — the
    input tensor's shape in the profile's layout — lies outside ``profile``."""
    n, h, w = frames_nhw(shape, profile.layout)
    problems = []
    for value, lo, hi, label in (
        (n, profile.min[0], profile.max[0], "batch"),
        (h, profile.min[1], profile.max[1], "height"),
        (w, profile.min[2], profile.max[2], "width"),
    ):
        if not lo <= value <= hi:
            problems.append(f"{label} {value} not in [{lo}, {hi}]")
    if problems:
        raise ShapeOutOfProfileError(
            f"input {n}×{h}×{w} (N×H×W) is outside the engine's profile ({profile.describe()}): "
            + "; ".join(problems),
            f"rebuild with e.g. `hdm-deploy build-engine MODEL.onnx --max {max(n, profile.max[0])}x{max(h, profile.max[1])}x{max(w, profile.max[2])}`"
            " or resize/split the input",
        )
