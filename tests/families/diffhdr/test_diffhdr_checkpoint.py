"""Published-format DiffHDR checkpoints: allow-listed weights-only loading, raw vs EMA, re-save."""

from __future__ import annotations

import argparse
import pickle

import pytest
import torch

from _diffhdr_checkpoints import write_published, write_tiny
from hdm_deploy.core.errors import CheckpointError
from hdm_deploy.families.checkpoint_io import open_checkpoint
from hdm_deploy.families.diffhdr.checkpoint import load_published, resave_tensors_only


class Payload:  # an arbitrary pickled object: must not be unpickled without trust
    def __reduce__(self):
        return (print, ("unpickled!",))


def _same(module: torch.nn.Module, state: dict, prefix: str = "module.") -> bool:
    return all(torch.equal(v, state[prefix + k]) for k, v in module.state_dict().items())


def test_published_format_loads_weights_only_raw_by_default(tmp_path):
    path = tmp_path / "Hdr_ddpm3000000.pth.tar"
    written = write_tiny(path)
    # plain torch refuses it: the pickled Namespace (that is why the allow-list exists)
    with pytest.raises(pickle.UnpicklingError):
        torch.load(path, weights_only=True)
    model, _ = load_published(path)
    assert _same(model.unet, written["unet"]) and _same(model.ahdr, written["ahdr"])
    family, generic, _ = open_checkpoint(path)  # family detected from the keys by the generic reader
    assert family.name == "diffhdr" and _same(generic.unet, written["unet"])


def test_ema_on_request(tmp_path):
    path = tmp_path / "ckpt.pth.tar"
    written = write_tiny(path)
    model, _ = load_published(path, ema=True)
    assert _same(model.unet, written["ema"], prefix="")
    assert _same(model.ahdr, written["ahdr"])  # AHDR has no EMA
    assert not _same(model.unet, written["unet"])


def test_arbitrary_pickle_needs_trust(tmp_path):
    path = tmp_path / "evil.pth.tar"
    write_tiny(path, extra={"hook": Payload()})
    with pytest.raises(CheckpointError, match="--trust-checkpoint"):
        load_published(path)
    model, _ = load_published(path, trust_checkpoint=True)
    assert model.unet.conv_in.weight.shape[1] == 3


def test_resave_is_tensors_only_and_round_trips(tmp_path):
    src, dst, dst_ema = tmp_path / "c.pth.tar", tmp_path / "c.pt", tmp_path / "c_ema.pt"
    written = write_tiny(src)
    resave_tensors_only(src, dst)
    resave_tensors_only(src, dst_ema, ema=True)
    plain = torch.load(dst, weights_only=True)  # no allow-list needed any more
    assert set(plain) >= {"ddpm_state_dict", "cnn_state_dict", "ema_helper"}
    assert not any(isinstance(v, argparse.Namespace) for v in plain.values())
    again, _ = load_published(dst)
    assert _same(again.unet, written["unet"])
    ema, _ = load_published(dst_ema)
    assert _same(ema.unet, written["ema"], prefix="")


def test_misshaped_and_partial_checkpoints_are_refused(tmp_path):
    from _diffhdr_checkpoints import tiny_shapes

    unet, ahdr = tiny_shapes()
    bad = dict(unet, **{"module.conv_in.weight": (32, 4, 3, 3)})
    write_published(tmp_path / "bad.pth.tar", bad, ahdr)
    with pytest.raises(CheckpointError, match="mis-shaped"):
        load_published(tmp_path / "bad.pth.tar")
    torch.save({"ddpm_state_dict": {k: torch.zeros(s) for k, s in unet.items()}}, tmp_path / "half.pt")
    with pytest.raises(CheckpointError):
        load_published(tmp_path / "half.pt")
