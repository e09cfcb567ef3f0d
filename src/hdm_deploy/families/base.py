"""What a model family tells the rest of hdm-deploy — torch-free, so runtimes and the CLI can read it.

A family is one folder under ``families/`` plus one line in :mod:`.registry`. Its ``family.py``
builds a :class:`Family`: plain facts (frame contract, extra outputs, FP32 functions) and, as
``"module:attribute"`` strings resolved on first use, the torch-side pieces (checkpoint loader,
PyTorch runner, export wrapper, golden-bundle maker). Nothing here imports torch, and a runtime that
only runs exported graphs never resolves those strings.

The frame contract is what the exported graph does around the network and what a runner must check
before it runs: inputs are RGB uint8 ``[N, H, W, 3]`` frames, padded by ``pad_mode`` at the bottom/right
to multiples of ``pad_multiple`` and cropped back, at least ``min_side`` pixels a side.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from importlib import import_module
from typing import Any, Protocol, runtime_checkable

__all__ = ["TILING_KINDS", "Family", "FamilyExport", "FrameContract", "TiledStage", "resolve"]

#: how a family's whole-frame graph may be split for memory-bounded inference: ``exact`` (stages with
#: computed halos, e.g. HDM), ``overlap`` (whole graph on overlapping tiles, blended: approximate,
#: its PSNR vs the whole frame is measured and printed), ``none``
TILING_KINDS = ("none", "overlap", "exact")


@dataclass(frozen=True)
class FrameContract:
    """Pre/post-processing facts of a family's frame path (also written to ONNX metadata)."""

    pad_multiple: int
    pad_mode: str = "reflect"
    min_side: int = 1
    channels: int = 3
    colour_order: str = "RGB"

    def metadata(self) -> dict[str, str]:
        return {
            "pad_multiple": str(self.pad_multiple),
            "pad_mode": self.pad_mode,
            "min_side": str(self.min_side),
            "channels": str(self.channels),
            "colour_order": self.colour_order,
        }


def resolve(ref: str) -> Any:
    """``"package.module:attribute"`` → the attribute (imports the module)."""
    module, _, attr = ref.partition(":")
    obj: Any = import_module(module)
    for part in attr.split(".") if attr else ():
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True)
class Family:
    """One model family: facts plus lazy references to its torch-side code."""

    name: str  #: registry key, also ONNX metadata ``family``
    title: str  #: for humans: "HDM (Liang et al., ACM MM 2022)"
    task: str  #: e.g. "dehaze"
    frame: FrameContract
    #: graph outputs beyond ``enhanced`` (runners return them in ``Prediction.extras``), with how
    #: parity compares each: ``"equal"`` (% identical positions along axis 1) or ``"close"``.
    extras: dict[str, str] = field(default_factory=dict)
    #: local functions ``(domain, name)`` the FP16 policy keeps in FP32
    fp32_functions: tuple[tuple[str, str], ...] = ()
    #: main-graph FP32 islands the FP16 policy adds: ``(name, reason, regex)``, the regex searched in
    #: each node's PyTorch module scope (``hdm_deploy.graph.precision.Island.scopes``)
    fp32_scopes: tuple[tuple[str, str, str], ...] = ()
    #: torch-free: does this state dict (its key names) belong to the family? → variant name or None
    detect: Callable[[Iterable[str]], str | None] = lambda keys: None
    # "module:attribute" references, resolved lazily (torch lives behind them)
    load_checkpoint: str = ""  #: (path, *, trust_checkpoint, variant) -> (nn.Module, info dict)
    torch_runner: str = ""  #: a core.runner.Runner subclass running the checkpoint in PyTorch
    exporter: str = ""  #: a :class:`FamilyExport` for torch → ONNX
    sample_checkpoint: str = ""  #: () -> Path of a bundled demonstration checkpoint, if any
    #: options the family's PyTorch runner takes beyond ``device``/``trust_checkpoint`` (HDM: ``masks``)
    torch_options: frozenset[str] = frozenset()
    #: one of :data:`TILING_KINDS`: whether tiling is exact (``exact``: ``tiled_stages`` below), an
    #: approximation (``overlap``) or not offered (``none``); see docs/memory.md
    tiling: str = "none"
    #: ``exact`` tiling: () -> model -> list[TiledStage] (torch side, used by ``export --tiled``)
    tiled_stages: str = ""
    #: ``"module:qualname"`` of plain objects (not code) that the family's published checkpoints
    #: pickle beside their tensors (e.g. an ``argparse.Namespace`` of training options); checkpoint
    #: reading allows them under ``weights_only`` (only in files this family's ``detect`` accepts)
    #: instead of needing ``--trust-checkpoint``.
    checkpoint_globals: tuple[str, ...] = ()
    #: For families whose deployment is not one frame graph (several graphs driven by a host-side
    #: loop): ``"module:attribute"`` of a callable ``(model, output, *, source, precision, golden,
    #: opset, verify, progress, console, **options)`` that writes the family's artifact; ``export_onnx``
    #: dispatches to it after loading the checkpoint.
    artifact_exporter: str = ""
    #: Torch-free ``"module:attribute"`` of ``(model_path, reference_path | None, *, psnr_min, console)``
    #: checking such an artifact against its golden bundle (raises ``ParityError``); ``hdm-deploy
    #: parity`` dispatches to it for ONNX files whose metadata names the family.
    artifact_parity: str = ""
    #: Alternative weight sets a checkpoint of this family holds beside its default ones, by variant
    #: name (DiffHDR: ``"ema"``, the UNet's EMA shadow); ``export --ema`` asks for ``"ema"`` and is
    #: refused for families without it.
    weight_variants: tuple[str, ...] = ()

    def resolve(self, what: str) -> Any:
        ref = getattr(self, what)
        if not ref:
            raise AttributeError(f"family {self.name!r} has no {what}")
        return resolve(ref)


