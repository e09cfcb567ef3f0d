"""Deformable convolutions in tiles (torch-free): the static reach comes from the receptive-field walk,
the rest from the offsets inside each tile at run time (``TiledRunner.tile_halo``). Exact for any
offsets, and one pixel less on any side breaks it."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

from hdm_deploy.core.errors import ModelFormatError
from hdm_deploy.graph.receptive import stage_halo
from hdm_deploy.runtime.tiled import StageSpec, TensorSpec, TiledManifest, TiledRunner

C = 3
NCHW = (2, 3)


def _deform_graph() -> onnx.ModelProto:
    rng = np.random.default_rng(1)
    w = numpy_helper.from_array(rng.standard_normal((C, C, 3, 3)).astype(np.float32), "w")
    b = numpy_helper.from_array(rng.standard_normal(C).astype(np.float32), "b")
    node = helper.make_node("DeformConv", ["x", "w", "offset", "b", "mask"], ["y"], pads=[1, 1, 1, 1])
    dims = ["N", None, "H", "W"]

    def vi(name, ch):
        return helper.make_tensor_value_info(name, TensorProto.FLOAT, [dims[0], ch, dims[2], dims[3]])

    graph = helper.make_graph(
        [node], "dcn", [vi("x", C), vi("offset", 18), vi("mask", 9)], [vi("y", C)], [w, b]
    )
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)])


@pytest.fixture(scope="module")
def dcn(tmp_path_factory):
    model = _deform_graph()
    d = tmp_path_factory.mktemp("dcn")
    onnx.save(model, d / "m.dcn.onnx")
    rows, cols = stage_halo(model, {"x": 1.0, "offset": 1.0, "mask": 1.0}, {"y": 1.0}, dict.fromkeys(
        ("x", "offset", "mask", "y"), NCHW), deform=True)  # fmt: skip
    spec = StageSpec(
        name="dcn",
        mode="tiled",
        file="m.dcn.onnx",
        inputs={k: TensorSpec(1.0, NCHW) for k in ("x", "offset", "mask")},
        outputs={"y": TensorSpec(1.0, NCHW)},
        halo=((rows.before_aligned, rows.after_aligned), (cols.before_aligned, cols.after_aligned)),
        align=1,
        displacement={"tensor": "offset", "inputs": ["x"], "rows": [0, 2], "cols": [1, 2]},
    )
    manifest = TiledManifest(
        path=d / "m.tiled.json",
        family="",
        pad_multiple=1,
        min_side=1,
        max_pixels=0,
        outputs=["y"],
        stages=[spec],
        whole="",
    )
    return model, manifest, spec, (rows, cols)


def test_walk_gives_the_static_reach_and_refuses_deform_unless_asked(dcn):
    model, _, _, (rows, cols) = dcn
    assert (rows.before, rows.after, cols.before, cols.after) == (1, 1, 1, 1)
    with pytest.raises(ModelFormatError, match="DeformConv"):
        stage_halo(model, {"x": 1.0, "offset": 1.0, "mask": 1.0}, {"y": 1.0}, dict.fromkeys(
            ("x", "offset", "mask", "y"), NCHW))  # fmt: skip


def _inputs(H, W, dy, dx, seed=0, batch=1):
    rng = np.random.default_rng(seed)
    off = np.empty((batch, 18, H, W), np.float32)
    off[:, 0::2] = dy
    off[:, 1::2] = dx
    return {
        "x": rng.standard_normal((batch, C, H, W)).astype(np.float32),
        "offset": off,
        "mask": rng.uniform(0.2, 1, (batch, 9, H, W)).astype(np.float32),
    }


def _worst(runner, spec, tensors, H, W):
    whole = runner.run_stage(spec, dict(tensors))["y"]
    tiled = runner.run_tiled_stage(spec, tensors, H, W)["y"]
    return float(np.abs(whole - tiled).max())


class _Short(TiledRunner):
    def __init__(self, *a, cut: int, **k):
        super().__init__(*a, **k)
        self.cut = cut

    def tile_halo(self, stage, tensors, ys, xs):
        h = list(super().tile_halo(stage, tensors, ys, xs))
        h[self.cut] -= 1
        return tuple(h)


@pytest.mark.parametrize("batch", [1, 2])
def test_random_large_offsets_are_exact(dcn, batch):
    _, manifest, spec, _ = dcn
    H, W = 37, 45
    rng = np.random.default_rng(3)
    dy = rng.uniform(-6.5, 6.5, (batch, 9, H, W)).astype(np.float32)
    dx = rng.uniform(-5.5, 7.5, (batch, 9, H, W)).astype(np.float32)
    tensors = _inputs(H, W, dy, dx, batch=batch)
    with TiledRunner(manifest, tile=8) as runner:
        assert _worst(runner, spec, tensors, H, W) <= 1e-4
        assert runner.tile_halo(spec, tensors, (8, 16), (8, 16))[0] >= 7  # 1 static + 6..7 from offsets


@pytest.mark.parametrize("side", range(4))
def test_one_pixel_less_than_the_offsets_need_breaks_it(dcn, side):
    """Constant fractional offsets (−3.5 rows/cols reach 5 before, +2.5 reach 4 after): the computed
    halo is exact; one less on any side samples a zero instead of a neighbour's pixel."""
    _, manifest, spec, _ = dcn
    H, W = 32, 40
    d = -3.5 if side in (0, 2) else 2.5
    dy = d if side < 2 else 0.0
    dx = d if side >= 2 else 0.0
    tensors = _inputs(H, W, dy, dx)
    with TiledRunner(manifest, tile=8) as runner:
        halo = runner.tile_halo(spec, tensors, (8, 16), (8, 16))
        assert halo[side] == (5 if d < 0 else 4)
        assert _worst(runner, spec, tensors, H, W) <= 1e-4
    with _Short(manifest, tile=8, cut=side) as short:
        assert _worst(short, spec, tensors, H, W) >= 1e-2
