"""Parity between a model and a reference: comparisons, reports (rich table, JSON, JUnit), heatmaps.

Torch-free: the reference is a golden bundle (``model.golden.npz``, see
:mod:`hdm_deploy.graph.golden`) or any model file that :func:`hdm_deploy.runtime.load_runner`
opens (a checkpoint then needs PyTorch, imported lazily by the torch runner).

Per case (one batch of frames) we report

* ``psnr_db``   — PSNR of the float outputs (uint8/255 when either side has no float output);
* ``max_abs``   — max |Δ| of the float outputs (``None`` if either side has none: uint8-io graphs);
* ``max_abs_u8`` — max |Δ| of the uint8 outputs, in levels;
* ``identical`` — % of pixels whose three uint8 channels all match: equal, or one level apart where
  the reference's float output lies within ``boundary_eps`` of the rounding boundary between the two
  levels (legitimate float noise — another thread count, another runtime — flips such a value;
  a real regression moves values by a level away from boundaries too). Needs the reference's float
  output; without it the match is exact;
* ``identical_raw`` — % of pixels whose three uint8 channels are all exactly equal (reported only);
* ``extras_agreement`` — per extra output of the family (HDM: ``masks``), % of spatial positions
  whose vector along the non-spatial axes is identical.

A case fails when a metric with a threshold misses it; a metric that cannot be computed is reported
as n/a and not checked (except a shape mismatch, which always fails).
"""

from __future__ import annotations

import json
import math
import os
import time
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from rich.table import Table

from hdm_deploy.core.errors import HdmDeployError, InputImageError, ModelFormatError, ParityError
from hdm_deploy.core.fs import atomic_write_bytes, atomic_write_text
from hdm_deploy.core.photos import golden_cases
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.graph import onnx_io
from hdm_deploy.graph.golden import GoldenBundle, golden_path_for, load_golden
from hdm_deploy.runtime import load_runner
from hdm_deploy.runtime.image_io import IMAGE_SUFFIXES, list_images, read_image
from hdm_deploy.tensorrt.sidecar import read_sidecar

THRESHOLD_HINT = "raise the tolerance only if the difference is understood; --heatmap DIR shows where it is"


@dataclass
class Thresholds:
    """Pass criteria; ``None`` disables a check."""

    psnr_min: float | None = 40.0
    max_abs: float | None = 2e-4
    identical_min: float | None = 99.9
    extras_min: float | None = 99.9  #: % agreement of every extra output
    max_abs_u8: int | None = None
    #: a 1-level flip counts as identical when the reference float is within this of a rounding
    #: boundary (in [0, 1] units: 1e-4 ≈ 0.026 levels; ≈ 5× the run-to-run noise of PyTorch on a CPU)
    boundary_eps: float | None = 1e-4

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None) -> Thresholds:
        names = {f.name for f in fields(cls)}
        values = dict(values or {})
        if "mask_min" in values:  # bundles written before the family interface
            values.setdefault("extras_min", values.pop("mask_min"))
        return cls(**{k: v for k, v in values.items() if k in names})

    def merged(self, **overrides: Any) -> Thresholds:
        """A copy with the non-None ``overrides`` applied (CLI flags over bundle/defaults)."""
        data = asdict(self)
        data.update({k: v for k, v in overrides.items() if v is not None})
        return Thresholds(**data)


@dataclass
class CaseResult:
    name: str
    batch: int
    width: int
    height: int
    psnr_db: float | None = None
    max_abs: float | None = None
    max_abs_u8: int | None = None
    #: a 1-level flip counts as identical when the reference float is within this of a rounding
    #: boundary (in [0, 1] units: 1e-4 ≈ 0.026 levels; ≈ 5× the run-to-run noise of PyTorch on a CPU)
    boundary_eps: float | None = 1e-4
    identical: float | None = None
    identical_raw: float | None = None
    extras_agreement: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    failures: list[str] = field(default_factory=list)
    failed_metrics: list[str] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return not self.failures

    def as_json(self) -> dict[str, Any]:
        out = asdict(self)
        out["passed"] = self.passed
        if out["psnr_db"] is not None and math.isinf(out["psnr_db"]):
            out["psnr_db"] = "inf"
        return out


