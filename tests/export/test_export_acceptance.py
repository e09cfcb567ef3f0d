"""Issue 4's acceptance at the published width, with the real DCP function, on real photographs.

From ONE exported file ONNX Runtime runs 256×256, 640×427, 1280×720 and a batch of two; against the
PyTorch model with the torch DCP masks: ≥ 99.9 % identical uint8 pixels, masks identical, max |Δ| ≤
2e-4 on the float output; the three DeformConv flavours agree to the same tolerance; against the
published pipeline (reference numpy/OpenCV masks + PyTorch): PSNR ≥ 40 dB on every photograph.

Uses the bundled sample checkpoint when it exists, else the published architecture with random
weights and non-zero deformable offsets. Heavy on a 2-core CPU (~minutes): marked slow.
"""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest

pytestmark = pytest.mark.slow

skimage_data = pytest.importorskip("skimage.data", reason="scikit-image (dev extra) provides the test photos")
torch = pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")


@functools.lru_cache(maxsize=1)
def published_model():
    from torch import nn

    from hdm_deploy.families.hdm.model import HDM
    from hdm_deploy.families.hdm.sample import sample_checkpoint_path

    path = sample_checkpoint_path(must_exist=False)
    if path.is_file():
        from hdm_deploy.families.hdm.checkpoint import load_checkpoint

        return load_checkpoint(path), path.name
    torch.manual_seed(4)
    net = HDM().eval()
    nn.init.normal_(net.dcn_block.dcn.conv_offset_mask.weight, std=0.01)
    nn.init.normal_(net.dcn_block.dcn.conv_offset_mask.bias, std=0.5)
    return net, "random weights"


def _resize(img, size):
    import cv2

    return np.ascontiguousarray(
        cv2.resize(img, size, interpolation=cv2.INTER_AREA if size[0] < img.shape[1] else cv2.INTER_CUBIC)
    )


@functools.lru_cache(maxsize=1)
def cases() -> dict[str, np.ndarray]:
    astronaut, rocket, coffee, chelsea = (
        skimage_data.astronaut(),
        skimage_data.rocket(),
        skimage_data.coffee(),
        skimage_data.chelsea(),
    )
    return {
        "astronaut_256x256": _resize(astronaut, (256, 256))[None],
        "rocket_640x427": rocket[None],
        "coffee_1280x720": _resize(coffee, (1280, 720))[None],
        "batch2_256x256": np.stack([_resize(chelsea, (256, 256)), _resize(astronaut, (256, 256))]),
    }


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    from hdm_deploy.export.exporter import export_onnx

    out = tmp_path_factory.mktemp("acceptance")
    model, _ = published_model()
    u8 = export_onnx(model, out / "model.onnx", golden=False, verify=False).path
    f32 = export_onnx(model, out / "model_float.onnx", io="float", golden=False, verify=False).path
    return {"uint8": u8, "float": f32, "dir": out}


@functools.cache
def torch_prediction(name: str, masks: str):
    from hdm_deploy.families.hdm.pipeline import enhance

    model, _ = published_model()
    return enhance(model, cases()[name], masks=masks)


@functools.cache
def ort_prediction(path: str, name: str):
    from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner

    with OnnxRuntimeRunner(path, device="cpu") as runner:
        return runner(cases()[name])


NAMES = ["astronaut_256x256", "rocket_640x427", "coffee_1280x720", "batch2_256x256"]


@pytest.mark.parametrize("name", NAMES)
def test_one_uint8_file_matches_torch_with_torch_masks(exports, name):
    from hdm_deploy.runtime.parity import Thresholds, compare

    pred = ort_prediction(str(exports["uint8"]), name)
    ref = torch_prediction(name, "torch")
    assert pred.image.shape == cases()[name].shape
    res = compare(
        name, pred, ref, Thresholds(psnr_min=40, max_abs=None, identical_min=99.9, extras_min=100.0)
    )
    assert res.passed, res


@pytest.mark.parametrize("name", NAMES)
def test_float_output_within_2e_4_of_torch(exports, name):
    from hdm_deploy.runtime.parity import Thresholds, compare

    res = compare(
        name, ort_prediction(str(exports["float"]), name), torch_prediction(name, "torch"), Thresholds()
    )
    assert res.max_abs <= 2e-4 and res.identical >= 99.9 and res.extras_agreement["masks"] == 100.0, res


@pytest.mark.parametrize("flavour", ["plugin", "decompose"])
def test_flavours_agree_with_the_standard_deformconv(exports, flavour):
    from hdm_deploy.graph.flavours import convert_deform
    from hdm_deploy.runtime.parity import Thresholds, compare

    path = exports["dir"] / f"model_float_{flavour}.onnx"
    onnx.save(convert_deform(onnx.load(exports["float"]), flavour), path)
    for name in NAMES:
        res = compare(
            name, ort_prediction(str(path), name), ort_prediction(str(exports["float"]), name), Thresholds()
        )
        assert res.max_abs <= 2e-4 and res.identical >= 99.9 and res.extras_agreement["masks"] == 100.0, (
            flavour,
            res,
        )


@pytest.mark.parametrize("name", NAMES)
def test_psnr_vs_published_pipeline_with_reference_masks(exports, name):
    from hdm_deploy.runtime.parity import Thresholds, compare

    res = compare(
        name,
        ort_prediction(str(exports["float"]), name),
        torch_prediction(name, "reference"),
        Thresholds(psnr_min=40.0, max_abs=None, identical_min=None, extras_min=None),
    )
    assert res.passed, res
