"""runtime/bench.py: timing rules (warm-up excluded), sizes, tables, JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest

from hdm_deploy.core.errors import InputImageError
from hdm_deploy.core.runner import Prediction, Runner
from hdm_deploy.core.sizes import parse_size
from hdm_deploy.runtime.bench import (
    BenchResult,
    bench_frames,
    bench_models,
    benchmark,
    render_table,
    write_json,
)


class CountingRunner(Runner):
    backend = "fake"

    def __init__(self):
        super().__init__(None)
        self.calls = 0
        self.shapes = []

    def _run(self, frames):
        self.calls += 1
        self.shapes.append(frames.shape)
        return Prediction(image=frames)


def test_parse_size():
    assert parse_size("640x480") == (640, 480)
    assert parse_size(" 1280×720 ") == (1280, 720)
    for bad in ("640", "axb", "0x5", "1x2x3"):
        with pytest.raises(InputImageError):
            parse_size(bad)


def test_warmup_is_not_timed_and_stats_are_consistent():
    runner = CountingRunner()
    res = benchmark(runner, (32, 24), batch=3, warmup=2, iters=5)
    assert runner.calls == 7 and len(res.times_ms) == 5
    assert runner.shapes[0] == (3, 24, 32, 3)
    assert res.p90_ms >= res.median_ms > 0
    assert res.fps == pytest.approx(3000.0 / res.median_ms)
    assert (res.width, res.height, res.batch) == (32, 24, 3)


def test_frames_are_real_photographs():
    frames = bench_frames((64, 48), batch=2)
    assert frames.shape == (2, 48, 64, 3) and frames.dtype == np.uint8
    assert frames.std() > 20  # not a flat test pattern
    assert not np.array_equal(frames[0], frames[1])


def test_table_and_json(tmp_path):
    results = [
        BenchResult(
            "a.pk", "torch", "cpu", 64, 48, 1, 1, 3, [10.0, 12.0, 11.0], {"options": {"masks": "torch"}}
        ),
        BenchResult("a.onnx", "onnxruntime", "cpu", 64, 48, 1, 1, 3, [5.0, 6.0, 5.5], {}),
    ]
    from rich.console import Console

    console = Console(record=True, width=200)
    console.print(render_table(results))
    text = console.export_text()
    assert "2.00×" in text and "masks=torch" in text and "a.onnx" in text
    data = json.loads(write_json(results, tmp_path / "b.json").read_text())
    assert data["results"][1]["median_ms"] == 5.5


@pytest.mark.slow
def test_bench_onnx_model():
    from _export_helpers import small_export

    (res,) = bench_models([small_export("uint8").path], (40, 32), batch=2, warmup=1, iters=2)
    assert res.backend == "onnxruntime" and len(res.times_ms) == 2 and res.batch == 2
