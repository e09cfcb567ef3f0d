"""The torch-free patch DDIM sampler vs the published procedure in PyTorch, and its building blocks."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.families.diffhdr.export import condition_path_for, golden_case
from hdm_deploy.families.diffhdr.inputs import condition, padded_size, read_exposure_file
from hdm_deploy.families.diffhdr.parity import check_golden
from hdm_deploy.families.diffhdr.reference import _compute_alpha, published_sample
from hdm_deploy.families.diffhdr.sampler import OrtGraphs, alphas_bar, grid, sample, timestep_pairs


def test_schedule_equals_the_published_compute_alpha():
    betas = torch.from_numpy(np.linspace(1e-4, 0.02, 1000, dtype=np.float64)).float()
    t = torch.arange(-1, 1000)
    ref = _compute_alpha(betas, t).flatten().numpy()
    np.testing.assert_allclose(alphas_bar(), ref, rtol=2e-6, atol=0)
    assert alphas_bar()[0] == 1.0
    assert abs(alphas_bar()[961] - 8.74e-5) < 1e-6  # ᾱ(960), reference sheet


def test_timesteps_as_published():
    pairs = timestep_pairs(25)
    assert len(pairs) == 25 and pairs[0] == (960, 920) and pairs[-1] == (0, -1)
    assert [t for t, _ in timestep_pairs(3)] == [999, 666, 333, 0]  # skip 333 gives 4 steps
    assert len(timestep_pairs(200)) == 200
    with pytest.raises(HdmDeployError):
        timestep_pairs(0)


def test_patch_grid_and_padding_as_published():
    assert padded_size(1000, 1500, 512, 64) == (1024, 1536)
    assert len(grid(1024, 1536, 512, 64)) == 153
    assert padded_size(1080, 1920, 512, 64) == (1088, 1920)
    assert len(grid(1088, 1920, 512, 64)) == 230
    assert len(grid(*padded_size(1080, 1920, 512, 256), 512, 256)) == 4 * 7
    count = np.zeros((1024, 1536), int)
    for h, w in grid(1024, 1536, 512, 64):
        count[h : h + 512, w : w + 512] += 1
    assert count.min() >= 1 and count[512, 768] == 64
    with pytest.raises(HdmDeployError, match="patch grid"):
        grid(1000, 1500, 512, 64)


def test_exposure_file_is_read_like_the_published_loader(tmp_path):
    f = tmp_path / "exposure.txt"
    f.write_text("0\n2\n4\n")
    assert read_exposure_file(f) == (0.0, 2.0, 4.0)
    f.write_text("0\n2.5\n4\n")
    with pytest.warns(UserWarning, match="first character"):
        assert read_exposure_file(f) == (0.0, 2.0, 4.0)
    f.write_text("-2\n0\n2\n")
    with pytest.raises(HdmDeployError, match="digit"):
        read_exposure_file(f)
    f.write_text("0\n2\n")
    with pytest.raises(HdmDeployError, match="needs 3"):
        read_exposure_file(f)


@pytest.fixture(scope="module")
def tiny(tiny_export):
    return tiny_export.model, tiny_export.onnx


def test_per_step_unet_ort_matches_pytorch(tiny):
    model, path = tiny
    graphs = OrtGraphs(path, condition_path_for(path))
    gen = torch.Generator().manual_seed(0)
    cond = torch.rand(5, 18, 64, 64, generator=gen)
    x_t = torch.randn(5, 3, 64, 64, generator=gen)
    for t in (999.0, 333.0, 0.0):
        tt = torch.tensor([t])
        with torch.no_grad():
            feature = model.ahdr.from_condition(cond)
            eps = model.unet(x_t, tt, feature).numpy()
        feat_ort = graphs.feature(cond.numpy())
        eps_ort = graphs.eps(x_t.numpy(), feat_ort, tt.numpy())
        assert np.linalg.norm(feat_ort - feature.numpy()) / np.linalg.norm(feature.numpy()) <= 1e-5
        assert np.linalg.norm(eps_ort - eps) / np.linalg.norm(eps) <= 1e-4


def test_runtime_sampler_matches_published_pytorch_procedure(tiny):
    """128×96, 64² patches, stride 32, T = 3, same noise: ≥ 45 dB on the tonemapped output."""
    model, path = tiny
    case = golden_case(model, size=(96, 128), patch=64, stride=32, steps=3)
    assert case["noise"].shape == (3, 96, 128)
    result = check_golden(path, case, condition_path=condition_path_for(path))
    assert result["patches"] == 6 and result["steps"] == 4
    assert result["psnr_db"] >= 45.0
    # random weights blow x̂0 far past [0, 1]: the unclamped estimate is the stronger comparison
    assert result["raw_rel_err"] <= 1e-4 and result["raw_psnr_db"] >= 60.0


def test_batching_streaming_and_feature_cache_do_not_change_the_result(tiny):
    model, path = tiny
    graphs = OrtGraphs(path, condition_path_for(path))
    case = golden_case(model, size=(40, 60), patch=32, stride=8, steps=2)
    ldrs = [case["ldr_short"], case["ldr_medium"], case["ldr_long"]]
    stops = tuple(case["exposures"])
    ticks = []
    runs = [
        sample(
            ldrs,
            stops,
            case["noise"],
            graphs.feature,
            graphs.eps,
            steps=2,
            patch=32,
            stride=8,
            batch=b,
            feature_cache_bytes=c,
            progress=lambda a, t: ticks.append((a, t)),
        )
        for b, c in ((8, 1 << 30), (3, 0), (1, 0))
    ]
    assert runs[0][1].features_cached and not runs[1][1].features_cached
    for x0, _ in runs[1:]:
        np.testing.assert_allclose(x0, runs[0][0], rtol=1e-4, atol=1e-3 * float(np.abs(runs[0][0]).max()))
    n = len(grid(*case["noise"].shape[1:], 32, 8))
    assert ticks[0] == (0, 2 * -(-n // 8)) and sum(a for a, _ in ticks) == 2 * (-(-n // 8) + -(-n // 3) + n)
    # and the PyTorch reference agrees with its published batch of 8
    cond = torch.from_numpy(condition(ldrs, stops, case["noise"].shape[1:]))[None]
    ref = published_sample(
        model, cond, torch.from_numpy(case["noise"])[None], steps=2, patch=32, stride=8, clamp=False
    )
    assert np.linalg.norm(runs[2][0] - ref[0].numpy()) / np.linalg.norm(ref[0].numpy()) <= 1e-4


def test_fp16_policy_keeps_each_island_fp32_and_stays_close(tiny, tmp_path):
    import onnx

    from hdm_deploy.families.diffhdr.export import ISLANDS, to_fp16
    from hdm_deploy.graph.precision import policy_report

    model, path = tiny
    unet, cond = to_fp16(onnx.load(path), onnx.load(condition_path_for(path)))  # what export_graphs does
    report = policy_report(unet)
    assert set(report.islands) == set(ISLANDS) and all(report.islands.values())
    ops = {n.name: n.op_type for n in unet.graph.node}
    assert {"Sin", "Cos"} <= {ops[n] for n in report.islands["timestep_embedding"]}
    assert "Softmax" in {ops[n] for n in report.islands["attention_softmax"]}
    assert {ops[n] for n in report.islands["groupnorm_statistics"]} == {"InstanceNormalization"}
    onnx.save(unet, tmp_path / "h.onnx")
    onnx.save(cond, tmp_path / "h.cond.onnx")
    case = golden_case(model, size=(96, 128), patch=64, stride=32, steps=3)
    result = check_golden(tmp_path / "h.onnx", case, condition_path=tmp_path / "h.cond.onnx")
    assert result["raw_psnr_db"] >= 30.0


def test_condition_lookup_is_bit_identical_to_the_published_arithmetic():
    from hdm_deploy.families.diffhdr.inputs import condition_patch, condition_reference

    rng = np.random.default_rng(0)
    ldrs = [rng.integers(0, 256, (17, 23, 3), dtype=np.uint8) for _ in range(3)]
    for stops in ((0.0, 2.0, 4.0), (-2.0, 0.0, 2.0), (1.0, 3.5, 6.0)):
        np.testing.assert_array_equal(condition_patch(ldrs, stops), condition_reference(ldrs, stops))


def test_initial_noise_is_seeded_or_read_from_a_file(tmp_path):
    from hdm_deploy.families.diffhdr.sampler import initial_noise

    a, b = initial_noise((64, 96), seed=61), initial_noise((64, 96), seed=61)
    assert a.dtype == np.float32 and a.shape == (3, 64, 96) and np.array_equal(a, b)
    assert not np.array_equal(a, initial_noise((64, 96), seed=62))
    np.save(tmp_path / "x.npy", a[None])  # a [1,3,H,W] tensor exported from PyTorch works too
    assert np.array_equal(initial_noise((64, 96), path=tmp_path / "x.npy"), a)
    with pytest.raises(HdmDeployError, match="padded image needs"):
        initial_noise((64, 128), path=tmp_path / "x.npy")
