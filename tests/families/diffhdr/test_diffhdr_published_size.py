"""The published-size networks once, on a tiny input: exported graphs vs PyTorch for one step."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from hdm_deploy.families.diffhdr.export import condition_path_for, export_graphs
from hdm_deploy.families.diffhdr.model import DiffHDR, DiffHDRConfig
from hdm_deploy.families.diffhdr.sampler import OrtGraphs


@pytest.mark.slow
def test_published_size_graphs_match_pytorch_on_a_32px_patch(tmp_path):
    torch.manual_seed(0)
    model = DiffHDR(DiffHDRConfig.published()).eval()
    unet, cond = export_graphs(model)
    path = tmp_path / "diffhdr.onnx"
    onnx.save(unet, path)
    onnx.save(cond, condition_path_for(path))
    inputs = {
        i.name: [d.dim_param or d.dim_value for d in i.type.tensor_type.shape.dim] for i in unet.graph.input
    }
    assert inputs["x_t"][1] == 3 and isinstance(inputs["x_t"][0], str)  # dynamic patch batch
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
