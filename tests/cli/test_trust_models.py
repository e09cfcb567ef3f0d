"""Issue 10, items 2, 5, 9, 10: sound export self-check, models recognised, the pickle refusal, and
frames validated by every runner. Real files: malicious pickles with a marker file, junk checkpoints,
foreign ONNX graphs, perturbed networks."""

from __future__ import annotations

import builtins
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from hdm_deploy.core.errors import CheckpointError, InputImageError, ModelFormatError, ParityError
from hdm_deploy.core.runner import Prediction, Runner, quantize
from hdm_deploy.runtime.parity import Thresholds, compare, matching_levels

ROOT = Path(__file__).resolve().parents[2]


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src"), "COLUMNS": "200"}
    return subprocess.run(
        [sys.executable, "-m", "hdm_deploy.cli", *args], capture_output=True, text=True, cwd=cwd, env=env
    )


def _one_node(op: str, path: Path, inp: str = "X", out: str = "Y", elem=TensorProto.FLOAT, meta=None) -> Path:
    shape = ["N", "H", "W", 3]
    graph = helper.make_graph(
        [helper.make_node(op, [inp], [out])],
        op.lower(),
        [helper.make_tensor_value_info(inp, elem, shape)],
        [helper.make_tensor_value_info(out, elem, shape)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 19)], ir_version=9)
    for k, v in (meta or {}).items():
        model.metadata_props.add(key=k, value=v)
    onnx.save(model, path)
    return path


# ---- item 10: every runner validates its frames -------------------------------------------------


def test_run_is_concrete_and_validates_before_the_backend():
    from hdm_deploy.families.hdm.torch_runner import TorchRunner
    from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner
    from hdm_deploy.tensorrt.runner import TensorRTRunner

    for cls in (OnnxRuntimeRunner, TorchRunner, TensorRTRunner):
        assert "run" not in vars(cls) and "_run" in vars(cls), cls  # nobody bypasses Runner.run

    calls = []

    class Fake(Runner):
        min_side = 4

        def _run(self, frames):
            calls.append(frames.shape)
            return Prediction(image=frames)

    r = Fake(None)
    for bad, match in (
        (np.zeros((2, 2, 3), np.uint8), "too small"),
        (np.zeros((8, 8, 3), np.float32), "uint8"),
        (np.zeros((8, 8), np.uint8), r"\[N, H, W, 3\]"),
    ):
        with pytest.raises(InputImageError, match=match):
            r.run(bad)
    assert calls == []
    assert r.run(np.zeros((8, 8, 3), np.uint8)).image.shape == (1, 8, 8, 3)  # promoted, then run
    assert calls == [(1, 8, 8, 3)]


def test_ort_runner_refuses_a_2x2_frame_before_onnxruntime(tmp_path):
    from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner

    path = _one_node(
        "Identity",
        tmp_path / "m.onnx",
        "image",
        "enhanced",
        TensorProto.UINT8,
        {"family": "hdm", "io": "uint8", "min_side": "4", "pad_multiple": "4", "max_pixels": "4096"},
    )
    with OnnxRuntimeRunner(path, device="cpu") as runner:
        with pytest.raises(InputImageError, match="too small: this model needs at least 4×4"):
            runner.run(np.zeros((1, 2, 2, 3), np.uint8))
        with pytest.raises(InputImageError, match="larger than this model supports"):
            runner.run(np.zeros((1, 72, 72, 3), np.uint8))  # 5184 > max_pixels
        frames = np.arange(8 * 8 * 3, dtype=np.uint8).reshape(1, 8, 8, 3)
        np.testing.assert_array_equal(runner.run(frames).image, frames)


# ---- item 5: models are recognised, not assumed -------------------------------------------------


