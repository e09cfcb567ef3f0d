"""DiffHDR FP16 policy: what each FP32 island protects, measured in ONNX Runtime (CPU).

The published-size UNet (random weights: no trained weights are available here) is exported once in
FP32 (``--work``, shared with ``diffhdr_cost.py``), then converted with
:func:`hdm_deploy.graph.precision.apply_fp16_policy` keeping all of DiffHDR's islands, each one
removed in turn, and none. Per variant: relative L2 error of ε against the FP32 graph for one step
at t = 960 and t = 0 on a ``--patch``² patch. Then end to end: the torch-free sampler over the FP16
graphs (all islands) vs the FP32 graphs on a 128×96 scene, 64² patches, stride 32, T = 3 (PSNR of the
clamped tonemapped output and of the unclamped x̂0).

Caveat, stated in the docs: ORT's CPU provider computes most FP16 nodes by casting to FP32 inside
(no FP16 accumulation), so this measures FP16 *storage* rounding between nodes; a GPU (TensorRT FP16
kernels accumulating in FP16) can only be worse where accumulation matters (GroupNorm statistics).

    nice -n 19 python benchmarks/diffhdr_fp16_islands.py --work /tmp/diffhdr_published --json fp16.json
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from diffhdr_cost import export_published


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--work", type=Path, default=Path("/tmp/diffhdr_published"))
    ap.add_argument("--patch", type=int, default=128)
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)

    import numpy as np
    import onnx
    import onnxruntime as ort

    from hdm_deploy.families.diffhdr.export import ISLANDS
    from hdm_deploy.families.diffhdr.parity import psnr
    from hdm_deploy.families.diffhdr.sampler import OrtGraphs, initial_noise, sample
    from hdm_deploy.graph.precision import apply_fp16_policy

    unet_path, cond_path = export_published(args.work)
    fp32 = onnx.load(unet_path)
    variants = {"all islands": list(ISLANDS)}
    variants |= {f"without {name}": [n for n in ISLANDS if n != name] for name in ISLANDS}
    variants["no islands"] = []
    cond16 = args.work / "cond.fp16.onnx"
    onnx.save(apply_fp16_policy(onnx.load(cond_path), [], flavour="onnx"), cond16)

    rng = np.random.default_rng(0)
    p = args.patch
    x_t = rng.standard_normal((1, 3, p, p), dtype=np.float32)
    cond = rng.random((1, 18, p, p), dtype=np.float32)
    ref_sess = ort.InferenceSession(str(unet_path), providers=["CPUExecutionProvider"])
    feature = ort.InferenceSession(str(cond_path), providers=["CPUExecutionProvider"]).run(
        None, {"cond": cond}
    )[0]
    ref = {
        t: ref_sess.run(None, {"x_t": x_t, "feature": feature, "t": np.array([t], np.float32)})[0]
        for t in (960.0, 0.0)
    }

    report: dict = {"patch": p, "per_step_rel_err": {}, "fp32_nodes": {}}
    for name, islands in variants.items():
        model = apply_fp16_policy(fp32, [ISLANDS[i] for i in islands], flavour="onnx")
        path = args.work / f"unet.fp16.{name.replace(' ', '_')}.onnx"
        onnx.save(model, path)
        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        errs = {}
        for t, r in ref.items():
            out = sess.run(None, {"x_t": x_t, "feature": feature, "t": np.array([t], np.float32)})[0].astype(
                np.float32
            )
            errs[f"t={int(t)}"] = (
                float(np.linalg.norm(out - r) / np.linalg.norm(r)) if np.isfinite(out).all() else float("nan")
            )
        report["per_step_rel_err"][name] = errs
        meta = {p_.key: p_.value for p_ in model.metadata_props}
        report["fp32_nodes"][name] = {
            k: len(v) for k, v in json.loads(meta["hdm_deploy.fp16_islands"])["islands"].items()
        }
        print(name, errs, flush=True)

    # end to end: FP16 (all islands) vs FP32 graphs through the torch-free sampler
    h, w, patch, stride, steps = 96, 128, 64, 32, 3
    ldrs = [rng.integers(0, 256, (h, w, 3), dtype=np.uint8) for _ in range(3)]
    noise = initial_noise((h, w), seed=61)
    g32 = OrtGraphs(unet_path, cond_path)
    g16 = OrtGraphs(args.work / "unet.fp16.all_islands.onnx", cond16)
    kw = dict(steps=steps, patch=patch, stride=stride)
    x32, _ = sample(ldrs, (0.0, 2.0, 4.0), noise, g32.feature, g32.eps, **kw)
    x16, _ = sample(ldrs, (0.0, 2.0, 4.0), noise, g16.feature, g16.eps, **kw)
    lo, span = float(x32.min()), float(x32.max() - x32.min())
    report["end_to_end"] = {
        "tonemapped_psnr_db": psnr(np.clip(x16, 0, 1), np.clip(x32, 0, 1)),
        "raw_x0_psnr_db": psnr(x16 - lo, x32 - lo, span),
        "unsaturated_fraction": float(((x32 > 0) & (x32 < 1)).mean()),
        "case": f"{w}x{h}, {patch}² patches, stride {stride}, T={steps}",
    }
    print(json.dumps(report, indent=2))
    if args.json:
        args.json.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
