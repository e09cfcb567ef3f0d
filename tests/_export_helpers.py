"""Shared, cached small exports for the export/ORT/parity/bench tests (one export per process),
written into the session's export folder (``tests/conftest.py``: ``tmp_path_factory``).

Small HDM (width 8, one group of one block) with non-zero deformable offsets, exported with the
stand-in DCP masks (``_dcp_standin``) so these tests exercise the exporter, not the DCP function.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

_FOLDER: list[Path] = []


def use_folder(folder: Path) -> None:
    """Where the exports of this session go (set once by ``conftest.py``'s session fixture)."""
    _FOLDER[:] = [folder]


@functools.cache
def small_model(seed: int = 0):
    import torch
    from torch import nn

    from hdm_deploy.families.hdm.model import HDM, HDMConfig

    torch.manual_seed(seed)
    net = HDM(HDMConfig(width=8, groups=1, blocks=1)).eval()
    nn.init.normal_(net.dcn_block.dcn.conv_offset_mask.weight, std=0.05)
    nn.init.normal_(net.dcn_block.dcn.conv_offset_mask.bias, std=0.5)
    return net


@functools.cache
def small_export(io: str = "uint8", deform: str = "onnx", inline: bool = False, golden: bool = True):
    """ExportResult of the small model with the stand-in DCP (cached per process)."""
    from _dcp_standin import STANDIN
    from hdm_deploy.export.exporter import export_onnx

    name = f"small_{io}_{deform}{'_inl' if inline else ''}.onnx"
    return export_onnx(
        small_model(),
        tmp_dir() / name,
        io=io,
        deform=deform,
        inline_functions=inline,
        golden=golden,
        verify=golden,
        dcp=STANDIN,
    )


def torch_reference(frames: np.ndarray):
    """The PyTorch pipeline on ``frames`` with the stand-in masks (what the small exports compute)."""
    import torch

    from _dcp_standin import standin_masks
    from hdm_deploy.core.runner import pad_to_multiple
    from hdm_deploy.families.hdm.pipeline import enhance

    padded, _ = pad_to_multiple(frames, 4)
    masks = standin_masks(torch.from_numpy(np.ascontiguousarray(padded)).permute(0, 3, 1, 2))
    return enhance(small_model(), frames, masks=masks)


def photo_frames(width: int, height: int, batch: int = 1) -> np.ndarray:
    """Bundled photographs resized to width×height (cycled over the batch)."""
    from hdm_deploy.runtime.bench import bench_frames

    return bench_frames((width, height), batch)


def tmp_dir() -> Path:
    if not _FOLDER:
        raise RuntimeError("no export folder: tests/conftest.py sets it for the session")
    return _FOLDER[0]