@dataclass
class ParityReport:
    model: str
    reference: str
    thresholds: Thresholds
    cases: list[CaseResult]
    model_info: dict[str, Any] = field(default_factory=dict)
    reference_info: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return bool(self.cases) and all(c.passed for c in self.cases)

    @property
    def failures(self) -> list[str]:
        return [f"{c.name}: {f}" for c in self.cases for f in c.failures]

    def as_json(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "model": self.model,
            "reference": self.reference,
            "thresholds": asdict(self.thresholds),
            "model_info": self.model_info,
            "reference_info": self.reference_info,
            "cases": [c.as_json() for c in self.cases],
        }

    def raise_for_failures(self) -> None:
        if not self.passed:
            shown = "; ".join(self.failures[:3]) + (
                f"; … ({len(self.failures) - 3} more)" if len(self.failures) > 3 else ""
            )
            raise ParityError(f"parity failed for {self.model} vs {self.reference}: {shown}", THRESHOLD_HINT)


# ---- metrics ---------------------------------------------------------------------------------


def default_golden_for(model_path: str | os.PathLike) -> Path:
    """The golden bundle ``parity`` uses by default: ``STEM.golden.npz`` beside the model, else the one
    the model names — ONNX metadata ``golden`` (kept by ``convert``), or an engine sidecar's copy of it —
    so ``model.plugin.onnx`` and ``model.engine`` find ``model.golden.npz``. Returns the first candidate
    that exists, else ``STEM.golden.npz`` (for the error message)."""
    p = Path(model_path)
    own = golden_path_for(p)
    if own.is_file() or not p.is_file():
        return own
    named = None
    try:
        if p.suffix == ".onnx":
            model = onnx_io.load(p, external_data=False)
            named = {m.key: m.value for m in model.metadata_props}.get("golden")
        elif p.suffix in (".engine", ".plan"):
            sidecar = read_sidecar(p, required=False)
            named = sidecar.model_metadata.get("golden") if sidecar else None
    except ModelFormatError:
        return own
    if named and (p.parent / Path(named).name).is_file():
        return p.parent / Path(named).name
    return own


def psnr(a: np.ndarray, b: np.ndarray, peak: float = 1.0) -> float:
    mse = float(np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2))
    return math.inf if mse == 0 else 10.0 * math.log10(peak * peak / mse)


def agreement(a: np.ndarray, b: np.ndarray) -> float:
    """% of positions [N, ·, …, h, w] whose vectors along the middle axes are identical."""
    same = np.all(a == b, axis=tuple(range(1, a.ndim - 2)))
    return 100.0 * float(np.mean(same))


def matching_levels(
    pred8: np.ndarray, ref8: np.ndarray, ref_float: np.ndarray | None, boundary_eps: float | None
) -> np.ndarray:
    """Per value (uint8 NHWC), whether ``pred8`` matches ``ref8``: equal, or one level apart with the
    reference float ``x`` (NCHW in [0, 1]) within ``boundary_eps`` of the boundary ``k + 0.5`` between
    the two levels (``x·255`` rounds to either under float noise of that size)."""
    pred8, ref8 = pred8.astype(np.int16), ref8.astype(np.int16)
    same = pred8 == ref8
    if ref_float is None or not boundary_eps or ref_float.shape != ref8.transpose(0, 3, 1, 2).shape:
        return same
    scaled = np.clip(ref_float.astype(np.float64), 0.0, 1.0).transpose(0, 2, 3, 1) * 255.0
    boundary = np.floor(scaled - 0.5) + 0.5  # the nearest k + 0.5 at or below x·255 …
    boundary = np.where(scaled - boundary > 0.5, boundary + 1.0, boundary)  # … or above it
    near = np.abs(scaled - boundary) <= boundary_eps * 255.0
    straddles = np.minimum(pred8, ref8) == boundary - 0.5  # the two levels are k and k + 1
    return same | ((np.abs(pred8 - ref8) == 1) & near & straddles)


