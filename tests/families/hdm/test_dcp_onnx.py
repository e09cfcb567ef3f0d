"""The DCPMasks ONNX local function: structure, TensorRT-8.5 op set, bit-identity with torch in ORT."""

from __future__ import annotations

import functools

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hdm_deploy.families.hdm.dcp import onnx_function as of
from hdm_deploy.families.hdm.dcp import reference as ref

ort = pytest.importorskip("onnxruntime", reason="onnxruntime is not installed")
torch = pytest.importorskip("torch", reason="PyTorch (the [torch] extra) is not installed")
pytest.importorskip("skimage", reason="scikit-image provides the bundled photographs")

from hdm_deploy.families.hdm.dcp import torch_masks as tm  # noqa: E402
from hdm_deploy_dev.photos import PHOTOS, photo_at  # noqa: E402

#: onnx-tensorrt release/8.5-GA docs/operators.md, rows marked supported (the ops this graph may use).
TRT85_OPS = {
    "Abs", "Add", "And", "Cast", "Clip", "Concat", "Constant", "Conv", "CumSum", "Div", "Equal", "Expand",
    "Floor", "Gather", "Gemm", "Greater", "GreaterOrEqual", "Identity", "If", "Less", "LessOrEqual",
    "MatMul", "Max", "MaxPool", "Min", "Mul", "Neg", "Not", "Or", "Pad", "Range", "ReduceMax",
    "ReduceMin", "ReduceSum", "Reshape", "Round", "Shape", "Sign", "Sin", "Slice", "Squeeze", "Sub",
    "TopK", "Transpose", "Unsqueeze", "Where",
}  # fmt: skip


def _all_nodes(nodes):
    for node in nodes:
        yield node
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                yield from _all_nodes(attr.g.node)


@functools.lru_cache(maxsize=4)
def _session(kind: str) -> ort.InferenceSession:
    model = {
        "function": lambda: of.dcp_masks_model(),
        "inline": lambda: of.dcp_masks_model(inline=True),
        "diagnostics": lambda: of.dcp_masks_model(diagnostics=True),
    }[kind]()
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(model.SerializeToString(), options, providers=["CPUExecutionProvider"])


def _run_diagnostics(images: np.ndarray) -> dict[str, np.ndarray]:
    session = _session("diagnostics")
    outs = session.run(None, {"images": images})
    return dict(zip([o.name for o in session.get_outputs()], outs, strict=True))


