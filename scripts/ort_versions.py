"""Which ONNX Runtime releases run our exported graphs? (the `cpu` extra's floor; docs/serving.md)

    python scripts/ort_versions.py --models DIR --versions 1.27.0 1.25.0 1.24.4 1.19.2

Every ``DIR/*.onnx`` that has its golden bundle beside it (``hdm-deploy export`` writes both; export the
flavours you care about: ``--deform onnx|plugin|decompose``, ``--io float``, ``--precision fp16``,
``--inline-functions``, ``--opset 17 --deform decompose``) is run with each ONNX Runtime version through
hdm-deploy's runner and checked against its golden bundle (``parity``). Each version is pip-installed
(``--no-deps --target``) into ``--work`` and put first on ``PYTHONPATH`` of a child process, so this
environment's own onnxruntime is left alone. The first version is the reference for the bit-identity
column. Exit 1 when a version given with ``--require`` fails any graph.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

CHECK = r"""
import glob, json, sys
from pathlib import Path
import numpy as np
import onnxruntime as ort
from hdm_deploy.runtime import load_runner
from hdm_deploy.runtime.bench import bench_frames
from hdm_deploy.runtime.parity import run_parity

models, out = sys.argv[1], Path(sys.argv[2])
frames = bench_frames((160, 120), 2)
res = {"ort": ort.__version__, "models": {}}
for path in sorted(glob.glob(models + "/*.onnx")):
    name, golden = Path(path).stem, path[:-5] + ".golden.npz"
    if not Path(golden).exists():
        continue
    try:
        with load_runner(path) as r:
            p = r(frames)
            np.savez(out / f"{name}.npz", image=p.image, **p.extras)
        fails = [f for c in run_parity(path, golden).cases for f in c.failures]
        res["models"][name] = "pass" if not fails else "parity FAIL: " + "; ".join(fails[:2])
    except Exception as exc:
        reason = str(exc).splitlines()[0].split(" : ")[-1]  # ORT: "[ONNXRuntimeError] : 9 : KIND : text"
        res["models"][name] = "cannot run: " + reason[:70]
print(json.dumps(res))
"""


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--models", type=Path, required=True)
    ap.add_argument("--versions", nargs="+", required=True, help="the first is the reference")
    ap.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "hdm-deploy-ort-versions")
    ap.add_argument("--require", nargs="*", default=[], help="versions that must run every graph")
    args = ap.parse_args()
    results = {}
    for v in args.versions:
        target = args.work / f"ort-{v}"
        if not (target / "onnxruntime").is_dir():
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "pip",
                    "install",
                    "-q",
                    "--no-deps",
                    "--target",
                    str(target),
                    f"onnxruntime=={v}",
                ],
                check=True,
            )
        out = args.work / f"out-{v}"
        out.mkdir(parents=True, exist_ok=True)
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(target), os.environ.get("PYTHONPATH", "")]))
        proc = subprocess.run(
            [sys.executable, "-c", CHECK, str(args.models), str(out)], capture_output=True, text=True, env=env
        )
        if proc.returncode:
            raise SystemExit(f"onnxruntime {v}: {proc.stderr[-2000:]}")
        results[v] = json.loads(proc.stdout.strip().splitlines()[-1])["models"]
    ref = args.versions[0]
    names = sorted({n for r in results.values() for n in r})
    print("| graph | " + " | ".join(f"ORT {v}" for v in args.versions) + " |")
    print("|---|" + "---|" * len(args.versions))
    failed = False
    for name in names:
        cells = []
        for v in args.versions:
            status = results[v].get(name, "-")
            if status == "pass" and v != ref:
                a = np.load(args.work / f"out-{ref}" / f"{name}.npz")
                b = np.load(args.work / f"out-{v}" / f"{name}.npz")
                same = all(np.array_equal(a[k], b[k]) for k in a.files)
                status += ", bit-identical" if same else ", differs from " + ref
            if v in args.require and not status.startswith("pass"):
                failed = True
            cells.append(status.replace("|", "/")[:90])
        print(f"| {name} | " + " | ".join(cells) + " |")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
