"""Generate ``tests/data/dcp_published_expected.npz``: outputs of the PUBLISHED ``tran_mask`` on real photos.

This script runs the authors' code; it contains none of it. It reads ``dehaze.py`` and
``test_hdm_sots.py`` from a local clone of DongLiangSXU/HDM (a bare git dir, read with ``git show``),
writes them to a scratch directory outside the repo, extracts the ``tran_mask`` function from the test
script with ``ast`` and executes it unmodified, with two shims that do not touch its numerics:

* ``Image.ANTIALIAS`` (removed in Pillow 10) is aliased to ``Image.LANCZOS`` (the same filter);
* ``matplotlib`` (imported but unused by ``dehaze.py``) is stubbed when missing;
* the ``dehaze`` module it sees wraps ``get_dc_A`` / ``TransmissionRefine`` to record the atmospheric
  light ``a`` and the refined transmission ``t`` they return (``tran_mask`` itself returns only masks).

Photographs: scikit-image's bundled ones (8). Every test image is made with Pillow
``resize(size, LANCZOS)`` from the bundled uint8 RGB array, keeping its aspect ratio, so that its
longer side is:

* ``600`` px, ``464`` px, and ``533`` px (the last one bumped so that neither side is a multiple of 4:
  Pillow's scale is then not exactly 4).

These sizes all have a quarter image wider or taller than 112 px. Below that (inputs up to ~450 px,
e.g. the halves of these photos) the 223×223 erosion covers the whole quarter image, dc' is constant up
to float64 rounding noise, and the published code either crashes (``np.histogram``: "Too many bins")
or takes its atmospheric light from the pixels that rounding noise happens to favour; our reference
defines that case instead (see ``hdm_deploy.families.hdm.dcp.reference``). The ``small`` cases (longer side 320 px,
e.g. 320×240) are stored too where the published code does not crash: there dc' is exactly 0 (or exactly
constant), which both rules treat alike, and the results are bit-identical as well.

Three ``noisy`` sizes are tried as well (immunohistochemistry 640×480, rocket 320×240, chelsea
201×150): dc' is a non-zero constant plus rounding noise there and the published code crashes on all
three (recorded in the metadata), where ours applies the constant-dc' rule.

A case where the published code raises is recorded as such (``error`` in the metadata) and skipped.

Usage::

    .venv/bin/python scripts/make_dcp_expected.py [--repo /work/.mirror/DongLiangSXU+HDM/repo]
"""

from __future__ import annotations

import argparse
import ast
import json
import subprocess
import sys
import tempfile
import types
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "tests" / "data" / "dcp_published_expected.npz"


def photo(name: str) -> np.ndarray:
    from hdm_deploy_dev.photos import photo as bundled

    return bundled(name)


