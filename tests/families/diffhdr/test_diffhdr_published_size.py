"""The published-size networks once, on a tiny input: a checkpoint written from the reference key
files loads strictly, and its exported graphs match PyTorch for one step."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from _diffhdr_checkpoints import published_shapes, write_published
from hdm_deploy.families.checkpoint_io import read_state_dict
from hdm_deploy.families.diffhdr.checkpoint import load_published
from hdm_deploy.families.diffhdr.export import condition_path_for, export_graphs
from hdm_deploy.families.diffhdr.sampler import OrtGraphs


@pytest.mark.slow
def test_published_size_checkpoint_loads_and_its_graphs_match_pytorch_on_a_32px_patch(tmp_path):
    ckpt = tmp_path / "Hdr_ddpm3000000.pth.tar"
    written = write_published(ckpt, published_shapes("unet"), published_shapes("ahdr"))
    state, _ = read_state_dict(ckpt)
    assert len(state) == 306 + 12 + 306  # UNet, AHDR, EMA shadow
    model, _ = load_published(ckpt)
    assert all(torch.equal(v, written["unet"][f"module.{k}"]) for k, v in model.unet.state_dict().items())
    assert all(torch.equal(v, written["ahdr"][f"module.{k}"]) for k, v in model.ahdr.state_dict().items())
    ckpt.unlink()

    unet, cond = export_graphs(model)
    path = tmp_path / "diffhdr.onnx"
    onnx.save(unet, path)
    onnx.save(cond, condition_path_for(path))
    dims = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in unet.graph.input
    }
    assert dims["x_t"][1] == 3 and isinstance(dims["x_t"][0], str)  # dynamic patch batch
    graphs = OrtGraphs(path, condition_path_for(path))
    gen = torch.Generator().manual_seed(1)
    c = torch.rand(2, 18, 32, 32, generator=gen)
    x_t = torch.randn(2, 3, 32, 32, generator=gen)
    t = torch.tensor([960.0])
    with torch.no_grad():
        feature = model.ahdr.from_condition(c)
        eps = model.unet(x_t, t, feature).numpy()
    feat_ort = graphs.feature(c.numpy())
    eps_ort = graphs.eps(x_t.numpy(), feature.numpy(), t.numpy())
    assert np.linalg.norm(feat_ort - feature.numpy()) / np.linalg.norm(feature.numpy()) <= 1e-5
    assert np.linalg.norm(eps_ort - eps) / np.linalg.norm(eps) <= 1e-4