@pytest.mark.parametrize("op", ["Relu", "Identity"])
def test_foreign_onnx_is_refused(tmp_path, op):
    from hdm_deploy.runtime import load_runner

    path = _one_node(op, tmp_path / f"{op}.onnx")
    with pytest.raises(ModelFormatError, match=r"not an hdm-deploy model: its I/O is X → Y") as err:
        load_runner(path, device="cpu")
    assert err.value.exit_code == 2
    with pytest.raises(ModelFormatError, match="not an hdm-deploy model"):  # the override is not enough
        load_runner(path, device="cpu", allow_foreign=True)


def test_right_io_without_metadata_needs_the_override(tmp_path):
    from hdm_deploy.runtime import load_runner

    path = _one_node("Identity", tmp_path / "bare.onnx", "image", "enhanced", TensorProto.UINT8)
    with pytest.raises(ModelFormatError, match=r"no hdm-deploy metadata.*--foreign-model"):
        load_runner(path, device="cpu")
    frames = np.full((1, 8, 8, 3), 7, np.uint8)
    with load_runner(path, device="cpu", allow_foreign=True) as runner:
        np.testing.assert_array_equal(runner(frames).image, frames)
    legacy = _one_node(
        "Identity", tmp_path / "legacy.onnx", "image", "enhanced", TensorProto.UINT8, {"model": "HDM"}
    )
    with load_runner(legacy, device="cpu") as runner:  # files from before the family interface
        assert runner.facts.family == "hdm"
    with pytest.raises(Exception, match="--foreign-model does not apply to a PyTorch checkpoint"):
        load_runner(tmp_path / "x.pth", allow_foreign=True)


def test_convert_without_deformconv_says_nothing_to_convert(tmp_path):
    from hdm_deploy.graph.flavours import convert_file

    src = _one_node("Identity", tmp_path / "id.onnx", "image", "enhanced", TensorProto.UINT8)
    with pytest.raises(ModelFormatError, match="no DeformConv nodes: nothing to convert") as err:
        convert_file(src, tmp_path / "out.onnx", "plugin")
    assert err.value.exit_code == 2 and not (tmp_path / "out.onnx").exists()
    proc = _cli("convert", "id.onnx", "--deform", "plugin", cwd=tmp_path)
    assert proc.returncode == 2 and "nothing to convert" in proc.stdout + proc.stderr
    assert "None →" not in proc.stdout + proc.stderr


# ---- junk checkpoints and item 9: the pickle refusal -------------------------------------------


def _read(path: Path, trust: bool = False):
    from hdm_deploy.families.checkpoint_io import read_state_dict

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            return read_state_dict(path, trust_checkpoint=trust), caught
        except CheckpointError as exc:
            return exc, caught


def test_junk_checkpoints_get_one_line_and_no_warning(tmp_path):
    (tmp_path / "text.pth").write_text("hello")
    (tmp_path / "random.pk").write_bytes(np.random.default_rng(0).bytes(4096))
    (tmp_path / "empty.pt").write_bytes(b"")
    for name in ("text.pth", "random.pk", "empty.pt"):
        exc, caught = _read(tmp_path / name)
        assert isinstance(exc, CheckpointError), name
        assert exc.exit_code == 2 and "not a readable PyTorch checkpoint" in str(exc)
        assert "\n" not in str(exc) and "weights_only" not in str(exc)
        assert not caught, [str(w.message) for w in caught]


class _System:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _Exec:
    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').close()",))


@pytest.mark.parametrize("payload", [_System, _Exec])
def test_code_executing_pickle_is_refused_and_never_runs(tmp_path, payload):
    import torch

    marker = tmp_path / "PWNED"
    path = tmp_path / "evil.pth"
    torch.save({"model": payload(marker)}, path)
    exc, _ = _read(path)
    assert isinstance(exc, CheckpointError) and exc.exit_code == 2
    text = str(exc)
    assert "could run code" in text and "--trust-checkpoint" in text, text
    assert ("system" in text) if payload is _System else ("exec" in text)
    assert "\n" not in text and "weights_only" not in text
    assert not marker.exists()
    # the CLI says the same in one line, and still runs nothing
    proc = _cli("export", "evil.pth", "-o", "m.onnx", cwd=tmp_path)
    assert proc.returncode == 2 and "--trust-checkpoint" in proc.stdout + proc.stderr
    assert not marker.exists() and not (tmp_path / "m.onnx").exists()


