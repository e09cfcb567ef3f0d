"""The CPU twin of the HdmDeformConv kernel (same C++ source as the CUDA kernel) against
torchvision.ops.deform_conv2d and the ONNX DeformConv conformance node cases."""

from __future__ import annotations

import importlib
import math
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from hdm_deploy.plugins import (
    DeformConvArgumentError,
    cpu_deform_conv,
    cpu_deform_conv_onnx,
    half_from_float,
    half_to_float,
)

torch = pytest.importorskip("torch", reason="torch/torchvision provide the reference deform_conv2d")
tv_ops = pytest.importorskip("torchvision.ops", reason="torchvision provides the reference deform_conv2d")

N_CONFIGS = 240
TOL = 1e-4  # max |Δ| relative to the output scale


def _reference(x, w, off, b, m, stride, pad, dil):
    t = torch.from_numpy
    with torch.no_grad():
        return tv_ops.deform_conv2d(
            t(x.astype(np.float32)),
            t(off.astype(np.float32)),
            t(w.astype(np.float32)),
            None if b is None else t(b.astype(np.float32)),
            stride=stride,
            padding=pad,
            dilation=dil,
            mask=None if m is None else t(m.astype(np.float32)),
        ).numpy()


def _random_config(rng: np.random.Generator, index: int) -> dict:
    g = int(rng.choice([1, 1, 2, 4]))
    og = int(rng.choice([1, 2, 4, 8]))
    base = math.lcm(g, og)
    large = index % 8 == 7  # sizes past 1024 so sampling coordinates exceed 1024
    kh, kw = (int(v) for v in rng.integers(1, 6, size=2))
    sh, sw = (int(v) for v in rng.integers(1, 3, size=2))
    ph, pw = (int(v) for v in rng.integers(0, 3, size=2))
    dh, dw = (int(v) for v in rng.integers(1, 3, size=2))
    if large:
        C = base
        n_out = g * int(rng.integers(1, 3))
        long_side = int(rng.integers(1030, 1101))
        short_side = int(rng.integers(max(kh, kw) * 2, 12))
        H, W = (long_side, short_side) if index % 16 == 7 else (short_side, long_side)
        N = 1
    else:
        C = base * int(rng.integers(1, max(2, 64 // base + 1)))
        C = min(C, 64)
        n_out = g * int(rng.integers(1, max(2, 64 // g + 1)))
        n_out = min(n_out, 64)
        H, W = (int(v) for v in rng.integers(3, 20, size=2))
        N = int(rng.integers(1, 3))
    # keep the output non-empty
    H = max(H, dh * (kh - 1) + 1 - 2 * ph)
    W = max(W, dw * (kw - 1) + 1 - 2 * pw)
    Ho = (H + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    Wo = (W + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    amp = float(rng.choice([0.5, 3.0, 20.0]))
    off = rng.uniform(-amp, amp, size=(N, 2 * og * kh * kw, Ho, Wo)).astype(np.float32)
    if index % 5 == 0:  # exact integers and halves: samples on grid lines and on the image border
        off = np.round(off * 2) / 2
    return {
        "x": rng.standard_normal((N, C, H, W)).astype(np.float32),
        "w": rng.standard_normal((n_out, C // g, kh, kw)).astype(np.float32),
        "off": off,
        "b": rng.standard_normal(n_out).astype(np.float32) if rng.random() < 0.5 else None,
        "m": rng.uniform(0, 1, size=(N, og * kh * kw, Ho, Wo)).astype(np.float32)
        if rng.random() < 0.5
        else None,
        "stride": (sh, sw),
        "pad": (ph, pw),
        "dil": (dh, dw),
        "g": g,
        "og": og,
    }


def test_cpu_twin_matches_torchvision_on_random_configs():
    rng = np.random.default_rng(20240605)
    worst = 0.0
    over_1024 = 0
    for i in range(N_CONFIGS):
        c = _random_config(rng, i)
        y = cpu_deform_conv(
            c["x"], c["w"], c["off"], c["b"], c["m"], c["stride"], c["pad"], c["dil"], c["g"], c["og"]
        )
        ref = _reference(c["x"], c["w"], c["off"], c["b"], c["m"], c["stride"], c["pad"], c["dil"])
        assert y.shape == ref.shape, (i, y.shape, ref.shape)
        scale = max(float(np.abs(ref).max()), 1e-3)
        err = float(np.abs(y - ref).max()) / scale
        worst = max(worst, err)
        over_1024 += max(c["x"].shape[2:]) > 1024
        assert err <= TOL, f"config {i}: relative max|Δ| {err:.3g} " + repr(
            {k: (v.shape if isinstance(v, np.ndarray) else v) for k, v in c.items()}
        )
    assert over_1024 >= 20
    print(f"\nCPU twin vs torchvision: {N_CONFIGS} configs, worst relative max|Δ| = {worst:.3g}")


def test_boundary_rule_matches_torchvision():
    """Samples at y in (-1, 0), exactly -1, (H-1, H), exactly H-1 and H: zero padding blend rule."""
    H, W = 5, 6
    x = np.arange(H * W, dtype=np.float32).reshape(1, 1, H, W) + 1
    w = np.ones((1, 1, 1, 1), np.float32)
    shifts = [
        -1.0,
        -0.999,
        -0.5,
        -0.001,
        0.0,
        0.25,
        H - 1.0,
        H - 0.999,
        H - 0.5,
        H - 0.001,
        float(H),
        H + 0.3,
    ]
    for dy in shifts:
        for dx in (-1.0, -0.4, 0.0, W - 1.0, W - 0.5, float(W)):
            off = np.zeros((1, 2, H, W), np.float32)
            off[0, 0] = dy - np.arange(H, dtype=np.float32)[:, None]  # absolute y = dy at every pixel
            off[0, 1] = dx - np.arange(W, dtype=np.float32)[None, :]
            y = cpu_deform_conv(x, w, off)
            ref = _reference(x, w, off, None, None, (1, 1), (0, 0), (1, 1))
            np.testing.assert_allclose(y, ref, rtol=0, atol=1e-5, err_msg=f"dy={dy} dx={dx}")


def test_fp16_path_matches_torchvision_on_rounded_inputs():
    """FP16 tensors: FP32 coordinates/accumulation; only samples, weights and output are rounded."""
    rng = np.random.default_rng(7)
    for i in range(12):
        c = _random_config(rng, i if i != 7 else 15)
        xh, wh = c["x"].astype(np.float16), c["w"].astype(np.float16)
        bh = None if c["b"] is None else c["b"].astype(np.float16)
        y = cpu_deform_conv(xh, wh, c["off"], bh, c["m"], c["stride"], c["pad"], c["dil"], c["g"], c["og"])
        assert y.dtype == np.float16
        ref = _reference(xh, wh, c["off"], bh, c["m"], c["stride"], c["pad"], c["dil"])
        scale = max(float(np.abs(ref).max()), 1e-3)
        assert float(np.abs(y.astype(np.float32) - ref).max()) / scale <= 2e-3, i


def test_fp16_offsets_and_mask_are_accepted():
    rng = np.random.default_rng(3)
    x = rng.standard_normal((1, 4, 9, 9)).astype(np.float32)
    w = rng.standard_normal((4, 4, 3, 3)).astype(np.float32)
    off = rng.uniform(-3, 3, (1, 18, 9, 9)).astype(np.float16)
    m = rng.uniform(0, 1, (1, 9, 9, 9)).astype(np.float16)
    y = cpu_deform_conv(x, w, off, None, m, padding=1)
    ref = _reference(x, w, off, None, m, (1, 1), (1, 1), (1, 1))
    assert np.abs(y - ref).max() / np.abs(ref).max() <= TOL


def test_hdm_shape_published_width_small_image():
    """HDM's DCN: 64 -> 64, 3x3, pad 1, one offset group, sigmoid mask, bias."""
    rng = np.random.default_rng(11)
    x = rng.standard_normal((1, 64, 20, 28)).astype(np.float32)
    w = (rng.standard_normal((64, 64, 3, 3)) / 24).astype(np.float32)
    off = rng.uniform(-20, 20, (1, 18, 20, 28)).astype(np.float32)
    m = 1 / (1 + np.exp(-rng.standard_normal((1, 9, 20, 28)))).astype(np.float32)
    b = rng.standard_normal(64).astype(np.float32)
    y = cpu_deform_conv(x, w, off, b, m, padding=1)
    ref = _reference(x, w, off, b, m, (1, 1), (1, 1), (1, 1))
    assert np.abs(y - ref).max() / np.abs(ref).max() <= TOL


@pytest.mark.parametrize("dtype", [np.float32, np.float16])
@pytest.mark.parametrize(("n_out", "groups"), [(150, 1), (140, 2), (33, 1)])
def test_several_output_channel_tiles(n_out, groups, dtype):
    """Og > 64 spans several output-channel tiles (grid y); Og > 32 needs two epilogue passes."""
    rng = np.random.default_rng(n_out)
    C = 6 * groups
    x = rng.standard_normal((2, C, 11, 13)).astype(dtype)
    w = rng.standard_normal((n_out, C // groups, 3, 3)).astype(dtype)
    b = rng.standard_normal(n_out).astype(dtype)
    off = rng.uniform(-4, 4, (2, 36, 11, 13)).astype(np.float32)
    m = rng.uniform(0, 1, (2, 18, 11, 13)).astype(np.float32)
    y = cpu_deform_conv(x, w, off, b, m, padding=1, groups=groups, offset_groups=2)
    ref = _reference(x, w, off, b, m, (1, 1), (1, 1), (1, 1)) if groups == 1 else None
    if ref is None:
        t = torch.from_numpy
        with torch.no_grad():
            ref = tv_ops.deform_conv2d(
                t(x.astype(np.float32)), t(off), t(w.astype(np.float32)), t(b.astype(np.float32)),
                padding=1, mask=t(m),
            ).numpy()  # fmt: skip
    tol = TOL if dtype == np.float32 else 2e-3
    assert np.abs(y.astype(np.float32) - ref).max() / np.abs(ref).max() <= tol


def test_threads_do_not_change_the_result():
    rng = np.random.default_rng(5)
    c = _random_config(rng, 1)
    args = (c["x"], c["w"], c["off"], c["b"], c["m"], c["stride"], c["pad"], c["dil"], c["g"], c["og"])
    np.testing.assert_array_equal(cpu_deform_conv(*args, threads=1), cpu_deform_conv(*args, threads=3))


def test_asymmetric_onnx_pads():
    rng = np.random.default_rng(9)
    x = rng.standard_normal((1, 3, 8, 7)).astype(np.float32)
    w = rng.standard_normal((2, 3, 3, 3)).astype(np.float32)
    # pads (top, left, bottom, right) = (2, 0, 1, 1): same as padding the input then pad 0
    Ho, Wo = 8 + 3 - 2, 7 + 1 - 2
    off = rng.uniform(-2, 2, (1, 18, Ho, Wo)).astype(np.float32)
    y = cpu_deform_conv(x, w, off, padding=(2, 0, 1, 1))
    # Explicit zero padding then pad 0 is equivalent: outside samples blend with zeros either way.
    xp = np.pad(x, ((0, 0), (0, 0), (2, 1), (0, 1)))
    ref = _reference(xp, w, off, None, None, (1, 1), (0, 0), (1, 1))
    np.testing.assert_allclose(y, ref, rtol=0, atol=1e-4)


def test_errors_are_actionable():
    x = np.zeros((1, 4, 8, 8), np.float32)
    w = np.zeros((4, 4, 3, 3), np.float32)
    with pytest.raises(DeformConvArgumentError, match="offset must have shape"):
        cpu_deform_conv(x, w, np.zeros((1, 9, 6, 6), np.float32))
    with pytest.raises(DeformConvArgumentError, match="offset_group"):
        cpu_deform_conv(x, w, np.zeros((1, 54, 6, 6), np.float32), offset_groups=3)
    with pytest.raises(DeformConvArgumentError, match="group"):
        cpu_deform_conv(x, np.zeros((4, 3, 3, 3), np.float32), np.zeros((1, 18, 6, 6), np.float32))
    with pytest.raises(DeformConvArgumentError, match="mask must have shape"):
        cpu_deform_conv(x, w, np.zeros((1, 18, 6, 6), np.float32), mask=np.zeros((1, 18, 6, 6), np.float32))


# ---- ONNX conformance node cases -----------------------------------------------------------


def _onnx_node_case_dirs() -> list[Path]:
    root = Path(onnx.__file__).parent / "backend" / "test" / "data" / "node"
    return sorted(p for p in root.glob("test_*deform_conv*") if (p / "model.onnx").exists())


def _materialize_node_cases(dest: Path) -> list[Path]:
    """The installed onnx wheel ships the case generators, not the data: write the four DeformConv
    cases in the backend-test layout (model.onnx + test_data_set_0/*.pb)."""
    import onnx.backend.test.case.node as node_cases

    before = len(node_cases._NodeTestCases)
    module = importlib.import_module("onnx.backend.test.case.node.deformconv")
    cases = [c for c in node_cases._NodeTestCases if c.model.graph.node[0].op_type == "DeformConv"]
    if not cases:  # the module was imported earlier in this process; run its exports again
        for name in dir(module.DeformConv):
            if name.startswith("export"):
                getattr(module.DeformConv, name)()
        cases = [
            c for c in node_cases._NodeTestCases[before:] if c.model.graph.node[0].op_type == "DeformConv"
        ]
    dirs = []
    for case in cases:
        d = dest / case.name
        (d / "test_data_set_0").mkdir(parents=True, exist_ok=True)
        onnx.save(case.model, d / "model.onnx")
        inputs, outputs = case.data_sets[0]
        for i, arr in enumerate(inputs):
            (d / "test_data_set_0" / f"input_{i}.pb").write_bytes(
                numpy_helper.from_array(arr).SerializeToString()
            )
        for i, arr in enumerate(outputs):
            (d / "test_data_set_0" / f"output_{i}.pb").write_bytes(
                numpy_helper.from_array(arr).SerializeToString()
            )
        dirs.append(d)
    return sorted(dirs)


def _load_pb(path: Path) -> np.ndarray:
    t = onnx.TensorProto()
    t.ParseFromString(path.read_bytes())
    return numpy_helper.to_array(t)


def test_onnx_conformance_node_cases(tmp_path):
    dirs = _onnx_node_case_dirs() or _materialize_node_cases(tmp_path)
    names = {d.name for d in dirs}
    assert names >= {
        "test_basic_deform_conv_with_padding",
        "test_basic_deform_conv_without_padding",
        "test_deform_conv_with_mask_bias",
        "test_deform_conv_with_multiple_offset_groups",
    }
    for d in dirs:
        model = onnx.load(d / "model.onnx")
        node = model.graph.node[0]
        attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
        data = d / "test_data_set_0"
        inputs = [
            _load_pb(p) for p in sorted(data.glob("input_*.pb"), key=lambda p: int(p.stem.split("_")[1]))
        ]
        expected = _load_pb(data / "output_0.pb")
        names_in = list(node.input)
        x, w, off = inputs[:3]
        b = inputs[3] if len(names_in) > 3 and names_in[3] else None
        m = inputs[4] if len(names_in) > 4 and names_in[4] else None
        y = cpu_deform_conv_onnx(x, w, off, b, m, **attrs)
        np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5, err_msg=d.name)


def test_half_conversion_matches_numpy():
    bits = np.arange(65536, dtype=np.uint32).astype(np.uint16).view(np.float16)
    back = half_to_float(bits)
    finite = ~np.isnan(bits)
    np.testing.assert_array_equal(back[finite], bits[finite].astype(np.float32))
    assert np.isnan(back[~finite]).all()
    rng = np.random.default_rng(1)
    vals = np.concatenate(
        [
            (rng.standard_normal(20000) * 10.0 ** rng.integers(-9, 6, 20000)).astype(np.float32),
            np.array(
                [65504, 65519.99, 65520, 1e9, -1e9, 6e-8, 2.9e-8, 3e-8, 0.0, -0.0, np.inf, -np.inf],
                np.float32,
            ),
            # exact ties between two halves (round to even)
            (np.arange(2048, 4096, dtype=np.float32) + 0.5),
        ]
    )
    assert vals.dtype == np.float32
    with np.errstate(over="ignore"):
        expected = vals.astype(np.float16)
    np.testing.assert_array_equal(half_from_float(vals).view(np.uint16), expected.view(np.uint16))
