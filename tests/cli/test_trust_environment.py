"""Exit codes by meaning, with real read-only/immutable/full file systems and real files (issue 10, items 3, 6).

0 ok · 1 a check failed · 2 bad usage/input/model · 3 environment · 4 done with inputs skipped.
Root ignores permission bits, so read-only and immutable folders are real mounts and ``chattr +i``
(skipped with the reason where this machine does not allow them).
"""

from __future__ import annotations

import errno
import os
import re
import shutil
import struct
import subprocess
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from hdm_deploy.cli import app
from hdm_deploy.core.errors import EnvironmentProblem, HdmDeployError, ParityError, environment_problem
from hdm_deploy.runtime.image_io import write_image

cli = CliRunner()


@pytest.fixture(scope="module")
def tiny_ckpt(tmp_path_factory):
    import torch

    from hdm_deploy.families.hdm.checkpoint import save_checkpoint
    from hdm_deploy.families.hdm.model import HDM, HDMConfig

    torch.manual_seed(0)
    return save_checkpoint(
        HDM(HDMConfig(width=8, groups=1, blocks=1)), tmp_path_factory.mktemp("m") / "tiny.pk"
    )


def _photo(path: Path, h: int = 24, w: int = 32, seed: int = 0) -> Path:
    return write_image(path, np.random.default_rng(seed).integers(0, 256, (h, w, 3), dtype=np.uint8))


def _flat(result) -> str:
    """The output with rich's line wrapping undone."""
    return " ".join(result.output.split())


