"""``infer`` end to end on edge cases: sizes, constant and black frames, RGBA, grey, 16-bit, folders, video."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.core.errors import InputImageError
from hdm_deploy.families.hdm.checkpoint import save_checkpoint
from hdm_deploy.families.hdm.model import HDM, HDMConfig
from hdm_deploy.families.hdm.torch_runner import TorchRunner
from hdm_deploy.runtime.image_io import read_image, write_image
from hdm_deploy.runtime.infer import enhance_path

cli = CliRunner()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    torch.manual_seed(0)
    model = HDM(HDMConfig(width=8, groups=1, blocks=1))
    with torch.no_grad():
        model.dcn_block.dcn.conv_offset_mask.weight.normal_(0, 0.05)
        model.output[2].bias.fill_(0.4)
    return save_checkpoint(model, tmp_path_factory.mktemp("m") / "tiny.pk")


@pytest.fixture(scope="module")
def runner(tiny_ckpt):
    return TorchRunner(tiny_ckpt, device="cpu")


def _photo(h, w, seed=0):
    rng = np.random.default_rng(seed)
    base = cv2.resize(rng.integers(0, 256, (6, 6, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    return np.clip(base.astype(int) + rng.integers(-10, 11, (h, w, 3)), 0, 255).astype(np.uint8)


def _check_prediction(pred, h, w):
    assert pred.image.shape == (1, h, w, 3) and pred.image.dtype == np.uint8
    assert np.isfinite(pred.image_float).all()
    assert np.isfinite(pred.extras["masks"]).all()
    np.testing.assert_array_equal(pred.extras["masks"].sum(axis=1), 1.0)  # exactly one region per pixel
    assert pred.extras["masks"].shape[-2:] == (-(-h // 4), -(-w // 4))


@pytest.mark.parametrize(("h", "w"), [(16, 16), (17, 23), (4, 4), (5, 9), (64, 36)])
@pytest.mark.parametrize("masks", ["reference", "torch"])
def test_any_size_at_least_4(runner, h, w, masks):
    runner.masks = masks
    _check_prediction(runner(_photo(h, w)), h, w)
    runner.masks = "reference"


@pytest.mark.parametrize("value", [0, 128, 255])
@pytest.mark.parametrize("masks", ["reference", "torch"])
def test_constant_frames(runner, value, masks):
    runner.masks = masks
    pred = runner(np.full((20, 28, 3), value, np.uint8))
    runner.masks = "reference"
    _check_prediction(pred, 20, 28)
    assert pred.extras["masks"][:, 0].all()  # constant transmission → region 1 everywhere (defined behaviour)


@pytest.mark.parametrize("shape", [(1, 1, 3), (3, 40, 3), (40, 2, 3)])
def test_too_small_is_a_clear_error(runner, shape):
    with pytest.raises(InputImageError, match="too small"):
        runner(np.zeros(shape, np.uint8))


def test_too_small_cli_one_line(tiny_ckpt, tmp_path):
    write_image(tmp_path / "dot.png", np.zeros((1, 1, 3), np.uint8))
    result = cli.invoke(app, ["infer", str(tmp_path / "dot.png"), "--model", str(tiny_ckpt)])
    assert result.exit_code == 2
    assert "too small" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "dot_enhanced.png").exists()


def test_rgba_keeps_alpha(runner, tmp_path):
    rgba = np.dstack([_photo(24, 20), np.linspace(0, 255, 24 * 20).reshape(24, 20).astype(np.uint8)])
    write_image(tmp_path / "a.png", rgba)
    enhance_path(runner, tmp_path / "a.png", tmp_path / "b.png")
    out = cv2.imread(str(tmp_path / "b.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (24, 20, 4)
    np.testing.assert_array_equal(out[..., 3], rgba[..., 3])


def test_grey_stays_grey(runner, tmp_path):
    write_image(tmp_path / "g.png", _photo(24, 32)[..., 0])
    enhance_path(runner, tmp_path / "g.png", tmp_path / "o.png")
    out = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    assert out.shape == (24, 32) and out.dtype == np.uint8


def test_16bit_stays_16bit_and_uses_float_output(runner, tmp_path):
    img16 = _photo(24, 32).astype(np.uint16) * 257 + 100
    write_image(tmp_path / "d.png", img16)
    loaded = read_image(tmp_path / "d.png")
    assert loaded.bit_depth == 16
    enhance_path(runner, tmp_path / "d.png", tmp_path / "o.png")
    out = cv2.imread(str(tmp_path / "o.png"), cv2.IMREAD_UNCHANGED)
    assert out.dtype == np.uint16 and out.shape == (24, 32, 3)
    assert (out % 257 != 0).any()  # real 16-bit precision, not 8-bit values ×257


def test_float_images_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "f.tiff"), np.zeros((8, 8, 3), np.float32))
    with pytest.raises(InputImageError, match="float32 pixels are not supported"):
        read_image(tmp_path / "f.tiff")


def test_not_an_image(tmp_path):
    (tmp_path / "x.png").write_text("hello")
    with pytest.raises(InputImageError, match="not a readable image"):
        read_image(tmp_path / "x.png")


def test_folder_with_progress_and_a_bad_file(tiny_ckpt, tmp_path):
    src = tmp_path / "in"
    src.mkdir()
    for i, (h, w) in enumerate([(16, 16), (21, 30), (40, 24)]):
        write_image(src / f"{i}.jpg", _photo(h, w, i))
    (src / "broken.png").write_text("nope")
    result = cli.invoke(app, ["infer", str(src), "-o", str(tmp_path / "out"), "--model", str(tiny_ckpt)])
    assert result.exit_code == 4, result.output  # completed with an input skipped
    assert "3 of 4 images written, 1 skipped" in " ".join(result.output.split())
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["0.jpg", "1.jpg", "2.jpg"]
    assert "skipped" in result.output and "broken.png" in result.output
    assert read_image(tmp_path / "out" / "1.jpg").rgb8.shape == (21, 30, 3)


def test_video_round_trip_in_batches(runner, tmp_path):
    frames = [_photo(32, 48, s) for s in range(5)]
    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (48, 32))
    for f in frames:
        writer.write(cv2.cvtColor(f, cv2.COLOR_RGB2BGR))
    writer.release()
    summary = enhance_path(runner, tmp_path / "v.avi", tmp_path / "o.avi", batch=2)
    assert summary.frames == 5
    cap = cv2.VideoCapture(str(tmp_path / "o.avi"))
    count = 0
    while cap.read()[0]:
        count += 1
    assert count == 5
    assert not list(tmp_path.glob(".o.avi*"))  # no temp file left behind


def test_unknown_model_suffix_is_one_line(tmp_path):
    write_image(tmp_path / "a.png", _photo(8, 8))
    (tmp_path / "m.bin").write_bytes(b"x")
    result = cli.invoke(app, ["infer", str(tmp_path / "a.png"), "--model", str(tmp_path / "m.bin")])
    assert result.exit_code == 2 and "unknown model file type" in result.output


def test_torch_runner_refuses_bad_masks_and_devices(tiny_ckpt):
    from hdm_deploy.core.errors import HdmDeployError

    with pytest.raises(HdmDeployError, match="unknown DCP mask implementation") as info:
        TorchRunner(tiny_ckpt, masks="foo", device="cpu")
    assert "--masks reference" in info.value.hint
    with pytest.raises(HdmDeployError, match="unknown device"):
        TorchRunner(tiny_ckpt, device="gpu")
    if not torch.cuda.is_available():
        with pytest.raises(HdmDeployError, match="no CUDA GPU"):
            TorchRunner(tiny_ckpt, device="cuda:0")
    assert str(TorchRunner(tiny_ckpt, device="cpu").device) == "cpu"


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["bench", "MODEL", "--batch", "0"], "--batch"),
        (["bench", "MODEL", "--masks", "foo"], "unknown --masks 'foo'"),
        (["parity", "MODEL", "-r", "MODEL", "--masks", "foo"], "unknown --masks 'foo'"),
        (["infer", "IMG", "--model", "MODEL", "--device", "gpu"], "unknown device 'gpu'"),
        (["parity", "missing.onnx"], "model not found"),
        (["convert", "missing.onnx", "--deform", "onnx"], "ONNX model not found"),
        (["export", "missing.pt"], "checkpoint not found"),
        (["masks", "IMG", "-o", "overlay.txt"], "cannot write the masks picture"),
    ],
)
def test_cli_errors_are_one_line(tiny_ckpt, tmp_path, monkeypatch, args, expected):
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "a.png", _photo(16, 16))
    args = [{"MODEL": str(tiny_ckpt), "IMG": "a.png"}.get(a, a) for a in args]
    result = cli.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert expected in result.output and "Traceback" not in result.output
    assert not isinstance(result.exception, (ValueError, IndexError, TypeError, RuntimeError))
    if "not found" in expected:
        assert "(give" in result.output  # every missing path says what to give


def test_torch_commands_say_pytorch_is_needed(tmp_path, monkeypatch):
    import sys

    import hdm_deploy.families.hdm.dcp as dcp_pkg

    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "a.png", _photo(16, 16))
    monkeypatch.setitem(sys.modules, "torch", None)  # `import torch` now fails as if not installed
    monkeypatch.delitem(sys.modules, "hdm_deploy.export.exporter", raising=False)
    monkeypatch.delitem(sys.modules, "hdm_deploy.families.hdm.dcp.torch_masks", raising=False)
    monkeypatch.delattr(dcp_pkg, "torch_masks", raising=False)
    for args in (["export", "-o", "m.onnx"], ["masks", "a.png", "--impl", "torch"]):
        result = cli.invoke(app, args)
        assert result.exit_code == 2, result.output
        assert "needs PyTorch" in result.output and "hdm-deploy[torch]" in result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "m.onnx").exists() and not (tmp_path / "masks.png").exists()


def test_ctrl_c_is_exit_130_with_a_message(tiny_ckpt, monkeypatch):
    from hdm_deploy.cli import commands

    def interrupt(*_args, **_kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(commands, "parse_size", interrupt)
    result = cli.invoke(app, ["bench", str(tiny_ckpt)])
    assert result.exit_code == 130 and "interrupted" in result.output


def test_infer_dot_writes_a_sibling_folder(tiny_ckpt, tmp_path, monkeypatch):
    src = tmp_path / "shots"
    src.mkdir()
    write_image(src / "a.png", _photo(12, 12))
    monkeypatch.chdir(src)
    result = cli.invoke(app, ["infer", ".", "--model", str(tiny_ckpt), "--device", "cpu"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "shots_enhanced" / "a.png").is_file()


def test_video_without_decodable_frames_leaves_the_target_alone(runner, tmp_path, monkeypatch):
    import hdm_deploy.runtime.infer as infer_mod

    writer = cv2.VideoWriter(str(tmp_path / "v.avi"), cv2.VideoWriter_fourcc(*"MJPG"), 10, (16, 16))
    writer.write(np.zeros((16, 16, 3), np.uint8))
    writer.release()
    (tmp_path / "o.avi").write_bytes(b"previous result")
    monkeypatch.setattr(infer_mod, "iter_video_batches", lambda cap, batch: iter(()))
    with pytest.raises(InputImageError, match="no frames could be decoded") as info:
        enhance_path(runner, tmp_path / "v.avi", tmp_path / "o.avi")
    assert info.value.hint
    assert (tmp_path / "o.avi").read_bytes() == b"previous result"
    assert not list(tmp_path.glob(".o.avi*"))


def test_8bit_formats_are_decoded_once(tmp_path, monkeypatch):
    calls = []
    real = cv2.imread
    monkeypatch.setattr(cv2, "imread", lambda *a, **k: calls.append(a[0]) or real(*a, **k))
    img = _photo(10, 12)
    for name in ("a.jpg", "a.bmp", "a.webp"):
        write_image(tmp_path / name, img)
        assert read_image(tmp_path / name).rgb8.shape == (10, 12, 3)
    assert calls == []  # Pillow only
    write_image(tmp_path / "a.png", img)
    assert np.array_equal(read_image(tmp_path / "a.png").rgb8, img)
    assert calls == [str(tmp_path / "a.png")]  # PNG may be 16-bit: OpenCV looks first


@pytest.mark.parametrize(("name", "magic"), [("x.jpg", b"\xff\xd8"), ("x.png", b"\x89PNG")])
def test_masks_picture_format_follows_the_suffix(tmp_path, name, magic):
    write_image(tmp_path / "a.png", _photo(16, 16))
    result = cli.invoke(app, ["masks", str(tmp_path / "a.png"), "-o", str(tmp_path / name)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / name).read_bytes().startswith(magic)
    assert not list(tmp_path.glob(f".{name}*"))
