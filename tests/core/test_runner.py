"""Pure runtime helpers shared by every backend."""

from __future__ import annotations

import numpy as np
import pytest

from hdm_deploy.core.errors import InputImageError, ModelFormatError
from hdm_deploy.core.runner import check_frames, check_max_pixels, model_kind, pad_to_multiple, quantize


def test_check_frames_promotes_and_validates():
    assert check_frames(np.zeros((8, 9, 3), np.uint8)).shape == (1, 8, 9, 3)
    with pytest.raises(InputImageError, match="uint8"):
        check_frames(np.zeros((1, 8, 8, 3), np.float32))
    with pytest.raises(InputImageError, match=r"\[N, H, W, 3\]"):
        check_frames(np.zeros((1, 8, 8, 4), np.uint8))
    with pytest.raises(InputImageError, match="empty"):
        check_frames(np.zeros((0, 8, 8, 3), np.uint8))


def test_quantize_rounds_half_to_even_and_clamps():
    x = np.array([-0.1, 0.5 / 255, 1.5 / 255, 2.5 / 255, 1.2], np.float32).reshape(1, 1, 1, 5)
    x = np.repeat(x, 3, axis=1)
    assert quantize(x)[0, 0, :, 0].tolist() == [0, 0, 2, 2, 255]


def test_max_pixels_counts_the_padded_frame():
    check_max_pixels(np.zeros((1, 8, 8, 3), np.uint8), 64)
    check_max_pixels(np.zeros((1, 8, 8, 3), np.uint8), None)
    with pytest.raises(InputImageError, match="--max-size"):
        check_max_pixels(np.zeros((1, 8, 9, 3), np.uint8), 64)  # 9 → 12 columns: 96 px


def test_pad_to_multiple_reflects_without_repeating_the_edge():
    frame = np.arange(5 * 6, dtype=np.uint8).reshape(1, 5, 6, 1)
    padded, (h, w) = pad_to_multiple(frame, 4)
    assert (h, w) == (5, 6) and padded.shape == (1, 8, 8, 1)
    np.testing.assert_array_equal(padded[0, 5:, :6, 0], frame[0, [3, 2, 1], :, 0])
    np.testing.assert_array_equal(padded[0, :5, 6:, 0], frame[0, :, [4, 3], 0].T)


def test_model_kind_by_suffix():
    assert (
        model_kind("a.PK") == "torch" and model_kind("m.onnx") == "onnx" and model_kind("x.plan") == "engine"
    )
    with pytest.raises(ModelFormatError, match="unknown model file type"):
        model_kind("weights.bin")


@pytest.mark.parametrize(
    ("given", "torch_form", "onnx_form", "engine_form"),
    [
        (None, None, None, None),
        ("auto", None, None, None),
        ("cpu", "cpu", "cpu", "refused"),
        ("CUDA", "cuda", "cuda", 0),
        ("cuda:1", "cuda:1", "cuda", 1),
        ("2", "cuda:2", "cuda", 2),
        (0, "cuda:0", "cuda", 0),
    ],
)
def test_device_is_mapped_per_backend(given, torch_form, onnx_form, engine_form):
    from hdm_deploy.core.errors import HdmDeployError
    from hdm_deploy.runtime import device_for

    assert device_for("torch", given) == torch_form
    assert device_for("onnx", given) == onnx_form
    if engine_form == "refused":
        with pytest.raises(HdmDeployError, match="TensorRT engines run on a CUDA GPU"):
            device_for("engine", given)
    else:
        assert device_for("engine", given) == engine_form


@pytest.mark.parametrize("bad", ["gpu", "cuda:", "cuda:x", "-1", "cuda:-1", "²", True])
def test_unknown_device_is_one_line_before_any_backend_loads(bad, tmp_path):
    from hdm_deploy.core.errors import HdmDeployError
    from hdm_deploy.runtime import load_runner, parse_device

    with pytest.raises(HdmDeployError, match="unknown device") as info:
        parse_device(bad)
    assert "cuda:N" in info.value.hint
    for name in ("m.onnx", "m.engine", "m.pk"):  # the files need not exist: the device is checked first
        with pytest.raises(HdmDeployError, match="unknown device"):
            load_runner(tmp_path / name, device=bad)


@pytest.mark.parametrize("message", ["", "   \n  ", "\nsecond line only"])
def test_first_line_of_any_exception_message(message):
    from hdm_deploy.core.errors import first_line

    text = first_line(RuntimeError(message))
    assert text == ("second line only" if "second" in message else "RuntimeError")
    assert first_line(ValueError("a\nb" + "x" * 500), limit=10) == "a"
    assert len(first_line(ValueError("y" * 500))) == 300


def test_cli_prints_our_warnings_as_one_line(capsys):
    """Non-fatal engine/GPU mismatches reach the user of `infer`/`parity`/`bench` as one yellow line."""
    import warnings

    from hdm_deploy.cli import commands as cli
    from hdm_deploy.core.errors import HdmDeployWarning

    with warnings.catch_warnings():
        warnings.simplefilter("always")
        warnings.showwarning = cli._show_warning
        warnings.warn(
            "model.engine: GPU: built for Orin, running Orin Nano [8GB]", HdmDeployWarning, stacklevel=1
        )
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "warning:" in err and "Orin Nano [8GB]" in err
    assert "Traceback" not in err and "HdmDeployWarning" not in err