def _nchw(*rgbs: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(np.stack(rgbs).transpose(0, 3, 1, 2))


# ---- structure -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("opset", [17, 18, 19])
def test_models_check_and_load(opset):
    for inline in (False, True):
        model = of.dcp_masks_model(inline=inline, opset=opset)
        onnx.checker.check_model(model, full_check=True)
        assert model.ir_version <= 13
        assert bool(model.functions) != inline
        if inline:
            assert all(n.domain in ("", "ai.onnx") for n in _all_nodes(model.graph.node))
        ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    onnx.checker.check_model(of.dcp_masks_model(opset=opset, diagnostics=True), full_check=True)


def test_function_signature():
    fn = of.dcp_function()
    assert (fn.domain, fn.name) == ("hdm_deploy.dcp", "DCPMasks")
    assert list(fn.input) == ["images"] and list(fn.output) == ["masks"]
    assert [(o.domain, o.version) for o in fn.opset_import] == [("", 19)]
    assert of.dcp_functions() == [fn]
    model = of.dcp_masks_model()
    assert model.graph.node[0].op_type == "DCPMasks" and model.graph.node[0].domain == "hdm_deploy.dcp"
    inputs = model.graph.input[0].type.tensor_type
    assert inputs.elem_type == onnx.TensorProto.UINT8


def test_tensorrt_85_friendly():
    fn = of.dcp_function(opset=17)
    nodes = list(_all_nodes(fn.node))
    used = {n.op_type for n in nodes}
    assert used <= TRT85_OPS, used - TRT85_OPS
    assert not used & {"Mod", "NonZero", "Loop", "Scan"}
    constants = {}
    for n in nodes:
        if n.op_type == "Constant":
            value = onnx.numpy_helper.to_array(n.attribute[0].t)
            constants[n.output[0]] = value
            assert value.dtype in (np.float32, np.int64), value.dtype  # FP32 data, int64 shapes only
        if n.op_type == "Cast":
            to = next(a.i for a in n.attribute if a.name == "to")
            assert to in (onnx.TensorProto.FLOAT, onnx.TensorProto.INT64)
    topk = [n for n in nodes if n.op_type == "TopK"]
    assert len(topk) == 1
    k = constants[topk[0].input[1]]
    assert k.size == 1 and 0 < int(k[0]) < 3840
    assert of.topk_for(of.DEFAULT_MAX_PIXELS) == int(k[0])
    with pytest.raises(ValueError, match="TensorRT"):
        of.topk_for(3840 * 16000)


# ---- ORT against torch: bit-identical ----------------------------------------------------------------------------


@pytest.mark.parametrize("name", PHOTOS)
def test_ort_identical_to_torch_on_photographs(name):
    for size in [(640, 480), (320, 240), (192, 108), (96, 300)]:
        rgb = photo_at(name, size)
        images = _nchw(rgb, rgb[::-1].copy())  # a batch of two different frames
        outs = _run_diagnostics(images)
        expected = tm.dcp_details(torch.from_numpy(images))
        np.testing.assert_array_equal(outs["small"], expected.small.numpy())
        np.testing.assert_array_equal(outs["transmission"][:, 0], expected.transmission.numpy())
        np.testing.assert_array_equal(outs["atmospheric_light"].ravel(), expected.atmospheric_light.numpy())
        agree = float((outs["masks"] == expected.masks.numpy()).all(axis=1).mean())
        assert agree == 1.0, f"{name} {size}: ORT masks agree with torch on {agree:.5%}"
        np.testing.assert_array_equal(_session("function").run(None, {"images": images})[0], outs["masks"])


@pytest.mark.parametrize(
    "size", [(4, 4), (8, 12), (16, 16), (20, 24), (4, 44), (44, 4), (36, 200), (132, 28)]
)
def test_ort_identical_to_torch_small_sizes(size):
    rng = np.random.default_rng(size[0] * 1000 + size[1])
    images = rng.integers(0, 256, (2, 3, size[1], size[0]), dtype=np.uint8)
    outs = _run_diagnostics(images)
    expected = tm.dcp_details(torch.from_numpy(images))
    np.testing.assert_array_equal(outs["transmission"][:, 0], expected.transmission.numpy())
    np.testing.assert_array_equal(outs["masks"], expected.masks.numpy())


@pytest.mark.parametrize("name", PHOTOS)
def test_ort_matches_reference_on_sizes_not_divisible_by_4(name):
    for size in [(457, 343), (259, 195)]:
        rgb = photo_at(name, size)
        outs = _run_diagnostics(_nchw(rgb))
        expected = ref.tran_mask(rgb)
        agree = float((outs["masks"][0] == expected.masks).all(axis=0).mean())
        d_light = abs(float(outs["atmospheric_light"].ravel()[0]) - expected.atmospheric_light)
        print(f"ORT {name:22s} {size}: masks agree with the reference {agree:.5%}, |Δa| = {d_light:.2e}")
        assert agree >= 0.999 and d_light <= 1e-4


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**31 - 1), st.booleans())
def test_ort_identical_to_torch_random_multiples_of_4(h4, w4, seed, flat):
    rng = np.random.default_rng(seed)
    shape = (1, 3, 4 * h4, 4 * w4)
    images = (
        np.full(shape, rng.integers(0, 256), np.uint8) + rng.integers(0, 2, shape).astype(np.uint8)
        if flat
        else rng.integers(0, 256, shape, dtype=np.uint8)
    )
    outs = _run_diagnostics(images)
    expected = tm.dcp_details(torch.from_numpy(images))
    np.testing.assert_array_equal(outs["masks"], expected.masks.numpy())
    masks = outs["masks"]
    assert not np.isnan(masks).any() and (masks.sum(axis=1) == 1).all()


def test_tensorrt_flavour_identical():
    # int_sums="doubling" (no CumSum, for TensorRT) must give the very same numbers.
    model = of.dcp_masks_model(diagnostics=True, int_sums="doubling")
    assert "CumSum" not in {n.op_type for n in _all_nodes(model.graph.node)}
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    for name, size in [("retina", (320, 240)), ("rocket", (200, 132)), ("coffee", (96, 300))]:
        images = _nchw(photo_at(name, size))
        doubling = dict(
            zip([o.name for o in session.get_outputs()], session.run(None, {"images": images}), strict=True)
        )
        cumsum = _run_diagnostics(images)
        for key in ("transmission", "refined_dark_channel", "masks", "atmospheric_light"):
            np.testing.assert_array_equal(doubling[key], cumsum[key], err_msg=key)
    onnx.checker.check_model(of.dcp_masks_model(inline=True, opset=17, int_sums="doubling"), full_check=True)
