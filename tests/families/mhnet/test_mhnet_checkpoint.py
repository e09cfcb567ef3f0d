"""MHNet: published key names and shapes, family/variant detection, strict loading, the 2024 refusal."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch

import independent_mhnet as ind
from hdm_deploy.core.errors import CheckpointError, ModelFormatError
from hdm_deploy.families.checkpoint_io import open_checkpoint
from hdm_deploy.families.mhnet.checkpoint import infer_config, load_for_family, save_checkpoint
from hdm_deploy.families.mhnet.family import detect
from hdm_deploy.families.mhnet.model import VARIANT_CONFIGS, MHNet, variant_of
from hdm_deploy.families.registry import detect_family

#: copies of shared/reference/keys/mhnet_*_keys.txt (the published state dicts, listed by instantiating
#: the 46ba1eb / HEAD files): key name and shape per line
KEYS = Path(__file__).resolve().parents[2] / "data" / "mhnet_keys"
FILES = {"deblur": "mhnet_deblur2023_keys.txt", "derain": "mhnet_derain2023_keys.txt"}


def published_keys(name: str) -> dict[str, tuple[int, ...]]:
    out = {}
    for line in (KEYS / name).read_text().splitlines():
        key, shape = line.split(" ", 1)
        out[key] = tuple(int(x) for x in re.findall(r"\d+", shape))
    return out


@pytest.mark.parametrize("variant", ["deblur", "derain"])
def test_state_dict_equals_the_published_keys_and_shapes(variant):
    ref = published_keys(FILES[variant])
    model = MHNet(VARIANT_CONFIGS[variant])
    ours = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert ours == ref  # 1014 keys, every shape
    assert len(ours) == 1014
    params = sum(p.numel() for p in model.parameters())
    assert params == {"deblur": 17_028_093, "derain": 16_696_605}[variant]
    # the independent enumeration (tests/independent_mhnet.py) agrees with the published list too
    assert ind.key_shapes(**ind.PUBLISHED[variant]) == ref
    assert variant_of(infer_config(model.state_dict())) == variant


def test_detection_from_key_names():
    deblur = published_keys(FILES["deblur"])
    root = published_keys("mhnet_root2024_keys.txt")
    assert detect(deblur) == "2023"
    assert detect([f"module.{k}" for k in deblur]) == "2023"
    assert detect(root) == "2024"
    assert detect([]) is None
    assert detect(["conv0.0.weight", "dcn_block.dcn.weight"]) is None
    family, variant = detect_family([f"module.{k}" for k in deblur])
    assert (family.name, variant) == ("mhnet", "2023")
    family, variant = detect_family(deblur, arch="mhnet:derain")
    assert (family.name, variant) == ("mhnet", "derain")


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory) -> Path:
    return ind.save_published(ind.random_state(ind.TINY), tmp_path_factory.mktemp("mh") / "tiny.pth")


def test_published_format_with_module_prefix_loads_strictly(tiny_ckpt):
    raw = torch.load(tiny_ckpt, weights_only=True)
    assert set(raw) == {"epoch", "state_dict", "optimizer"}
    assert all(k.startswith("module.") for k in raw["state_dict"])
    family, model, _ = open_checkpoint(tiny_ckpt)
    assert family.name == "mhnet" and isinstance(model, MHNet) and not model.training
    sd = model.state_dict()
    for key, value in raw["state_dict"].items():
        assert torch.equal(sd[key.removeprefix("module.")], value)
    cfg = model.config
    assert (cfg.width, cfg.n_feat, cfg.num_cab, cfg.enc_blk_nums) == (8, 8, 1, (1, 1, 1, 2))


def test_our_writer_round_trips(tmp_path, tiny_ckpt):
    _, model, _ = open_checkpoint(tiny_ckpt)
    path = save_checkpoint(model, tmp_path / "again.pth")
    _, again, _ = open_checkpoint(path)
    for (k, a), (k2, b) in zip(model.state_dict().items(), again.state_dict().items(), strict=True):
        assert k == k2 and torch.equal(a, b)


def test_strict_loading_names_missing_unexpected_and_misshaped_keys():
    state = ind.random_state(ind.TINY)
    del state["stage2.CABG2.body.0.SCA.conv_du.0.bias"]
    state["stage2.extra.weight"] = torch.zeros(1)
    state["tail.weight"] = torch.zeros(3, 8, 5, 5)
    with pytest.raises(CheckpointError) as info:
        load_for_family(state, {}, None, source="x.pth")
    msg = str(info.value)
    assert "1 missing: stage2.CABG2.body.0.SCA.conv_du.0.bias" in msg
    assert "1 unexpected: stage2.extra.weight" in msg
    assert "tail.weight (3, 8, 5, 5)≠(3, 8, 3, 3)" in msg


def test_arch_variant_is_enforced(tmp_path):
    # a Derain-shaped state dict given as deblur: every n_feat tensor is named as mis-shaped
    sd = {k: torch.zeros(s) for k, s in ind.key_shapes(**ind.PUBLISHED["derain"]).items()}
    assert variant_of(load_for_family(sd, {}, None).config) == "derain"
    with pytest.raises(CheckpointError, match=r"does not fit MHNet-deblur: .*mis-shaped: .*stage2"):
        load_for_family(sd, {}, "deblur")
    with pytest.raises(CheckpointError, match="unknown MHNet variant 'gopro'"):
        load_for_family(sd, {}, "gopro")


def test_root_2024_checkpoint_is_refused_with_the_reason(tmp_path):
    root = published_keys("mhnet_root2024_keys.txt")
    sd = {f"module.{k}": torch.zeros(s) for k, s in root.items()}
    path = tmp_path / "mhnet2024.pth"
    torch.save({"epoch": 1, "state_dict": sd}, path)
    with pytest.raises(CheckpointError) as info:
        open_checkpoint(path)
    msg = str(info.value)
    assert "2024 root file" in msg and "does not instantiate" in msg and "no checkpoints" in msg
    assert info.value.exit_code == 2
    # --arch mhnet:2024 says the same for any file
    with pytest.raises(CheckpointError, match="does not instantiate"):
        open_checkpoint(path, arch="mhnet:2024")


def test_arch_mhnet_on_a_foreign_state_dict(tmp_path):
    path = tmp_path / "other.pth"
    torch.save({"state_dict": {"conv.weight": torch.zeros(1, 1, 1, 1)}}, path)
    with pytest.raises(ModelFormatError, match="no known model family"):
        open_checkpoint(path)
    with pytest.raises(CheckpointError, match="not an MHNet state dict"):
        open_checkpoint(path, arch="mhnet")
