"""CUDA kernel of HdmDeformConv against torchvision's CUDA deform_conv2d (needs a CUDA GPU and nvcc).

The kernel is reached through the C entry point of libhdm_deploy_plugins.so (built here for the
device's architecture, kernels only) with torch tensors' device pointers.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch", reason="torch provides CUDA tensors and the torchvision reference")
tv_ops = pytest.importorskip("torchvision.ops", reason="torchvision provides the reference deform_conv2d")

from hdm_deploy.plugins import (  # noqa: E402
    DeformAttrs,
    build_plugin_cached,
    cpu_deform_conv,
    cuda_deform_conv_tensors,
    native_library,
    plugin_output_shape,
)
from hdm_deploy.plugins._build import _find_nvcc  # noqa: E402

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device"),
    pytest.mark.skipif(_find_nvcc() is None, reason="nvcc not installed (needed to build the kernels)"),
]


@pytest.fixture(scope="module")
def lib():
    major, minor = torch.cuda.get_device_capability()
    result = build_plugin_cached(f"{major}{minor}", with_tensorrt=False)
    return native_library(str(result.library))


def run_ours(lib, attrs, x, w, off, b=None, m=None):
    if m is not None and b is None:
        b = torch.zeros(w.shape[0], dtype=x.dtype, device=x.device)
    shapes = [tuple(t.shape) for t in (x, w, off, b, m) if t is not None]
    out = torch.empty(plugin_output_shape(attrs, shapes, lib), dtype=x.dtype, device=x.device)
    cuda_deform_conv_tensors(lib, attrs, x, w, off, b, m, out, torch.cuda.current_stream().cuda_stream)
    torch.cuda.synchronize()
    return out


def reference(x, w, off, b, m, stride, pad, dil):
    f = lambda t: None if t is None else t.float()  # noqa: E731
    with torch.no_grad():
        return tv_ops.deform_conv2d(
            f(x), f(off), f(w), f(b), stride=stride, padding=pad, dilation=dil, mask=f(m)
        )


def rel_err(a, ref) -> float:
    return float((a.float() - ref).abs().max()) / max(float(ref.abs().max()), 1e-3)


def random_case(gen: np.random.Generator, i: int, device="cuda"):
    g = int(gen.choice([1, 1, 2, 4]))
    og = int(gen.choice([1, 2, 4]))
    base = math.lcm(g, og)
    C = min(64, base * int(gen.integers(1, 64 // base + 1)))
    n_out = min(128, g * int(gen.integers(1, 128 // g + 1)))  # > 64: several output-channel tiles
    kh, kw = (int(v) for v in gen.integers(1, 6, size=2))
    s, p, d = (int(gen.integers(1, 3)), int(gen.integers(0, 3)), int(gen.integers(1, 3)))
    H, W = (int(v) for v in gen.integers(max(kh, kw) * d, 70, size=2))
    N = int(gen.integers(1, 3))
    Ho, Wo = (H + 2 * p - d * (kh - 1) - 1) // s + 1, (W + 2 * p - d * (kw - 1) - 1) // s + 1
    t = lambda a: torch.from_numpy(np.ascontiguousarray(a, dtype=np.float32)).to(device)  # noqa: E731
    x = t(gen.standard_normal((N, C, H, W)))
    w = t(gen.standard_normal((n_out, C // g, kh, kw)) / math.sqrt(C // g * kh * kw))
    off = t(gen.uniform(-20, 20, (N, 2 * og * kh * kw, Ho, Wo)))
    b = t(gen.standard_normal(n_out)) if i % 2 else None
    m = t(gen.uniform(0, 1, (N, og * kh * kw, Ho, Wo))) if i % 3 else None
    if m is not None and b is None:
        b = torch.zeros(n_out, device=device)
    attrs = DeformAttrs((kh, kw), (s, s), (p, p, p, p), (d, d), g, og)
    return attrs, (x, w, off, b, m), ((s, s), (p, p), (d, d))


def test_fp32_matches_torchvision_cuda(lib):
    gen = np.random.default_rng(123)
    worst = 0.0
    for i in range(60):
        attrs, (x, w, off, b, m), (s, p, d) = random_case(gen, i)
        y = run_ours(lib, attrs, x, w, off, b, m)
        err = rel_err(y, reference(x, w, off, b, m, s, p, d))
        worst = max(worst, err)
        assert err <= 1e-4, (i, attrs, err)
    print(f"\nCUDA FP32 vs torchvision CUDA: worst relative max|Δ| {worst:.3g}")


def test_gpu_equals_cpu_twin(lib):
    gen = np.random.default_rng(5)
    for i in range(8):
        attrs, (x, w, off, b, m), (s, p, d) = random_case(gen, i)
        y = run_ours(lib, attrs, x, w, off, b, m).cpu().numpy()
        np_ = lambda t: None if t is None else t.cpu().numpy()  # noqa: E731
        y_cpu = cpu_deform_conv(
            np_(x), np_(w), np_(off), np_(b), np_(m), s, p, d, attrs.group, attrs.offset_group
        )
        assert np.abs(y - y_cpu).max() <= 1e-5 * max(1.0, np.abs(y_cpu).max())


@pytest.mark.parametrize(
    ("channels", "height", "width"),
    [(64, 270, 480), (16, 1080, 1920)],  # HDM at 1/4 of 1080p; full-1080p coordinates
)
def test_fp16_at_1080p_scale_coordinates(lib, channels, height, width):
    """FP16 tensors, FP32 sampling: max|Δ| <= 2e-3 of the output scale against an FP32 reference on
    the same FP16-rounded inputs (torchvision's FP16 kernel samples in FP16 and is printed for scale)."""
    gen = torch.Generator(device="cuda").manual_seed(0)
    x = torch.randn(1, channels, height, width, device="cuda", generator=gen).half()
    w = (torch.randn(channels, channels, 3, 3, device="cuda", generator=gen) / (3 * channels**0.5)).half()
    b = torch.randn(channels, device="cuda", generator=gen).half()
    off = (torch.rand(1, 18, height, width, device="cuda", generator=gen) * 40 - 20).float()
    m = torch.sigmoid(torch.randn(1, 9, height, width, device="cuda", generator=gen)).float()
    attrs = DeformAttrs((3, 3), pads=(1, 1, 1, 1))
    ref = reference(x, w, off, b, m, 1, 1, 1)
    y16 = run_ours(lib, attrs, x, w, off, b, m)
    err = rel_err(y16, ref)
    # FP16 offsets/mask too (the all-FP16 engine)
    y16h = run_ours(lib, attrs, x, w, off.half(), b, m.half())
    ref_h = reference(x, w, off.half(), b, m.half(), 1, 1, 1)
    err_h = rel_err(y16h, ref_h)
    with torch.no_grad():
        tv16 = tv_ops.deform_conv2d(x, off.half(), w, b, padding=1, mask=m.half())
    print(
        f"\nFP16 {channels}x{height}x{width}: ours {err:.3g} (fp16 offsets {err_h:.3g}), torchvision fp16 {rel_err(tv16, ref_h):.3g}"
    )
    assert err <= 2e-3
    assert err_h <= 2e-3


def test_mixed_types(lib):
    gen = np.random.default_rng(9)
    attrs, (x, w, off, b, m), (s, p, d) = random_case(gen, 5)
    ref = reference(x, w, off, b, m, s, p, d)
    assert (
        rel_err(
            run_ours(lib, attrs, x, w, off.half(), b, m.half()),
            reference(x, w, off.half(), b, m.half(), s, p, d),
        )
        <= 1e-4
    )
    ref16 = reference(x.half(), w.half(), off, b.half(), m, s, p, d)
    assert rel_err(run_ours(lib, attrs, x.half(), w.half(), off, b.half(), m), ref16) <= 2e-3
    assert ref.shape == ref16.shape
