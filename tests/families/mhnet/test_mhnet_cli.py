"""Every command with MHNet files: export (opset 17, FP16; family options refused), convert (no
DeformConv: explained), infer (image, folder, video; PyTorch and ONNX Runtime), parity, bench, doctor,
build-engine/trtexec-args as far as they go without TensorRT (the profile respects min_side 17)."""

from __future__ import annotations

import json

import cv2
import numpy as np
import onnx
import pytest
from typer.testing import CliRunner

import _mhnet_helpers
from hdm_deploy.cli import app
from hdm_deploy.core.photos import golden_cases
from hdm_deploy.graph.precision import policy_report
from hdm_deploy.runtime import load_runner

cli = CliRunner()


def _invoke(*args):
    result = cli.invoke(app, [str(a) for a in args], env={"COLUMNS": "200"})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mhnet_cli")
    photos = folder / "photos"
    photos.mkdir()
    for name, frames in golden_cases()[3:6]:  # 80×54, 76×50, 64×48
        cv2.imwrite(str(photos / f"{name}.png"), frames[0][..., ::-1])
    return folder, photos, _mhnet_helpers.tiny_checkpoint(), _mhnet_helpers.tiny_export().path


def test_infer_image_folder_and_video(files):
    folder, photos, ckpt, onnx_path = files
    image = sorted(photos.glob("*.png"))[0]
    code, out = _invoke("infer", image, "-m", ckpt, "-o", folder / "torch.png")
    assert code == 0, out
    code, out = _invoke("infer", image, "-m", onnx_path, "-o", folder / "ort.png")
    assert code == 0, out
    a, b = (cv2.imread(str(folder / f"{n}.png")).astype(int) for n in ("torch", "ort"))
    assert a.shape == cv2.imread(str(image)).shape and np.abs(a - b).max() <= 1 and (a == b).mean() > 0.999

    code, out = _invoke("infer", photos, "-m", onnx_path, "-o", f"{folder / 'out'}/")
    assert code == 0, out
    assert sorted(p.name for p in (folder / "out").iterdir()) == sorted(p.name for p in photos.iterdir())

    frames = golden_cases()[5][1][0]  # 64×48
    writer = cv2.VideoWriter(str(folder / "clip.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (64, 48))
    for k in range(3):
        writer.write(np.roll(frames, 4 * k, axis=1)[..., ::-1].copy())
    writer.release()
    code, out = _invoke("infer", folder / "clip.avi", "-m", onnx_path, "--batch", 2, "-o", folder / "o.avi")
    assert code == 0, out
    cap = cv2.VideoCapture(str(folder / "o.avi"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 3


def test_options_that_do_not_apply_to_mhnet(files):
    folder, photos, ckpt, onnx_path = files
    image = sorted(photos.glob("*.png"))[0]
    code, out = _invoke("infer", image, "-m", ckpt, "--masks", "torch", "-o", folder / "m.png")
    assert code == 2 and "--masks does not apply to MHNet checkpoints" in out, out
    code, out = _invoke("export", ckpt, "-o", folder / "x.onnx", "--dcp-sums", "doubling")
    assert code == 2 and "does not apply to MHNet" in out, out
    code, out = _invoke("export", ckpt, "-o", folder / "y.onnx", "--arch", "mhnet:derain")
    assert code == 2 and "does not fit MHNet-derain" in out, out
    code, out = _invoke("export", "--arch", "mhnet", "-o", folder / "z.onnx")  # no bundled sample
    assert code == 2 and "mhnet family has no bundled sample checkpoint" in out, out
    code, out = _invoke("infer", image, "--arch", "mhnet", "-o", folder / "z.png")
    assert code == 2 and "mhnet family has no bundled sample checkpoint" in out, out
    code, out = _invoke("convert", onnx_path, "--deform", "plugin", "-o", folder / "p.onnx")
    assert code == 2 and "no deformable convolutions" in out and "same graph" in out, out
    assert not (folder / "p.onnx").exists()


def test_export_opset17_fp16_then_parity_and_bench(files):
    folder, photos, ckpt, onnx_path = files
    fp16 = folder / "mhnet_fp16_o17.onnx"
    code, out = _invoke("export", ckpt, "-o", fp16, "--opset", "17", "--precision", "fp16")
    assert code == 0, out
    model = onnx.load(str(fp16))
    meta = {p.key: p.value for p in model.metadata_props}
    assert (meta["opset"], meta["precision"], meta["deform"]) == ("17", "fp16", "none")
    # the family's FP32 island: the whole MDTA block (L2 norms, attention matmuls, softmax)
    island = set(policy_report(model).islands["mdta"])
    kept = {n.op_type for n in model.graph.node if n.name in island}
    assert {"ReduceL2", "Softmax", "MatMul", "Conv"} <= kept
    assert not any(n.op_type == "ReduceL2" and n.name not in island for n in model.graph.node)
    code, out = _invoke("parity", fp16)  # against its golden bundle (FP16 tolerances: PSNR ≥ 45 dB)
    assert code == 0 and "parity passed" in out, out
    code, out = _invoke("doctor", fp16, "--trt", "8.6", "--trt", "8.5")  # opset 17: TensorRT 8.x parsers
    assert code == 0 and "TensorRT 8.6: ✓" in out, out
    code, out = _invoke(
        "parity", onnx_path, "--reference", ckpt, "--images", photos, "--json", folder / "p.json"
    )
    assert code == 0 and "parity passed" in out, out
    cases = json.loads((folder / "p.json").read_text())["cases"]
    assert len(cases) == 3 and all(c["identical_raw"] >= 99.9 and c["max_abs_u8"] <= 1 for c in cases)
    code, out = _invoke("bench", ckpt, onnx_path, "--size", "64x48", "--warmup", 0, "--iters", 1)
    assert code == 0 and "torch" in out and "onnxruntime" in out, out


def test_doctor_and_engine_profiles_without_tensorrt(files):
    folder, _, _, onnx_path = files
    code, out = _invoke("doctor", onnx_path, "--trt", "10.3", "--trt", "11")
    assert code == 0 and "TensorRT 10.3: ✓" in out, out
    code, out = _invoke("build-engine", onnx_path, "--min", "1x16x16", "-o", folder / "m.engine")
    assert code == 2 and "≥ 17" in out, out
    code, out = _invoke("trtexec-args", onnx_path, "--min", "1x17x17", "--max", "2x1080x1920")
    assert code == 0 and "image:1x17x17x3" in out and "image:2x1080x1920x3" in out, out
    with load_runner(onnx_path, device="cpu") as runner:  # the graph pads any frame ≥ 17 px itself
        assert runner.run(np.zeros((1, 17, 33, 3), np.uint8)).image.shape == (1, 17, 33, 3)
