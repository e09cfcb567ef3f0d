"""ADFNet: published keys and shapes for every variant, strict loading of every published format,
family/variant detection, and outputs equal to an independent implementation (published-size nets
on tiny inputs)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hdm_deploy.core.errors import CheckpointError, InputImageError
from hdm_deploy.families.adfnet.family import FAMILY, detect
from hdm_deploy.families.adfnet.model import VARIANTS, ADFNet, ADFNetConfig
from hdm_deploy.families.adfnet.pipeline import enhance
from hdm_deploy.families.checkpoint_io import open_checkpoint, torch_runner
from hdm_deploy.families.registry import detect_family
from independent_adfnet import clean_pipeline, published_keys, random_state_dict, save_published


@pytest.mark.parametrize(("variant", "keys"), [("rgb", "rgb"), ("gray", "gray"), ("L", "L"), ("rgb", "real")])
def test_state_dict_keys_and_shapes_equal_published(variant, keys):
    ours = [(k, tuple(v.shape)) for k, v in ADFNet(VARIANTS[variant]).state_dict().items()]
    assert ours == published_keys(keys)  # same names, shapes and order; no buffers


def test_parameter_counts_match_the_fact_sheet():
    counts = {v: sum(p.numel() for p in ADFNet(c).parameters()) for v, c in VARIANTS.items()}
    assert counts == {"rgb": 8_628_579, "gray": 8_627_425, "L": 32_765_667}


def test_detect_names_the_family_from_keys_only():
    keys = [k for k, _ in published_keys("rgb")]
    assert detect(keys) == "published"
    assert detect([f"module.{k}" for k in keys] + ["total_ops"]) == "published"
    assert detect(keys[:-2]) is None
    family, variant = detect_family(keys)
    assert family is FAMILY and variant == "published"
    assert detect_family(keys, arch="adfnet:L") == (FAMILY, "L")


@pytest.fixture(scope="module")
def small_sd():
    return random_state_dict("rgb", width=8, seed=3)


@pytest.mark.parametrize(("fmt", "thop"), [("raw", False), ("raw", True), ("real", False)])
def test_published_formats_load_strictly(tmp_path, small_sd, fmt, thop):
    path = save_published(small_sd, tmp_path / "adfnet.pt", fmt=fmt, thop=thop)
    family, model, _ = open_checkpoint(path)
    assert family.name == "adfnet" and model.config == ADFNetConfig(3, 8)
    for k, v in model.state_dict().items():
        assert torch.equal(v, small_sd[k])
    assert model.fe1.fe[1].dcn[0].conv_offset_mask.weight.abs().mean() > 1e-3  # non-zero offsets


def test_missing_and_unexpected_keys_are_named(tmp_path, small_sd):
    broken = dict(small_sd)
    del broken["dfe1.fe.1.branch_5.fuse.weight"]
    broken["fe1.fe.1.extra.weight"] = torch.zeros(1)
    path = save_published(broken, tmp_path / "broken.pt")
    with pytest.raises(
        CheckpointError,
        match=r"1 missing: dfe1\.fe\.1\.branch_5\.fuse\.weight.*1 unexpected: fe1\.fe\.1\.extra\.weight",
    ):
        open_checkpoint(path)


def test_arch_variant_overrides_detection_and_misfits_are_named(tmp_path, small_sd):
    path = save_published(small_sd, tmp_path / "small.pt")
    with pytest.raises(
        CheckpointError,
        match=r"ADFNet\(n_colors=3, width=64\): 166 mis-shaped: cfe\.fe\.0\.conv1\.bias \(64,\)≠\(512,\)",
    ):
        open_checkpoint(path, arch="adfnet:L")


def test_gray_variant_is_read_from_shapes_and_refuses_colour(tmp_path):
    sd = random_state_dict("gray", width=8, seed=4)
    path = save_published(sd, tmp_path / "adfnet_n50")  # the published Gray name has no extension
    path = path.rename(tmp_path / "gray.pt")
    runner = torch_runner(path)
    assert runner.model.config == ADFNetConfig(1, 8)
    grey = np.repeat(np.random.default_rng(0).integers(0, 256, (20, 27, 1), dtype=np.uint8), 3, axis=2)
    out = runner.run(grey).image[0]
    assert np.array_equal(out[..., 0], out[..., 2])
    colour = grey.copy()
    colour[0, 0, 1] ^= 1
    with pytest.raises(InputImageError, match="greyscale"):
        runner.run(colour)


def test_masks_option_is_refused_for_adfnet(tmp_path, small_sd):
    path = save_published(small_sd, tmp_path / "small.pt")
    with pytest.raises(Exception, match="--masks does not apply to ADFNet"):
        torch_runner(path, masks="torch")


@pytest.mark.slow
@pytest.mark.parametrize(("variant", "h", "w"), [("rgb", 21, 30), ("gray", 16, 19), ("L", 16, 16)])
def test_published_size_net_matches_independent_implementation(variant, h, w):
    """The published-size network (one tiny input each): our loader + enhance = the independent net."""
    sd = random_state_dict(variant, seed=1)
    model = ADFNet(VARIANTS[variant])
    model.load_state_dict(sd, strict=True)
    img = np.random.default_rng(2).integers(0, 256, (h, w, 3), dtype=np.uint8)
    if variant == "gray":
        img[..., 1:] = img[..., :1]
    expected = clean_pipeline(sd, img).numpy()
    got = enhance(model.eval(), img).image_float[0][: expected.shape[0]]
    assert np.abs(got - expected).max() < 1e-4
    assert np.abs(expected - img.transpose(2, 0, 1)[: expected.shape[0]] / 255).mean() > 0.01  # not identity


def test_cli_infer_reproduces_independent_implementation(tmp_path, small_sd):
    """``hdm-deploy infer IMAGE --model CKPT`` (Real format) = the independent net, to uint8 rounding."""
    import cv2
    from typer.testing import CliRunner

    from hdm_deploy.cli import app

    path = save_published(small_sd, tmp_path / "adfnet_real.pth", fmt="real")
    rgb = np.random.default_rng(7).integers(0, 256, (45, 61, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noisy.png"), rgb[..., ::-1])
    res = CliRunner().invoke(
        app, ["infer", str(tmp_path / "noisy.png"), "--model", str(path), "--device", "cpu"]
    )
    assert res.exit_code == 0, res.output
    got = cv2.imread(str(tmp_path / "noisy_enhanced.png"))[..., ::-1].astype(int)
    expected = clean_pipeline(small_sd, rgb).numpy().transpose(1, 2, 0) * 255
    diff = np.abs(got - expected)
    assert diff.max() <= 0.5 + 1e-3  # the same float (|Δ| < 1e-4), rounded to the nearest level
    res = CliRunner().invoke(
        app, ["infer", str(tmp_path / "noisy.png"), "--model", str(path), "--masks", "torch"]
    )
    assert res.exit_code == 2 and "--masks does not apply" in res.output


def test_family_facts_are_torch_free():
    import subprocess
    import sys

    code = (
        "import sys; sys.modules['torch'] = None\n"
        "from hdm_deploy.families.registry import get_family\n"
        "f = get_family('adfnet'); print(f.frame.pad_multiple, f.detect(['x']))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0 and out.stdout.split() == ["8", "None"], out.stderr


def test_cli_published_protocol_options(tmp_path, small_sd):
    """``infer --protocol published [--self-ensemble]`` runs the published test protocol in the PyTorch
    runner (same output as the runner API); refused for other families and for exported models."""
    import cv2
    from typer.testing import CliRunner

    from hdm_deploy.cli import app
    from hdm_deploy.families.checkpoint_io import torch_runner

    path = save_published(small_sd, tmp_path / "adfnet.pt")
    rgb = np.random.default_rng(8).integers(0, 256, (72, 88, 3), dtype=np.uint8)
    cv2.imwrite(str(tmp_path / "noisy.png"), rgb[..., ::-1])
    for extra, options in (
        (["--protocol", "published"], {"protocol": "published"}),
        (["--protocol", "published", "--self-ensemble"], {"protocol": "published", "self_ensemble": True}),
    ):
        out = tmp_path / f"out{len(extra)}.png"
        res = CliRunner().invoke(
            app, ["infer", str(tmp_path / "noisy.png"), "-m", str(path), "-o", str(out), *extra]
        )
        assert res.exit_code == 0, res.output
        with torch_runner(path, **options) as runner:
            expected = runner(rgb[None]).image[0]
        assert np.array_equal(cv2.imread(str(out))[..., ::-1], expected)
    clean = CliRunner().invoke(
        app, ["infer", str(tmp_path / "noisy.png"), "-m", str(path), "-o", str(tmp_path / "c.png")]
    )
    assert clean.exit_code == 0 and not np.array_equal(
        cv2.imread(str(tmp_path / "c.png")), cv2.imread(str(tmp_path / "out2.png"))
    )
    res = CliRunner().invoke(app, ["infer", str(tmp_path / "noisy.png"), "-m", str(path), "--self-ensemble"])
    assert res.exit_code == 2 and "published protocol" in res.output, res.output
    res = CliRunner().invoke(app, ["infer", str(tmp_path / "noisy.png"), "--protocol", "published"])
    assert res.exit_code == 2 and "--protocol does not apply to HDM checkpoints" in res.output, res.output
    (tmp_path / "m.onnx").write_bytes(b"")
    res = CliRunner().invoke(
        app, ["infer", str(tmp_path / "noisy.png"), "-m", str(tmp_path / "m.onnx"), "--protocol", "published"]
    )
    assert res.exit_code == 2 and "--protocol does not apply to an ONNX model" in res.output, res.output
