"""Optimisation profiles: from ``--min/--opt/--max NxHxW`` (or the model's metadata) to input shapes.

Pure functions, no TensorRT: the builder turns a :class:`Profile` into ``IOptimizationProfile``
calls, the sidecar stores it, and the TensorRT runner checks every batch against it *before*
touching TensorRT (:func:`check_in_profile`), so a frame of the wrong size fails with a clear
:class:`~hdm_deploy.core.errors.ShapeOutOfProfileError` instead of a TensorRT error code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hdm_deploy.core.contracts import META_COMPANION_GRAPHS, META_PROFILE_AXES
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


# ---- graphs with several inputs: one range per named dynamic axis ---------------------------------------

#: ONNX metadata keys an exporter may write for graphs with several inputs: the ranges of the named
#: dynamic axes (JSON ``{"axis": [min, opt, max]}``), and the other graphs of the same artifact (file
#: names beside this one, comma-separated) that are built and run with it.
PROFILE_AXES_KEY = META_PROFILE_AXES
COMPANION_GRAPHS_KEY = META_COMPANION_GRAPHS

AxisRange = tuple[int, int, int]


def parse_axis_spec(spec: str) -> tuple[str, AxisRange]:
    """``"batch=1:4:8"`` → ``("batch", (1, 4, 8))``; ``"patch=512"`` pins the axis (min = opt = max)."""
    name, sep, values = str(spec).partition("=")
    name = name.strip()
    try:
        nums = tuple(int(v) for v in values.split(":")) if sep else ()
    except ValueError:
        nums = ()
    if not name or len(nums) not in (1, 3):
        raise ValueError(f"--axis {spec!r}: expected NAME=MIN:OPT:MAX or NAME=VALUE")
    lo, mid, hi = nums * 3 if len(nums) == 1 else nums
    if not 1 <= lo <= mid <= hi:
        raise ValueError(f"--axis {spec!r}: need 1 ≤ min ≤ opt ≤ max")
    return name, (lo, mid, hi)


def axes_from_metadata(metadata: Mapping[str, str] | None) -> dict[str, AxisRange]:
    """The exporter's axis ranges (``profile_axes`` metadata), checked like ``--axis``."""
    text = (metadata or {}).get(PROFILE_AXES_KEY)
    if not text:
        return {}
    try:
        data = json.loads(text)
        return dict(parse_axis_spec(f"{k}={':'.join(str(int(v)) for v in vals)}") for k, vals in data.items())
    except (ValueError, TypeError, AttributeError) as exc:
        raise ValueError(f"the model's {PROFILE_AXES_KEY} metadata is unusable ({exc})") from None


def companion_graphs(metadata: Mapping[str, str] | None) -> list[str]:
    """File names of the other graphs of this artifact (``companion_graphs`` metadata)."""
    text = (metadata or {}).get(COMPANION_GRAPHS_KEY, "")
    return [n.strip() for n in text.split(",") if n.strip()]


@dataclass(frozen=True)
class TensorProfile:
    """One optimisation profile of a graph with several inputs: ``(min, opt, max)`` shapes per input,
    and the named axis ranges they were made from (for messages)."""

    inputs: dict[str, tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]]
    axes: dict[str, AxisRange] = field(default_factory=dict)

    @property
    def input_name(self) -> str:
        return ", ".join(self.inputs)

    def as_dict(self) -> dict:
        return {
            "kind": "tensors",
            "inputs": {
                n: {"min": list(lo), "opt": list(mid), "max": list(hi)}
                for n, (lo, mid, hi) in self.inputs.items()
            },
            "axes": {k: list(v) for k, v in self.axes.items()},
        }

    @classmethod
    def from_dict(cls, data: Mapping) -> TensorProfile:
        return cls(
            {
                str(n): (tuple(map(int, s["min"])), tuple(map(int, s["opt"])), tuple(map(int, s["max"])))
                for n, s in data["inputs"].items()
            },
            {str(k): tuple(map(int, v)) for k, v in (data.get("axes") or {}).items()},  # type: ignore[misc]
        )

    def describe(self) -> str:
        f = lambda s: "×".join(map(str, s))  # noqa: E731
        if self.axes:
            axes = ", ".join(f"{k} {lo}/{mid}/{hi}" for k, (lo, mid, hi) in self.axes.items())
            return f"{', '.join(self.inputs)} (min/opt/max: {axes})"
        return "; ".join(
            f"{n}: min {f(lo)}, opt {f(mid)}, max {f(hi)}" for n, (lo, mid, hi) in self.inputs.items()
        )

    def check(self, shapes: Mapping[str, Sequence[int]]) -> None:
        """Raise :class:`ShapeOutOfProfileError` when a feed's shape lies outside the profile."""
        problems = []
        for name, shape in shapes.items():
            if name not in self.inputs:
                problems.append(f"{name} is not an input of the engine ({', '.join(self.inputs)})")
                continue
            lo, _, hi = self.inputs[name]
            if len(shape) != len(lo) or any(not a <= s <= b for s, a, b in zip(shape, lo, hi, strict=False)):
                problems.append(
                    f"{name} {'×'.join(map(str, shape))} not within {'×'.join(map(str, lo))} … {'×'.join(map(str, hi))}"
                )
        if problems:
            fix = ", ".join(f"--axis {k}=…" for k in self.axes) or "--axis NAME=MIN:OPT:MAX"
            raise ShapeOutOfProfileError(
                "input outside the engine's profile: " + "; ".join(problems),
                f"rebuild the engine with a wider range ({fix}) or use smaller batches",
            )


def compute_tensor_profile(
    inputs: Sequence[tuple[str, Sequence[int | str | None]]],
    metadata: Mapping[str, str] | None = None,
    axis_specs: Sequence[str] = (),
    strict: bool = True,
) -> TensorProfile:
    """The profile of a graph with several inputs: every dynamic dimension is a named ONNX axis
    (``dim_param``) whose range comes from ``--axis NAME=MIN:OPT:MAX`` (wins) or the exporter's
    ``profile_axes`` metadata; static dimensions stay as they are. Raises ``ValueError`` for an axis
    without a range, an unnamed dynamic dimension or (``strict``) an ``--axis`` the graph does not have."""
    axes = axes_from_metadata(metadata)
    given = dict(parse_axis_spec(s) for s in axis_specs)
    axes.update(given)
    used: dict[str, AxisRange] = {}
    shapes = {}
    for name, dims in inputs:
        per = []
        for i, d in enumerate(dims):
            if isinstance(d, int) and d > 0:
                per.append((d, d, d))
            elif isinstance(d, str) and d:
                if d not in axes:
                    raise ValueError(f"axis {d!r} of input {name} has no range: give --axis {d}=MIN:OPT:MAX")
                used[d] = axes[d]
                per.append(axes[d])
            else:
                raise ValueError(
                    f"dimension {i} of input {name} is dynamic without a name: re-export the model"
                )
        shapes[name] = tuple(tuple(p[k] for p in per) for k in range(3))
    unknown = sorted(set(given) - set(used))
    if unknown and strict:
        raise ValueError(
            f"--axis {', '.join(unknown)}: not an axis of this graph (axes: {', '.join(used) or 'none'})"
        )
    return TensorProfile(shapes, used)  # type: ignore[arg-type]
