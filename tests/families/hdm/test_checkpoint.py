"""Checkpoint I/O: published format, plain dicts, fp16, strict errors, weights_only safety."""

from __future__ import annotations

import argparse

import pytest
import torch

from hdm_deploy.core.errors import CheckpointError
from hdm_deploy.families.hdm.checkpoint import (
    infer_config,
    load_checkpoint,
    read_state_dict,
    save_checkpoint,
)
from hdm_deploy.families.hdm.model import HDM, HDMConfig

SMALL = HDMConfig(width=8, groups=2, blocks=2)


@pytest.fixture
def model():
    torch.manual_seed(0)
    return HDM(SMALL)


def _assert_same_weights(a, b):
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items(), strict=True):
        assert ka == kb
        torch.testing.assert_close(va, vb, rtol=0, atol=0)


@pytest.mark.parametrize("wrap", ["published", "plain", "plain_prefixed", "state_dict_key"])
def test_loads_every_layout(tmp_path, model, wrap):
    sd = model.state_dict()
    obj = {
        "published": {"model": {f"module.{k}": v for k, v in sd.items()}},
        "plain": dict(sd),
        "plain_prefixed": {f"module.{k}": v for k, v in sd.items()},
        "state_dict_key": {"state_dict": dict(sd), "epoch": 3},
    }[wrap]
    torch.save(obj, tmp_path / "m.pk")
    loaded = load_checkpoint(tmp_path / "m.pk")
    assert loaded.config == SMALL
    _assert_same_weights(model, loaded)


def test_save_writes_published_format(tmp_path, model):
    save_checkpoint(model, tmp_path / "m.pk")
    raw = torch.load(tmp_path / "m.pk", weights_only=True)
    assert set(raw) == {"model", "hdm_deploy"}
    assert all(k.startswith("module.") for k in raw["model"])
    _assert_same_weights(model, load_checkpoint(tmp_path / "m.pk"))


def test_fp16_storage_round_trip(tmp_path, model):
    save_checkpoint(model, tmp_path / "h.pk", half=True)
    raw = torch.load(tmp_path / "h.pk", weights_only=True)["model"]
    assert raw["module.conv0.0.weight"].dtype == torch.float16
    loaded = load_checkpoint(tmp_path / "h.pk")
    assert loaded.conv0[0].weight.dtype == torch.float32
    torch.testing.assert_close(loaded.conv0[0].weight, model.conv0[0].weight.half().float(), rtol=0, atol=0)


def test_strict_error_names_missing_unexpected_and_misshaped(tmp_path, model):
    sd = {f"module.{k}": v for k, v in model.state_dict().items()}
    del sd["module.mix4.w"]
    sd["module.extra.weight"] = torch.zeros(1)
    sd["module.dcn_block.dcn.bias"] = torch.zeros(7)
    torch.save({"model": sd}, tmp_path / "bad.pk")
    with pytest.raises(CheckpointError) as info:
        load_checkpoint(tmp_path / "bad.pk")
    msg = str(info.value)
    assert "1 missing: mix4.w" in msg
    assert "1 unexpected: extra.weight" in msg
    assert "dcn_block.dcn.bias (7,)≠(8,)" in msg


def test_not_a_checkpoint(tmp_path):
    (tmp_path / "x.pk").write_bytes(b"not a zip nor a pickle")
    with pytest.raises(CheckpointError, match="not a readable PyTorch checkpoint"):
        load_checkpoint(tmp_path / "x.pk")
    torch.save({"model": {"a": 1}}, tmp_path / "y.pk")
    with pytest.raises(CheckpointError, match="no state dict"):
        load_checkpoint(tmp_path / "y.pk")
    torch.save({"conv.weight": torch.zeros(1)}, tmp_path / "z.pk")
    with pytest.raises(CheckpointError, match="not an HDM state dict"):
        load_checkpoint(tmp_path / "z.pk")
    with pytest.raises(CheckpointError, match="not found"):
        load_checkpoint(tmp_path / "missing.pk")


def test_legacy_pickle_needs_explicit_trust(tmp_path, model):
    obj = {"model": model.state_dict(), "args": argparse.Namespace(lr=1e-4)}
    torch.save(obj, tmp_path / "legacy.pk")
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_checkpoint(tmp_path / "legacy.pk")
    _assert_same_weights(model, load_checkpoint(tmp_path / "legacy.pk", trust_checkpoint=True))


def test_infer_config_defaults_are_published():
    sd, _ = {k: v for k, v in HDM().state_dict().items()}, None
    assert infer_config(sd) == HDMConfig()


def test_read_state_dict_returns_metadata(tmp_path, model):
    save_checkpoint(model, tmp_path / "m.pk", metadata={"note": "x"})
    _, meta = read_state_dict(tmp_path / "m.pk")
    assert meta["note"] == "x" and meta["config"] == SMALL.as_dict()


def test_model_object_under_the_model_key_is_unwrapped(tmp_path, model):
    path = tmp_path / "whole.pt"
    torch.save({"model": model}, path)  # legacy: the module itself, not its state dict
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_checkpoint(path)
    _assert_same_weights(load_checkpoint(path, trust_checkpoint=True), model)


@pytest.mark.parametrize("gone", ["module", "class"])
def test_pickled_model_whose_code_is_gone_is_one_line(tmp_path, monkeypatch, gone):
    import sys
    import types

    mod = types.ModuleType("hdm_legacy_training_code")

    class DR_Net_phy(torch.nn.Module):  # the published class name
        def __init__(self):
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 1)

    DR_Net_phy.__module__ = mod.__name__
    DR_Net_phy.__qualname__ = "DR_Net_phy"
    mod.DR_Net_phy = DR_Net_phy
    monkeypatch.setitem(sys.modules, mod.__name__, mod)
    path = tmp_path / "legacy.pth"
    torch.save(DR_Net_phy(), path)
    if gone == "module":  # ModuleNotFoundError while unpickling
        monkeypatch.delitem(sys.modules, mod.__name__)
    else:  # AttributeError: the module exists, the class does not
        del mod.DR_Net_phy
    with pytest.raises(CheckpointError, match="not importable here") as info:
        read_state_dict(path, trust_checkpoint=True)
    assert "state_dict()" in info.value.hint