def test_refusal_is_recognised_in_every_torch_wording():
    from hdm_deploy.families.checkpoint_io import code_in_pickle

    wordings = {  # torch's _weights_only_unpickler messages, 2.4 … 2.14
        "Trying to load unsupported GLOBAL posix.system whose module posix is blocked.": "posix.system",
        "Unsupported global: GLOBAL __main__.Evil was not an allowed global by default. "
        "Please use `torch.serialization.add_safe_globals([Evil])`": "__main__.Evil",
        "Unsupported class nt.system": "nt.system",
        "Trying to call reduce for unrecognized function <built-in function exec>": "<built-in",
        "Can only create new object for nn.Parameter or classes allowlisted via `add_safe_globals` "
        "but got <class 'evil.Thing'>": "evil.Thing",
    }
    for message, name in wordings.items():
        found = code_in_pickle("Weights only load failed. … WeightsUnpickler error: " + message)
        assert found is not None and name.strip("<") in found, (message, found)
    for junk in ("Unsupported operand 149", "String is too long", "unsupported persistent id encountered"):
        assert code_in_pickle(junk) is None


# ---- item 2: golden criteria robust to float noise, strict on regressions -----------------------


def _pred(image_float: np.ndarray) -> Prediction:
    return Prediction(image=quantize(image_float), image_float=image_float)


def test_boundary_flips_are_identical_real_level_changes_are_not():
    rng = np.random.default_rng(0)
    ref_f = rng.random((1, 3, 107, 160), dtype=np.float32)
    # values exactly around boundaries: x·255 = k + 0.5 ± 1e-5 → noise of 2.1e-5 flips them
    ref_f[0, :, :4, :] = (np.floor(ref_f[0, :, :4, :] * 254) + 0.5 + 1e-5) / 255
    noisy = ref_f - np.float32(2.1e-5)
    res = compare("noise", _pred(noisy), _pred(ref_f))
    assert res.identical_raw < 99.9 and res.max_abs_u8 == 1  # the failure the issue saw …
    assert res.identical == 100.0 and res.passed, res.failures  # … is float noise, not a failure
    strict = compare("noise", _pred(noisy), _pred(ref_f), Thresholds(boundary_eps=None))
    assert not strict.passed and strict.identical == strict.identical_raw

    # ≥ 1 level on 1 % of the pixels (anywhere, including near boundaries) fails
    moved = quantize(ref_f).astype(np.int16)
    idx = rng.choice(
        moved.shape[1] * moved.shape[2], size=moved.shape[1] * moved.shape[2] // 100, replace=False
    )
    ys, xs = np.unravel_index(idx, moved.shape[1:3])
    moved[0, ys, xs, 0] = np.where(moved[0, ys, xs, 0] < 255, moved[0, ys, xs, 0] + 1, 254)
    bad = Prediction(image=moved.astype(np.uint8))
    res = compare("1%", bad, _pred(ref_f))
    assert not res.passed and res.identical < 99.9 and "identical" in res.failed_metrics
    # a 1-level flip counts only where the reference lies near the boundary between the two levels
    ref8 = quantize(ref_f)
    far = np.abs(ref_f * 255 - np.round(ref_f * 255)) < 0.4  # far from k + 0.5
    plus1 = np.clip(ref8.astype(np.int16) + 1, 0, 255).astype(np.uint8)
    ok = matching_levels(plus1, ref8, ref_f, 1e-4)
    assert not ok[far.transpose(0, 2, 3, 1) & (ref8 < 255)].any()


