"""DiffHDR networks: module trees equal the published key files, published parameter counts."""

from __future__ import annotations

import pytest
import torch

from _diffhdr_checkpoints import published_shapes
from hdm_deploy.families.diffhdr.family import detect
from hdm_deploy.families.diffhdr.model import DiffHDR, DiffHDRConfig, timestep_embedding


def test_published_size_keys_and_shapes_equal_the_key_files():
    model = DiffHDR(DiffHDRConfig.published())
    for net, which in ((model.unet, "unet"), (model.ahdr, "ahdr")):
        expected = {k.removeprefix("module."): s for k, s in published_shapes(which).items()}
        got = {k: tuple(v.shape) for k, v in net.state_dict().items()}
        assert got == expected
    assert sum(p.numel() for p in model.unet.parameters()) == 75_048_195
    assert sum(p.numel() for p in model.ahdr.parameters()) == 556_928
    assert len(published_shapes("unet")) == 306 and len(published_shapes("ahdr")) == 12


def test_detection_from_checkpoint_keys():
    unet = [f"ddpm_state_dict.{k}" for k in published_shapes("unet")]
    ahdr = [f"cnn_state_dict.{k}" for k in published_shapes("ahdr")]
    assert detect(unet + ahdr) == "published"
    assert detect(unet) is None and detect(ahdr) is None and detect([]) is None
    # an HDM-style plain state dict is not DiffHDR
    assert detect([k.removeprefix("module.") for k in published_shapes("unet")]) is None


def test_timestep_embedding_is_the_published_formula():
    t = torch.tensor([960.0])
    emb = timestep_embedding(t, 128)
    k = torch.arange(64, dtype=torch.float64)
    freqs = torch.exp(-k * torch.log(torch.tensor(10000.0, dtype=torch.float64)) / 63)
    ref = torch.cat([torch.sin(960 * freqs), torch.cos(960 * freqs)])[None]
    assert torch.allclose(emb.double(), ref, atol=2e-4)


@pytest.mark.parametrize("batch", [1, 3])
def test_tiny_forward_shapes(batch):
    model = DiffHDR(DiffHDRConfig.tiny()).eval()
    with torch.no_grad():
        eps = model(torch.rand(batch, 18, 32, 32), torch.randn(batch, 3, 32, 32), torch.tensor([40.0]))
    assert eps.shape == (batch, 3, 32, 32) and torch.isfinite(eps).all()