@dataclass(frozen=True)
class TiledStage:
    """One stage of an exactly tiled frame path (``export --tiled``).

    ``mode`` is ``whole`` (runs on the whole frame) or ``tiled`` (runs per tile with a halo).
    ``inputs``/``outputs``: tensor name → (scale relative to the ×pad_multiple-padded frame grid,
    (row axis, column axis)). Tensors are passed between stages by name; the first stage reading
    ``image`` gets the padded uint8 frame. ``module``/``example``/``dynamic_shapes`` are the torch
    side (what ``torch.export`` traces); ``uses_functions``: the family's ``finish_graph`` attaches
    local functions to this stage's graph."""

    name: str
    mode: str
    inputs: dict[str, tuple[float, tuple[int, int]]]
    outputs: dict[str, tuple[float, tuple[int, int]]]
    module: Any = None
    example: tuple = ()
    dynamic_shapes: Any = None
    uses_functions: bool = False
    #: tiled stages with deformable convs: ``{"tensor": offsets input, "inputs": [sampled inputs],
    #: "rows": [first channel, step], "cols": [first channel, step]}`` — the runtime grows each
    #: tile's halo by the largest displacement in that tile's offsets (exact for any offsets)
    displacement: dict[str, Any] | None = None
    #: reorder the stage graph's nodes so ONNX Runtime runs them in program order
    #: (:func:`hdm_deploy.graph.schedule.order_for_ort`; for long accumulations)
    program_order: bool = False


@runtime_checkable
class FamilyExport(Protocol):
    """What the generic exporter (:mod:`hdm_deploy.export.exporter`) asks of a family (torch side).

    ``options`` are the family's own export options (HDM: ``max_pixels``, ``dcp_sums``, ``dcp``);
    :meth:`plan` validates them once and returns an opaque plan handed back to the other hooks.
    """

    family: Family

    def plan(self, model: Any, *, io: str, deform: str, opset: int, **options: Any) -> Any:
        """Validate the family options for this export; raise ``ExportError`` on bad values."""

    def wrapper(self, model: Any, io: str, plan: Any) -> Any:
        """The ``nn.Module`` to trace: frames (uint8 NHWC or float NCHW) → (enhanced, *extras)."""

    def tracing(self, plan: Any) -> AbstractContextManager[Any]:
        """Context active while tracing and exporting (e.g. which custom-op implementation runs)."""

    def translation_table(self, plan: Any) -> dict:
        """``torch.onnx.export(custom_translation_table=…)`` entries for the family's custom ops."""

    def finish_graph(self, proto: Any, plan: Any, io: str) -> None:
        """In place, after conversion: attach local functions, name dims, …"""

    def metadata(self, model: Any, plan: Any, source: dict[str, Any]) -> dict[str, str]:
        """Family metadata_props (``model``, ``network``, ``task``, normalisation, …)."""

    def golden(self, model: Any, plan: Any, cases: Any, *, precision: str, provenance: dict[str, Any]) -> Any:
        """The golden bundle: PyTorch outputs on the bundled photographs (``cases`` overrides)."""
