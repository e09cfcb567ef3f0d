"""Shared, cached MHNet artefacts for tests/families/mhnet (one per process, in the session's export
folder): a tiny published-format checkpoint written by the independent implementation, and its
export (fp32, uint8 I/O, golden bundle, verified in ONNX Runtime)."""

from __future__ import annotations

import functools
from pathlib import Path

import _export_helpers
import independent_mhnet as ind


@functools.cache
def tiny_state(seed: int = 1):
    return ind.random_state(ind.TINY, seed=seed)


@functools.cache
def tiny_checkpoint(seed: int = 1) -> Path:
    return ind.save_published(tiny_state(seed), _export_helpers.tmp_dir() / f"mhnet_tiny_{seed}.pth")


@functools.cache
def tiny_export(seed: int = 1):
    from hdm_deploy.export.exporter import export_onnx

    ckpt = tiny_checkpoint(seed)
    return export_onnx(ckpt, ckpt.with_suffix(".onnx"))