def compare(
    name: str,
    pred: Prediction,
    ref: Prediction,
    thresholds: Thresholds | None = None,
    seconds: float = 0.0,
) -> CaseResult:
    """Metrics of ``pred`` against ``ref`` (both for the same frames) and the failed criteria."""
    t = thresholds or Thresholds()
    n, h, w, _ = ref.image.shape
    res = CaseResult(name, n, w, h, seconds=seconds)
    if pred.image.shape != ref.image.shape:
        res.failures.append(f"output shape {list(pred.image.shape)} ≠ reference {list(ref.image.shape)}")
        return res
    a8, b8 = pred.image.astype(np.int16), ref.image.astype(np.int16)
    res.max_abs_u8 = int(np.abs(a8 - b8).max())
    res.identical_raw = 100.0 * float(np.mean(np.all(a8 == b8, axis=-1)))
    res.identical = 100.0 * float(
        np.mean(np.all(matching_levels(a8, b8, ref.image_float, t.boundary_eps), axis=-1))
    )
    if (
        pred.image_float is not None
        and ref.image_float is not None
        and pred.image_float.shape == ref.image_float.shape
    ):
        fa, fb = pred.image_float.astype(np.float32), ref.image_float.astype(np.float32)
        res.max_abs = float(np.abs(fa - fb).max())
        res.psnr_db = psnr(fa, fb)
    else:
        res.psnr_db = psnr(a8 / 255.0, b8 / 255.0)
    for key in sorted(set(pred.extras) & set(ref.extras)):
        a, b = np.asarray(pred.extras[key]), np.asarray(ref.extras[key])
        if a.shape != b.shape:
            res.failures.append(f"{key} shape {list(a.shape)} ≠ reference {list(b.shape)}")
            res.failed_metrics.append(f"{key}_agreement")
        elif a.ndim >= 3:
            res.extras_agreement[key] = agreement(a, b)

    def check(key, limit, ok, text):
        value = getattr(res, key)
        if value is not None and limit is not None and not ok(value, limit):
            res.failures.append(text.format(v=value, t=limit))
            res.failed_metrics.append(key)

    check("psnr_db", t.psnr_min, lambda v, x: v >= x, "PSNR {v:.2f} dB < {t} dB")
    check("max_abs", t.max_abs, lambda v, x: v <= x, "max |Δ| {v:.3g} > {t:g}")
    check("max_abs_u8", t.max_abs_u8, lambda v, x: v <= x, "max |Δ| {v} levels > {t}")
    check("identical", t.identical_min, lambda v, x: v >= x, "{v:.3f} % identical pixels < {t} %")
    for key, value in res.extras_agreement.items():
        if t.extras_min is not None and value < t.extras_min:
            res.failures.append(f"{key} agreement {value:.3f} % < {t.extras_min} %")
            res.failed_metrics.append(f"{key}_agreement")
    return res


# ---- running ---------------------------------------------------------------------------------


def abs_diff_map(pred: Prediction, ref: Prediction) -> np.ndarray:
    """|Δ| per pixel (max over channels), float32 [N, H, W], on the float outputs when both exist."""
    if pred.image_float is not None and ref.image_float is not None:
        return np.abs(pred.image_float - ref.image_float).max(axis=1).astype(np.float32)
    diff = np.abs(pred.image.astype(np.int16) - ref.image.astype(np.int16)).max(axis=-1)
    return diff.astype(np.float32) / 255.0