@pytest.fixture(scope="module")
def tiny_goldens():
    """Golden outputs of the small HDM, of a copy with one weight +0.5, and under another thread count."""
    import copy

    import torch

    from _dcp_standin import STANDIN
    from _export_helpers import photo_frames, small_model
    from hdm_deploy.families.hdm.golden import make_golden

    cases = [("photo_96x64", photo_frames(96, 64))]
    model = small_model()
    base = make_golden(model, STANDIN, cases)
    perturbed = copy.deepcopy(model)
    with torch.no_grad():  # one weight of the first convolution, +0.5
        next(p for p in perturbed.parameters() if p.ndim == 4).view(-1)[0] += 0.5
    return base, make_golden(perturbed, STANDIN, cases)


def test_one_weight_plus_half_fails_and_golden_is_reproducible(tiny_goldens):
    import torch

    from _dcp_standin import STANDIN
    from _export_helpers import photo_frames, small_model
    from hdm_deploy.families.hdm.golden import make_golden

    base, perturbed = tiny_goldens
    ref = base.cases[0]
    ref_pred = Prediction(ref.enhanced, ref.enhanced_float, dict(ref.extras))
    bad = perturbed.cases[0]
    res = compare("w+0.5", Prediction(bad.enhanced, bad.enhanced_float, dict(bad.extras)), ref_pred)
    assert not res.passed and {"psnr_db", "max_abs"} & set(res.failed_metrics), res

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:  # the caller's thread count does not matter: golden runs with its own fixed settings
        again = make_golden(small_model(), STANDIN, [("photo_96x64", photo_frames(96, 64))])
    finally:
        torch.set_num_threads(threads)
    assert torch.get_num_threads() == threads and not torch.are_deterministic_algorithms_enabled()
    np.testing.assert_array_equal(again.cases[0].enhanced_float, ref.enhanced_float)
    assert again.manifest["torch_threads"] == 1


def test_failed_self_check_publishes_nothing_that_looks_valid(tmp_path, monkeypatch):
    """The ONNX file is the small network's; its reference comes from a copy with one weight +0.5."""
    import copy

    import torch

    from _dcp_standin import STANDIN
    from _export_helpers import small_model
    from hdm_deploy.export import exporter
    from hdm_deploy.families.hdm import export as hdm_export
    from hdm_deploy.families.hdm.golden import make_golden
    from hdm_deploy.runtime.parity import run_parity

    perturbed = copy.deepcopy(small_model())
    with torch.no_grad():
        next(p for p in perturbed.parameters() if p.ndim == 4).view(-1)[0] += 0.5
    monkeypatch.setattr(
        hdm_export.HdmExport,
        "golden",
        lambda self, model, plan, cases, *, precision, provenance: make_golden(
            perturbed, plan.impl, cases, precision=precision, provenance=provenance
        ),
    )
    out = tmp_path / "model.onnx"
    out.write_bytes(b"the user's previous model")
    with pytest.raises(
        ParityError, match=r"nothing written to model\.onnx, kept as model\.failed\.onnx"
    ) as err:
        exporter.export_onnx(small_model(), out, dcp=STANDIN)
    assert err.value.exit_code == 1
    assert out.read_bytes() == b"the user's previous model"  # untouched
    assert not (tmp_path / "model.golden.npz").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "model.failed.golden.npz",
        "model.failed.onnx",
        "model.onnx",
    ]  # no hidden temporary left
    # the kept pair is self-consistent: parity finds its golden and reports the same failure
    report = run_parity(tmp_path / "model.failed.onnx", tmp_path / "model.failed.golden.npz")
    assert not report.passed

    monkeypatch.undo()  # a good export afterwards publishes and removes the stale failed pair
    result = exporter.export_onnx(small_model(), out, dcp=STANDIN)
    assert result.verification.passed and result.path == out
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.golden.npz", "model.onnx"]
