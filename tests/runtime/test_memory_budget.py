"""Memory budgets: the planner (whole frame / tiled / refusal), ``--max-memory`` in the CLI, ``fits``,
and the approximate overlap tiling whose PSNR is always measured."""

from __future__ import annotations

import math

import numpy as np
import pytest
from typer.testing import CliRunner

import _export_helpers
import _tiled_helpers
from hdm_deploy.cli import app
from hdm_deploy.families.registry import get_family
from hdm_deploy.runtime import load_runner
from hdm_deploy.runtime.budget import (
    MARGIN,
    BudgetError,
    BudgetRunner,
    MemoryModel,
    OverlapRunner,
    largest_frames,
    parse_bytes,
    plan_execution,
    psnr,
)
from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner

#: a synthetic model for the planner's logic (the shipped one is measured: see test_shipped_model)
MODEL = MemoryModel(
    whole_base=200e6,
    whole_per_pixel=1600.0,
    tiled_base=250e6,
    tiled_per_frame_pixel=150.0,
    tiled_per_region_pixel=900.0,
)


@pytest.fixture(scope="module")
def tiled_small(export_dir):
    return _tiled_helpers.tiled_small_export()


def test_parse_bytes():
    assert parse_bytes("3G") == 3 * 2**30
    assert parse_bytes("3GiB") == parse_bytes("3gb") == 3 * 2**30
    assert parse_bytes("512M") == 512 * 2**20
    assert parse_bytes("2.5g") == int(2.5 * 2**30)
    for bad in ("three", "3X", "-1G", "0"):
        with pytest.raises(Exception) as info:
            parse_bytes(bad)
        assert getattr(info.value, "exit_code", None) == 2


def test_planner_whole_when_it_fits_else_largest_tile_else_refuses():
    plan = plan_execution(MODEL, 1080, 1920, 1, 8 * 2**30, tiled=True, grow=(20, 20))
    assert plan.mode == "whole" and plan.predicted <= 8 * 2**30
    plan = plan_execution(MODEL, 2160, 3840, 1, 3 * 2**30, tiled=True, grow=(20, 20))
    assert plan.mode == "tiled" and plan.predicted <= 3 * 2**30
    bigger = plan_execution(MODEL, 2160, 3840, 1, 5 * 2**30, tiled=True, grow=(20, 20))
    assert bigger.mode == "tiled" and bigger.tile > plan.tile  # more memory, larger tiles
    with pytest.raises(BudgetError) as info:
        plan_execution(MODEL, 4320, 7680, 1, 2**30, tiled=True, grow=(20, 20))
    assert info.value.exit_code == 2
    text = str(info.value)
    assert "7680×4320" in text and "fits at most" in text and "--max-memory" in text
    # without the tiled stage graphs the whole frame is the only choice
    with pytest.raises(BudgetError, match="export --tiled"):
        plan_execution(MODEL, 2160, 3840, 1, 3 * 2**30, tiled=False)


def test_largest_frames_fit_and_one_step_more_does_not():
    budget = 3 * 2**30
    best = largest_frames(MODEL, budget, 16 / 9, tiled=True, grow=(20, 20))
    (ww, wh), (tw, th) = best["whole"], best["tiled"]
    assert tw * th > ww * wh
    limit = budget / (1 + MARGIN)  # the planner's headroom for the model's error
    assert MODEL.whole(ww * wh) <= limit < MODEL.whole((ww + 32) * (wh + 18))
    assert plan_execution(MODEL, th, tw, 1, budget, tiled=True, grow=(20, 20)).mode == "tiled"