def write_heatmaps(directory: str | os.PathLike, name: str, pred: Prediction, ref: Prediction) -> list[Path]:
    """Colour-mapped |Δ| pictures (inferno; black = 0, bright = the case's max |Δ|, printed on it)."""

    directory = Path(directory)
    paths = []
    if pred.image.shape != ref.image.shape:
        return paths
    delta = abs_diff_map(pred, ref)
    for i, d in enumerate(delta):
        peak = float(d.max())
        scaled = (
            np.zeros(d.shape, np.uint8) if peak == 0 else np.clip(d / peak * 255.0, 0, 255).astype(np.uint8)
        )
        colour = cv2.applyColorMap(scaled, cv2.COLORMAP_INFERNO)
        label = f"max |d| = {peak:.3g}"
        scale = max(0.35, min(1.0, d.shape[1] / 640))
        cv2.putText(
            colour,
            label,
            (4, int(18 * scale) + 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            scale,
            (255, 255, 255),
            1,
            cv2.LINE_AA,
        )
        ok, png = cv2.imencode(".png", colour)
        if not ok:  # pragma: no cover
            raise InputImageError(f"cannot encode heatmap for {name}")
        suffix = f"_{i}" if len(delta) > 1 else ""
        paths.append(atomic_write_bytes(directory / f"{_safe(name)}{suffix}_absdiff.png", png.tobytes()))
    return paths


def _safe(name: str) -> str:
    return "".join(ch if ch.isalnum() or ch in "-_.+" else "_" for ch in name)


def _prediction_of(case) -> Prediction:
    return Prediction(image=case.enhanced, image_float=case.enhanced_float, extras=dict(case.extras))


def image_cases(directory: str | os.PathLike) -> list[tuple[str, np.ndarray]]:
    """(file name, uint8 [1,H,W,3]) for every image in a folder (read like ``infer`` reads them)."""

    directory = Path(directory)
    if directory.is_file():
        files = [directory]
    elif directory.is_dir():
        files = list_images(directory)
    else:
        raise InputImageError(f"images not found: {directory}")
    if not files:
        raise InputImageError(f"no images in {directory}", f"supported: {', '.join(IMAGE_SUFFIXES)}")
    return [(p.name, read_image(p).rgb8[None]) for p in files]


def check_parity(
    runner: Runner,
    reference: Runner | Any,
    cases: Sequence[tuple[str, np.ndarray]] | None = None,
    thresholds: Thresholds | None = None,
    heatmap_dir: str | os.PathLike | None = None,
    progress: Any = None,
) -> ParityReport:
    """Run ``runner`` on the cases and compare with ``reference``.

    ``reference`` is a :class:`~hdm_deploy.graph.golden.GoldenBundle` (its inputs are the cases) or a
    Runner (then ``cases`` default to the bundled golden photographs).
    """

    is_bundle = isinstance(reference, GoldenBundle)
    if is_bundle:
        if cases is not None:
            raise InputImageError(
                "--images cannot be used with a golden bundle (its inputs are fixed)",
                "pass a checkpoint or model as --reference to compare on your images",
            )
        items = [(c.name, c.input, _prediction_of(c)) for c in reference.cases]
        t = thresholds or Thresholds.from_dict(reference.tolerances)
    else:
        items = [(name, frames, None) for name, frames in (cases if cases is not None else golden_cases())]
        t = thresholds or Thresholds()
    results = []
    for name, frames, ref_pred in items:
        t0 = time.perf_counter()
        pred = runner(frames)
        seconds = time.perf_counter() - t0
        if ref_pred is None:
            ref_pred = reference(frames)
        results.append(compare(name, pred, ref_pred, t, seconds))
        if heatmap_dir is not None:
            write_heatmaps(heatmap_dir, name, pred, ref_pred)
        if progress is not None:
            progress(name)
    ref_name = str(reference.path) if is_bundle else str(reference.model_path or "(bundled sample)")
    ref_info = (
        {"manifest": {k: v for k, v in reference.manifest.items() if k != "cases"}}
        if is_bundle
        else reference.describe()
    )
    return ParityReport(
        model=str(runner.model_path),
        reference=ref_name,
        thresholds=t,
        cases=results,
        model_info=runner.describe(),
        reference_info=ref_info,
    )


def run_parity(
    model: str | os.PathLike,
    reference: str | os.PathLike,
    *,
    images: str | os.PathLike | None = None,
    thresholds: dict[str, Any] | None = None,
    heatmap_dir: str | os.PathLike | None = None,
    runner_options: dict[str, Any] | None = None,
    reference_options: dict[str, Any] | None = None,
    progress: Any = None,
) -> ParityReport:
    """``hdm-deploy parity``: open both sides, compare, return the report (does not raise).
    ``runner_options``/``reference_options`` go to :func:`~hdm_deploy.runtime.load_runner` for the
    model and for a reference model file (e.g. HDM's ``masks="torch"`` for a checkpoint)."""

    ref_path = Path(reference)
    bundle = load_golden(ref_path) if ref_path.suffix.lower() == ".npz" else None
    cases = image_cases(images) if images is not None else None
    base = Thresholds.from_dict(bundle.tolerances) if bundle is not None else Thresholds()
    t = base.merged(**(thresholds or {}))
    if bundle is not None and any(v is not None for v in (reference_options or {}).values()):
        given = ", ".join(f"--{k.replace('_', '-')}" for k, v in reference_options.items() if v is not None)
        raise HdmDeployError(
            f"{given} cannot apply to a golden bundle", "its outputs are fixed; leave it out"
        )
    with load_runner(model, **(runner_options or {})) as runner:
        if bundle is not None:
            return check_parity(runner, bundle, cases, t, heatmap_dir, progress)
        with load_runner(ref_path, **(reference_options or {})) as ref_runner:
            return check_parity(runner, ref_runner, cases, t, heatmap_dir, progress)


# ---- reports ---------------------------------------------------------------------------------


def _fmt(value: float | None, spec: str) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, float) and math.isinf(value):
        return "∞"
    return format(value, spec)


