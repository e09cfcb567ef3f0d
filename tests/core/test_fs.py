"""Atomic artifact writes: all-or-nothing, normal permissions, no temp files left behind."""

from __future__ import annotations

import os
import stat

import pytest

from hdm_deploy.core.fs import atomic_path, atomic_write_bytes


def test_success_replaces_and_leaves_no_temp(tmp_path):
    target = tmp_path / "sub" / "model.onnx"
    atomic_write_bytes(target, b"one")
    atomic_write_bytes(target, b"two")
    assert target.read_bytes() == b"two"
    assert os.listdir(target.parent) == ["model.onnx"]


def test_failure_keeps_previous_file(tmp_path):
    target = tmp_path / "engine.plan"
    target.write_bytes(b"good")
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half")
        raise RuntimeError("crash mid-write")
    assert target.read_bytes() == b"good"
    assert os.listdir(tmp_path) == ["engine.plan"]


def test_permissions_follow_umask(tmp_path):
    old = os.umask(0o022)
    try:
        atomic_write_bytes(tmp_path / "a.png", b"x")
    finally:
        os.umask(old)
    assert stat.S_IMODE((tmp_path / "a.png").stat().st_mode) == 0o644


def test_temp_keeps_suffix_for_format_sniffing_writers(tmp_path):
    with atomic_path(tmp_path / "x.png") as tmp:
        assert tmp.suffix == ".png" and tmp.parent == tmp_path
        tmp.write_bytes(b"")