def _error_line(result) -> str:
    errors = [line for line in result.output.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, result.output
    return errors[0]


def _one_line(result) -> str:
    lines = [line for line in result.output.strip().splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    return lines[0]


@pytest.fixture
def mount(tmp_path):
    """mount(options) → a fresh tmpfs at a new folder, unmounted afterwards (skip where not allowed)."""
    mounted = []

    def make(options: str) -> Path:
        where = tmp_path / f"mnt{len(mounted)}"
        where.mkdir()
        res = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True
        )
        if res.returncode:
            pytest.skip(f"cannot mount a tmpfs here: {res.stderr.decode().strip()}")
        mounted.append(where)
        return where

    yield make
    for where in mounted:
        subprocess.run(["umount", str(where)], capture_output=True)


@pytest.fixture
def immutable(tmp_path):
    folder = tmp_path / "immutable"
    folder.mkdir()
    res = subprocess.run(["chattr", "+i", str(folder)], capture_output=True)
    if res.returncode:
        pytest.skip(f"chattr +i not possible here: {res.stderr.decode().strip()}")
    yield folder
    subprocess.run(["chattr", "-i", str(folder)], capture_output=True)


def test_every_error_class_carries_its_exit_code():
    from hdm_deploy.core import errors

    assert HdmDeployError("x").exit_code == 2 and ParityError("x").exit_code == 1
    assert EnvironmentProblem("x").exit_code == 3
    assert errors.TensorRTUnavailableError("x").exit_code == 3 and errors.PluginBuildError("x").exit_code == 3
    for name in dir(errors):
        cls = getattr(errors, name)
        if isinstance(cls, type) and issubclass(cls, HdmDeployError):
            assert cls.exit_code in (1, 2, 3), name


@pytest.mark.parametrize(
    ("exc", "code", "words"),
    [
        (OSError(errno.EROFS, "Read-only file system", "/mnt/x.png"), 3, "read-only"),
        (OSError(errno.ENOSPC, "No space left on device"), 3, "disk is full"),
        (PermissionError(errno.EACCES, "Permission denied", "/x"), 3, "permission"),
        (PermissionError(errno.EPERM, "Operation not permitted", "/x"), 3, "immutable"),
        (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x"), 2, "check the path"),
        (MemoryError(), 3, "out of memory"),
        (
            RuntimeError("[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: not enough memory"),
            3,
            "memory",
        ),
        (RuntimeError("onnxruntime::BFCArena: Failed to allocate memory for requested buffer"), 3, "memory"),
        (RuntimeError("std::bad_alloc"), 3, "memory"),
    ],
)
def test_environment_errors_become_one_line_with_a_hint(exc, code, words):
    error = environment_problem(exc)
    assert error is not None and error.exit_code == code and error.hint
    assert words in str(error).lower()
    assert environment_problem(ValueError("something else")) is None


def test_allocator_error_in_a_runner_is_exit_3(tiny_ckpt, tmp_path, monkeypatch):
    from hdm_deploy.families.hdm.torch_runner import TorchRunner

    def oom(self, frames):
        raise RuntimeError(
            "[enforce fail at alloc_cpu.cpp:119] DefaultCPUAllocator: not enough memory: you tried to allocate 9 GB"
        )

    monkeypatch.setattr(TorchRunner, "run", oom)
    _photo(tmp_path / "a.png")
    result = cli.invoke(
        app, ["infer", str(tmp_path / "a.png"), "-m", str(tiny_ckpt), "-o", str(tmp_path / "b.png")]
    )
    assert result.exit_code == 3, result.output
    assert "out of memory" in result.output and "--device cuda" in result.output


def test_read_only_output_folder_is_exit_3_before_any_work(tiny_ckpt, tmp_path, mount, monkeypatch):
    ro = mount("ro,size=1m")
    _photo(tmp_path / "a.png")
    for where in ("hdm_deploy.runtime", "hdm_deploy.cli.commands", "hdm_deploy.runtime.parity"):
        monkeypatch.setattr(
            f"{where}.load_runner", lambda *a, **k: pytest.fail("model loaded before the check")
        )
    for args in (
        ["infer", str(tmp_path / "a.png"), "-o", str(ro / "b.png")],
        ["masks", str(tmp_path / "a.png"), "-o", str(ro / "m.png")],
        ["export", "-o", str(ro / "model.onnx")],
        [
            "convert",
            str(tmp_path / "a.png").replace(".png", ".onnx"),
            "--deform",
            "plugin",
            "-o",
            str(ro / "p.onnx"),
        ],
    ):
        if args[0] == "convert":
            Path(args[1]).write_bytes(b"x")
        result = cli.invoke(app, args)
        assert result.exit_code == 3, (args, result.output)
        assert "read-only" in _one_line(result).lower()
    assert list(ro.iterdir()) == []


def test_parity_reports_into_a_read_only_folder_are_exit_3_before_work(tmp_path, mount):
    ro = mount("ro,size=1m")
    (tmp_path / "m.onnx").write_bytes(b"x")
    (tmp_path / "m.golden.npz").write_bytes(b"x")
    for flag in ("--json", "--junit"):
        result = cli.invoke(app, ["parity", str(tmp_path / "m.onnx"), flag, str(ro / "r.out")])
        assert result.exit_code == 3 and "read-only" in _one_line(result).lower(), result.output
    result = cli.invoke(
        app, ["parity", str(tmp_path / "m.onnx"), "--heatmap", str(tmp_path / "m.golden.npz")]
    )
    assert result.exit_code == 2 and "is a file" in _one_line(result), result.output


def test_immutable_output_folder_is_exit_3(tiny_ckpt, tmp_path, immutable):
    _photo(tmp_path / "a.png")
    result = cli.invoke(
        app, ["infer", str(tmp_path / "a.png"), "-m", str(tiny_ckpt), "-o", str(immutable / "b.png")]
    )
    assert result.exit_code == 3 and "not permitted" in _one_line(result), result.output


def test_full_disk_is_exit_3_and_leaves_no_temp_file(tiny_ckpt, tmp_path, mount):
    full = mount("size=64k")
    _photo(tmp_path / "big.png", 256, 256)
    # BMP is uncompressed: 192 kB cannot fit in 64 kB
    result = cli.invoke(
        app, ["infer", str(tmp_path / "big.png"), "-m", str(tiny_ckpt), "-o", str(full / "out.bmp")]
    )
    assert result.exit_code == 3, result.output
    assert "disk is full" in result.output
    assert list(full.iterdir()) == []  # neither the output nor its temp file


def test_junk_checkpoint_is_one_line(tmp_path):
    (tmp_path / "junk.pth").write_text("hello")
    _photo(tmp_path / "a.png")
    result = cli.invoke(
        app,
        ["infer", str(tmp_path / "a.png"), "-m", str(tmp_path / "junk.pth"), "-o", str(tmp_path / "b.png")],
    )
    assert result.exit_code == 2 and "not a readable PyTorch checkpoint" in _one_line(result), result.output


def _png_header_only(path: Path, w: int, h: int) -> Path:
    """A PNG whose header says w×h (no pixel data): what a size guard must refuse without decoding."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b"\0" * 100))
        + chunk(b"IEND", b"")
    )
    return path


@pytest.mark.parametrize(
    ("w", "h", "words"), [(20000, 20000, "too large"), (12000, 10000, "--max-pixels 100 MP")]
)
def test_huge_images_are_refused_from_the_header(tiny_ckpt, tmp_path, w, h, words):
    big = _png_header_only(tmp_path / "big.png", w, h)
    t0 = time.perf_counter()
    result = cli.invoke(app, ["infer", str(big), "-m", str(tiny_ckpt), "-o", str(tmp_path / "o.png")])
    assert time.perf_counter() - t0 < 5  # model load included; the check itself reads ~100 bytes
    assert result.exit_code == 2 and words in _one_line(result), result.output


def test_max_pixels_option(tiny_ckpt, tmp_path):
    _photo(tmp_path / "a.png", 40, 50)
    result = cli.invoke(
        app,
        [
            "infer",
            str(tmp_path / "a.png"),
            "-m",
            str(tiny_ckpt),
            "-o",
            str(tmp_path / "o.png"),
            "--max-pixels",
            "0.001",
        ],
    )
    assert result.exit_code == 2 and "50×40" in result.output and "--max-pixels" in result.output


def test_torch_cpu_path_refuses_a_frame_it_cannot_fit(tiny_ckpt, tmp_path, monkeypatch):
    import hdm_deploy.core.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: 50_000_000)
    monkeypatch.setattr("hdm_deploy.families.hdm.torch_runner.available_bytes", lambda: 50_000_000)
    write_image(tmp_path / "hd.png", np.zeros((1080, 1920, 3), np.uint8))
    result = cli.invoke(
        app, ["infer", str(tmp_path / "hd.png"), "-m", str(tiny_ckpt), "-o", str(tmp_path / "o.png")]
    )
    assert result.exit_code == 3, result.output
    line = _error_line(result)
    assert "1920×1080" in line and "GB" in line and "ONNX model" in line and "--device cuda" in line


def test_memory_estimate_matches_the_readme_for_the_published_width():
    from hdm_deploy.families.hdm.torch_runner import cpu_bytes_needed

    need = cpu_bytes_needed((1, 1080, 1920, 3), 64)
    assert 2.0e9 < need < 4.0e9  # README: ~2.9 GB at 1080p


def test_animated_gif_is_refused_whole_not_one_frame(tiny_ckpt, tmp_path):
    frames = [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(4)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:], duration=100, loop=0)
    result = cli.invoke(
        app, ["infer", str(tmp_path / "anim.gif"), "-m", str(tiny_ckpt), "-o", str(tmp_path / "o.png")]
    )
    assert result.exit_code == 2 and "animated image with 4 frames" in _one_line(result), result.output
    assert not (tmp_path / "o.png").exists()
    frames[0].save(tmp_path / "still.gif")  # a still GIF is an image like any other
    result = cli.invoke(
        app, ["infer", str(tmp_path / "still.gif"), "-m", str(tiny_ckpt), "-o", str(tmp_path / "s.gif")]
    )
    assert result.exit_code == 0 and (tmp_path / "s.gif").is_file(), result.output


def test_folder_with_unreadable_files_is_exit_4_with_a_summary(tiny_ckpt, tmp_path):
    src = tmp_path / "mixed"
    src.mkdir()
    for i in range(3):
        _photo(src / f"a{i}.jpg", seed=i)
    (src / "c_text.jpg").write_text("not an image")
    (src / "d_empty.jpg").write_bytes(b"")
    frames = [Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)) for i in range(3)]
    frames[0].save(src / "e_anim.gif", save_all=True, append_images=frames[1:])
    result = cli.invoke(app, ["infer", str(src), "-m", str(tiny_ckpt), "-o", str(tmp_path / "out") + "/"])
    assert result.exit_code == 4, result.output
    text = _flat(result)
    assert "3 of 6 images written, 3 skipped" in text
    assert "c_text.jpg: not a readable image" in text
    assert (
        "d_empty.jpg: empty file" in text
        and "use one of" not in text.split("d_empty.jpg")[1].split("skipped")[0]
    )
    for name in ("c_text.jpg", "d_empty.jpg", "e_anim.gif"):
        assert text.count(name) == 1, name  # the path is not repeated inside the reason
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a0.jpg", "a1.jpg", "a2.jpg"]


def test_all_inputs_unreadable_is_exit_2(tiny_ckpt, tmp_path):
    src = tmp_path / "bad"
    src.mkdir()
    (src / "x.png").write_text("nope")
    result = cli.invoke(app, ["infer", str(src), "-m", str(tiny_ckpt), "-o", str(tmp_path / "out") + "/"])
    assert result.exit_code == 2 and "nothing written: 0 of 1 images written, 1 skipped" in _flat(result)


def _video(path: Path, frames: int, size=(32, 24)) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), 10, size)
    rng = np.random.default_rng(0)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (size[1], size[0], 3), dtype=np.uint8))
    writer.release()
    return path


def test_truncated_video_says_how_many_frames_and_exits_4(tiny_ckpt, tmp_path):
    full = _video(tmp_path / "full.avi", 10)
    cut = tmp_path / "cut.avi"
    data = full.read_bytes()
    cut.write_bytes(data[: len(data) // 2])
    cap = cv2.VideoCapture(str(cut))
    if int(cap.get(cv2.CAP_PROP_FRAME_COUNT)) != 10:
        pytest.skip("this OpenCV build does not report the container's frame count of a cut AVI")
    cap.release()
    result = cli.invoke(app, ["infer", str(cut), "-m", str(tiny_ckpt), "-o", str(tmp_path / "o.avi")])
    assert result.exit_code == 4, result.output
    text = _flat(result)
    assert "of 10 frames decoded; stream truncated" in text and "of 10 frames written" in text
    done, total = re.findall(r"(\d+)/(\d+)", text.split("skipped")[0])[-1]
    assert done == total and int(done) < 10  # the bar ends at the true total, not stuck at k/10
    result = cli.invoke(app, ["infer", str(full), "-m", str(tiny_ckpt), "-o", str(tmp_path / "f.avi")])
    assert result.exit_code == 0 and "10 of 10 frames written" in _flat(result), result.output


def test_empty_video_and_image_say_empty(tiny_ckpt, tmp_path):
    for name in ("e.mp4", "e.jpg"):
        (tmp_path / name).write_bytes(b"")
        out = "o.mp4" if name.endswith("mp4") else "o.jpg"
        result = cli.invoke(
            app, ["infer", str(tmp_path / name), "-m", str(tiny_ckpt), "-o", str(tmp_path / out)]
        )
        assert result.exit_code == 2 and "empty file" in _one_line(result), result.output


def test_stale_temp_files_of_dead_processes_are_cleaned(tmp_path):
    from hdm_deploy.core.fs import atomic_write_bytes, temp_name

    dead = subprocess.Popen(["true"])
    dead.wait()
    stale = tmp_path / f".model.onnx.tmp-{dead.pid}-0.onnx"
    stale.write_bytes(b"")  # what a SIGKILL mid-write leaves
    mine = tmp_path / temp_name(tmp_path / "model.onnx")
    assert mine.name.startswith(f".model.onnx.tmp-{os.getpid()}-")
    other = tmp_path / ".other.onnx.tmp-1-0.onnx"  # pid 1 lives: never touched
    other.write_bytes(b"")
    atomic_write_bytes(tmp_path / "model.onnx", b"new")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([".other.onnx.tmp-1-0.onnx", "model.onnx"])
    shutil.rmtree(tmp_path, ignore_errors=True)


def test_an_instance_may_say_it_is_a_usage_error():
    from hdm_deploy.core.errors import PluginBuildError

    assert PluginBuildError("invalid CUDA architecture 'x'", exit_code=2).exit_code == 2
    assert PluginBuildError("no C++ compiler").exit_code == 3


def test_onnxruntime_allocation_failure_is_an_environment_problem(monkeypatch):
    from hdm_deploy.graph.metadata import model_facts
    from hdm_deploy.runtime.onnxruntime_runner import OnnxRuntimeRunner

    class Session:
        def run(self, *args):
            raise RuntimeError("[ONNXRuntimeError] : 6 : RUNTIME_EXCEPTION : bad_alloc")

        def get_outputs(self):
            return [type("Out", (), {"name": "enhanced"})()]

    facts = model_facts({"family": "hdm"}, "image", "uint8", ["enhanced"])
    runner = OnnxRuntimeRunner((Session(), facts))
    with pytest.raises(EnvironmentProblem, match="out of memory") as info:
        runner.run(np.zeros((1, 8, 8, 3), np.uint8))
    assert info.value.exit_code == 3
