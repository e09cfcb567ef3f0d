#!/usr/bin/env python3
"""Export N times, each in a fresh process like a user running ``hdm-deploy export -o model.onnx``,
and report failures and how much the results move between runs (not run in CI: ~25 s per export).

Per run: the exit code and last stderr line; the golden bundle's largest float difference and the
number of flipped uint8 values against run 1's bundle (the PyTorch reference is expected to be
bit-identical run to run); and the ONNX Runtime output against its own golden (raw exact % and the
% that ``parity`` counts as identical, max level difference).

    python scripts/stress_export.py -n 30 --workdir /tmp/stress [-- --deform plugin ...]

Exit status: 0 when every export passed and every golden equals run 1's, else 1.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np


def golden_delta(a, b) -> tuple[float, int]:
    """(max |Δ| of the float outputs, uint8 values that differ) between two golden bundles."""
    dmax, flips = 0.0, 0
    for ca, cb in zip(a.cases, b.cases, strict=True):
        if ca.enhanced_float is not None and cb.enhanced_float is not None:
            dmax = max(dmax, float(np.abs(ca.enhanced_float - cb.enhanced_float).max()))
        flips += int(np.count_nonzero(ca.enhanced != cb.enhanced))
    return dmax, flips


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("-n", "--runs", type=int, default=30)
    parser.add_argument("--workdir", type=Path, default=Path("stress_export"))
    parser.add_argument("--json", type=Path, help="write the per-run results here")
    parser.add_argument("export_args", nargs="*", help="extra `hdm-deploy export` arguments (after --)")
    args = parser.parse_args(argv)

    from hdm_deploy.graph.golden import load_golden
    from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
    from hdm_deploy.runtime.parity import Thresholds, check_parity

    args.workdir.mkdir(parents=True, exist_ok=True)
    first = None
    rows = []
    for i in range(1, args.runs + 1):
        out = args.workdir / f"run{i:03d}" / "model.onnx"
        out.parent.mkdir(exist_ok=True)
        cmd = [sys.executable, "-m", "hdm_deploy.cli", "export", "-o", str(out), *args.export_args]
        t0 = time.perf_counter()
        proc = subprocess.run(cmd, capture_output=True, text=True, env=os.environ.copy())
        row = {"run": i, "rc": proc.returncode, "seconds": round(time.perf_counter() - t0, 1)}
        lines = [x for x in proc.stderr.splitlines() if x.strip()]
        if proc.returncode != 0:
            row["error"] = lines[-1] if lines else ""
            row["published"] = out.exists()
        model = out if out.exists() else out.with_name("model.failed.onnx")
        golden = model.with_name(model.stem + ".golden.npz")
        if golden.exists():
            bundle = load_golden(golden)
            if first is None:
                first = bundle
            row["golden_max_abs_vs_run1"], row["golden_u8_flips_vs_run1"] = golden_delta(bundle, first)
            if model.exists():
                with OnnxRuntimeRunner(model, device="cpu") as runner:
                    rep = check_parity(runner, bundle, thresholds=Thresholds.from_dict(bundle.tolerances))
                row["ort_min_identical"] = round(min(c.identical for c in rep.cases), 3)
                row["ort_min_exact"] = round(min(c.identical_raw for c in rep.cases), 3)
                row["ort_max_levels"] = max(c.max_abs_u8 for c in rep.cases)
        rows.append(row)
        print(json.dumps(row), flush=True)
    failed = [r for r in rows if r["rc"] != 0]
    moved = [r for r in rows if r.get("golden_u8_flips_vs_run1") or r.get("golden_max_abs_vs_run1")]
    summary = {
        "runs": len(rows),
        "failed": len(failed),
        "golden_differs_from_run1": len(moved),
        "max_golden_abs_vs_run1": max((r.get("golden_max_abs_vs_run1", 0.0) for r in rows), default=0.0),
        "max_golden_u8_flips_vs_run1": max((r.get("golden_u8_flips_vs_run1", 0) for r in rows), default=0),
        "min_ort_identical": min(
            (r["ort_min_identical"] for r in rows if "ort_min_identical" in r), default=None
        ),
        "min_ort_exact": min((r["ort_min_exact"] for r in rows if "ort_min_exact" in r), default=None),
        "max_ort_levels": max((r["ort_max_levels"] for r in rows if "ort_max_levels" in r), default=None),
        "seconds_per_export": round(sum(r["seconds"] for r in rows) / max(1, len(rows)), 1),
    }
    print("summary " + json.dumps(summary), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"summary": summary, "runs": rows}, indent=2) + "\n")
    return 0 if not failed and not moved else 1


if __name__ == "__main__":
    sys.exit(main())