def render_table(report: ParityReport):
    """A rich Table: one row per case, failing cells in red."""

    t = report.thresholds
    limits = [
        f"PSNR ≥ {t.psnr_min:g} dB" if t.psnr_min is not None else None,
        f"max |Δ| ≤ {t.max_abs:g}" if t.max_abs is not None else None,
        f"max |Δ| u8 ≤ {t.max_abs_u8}" if t.max_abs_u8 is not None else None,
        (
            f"identical ≥ {t.identical_min:g} %"
            + (
                f" (1-level flips within {t.boundary_eps:g} of a rounding boundary count)"
                if t.boundary_eps
                else ""
            )
            if t.identical_min is not None
            else None
        ),
        f"extra outputs ≥ {t.extras_min:g} % equal" if t.extras_min is not None else None,
    ]
    extras = sorted({k for c in report.cases for k in c.extras_agreement})
    table = Table(
        title=f"parity: {report.model}  vs  {report.reference}",
        title_justify="left",
        caption="pass if " + ", ".join(x for x in limits if x) + " (n/a: not available, not checked)",
        caption_justify="left",
    )
    for col in (
        "case",
        "N×W×H",
        "PSNR dB",
        "max |Δ|",
        "max |Δ| u8",
        "identical %",
        "exact %",
        *(f"{e} %" for e in extras),
        "result",
    ):
        # never truncate: a clipped case name or number in a CI log is useless
        table.add_column(col, justify="left" if col in ("case", "result") else "right", overflow="fold")
    for c in report.cases:

        def cell(key: str, spec: str, case: CaseResult = c) -> str:
            value = (
                case.extras_agreement.get(key[: -len("_agreement")]) if key.endswith("_agreement") else None
            )
            text = _fmt(value if key.endswith("_agreement") else getattr(case, key), spec)
            return f"[red]{text}[/]" if key in case.failed_metrics else text

        table.add_row(
            c.name,
            f"{c.batch}×{c.width}×{c.height}",
            cell("psnr_db", ".2f"),
            cell("max_abs", ".3g"),
            cell("max_abs_u8", "d"),
            cell("identical", ".3f"),
            cell("identical_raw", ".3f"),
            *(cell(f"{e}_agreement", ".3f") for e in extras),
            "[green]pass[/]" if c.passed else "[bold red]FAIL[/]",
        )
    return table


def write_json(report: ParityReport, path: str | os.PathLike) -> Path:
    return atomic_write_text(path, json.dumps(report.as_json(), indent=2, default=str) + "\n")


def write_junit(report: ParityReport, path: str | os.PathLike) -> Path:
    """JUnit XML: one testcase per case, a <failure> with the missed criteria."""
    suite = ET.Element(
        "testsuite",
        name="hdm-deploy parity",
        tests=str(len(report.cases)),
        failures=str(sum(not c.passed for c in report.cases)),
        errors="0",
        time=f"{sum(c.seconds for c in report.cases):.3f}",
    )
    props = ET.SubElement(suite, "properties")
    for key, value in (
        ("model", report.model),
        ("reference", report.reference),
        *asdict(report.thresholds).items(),
    ):
        ET.SubElement(props, "property", name=str(key), value=str(value))
    classname = f"parity.{Path(report.model).name}"
    for c in report.cases:
        tc = ET.SubElement(suite, "testcase", classname=classname, name=c.name, time=f"{c.seconds:.3f}")
        metrics = json.dumps({k: v for k, v in c.as_json().items() if k not in ("failures", "name")})
        if c.failures:
            failure = ET.SubElement(tc, "failure", message="; ".join(c.failures), type="ParityError")
            failure.text = metrics
        else:
            ET.SubElement(tc, "system-out").text = metrics
    data = ET.tostring(suite, encoding="utf-8", xml_declaration=True)
    return atomic_write_bytes(path, data)
