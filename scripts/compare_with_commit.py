"""Are this checkout's exports bit-identical to those of another commit? (refactoring guard)

    python scripts/compare_with_commit.py c3be015

Checks the commit out into a temporary git worktree, exports the bundled sample checkpoint with both
trees (uint8 and float I/O; no golden, no verification), runs every graph in ONNX Runtime (CPU) on the
photographs in ``examples/`` with the tree's own environment, and prints, per output, whether the two
are bit-identical (else the max |Δ|). Exit 1 when any output differs.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

EXPORT = """
from hdm_deploy.export import export_onnx
export_onnx(None, {out!r}, io={io!r}, golden=False, verify=False)
"""
RUN = """
import cv2, numpy as np, onnxruntime as ort
s = ort.InferenceSession({model!r}, providers=["CPUExecutionProvider"])
arrays = {{}}
for path in {photos!r}:
    img = np.ascontiguousarray(cv2.imread(path)[..., ::-1][None])
    feed = img if {io!r} == "uint8" else img.transpose(0, 3, 1, 2).astype(np.float32) / np.float32(255)
    for out, value in zip(s.get_outputs(), s.run(None, {{s.get_inputs()[0].name: feed}})):
        arrays[path.rsplit("/", 1)[-1] + ":" + out.name] = value
np.savez({model!r} + ".npz", **arrays)
"""


def run_in(src: Path, code: str) -> None:
    env = dict(os.environ, PYTHONPATH=str(src))
    subprocess.run([sys.executable, "-c", code], env=env, check=True)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("commit", help="the commit to compare with (e.g. the one before a refactoring)")
    args = parser.parse_args()
    photos = sorted(str(p) for p in (ROOT / "examples").glob("*.jpg"))
    differ = 0
    with tempfile.TemporaryDirectory(prefix="hdm_compare_") as tmp:
        other = Path(tmp) / "other"
        subprocess.run(
            ["git", "-C", str(ROOT), "worktree", "add", "-q", "--detach", str(other), args.commit], check=True
        )
        try:
            for io in ("uint8", "float"):
                results = []
                for name, src in (("this", ROOT / "src"), ("other", other / "src")):
                    model = str(Path(tmp) / f"{name}_{io}.onnx")
                    run_in(src, EXPORT.format(out=model, io=io))
                    run_in(src, RUN.format(model=model, photos=photos, io=io))
                    results.append(dict(np.load(model + ".npz")))
                mine, theirs = results
                for key in sorted(mine):
                    a, b = mine[key], theirs[key]
                    same = a.shape == b.shape and np.array_equal(a, b)
                    differ += not same
                    delta = "" if same else f"max |Δ| {np.abs(a.astype(np.float64) - b).max():.3g}"
                    print(f"{io:5s} {key:40s} {list(a.shape)} {'bit-identical' if same else delta}")
        finally:
            subprocess.run(["git", "-C", str(ROOT), "worktree", "remove", "--force", str(other)], check=False)
    print("all outputs bit-identical" if not differ else f"{differ} outputs differ")
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
