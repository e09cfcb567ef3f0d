"""Pillow's Lanczos ÷4, bit for bit: the integer tables, the numpy port, torch and the ONNX graph."""

from __future__ import annotations

import functools

import numpy as np
import pytest
from PIL import Image

from hdm_deploy.families.hdm.dcp import lanczos

torch = pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")
ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")

from hdm_deploy.families.hdm.dcp import onnx_resize  # noqa: E402
from hdm_deploy.families.hdm.dcp import torch_masks as tm  # noqa: E402


def pillow(rgb: np.ndarray) -> np.ndarray:
    h, w = rgb.shape[:2]
    return np.asarray(Image.fromarray(rgb).resize((w // 4, h // 4), Image.Resampling.LANCZOS))


def _random_images(rng, sizes, binary_every=4):
    for i, (h, w) in enumerate(sizes):
        image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
        if i % binary_every == 0:  # saturated edges exercise the clipping
            image = (image > 127).astype(np.uint8) * 255
        yield image


def test_class_table_is_complete_and_fixed():
    table = lanczos.scale4_class_table()
    assert (table.sum(-1) > 0).all()  # every (left, right) class was realised
    for out in (7, 8, 25, 101, 480):
        xmin, kk = lanczos.coefficients(4 * out, out)
        for xx in range(out):
            row = np.zeros(lanczos.TAPS4, np.int64)
            for j in np.nonzero(kk[xx])[0]:
                row[xmin[xx] + j - (4 * xx - 10)] = kk[xx, j]
            np.testing.assert_array_equal(row, table[min(xx, 3), min(out - 1 - xx, 3)])


def test_weight_split_is_exact_in_float32_and_tf32():
    hi, lo = lanczos.split(lanczos.scale4_class_table())
    assert (np.abs(hi) < 2**11).all() and (lo >= 0).all() and (lo < 2**lanczos.SPLIT_BITS).all()
    # hi parts: ≤ 11 significant bits; lo parts scaled by 2^-10: ≤ 10 bits → exact TF32 operands
    assert (255 * np.abs(hi).sum(-1) < 2**24).all() and (255 * lo.sum(-1) < 2**23).all()
    for n in range(4, 400):
        _, kk = lanczos.coefficients(n, n // 4)
        khi, klo = lanczos.split(kk)
        assert (255 * np.abs(khi).sum(-1) < 2**24).all() and (255 * klo.sum(-1) < 2**23).all()
        assert kk.shape[1] <= onnx_resize.GENERAL_TAPS or (kk != 0).sum(-1).max() <= onnx_resize.GENERAL_TAPS


def test_numpy_port_equals_pillow_on_every_small_size():
    rng = np.random.default_rng(0)
    sizes = [(h, w) for h in range(4, 41) for w in range(4, 41, 3)]
    for image in _random_images(rng, sizes):
        np.testing.assert_array_equal(lanczos.downscale4(image), pillow(image), err_msg=str(image.shape))


def test_pass_order_follows_pillow():
    # Pillow 13 resizes vertically first when the height shrinks much more than the width.
    rng = np.random.default_rng(1)
    for w in (4, 5, 6, 7, 8, 13, 32, 39):
        for h in range(2 * w - 2, 2 * w + 12):
            image = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
            np.testing.assert_array_equal(lanczos.downscale4(image), pillow(image), err_msg=f"{h}x{w}")


def _torch_down(images: np.ndarray) -> np.ndarray:
    x = torch.from_numpy(np.ascontiguousarray(images.transpose(0, 3, 1, 2))).float()
    return tm.downscale4(x).permute(0, 2, 3, 1).numpy()


def test_torch_equals_pillow_random_sizes():
    rng = np.random.default_rng(2)
    sizes = [(int(rng.integers(4, 200)), int(rng.integers(4, 200))) for _ in range(120)]
    sizes += [(h - h % 4, w - w % 4) for h, w in sizes[:60] if h >= 8 and w >= 8]
    sizes += [(180, 20), (97, 9), (4, 4), (1080 // 4, 1920 // 4)]
    for image in _random_images(rng, sizes):
        np.testing.assert_array_equal(_torch_down(image[None])[0], pillow(image), err_msg=str(image.shape))


@functools.lru_cache(maxsize=1)
def _onnx_downscale() -> ort.InferenceSession:
    import onnx_ir as ir

    from hdm_deploy.graph.ir_build import Builder

    g = Builder(19, "t")
    images = ir.Value(
        name="images", type=ir.TensorType(ir.DataType.UINT8), shape=ir.Shape(["N", 3, "H", "W"])
    )
    small = g.op(
        "Identity", onnx_resize.downscale4(g, g.op("Cast", images, to=ir.DataType.FLOAT)), outputs=["small"]
    )
    small.dtype, small.shape = ir.DataType.FLOAT, ir.Shape(["N", 3, "h", "w"])
    graph = ir.Graph([images], [small], nodes=g.nodes, opset_imports={"": 19}, name="downscale")
    model = ir.serde.serialize_model(ir.Model(graph, ir_version=9))
    return ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])


def _onnx_down(images: np.ndarray) -> np.ndarray:
    x = np.ascontiguousarray(images.transpose(0, 3, 1, 2))
    return _onnx_downscale().run(None, {"images": x})[0].transpose(0, 2, 3, 1)


def test_onnx_exact_for_multiples_of_4():
    rng = np.random.default_rng(4)
    sizes = [(4 * int(rng.integers(1, 50)), 4 * int(rng.integers(1, 50))) for _ in range(80)]
    sizes += [(32, 64), (64, 32), (96, 160), (4, 4), (4, 128), (128, 4), (200, 32), (40, 8), (8, 40)]
    for image in _random_images(rng, sizes):
        np.testing.assert_array_equal(_onnx_down(image[None])[0], pillow(image), err_msg=str(image.shape))


def test_onnx_other_sizes_close_to_pillow():
    # Sizes not divisible by 4 compute Pillow's weights in float32: rare ±1 differences are allowed.
    rng = np.random.default_rng(5)
    sizes = [(int(rng.integers(4, 160)), int(rng.integers(4, 160))) for _ in range(60)]
    sizes = [(h, w) for h, w in sizes if h % 4 or w % 4]
    total = differ = 0
    for image in _random_images(rng, sizes, binary_every=10**9):
        ours, expected = _onnx_down(image[None])[0].astype(int), pillow(image).astype(int)
        assert np.abs(ours - expected).max() <= 1, image.shape
        total += ours.size
        differ += int((ours != expected).sum())
    print(
        f"ONNX ÷4 on sizes not divisible by 4: {differ} of {total} values differ by 1 ({differ / total:.4%})"
    )
    assert differ / total < 0.005


def test_onnx_batch():
    rng = np.random.default_rng(6)
    images = rng.integers(0, 256, (3, 44, 68, 3), dtype=np.uint8)
    expected = np.stack([pillow(i) for i in images])
    np.testing.assert_array_equal(_onnx_down(images), expected)
    np.testing.assert_array_equal(_torch_down(images), expected)