def resize(rgb: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    from hdm_deploy_dev.photos import resize as pillow_resize

    return pillow_resize(rgb, size)


def not_multiple_of_4(n: int) -> int:
    return n + 1 if n % 4 == 0 else n


#: Longer side of each size: the three bit-identity sizes and the documented small (noise-driven) one.
SIZES = {"s600": 600, "s464": 464, "s533": 533, "small": 320}


def size_for(shape: tuple[int, ...], longer: int, odd: bool) -> tuple[int, int]:
    h, w = shape[:2]
    f = longer / max(h, w)
    size = (max(4, round(w * f)), max(4, round(h * f)))
    if odd:
        size = (not_multiple_of_4(size[0]), not_multiple_of_4(size[1]))
    return size


#: Sizes where dc' is a non-zero constant plus float64 noise (the published code crashes on these).
NOISY = {"immunohistochemistry": (640, 480), "rocket": (320, 240), "chelsea": (201, 150)}


def sizes_of(rgb: np.ndarray, name: str = "") -> dict[str, tuple[int, int]]:
    sizes = {tag: size_for(rgb.shape, longer, odd=tag == "s533") for tag, longer in SIZES.items()}
    if name in NOISY:
        sizes["noisy"] = NOISY[name]
    return sizes


def load_published(repo: Path, scratch: Path):
    """Import the published modules from ``repo`` into ``scratch``; return (tran_mask, record dict)."""
    for name in ("dehaze.py", "test_hdm_sots.py"):
        text = subprocess.run(
            ["git", "-C", str(repo), "show", f"HEAD:{name}"], check=True, capture_output=True, text=True
        ).stdout
        (scratch / name).write_text(text)
    sys.modules.setdefault("matplotlib", types.ModuleType("matplotlib"))
    sys.modules.setdefault("matplotlib.pyplot", types.ModuleType("matplotlib.pyplot"))
    sys.path.insert(0, str(scratch))
    import dehaze  # the published module
    import torch
    from PIL import Image

    if not hasattr(Image, "ANTIALIAS"):
        Image.ANTIALIAS = Image.Resampling.LANCZOS

    record: dict = {}
    shim = types.ModuleType("dehaze")
    shim.__dict__.update({k: getattr(dehaze, k) for k in dir(dehaze) if not k.startswith("__")})

    def get_dc_a(*args, **kwargs):
        dc, a = dehaze.get_dc_A(*args, **kwargs)
        record["a"] = float(a)
        return dc, a

    def refine(*args, **kwargs):
        t = dehaze.TransmissionRefine(*args, **kwargs)
        record["t"] = t
        return t

    shim.get_dc_A = get_dc_a
    shim.TransmissionRefine = refine
    tree = ast.parse((scratch / "test_hdm_sots.py").read_text())
    fn = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "tran_mask")
    namespace = {"np": np, "torch": torch, "Image": Image, "dehaze": shim}
    exec(compile(ast.Module(body=[fn], type_ignores=[]), "test_hdm_sots.py", "exec"), namespace)

    def run(rgb: np.ndarray):
        record.clear()
        masks = namespace["tran_mask"](Image.fromarray(rgb, "RGB")).numpy()
        return masks, record["t"], record["a"]

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", type=Path, default=Path("/work/.mirror/DongLiangSXU+HDM/repo"))
    parser.add_argument("--out", type=Path, default=OUT)
    args = parser.parse_args()

    import cv2
    import PIL
    import skimage

    with tempfile.TemporaryDirectory(prefix="hdm-published-") as scratch:
        run = load_published(args.repo, Path(scratch))
        commit = subprocess.run(
            ["git", "-C", str(args.repo), "rev-parse", "HEAD"], check=True, capture_output=True, text=True
        ).stdout.strip()
        arrays: dict[str, np.ndarray] = {}
        cases = []
        from hdm_deploy_dev.photos import PHOTOS

        for name in PHOTOS:
            base = photo(name)
            for tag, size in sizes_of(base, name).items():
                key = f"{name}__{tag}"
                rgb = resize(base, size)
                try:
                    masks, t, a = run(rgb)
                except Exception as exc:  # recorded, not stored
                    cases.append({"key": key, "size": list(size), "error": f"{type(exc).__name__}: {exc}"})
                    print(f"{key:36s} {size}: published code raised {exc}")
                    continue
                assert np.isfinite(t).all() and not np.isnan(masks).any(), key
                arrays[f"{key}__t"] = t.astype(np.float64)
                arrays[f"{key}__a"] = np.float64(a)
                # The published masks are one-hot here; store them as region indices (0 = region 1).
                assert (masks.sum(axis=0) == 1).all(), key
                arrays[f"{key}__regions"] = masks[:, 0].argmax(axis=0).astype(np.uint8)
                cases.append(
                    {"key": key, "size": list(size), "mask_sums": masks.sum(axis=(1, 2, 3)).tolist()}
                )
                print(f"{key:36s} {size}: a={a:.6f} t[{t.shape[0]}x{t.shape[1]}]")
    meta = {
        "published_repo": "DongLiangSXU/HDM",
        "published_commit": commit,
        "numpy": np.__version__,
        "opencv": cv2.__version__,
        "pillow": PIL.__version__,
        "scikit_image": skimage.__version__,
        "resize": "PIL.Image.resize(size, LANCZOS) from the bundled uint8 RGB photo",
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, meta=np.array(json.dumps(meta)), **arrays)
    print(f"wrote {args.out} ({args.out.stat().st_size / 1e6:.2f} MB, {len(arrays) // 3} cases)")


if __name__ == "__main__":
    main()