def test_shipped_model_is_measured_and_reproduces_its_rows():
    """The shipped coefficients come from benchmarks/memory_model.py and predict its own measured
    rows (peak RSS of whole-frame and tiled runs) within 15 %."""
    import json
    from importlib import resources
    from pathlib import Path

    mm = MemoryModel.load()
    assert "benchmarks/memory_model.py" in mm.provenance["command"]
    assert mm.whole_per_pixel > mm.tiled_per_frame_pixel > 0
    data = json.loads(
        Path(str(resources.files("hdm_deploy.runtime") / "data" / "memory_model.json")).read_text()
    )
    sizes = {"VGA": (640, 480), "720p": (1280, 720), "1080p": (1920, 1080), "4K": (3840, 2160)}
    grow = data["grow"]
    checked = 0
    for row in data["rows"]:
        if "peak_rss" not in row or row["arena"] != "off" or row["mem_pattern"] != "off":
            continue
        w, h = sizes[row["size"]]
        p = -(-w // 4) * 4 * (-(-h // 4) * 4)
        if row["tile"]:
            t = row["tile"]
            predicted = mm.tiled(p, (min(t, h) + grow[0]) * (min(t, w) + grow[1]))
        else:
            predicted = mm.whole(p)
        assert abs(predicted / row["peak_rss"] - 1) < 0.15, (row, predicted)
        checked += 1
    assert checked >= 5


def test_budget_runner_picks_and_matches(tiled_small):
    frames = _export_helpers.photo_frames(130, 90)
    whole = OnnxRuntimeRunner(tiled_small.path, device="cpu")(frames)
    with BudgetRunner(tiled_small.path, max_memory=64 * 2**30, memory_model=MODEL) as r:
        assert np.array_equal(r(frames).image, whole.image)
        assert r.last_plan.mode == "whole"
    # a budget the whole frame exceeds but the tiled path meets (coefficients scale by width 8/64)
    steep = MemoryModel(1e6, 1e5, 1e6, 100.0, 100.0)
    budget = 5 * 10**6
    assert steep.for_width(8).whole(92 * 132) > budget
    with BudgetRunner(tiled_small.path, max_memory=budget, memory_model=steep) as r:
        got = r(frames)
        assert r.last_plan.mode == "tiled"
    assert np.mean(got.image == whole.image) >= 0.9999
    np.testing.assert_array_equal(got.extras["masks"], whole.extras["masks"])
    with load_runner(tiled_small.path, tile=32) as forced:
        got = forced(frames)
        assert forced.last_plan.mode == "tiled" and forced.tiled.tiles_run > 4
    assert np.mean(got.image == whole.image) >= 0.9999


def test_cli_max_memory_too_small_exits_2(tiled_small, tmp_path):
    src = tmp_path / "in.png"
    import cv2

    cv2.imwrite(str(src), _export_helpers.photo_frames(64, 48)[0][..., ::-1])
    result = CliRunner().invoke(
        app,
        [
            "infer",
            str(src),
            "--model",
            str(tiled_small.path),
            "--max-memory",
            "1M",
            "-o",
            str(tmp_path / "o.png"),
        ],
    )
    assert result.exit_code == 2, result.output
    assert "too small" in result.output and "fits at most" in result.output
    assert not (tmp_path / "o.png").exists()
    result = CliRunner().invoke(
        app,
        ["infer", str(src), "--model", str(tiled_small.path), "--tile", "32", "-o", str(tmp_path / "o.png")],
    )
    assert result.exit_code == 0, result.output
    assert "memory plan: tiled, tile 32" in result.output


def test_cli_fits(tiled_small):
    result = CliRunner().invoke(app, ["fits", str(tiled_small.path), "--memory", "8G"])
    assert result.exit_code == 0, result.output
    assert "largest 16:9" in result.output and "4K" in result.output


def test_overlap_tiling_is_approximate_and_measured(tiled_small):
    """HDM's whole graph on overlapping tiles (approximate mode, though HDM tiles exactly): the PSNR
    against the whole frame is measured and reported on every call."""
    assert get_family("hdm").tiling == "exact"
    frames = _export_helpers.photo_frames(150, 100)
    lines = []
    inner = OnnxRuntimeRunner(tiled_small.path, device="cpu")
    whole = inner(frames).image
    with OverlapRunner(inner, tile=64, overlap=16, report=lines.append) as r:
        got = r(frames)
    assert got.image.shape == whole.shape and not got.extras
    assert len(lines) == 1 and "PSNR" in lines[0] and "approximate" in lines[0]
    assert math.isclose(r.last_psnr, psnr(whole, got.image))
    assert math.isfinite(r.last_psnr) and r.last_psnr > 15  # not exact (global ops), but close
    # through load_runner and the CLI option
    with load_runner(tiled_small.path, tile=64, overlap=16) as r2:
        assert isinstance(r2, OverlapRunner)


def test_cli_bench_with_budget(tiled_small):
    result = CliRunner().invoke(
        app,
        [
            "bench",
            str(tiled_small.path),
            "--size",
            "64x48",
            "--warmup",
            "0",
            "--iters",
            "1",
            "--max-memory",
            "64G",
        ],
    )
    assert result.exit_code == 0, result.output
    result = CliRunner().invoke(
        app, ["bench", str(tiled_small.path), "--size", "640x480", "--iters", "1", "--max-memory", "1M"]
    )
    assert result.exit_code == 2 and "too small" in result.output
