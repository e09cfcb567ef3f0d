"""The exact tiled path (``export --tiled`` + :class:`~hdm_deploy.runtime.tiled.TiledRunner`) vs the
whole-frame graph, in ONNX Runtime: photographs at several sizes (not multiples of 4 or of the tile),
several tile sizes, batch 2; and the halo from the receptive-field walk is the least that is exact."""

from __future__ import annotations

import json

import numpy as np
import pytest

import _export_helpers
import _tiled_helpers
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
from hdm_deploy.runtime.tiled import TiledManifest, TiledRunner, manifest_path_for


@pytest.fixture(scope="module")
def tiled_export(export_dir):
    return _tiled_helpers.tiled_small_export()


@pytest.fixture(scope="module")
def whole(tiled_export):
    with OnnxRuntimeRunner(tiled_export.path, device="cpu") as runner:
        yield runner


def _compare(a, b):
    diff = np.abs(a.image.astype(np.int16) - b.image.astype(np.int16))
    return float(np.mean(diff == 0)), int(diff.max())


def test_export_writes_stages_and_manifest_with_computed_halos(tiled_export):
    manifest = json.loads(manifest_path_for(tiled_export.path).read_text())
    stages = {s["name"]: s for s in manifest["stages"]}
    assert [s["name"] for s in manifest["stages"]] == [
        "prior", "stem", "trunk_fab", "dcn1", "trunk_region1", "dcn2", "trunk_out", "head",
    ]  # fmt: skip
    assert [s["mode"] for s in manifest["stages"]] == [
        "whole", "tiled", "whole", "tiled", "whole", "tiled", "whole", "tiled",
    ]  # fmt: skip
    for dcn in ("dcn1", "dcn2"):  # the deformable conv's static reach: 1 px of the 1/4 map
        assert stages[dcn]["halo"]["rows"]["before"] == 4 and stages[dcn]["halo"]["cols"]["after"] == 4
        assert stages[dcn]["displacement"]["rows"] == [0, 2]
    for s in manifest["stages"]:
        assert (tiled_export.path.parent / s["file"]).exists()
        assert s["tensorrt_profile"]
    # by hand: res2 needs conv0 k5 p2 → conv k3 p1 → conv k3 s2 p1 → conv k3 p1 → conv k3 s2 p1:
    # [4a − 8, 4b + 5) of the frame for res2 [a, b)
    assert stages["stem"]["halo"]["rows"] == {
        "before": 8,
        "after": 5,
        "before_aligned": 8,
        "after_aligned": 5,
    }
    assert stages["head"]["halo"]["cols"]["before"] == 12  # 3 px of the 1/4-res map
    # the export's own check (tiles of 64 on the golden photographs) passed exactly
    assert tiled_export.tiled and all(r["passed"] for r in tiled_export.tiled)


@pytest.mark.parametrize(
    ("size", "tile", "batch"),
    [((150, 100), 32, 1), ((161, 107), 48, 1), ((97, 63), 64, 1), ((130, 90), 40, 2), ((64, 48), 256, 1)],
)
def test_tiled_equals_whole_frame(tiled_export, whole, size, tile, batch):
    frames = _export_helpers.photo_frames(*size, batch=batch)
    with TiledRunner(manifest_path_for(tiled_export.path), tile=tile) as tiled:
        got = tiled(frames)
        assert tiled.tiles_run >= 2 or tile >= max(size)
    ref = whole(frames)
    same, worst = _compare(ref, got)
    assert got.image.shape == ref.image.shape
    assert same >= 0.9999 and worst <= 1, (same, worst)
    np.testing.assert_array_equal(got.extras["masks"], ref.extras["masks"])


def _stage_outputs(runner, stage, H=100, W=152, seed=0):
    """max |whole − tiled| per output of one tiled stage, on random inputs (a receptive field is a
    property of the graph: random features excite every tap, a photo's smooth features may not)."""
    rng = np.random.default_rng(seed)
    spec = next(s for s in runner.manifest.stages if s.name == stage)
    session = runner._session(spec)
    tensors = {}
    for inp in session.get_inputs():
        t = spec.inputs[inp.name]
        shape = [1 if not isinstance(d, int) else d for d in inp.shape]
        shape[t.axes[0]], shape[t.axes[1]] = round(H * t.scale), round(W * t.scale)
        if inp.type == "tensor(uint8)":
            tensors[inp.name] = rng.integers(0, 256, shape, dtype=np.uint8)
        else:
            tensors[inp.name] = rng.standard_normal(shape).astype(np.float32)
    whole = runner.run_stage(spec, dict(tensors))
    tiled = runner.run_tiled_stage(spec, tensors, H, W)
    return {k: float(np.abs(whole[k].astype(np.float64) - tiled[k]).max()) for k in whole}


def test_one_pixel_less_halo_breaks_exactness(tiled_export, whole):
    """Each side of each tiled stage's halo (from the receptive-field walk), reduced by one pixel of
    the stage input's own grid, makes that stage's tiled output differ from its whole-frame output
    (the stem's region start must stay on its stride-4 grid, so its 'before' side loses 4 px);
    with the computed halo the difference is float rounding at most."""
    path = manifest_path_for(tiled_export.path)
    stages = {s.name: s for s in TiledManifest.load(path).stages}
    (rb, ra), (cb, ca) = stages["stem"].halo
    (hb, ha), (hcb, hca) = stages["head"].halo
    with TiledRunner(path, tile=32) as exact:
        for stage in ("stem", "head"):
            assert max(_stage_outputs(exact, stage).values()) <= 1e-5, stage
    cuts = {
        "stem rows after −1": ("stem", {"stem": ((rb, ra - 1), (cb, ca))}),
        "stem cols after −1": ("stem", {"stem": ((rb, ra), (cb, ca - 1))}),
        "stem rows before −4": ("stem", {"stem": ((rb - 4, ra), (cb, ca))}),
        "stem cols before −4": ("stem", {"stem": ((rb, ra), (cb - 4, ca))}),
        "head rows after −1 quarter px": ("head", {"head": ((hb, ha - 4), (hcb, hca))}),
        "head cols after −1 quarter px": ("head", {"head": ((hb, ha), (hcb, hca - 4))}),
        "head rows before −1 quarter px": ("head", {"head": ((hb - 4, ha), (hcb, hca))}),
        "head cols before −1 quarter px": ("head", {"head": ((hb, ha), (hcb - 4, hca))}),
    }
    for label, (stage, override) in cuts.items():
        with TiledRunner(path, tile=32, halo_override=override) as short:
            worst = max(_stage_outputs(short, stage).values())
        # stem: float features; head: uint8 levels
        assert worst >= (1 if stage == "head" else 1e-3), f"{label}: still exact (max diff {worst})"


def test_tile_size_must_be_aligned(tiled_export):
    from hdm_deploy.core.errors import InputImageError

    with pytest.raises(InputImageError, match="multiple of 4"):
        TiledRunner(manifest_path_for(tiled_export.path), tile=30)
