"""DiffHDR export (torch): two ONNX graphs and a golden bundle for the torch-free sampler.

- ``NAME.onnx`` — the UNet, once per step: ``x_t`` [B,3,P,P], ``feature`` [B,F,P,P], ``t`` [1] → ``eps``
  [B,3,P,P] (dynamic B and P; P a multiple of 32 at the published depth). ``t`` stays an input so one
  graph serves every step; the timestep embedding is computed inside, FP32 in the FP16 policy.
- ``NAME.cond.onnx`` — AHDR: ``cond`` [B,18,P,P] → ``feature`` [B,F,P,P]; its name is in the UNet
  graph's metadata (``condition_graph``). It does not depend on t, so the sampler may run it once per
  patch and cache (published: every step) — hence two graphs, not one.
- ``NAME.golden.npz`` — a tiny three-exposure case with its noise and the PyTorch published-procedure
  output; ``hdm-deploy hdr-parity NAME.onnx`` checks it without torch.

FP16 (``precision="fp16"``): :func:`hdm_deploy.graph.precision.apply_fp16_policy` with DiffHDR's
islands (:data:`ISLANDS`): timestep embedding, attention logits/softmax, GroupNorm statistics.
"""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Iterable
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import torch

from hdm_deploy.core.contracts import META_COMPANION_GRAPHS as COMPANION_GRAPHS_KEY
from hdm_deploy.core.contracts import META_PROFILE_AXES as PROFILE_AXES_KEY
from hdm_deploy.core.errors import ExportError, ParityError, first_line
from hdm_deploy.core.fs import atomic_path
from hdm_deploy.families.diffhdr.family import (
    COND_INPUT,
    CONDITION_GRAPH_KEY,
    EPS_OUTPUT,
    FAMILY,
    FEATURE,
    T_INPUT,
    XT_INPUT,
)
from hdm_deploy.families.diffhdr.inputs import condition, padded_size
from hdm_deploy.families.diffhdr.model import DiffHDR
from hdm_deploy.families.diffhdr.parity import check_golden
from hdm_deploy.families.diffhdr.reference import published_sample
from hdm_deploy.families.diffhdr.sampler import initial_noise
from hdm_deploy.graph import onnx_io
from hdm_deploy.graph.precision import Island, apply_fp16_policy

__all__ = [
    "EXPORT",
    "ISLANDS",
    "condition_path_for",
    "export_artifact",
    "export_graphs",
    "golden_case",
    "to_fp16",
]

OPSET = 19

#: FP32 islands of the FP16 policy (module scopes of the exported nodes; see docs/diffhdr.md for
#: what each one measurably protects).
ISLANDS: dict[str, Island] = {
    i.name: i
    for i in (
        Island(
            "timestep_embedding",
            "t·f reaches 960 rad where FP16's spacing is 0.5: sin/cos come out wrong",
            scopes=(r"(^|[/.])sinusoid(/|$)", r"(^|[/.])temb\.dense\.\d+(/|$)"),
        ),
        Island(
            "attention_softmax",
            "q·k over 256/512 channels is scaled after the product (published order) and can overflow FP16",
            scopes=(r"(^|[/.])(mid\.attn_1|(down|up)\.\d+\.attn\.\d+)(/|$)",),
            scope_ops=("MatMul", "Mul", "Softmax", "Div"),
        ),
        Island(
            "groupnorm_statistics",
            "GroupNorm sums of squares over 8 channels × 512² px lose precision in FP16",
            ops=(("", "GroupNormalization"), ("", "InstanceNormalization")),
        ),
    )
}


#: Names of the graphs' dynamic axes (all inputs and outputs): patch batch and patch side. The
#: TensorRT profile is one range per name (``build-engine --axis batch=1:8:8 --axis patch=512``).
BATCH_AXIS, PATCH_AXIS = "batch", "patch"
#: Default engine profile (``profile_axes`` metadata): batches of 1–8 (published 8) 512² patches.
PROFILE_AXES = {BATCH_AXIS: (1, 8, 8), PATCH_AXIS: (512, 512, 512)}


def name_axes(proto: onnx.ModelProto) -> onnx.ModelProto:
    """Give the inputs' and outputs' dynamic dims the names :data:`BATCH_AXIS` (dim 0) and
    :data:`PATCH_AXIS` (dims 2, 3) instead of torch.export's symbols (``s31``, ``2*s75``)."""
    for value in [*proto.graph.input, *proto.graph.output]:
        for i, dim in enumerate(value.type.tensor_type.shape.dim):
            if dim.HasField("dim_param") and i in (0, 2, 3):
                dim.dim_param = BATCH_AXIS if i == 0 else PATCH_AXIS
    return proto


def condition_path_for(unet_path: str | os.PathLike) -> Path:
    p = Path(unet_path)
    return p.with_name(f"{p.stem}.cond{p.suffix}")


class _UNetGraph(torch.nn.Module):
    def __init__(self, model: DiffHDR):
        super().__init__()
        self.unet = model.unet

    def forward(self, x_t: torch.Tensor, feature: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        return self.unet(x_t, t, feature)


class _CondGraph(torch.nn.Module):
    def __init__(self, model: DiffHDR):
        super().__init__()
        self.ahdr = model.ahdr

    def forward(self, cond: torch.Tensor) -> torch.Tensor:
        return self.ahdr.from_condition(cond)


def _export(
    module: torch.nn.Module, args: tuple, names: list[str], output: str, dynamic: dict
) -> onnx.ModelProto:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            program = torch.export.export(module, args, dynamic_shapes=dynamic, strict=False)
            onnx_program = torch.onnx.export(
                program,
                dynamo=True,
                opset_version=OPSET,
                input_names=names,
                output_names=[output],
                optimize=True,
                verbose=False,
            )
        except Exception as exc:
            raise ExportError(f"DiffHDR export failed: {first_line(exc)}", "re-run with --debug") from exc
    return onnx_program.model_proto


def to_fp16(
    unet: onnx.ModelProto, cond: onnx.ModelProto, islands: Iterable[str] | None = None
) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """The FP16 policy on the two FP32 graphs: the UNet keeps ``islands`` (names from :data:`ISLANDS`,
    default all) in FP32; AHDR (convolutions, LeakyReLU, sigmoid gates) has none. I/O stays FP32."""
    chosen = [ISLANDS[n] for n in (ISLANDS if islands is None else islands)]
    return apply_fp16_policy(unet, chosen, flavour="onnx"), apply_fp16_policy(cond, [], flavour="onnx")


def export_graphs(
    model: DiffHDR, *, precision: str = "fp32", islands: Iterable[str] | None = None
) -> tuple[onnx.ModelProto, onnx.ModelProto]:
    """(UNet graph, condition graph) as checked protos; ``islands`` (FP16 only): names from
    :data:`ISLANDS` (default: all)."""
    model = model.float().cpu().eval()
    m = model.config.patch_multiple
    feat = model.config.ahdr_feat
    b, k = 2, 2
    batch = torch.export.Dim("B", min=1, max=1024)
    side = m * torch.export.Dim("K", min=1, max=8192 // m)
    x_t, feature, t = (
        torch.randn(b, 3, m * k, m * k),
        torch.randn(b, feat, m * k, m * k),
        torch.tensor([500.0]),
    )
    unet = _export(
        _UNetGraph(model),
        (x_t, feature, t),
        [XT_INPUT, FEATURE, T_INPUT],
        EPS_OUTPUT,
        {"x_t": {0: batch, 2: side, 3: side}, "feature": {0: batch, 2: side, 3: side}, "t": None},
    )
    hb, hs = torch.export.Dim("B", min=1, max=1024), torch.export.Dim("P", min=2, max=8192)
    cond = _export(
        _CondGraph(model),
        (torch.rand(b, 3 * model.config.ahdr_in, 37, 37),),
        [COND_INPUT],
        FEATURE,
        {"cond": {0: hb, 2: hs, 3: hs}},
    )
    if precision == "fp16":
        unet, cond = to_fp16(unet, cond, islands)
    elif precision != "fp32":
        raise ExportError(f"unknown precision {precision!r}", "use fp32 or fp16")
    for proto in (unet, cond):
        name_axes(proto)
        onnx_io.finalize(proto, ir_version=10)
    return unet, cond


def golden_case(
    model: DiffHDR,
    *,
    size: tuple[int, int] = (96, 128),
    patch: int | None = None,
    stride: int | None = None,
    steps: int = 3,
    seed: int = 61,
) -> dict[str, np.ndarray]:
    """A small three-exposure scene (synthetic, deterministic) with its noise and the PyTorch
    published-procedure output (``expected``: clamped tonemapped x̂0, padded grid)."""
    m = model.config.patch_multiple
    patch = patch or max(64, m)
    stride = stride or patch // 2
    h, w = size
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    radiance = 0.02 + 0.9 * (
        0.5 + 0.5 * np.sin(xx / 9.0)[..., None] * np.cos(yy / 13.0)[..., None]
    ) * np.array([1.0, 0.8, 0.6])
    radiance *= np.exp(rng.normal(0, 0.3, (h, w, 1)))
    exposures = (0.0, 2.0, 4.0)
    ldrs = [
        np.clip(255 * np.clip(radiance * 2.0**ev / 4, 0, 1) ** (1 / 2.2), 0, 255).round().astype(np.uint8)
        for ev in exposures
    ]
    hp, wp = padded_size(h, w, patch, stride)
    noise = initial_noise((hp, wp), seed=seed)
    cond = torch.from_numpy(condition(ldrs, exposures, (hp, wp)))[None]
    raw = published_sample(
        model, cond, torch.from_numpy(noise)[None], steps=steps, patch=patch, stride=stride, clamp=False
    )[0].numpy()
    expected = np.clip(raw, 0, 1)  # the published masked in-place clamp
    return {
        "ldr_short": ldrs[0],
        "ldr_medium": ldrs[1],
        "ldr_long": ldrs[2],
        "exposures": np.array(exposures, np.float64),
        "noise": noise,
        "expected": expected.astype(np.float32),
        "expected_raw": raw.astype(np.float32),
        "grid": np.array([patch, stride, steps], np.int64),
    }


@dataclass
class ArtifactResult:
    """What :func:`export_artifact` wrote (attribute names as the generic export result's, for the CLI)."""

    path: Path
    condition_path: Path
    golden_path: Path | None
    precision: str
    size_bytes: int
    io: str = "float"
    deform: str = "none"
    opset: int = OPSET
    family: str = "diffhdr"
    verification: Any = None
    measured: dict[str, float] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)
    weights: str = "raw"
    cond_bytes: int = 0

    def summary(self) -> str:
        """The export's success line: what was written, from what, and what it was checked against."""
        unet_mb, cond_mb = (self.size_bytes - self.cond_bytes) / 1e6, self.cond_bytes / 1e6
        text = (
            f"{self.path} (UNet x_t, feature, t → eps, {unet_mb:.1f} MB) + {self.condition_path.name} "
            f"(AHDR cond → feature, {cond_mb:.1f} MB); {self.precision}, opset {self.opset}, "
            f"{'EMA' if self.weights == 'ema' else 'raw'} weights"
        )
        if self.golden_path is not None:
            text += f" + {self.golden_path.name}"
        if self.measured:
            m = self.measured
            text += (
                f"; ORT sampler vs PyTorch on the golden case ({m.get('size')}, {m.get('steps')} steps): "
                f"{float(m['psnr_db']):.1f} dB"
            )
        return text


def export_artifact(
    model: DiffHDR,
    output: str | os.PathLike,
    *,
    source: dict[str, Any] | None = None,
    precision: str = "fp32",
    opset: int = OPSET,
    golden: bool = True,
    verify: bool = True,
    progress: bool = False,
    console: Any = None,
    **_: Any,
) -> ArtifactResult:
    """Write ``output`` (UNet), ``output.cond.onnx`` (AHDR) and, with ``golden``, ``output.golden.npz``;
    ``verify`` runs the golden case through the new files in ONNX Runtime before they are published
    (PSNR ≥ 45 dB FP32, 30 dB FP16 on the tonemapped output) and raises :class:`ParityError` otherwise."""
    if opset != OPSET:
        raise ExportError(
            f"DiffHDR exports at opset {OPSET} only (its Resize is not lowered to {opset} yet)",
            "drop --opset (TensorRT ≥ 10.3 parses it)",
        )
    output = Path(output)
    cond_path = condition_path_for(output)
    golden_path = output.with_name(f"{output.stem}.golden.npz") if golden else None
    status = console.status if (progress and console is not None) else (lambda *_a, **_k: nullcontext())
    with status("export the UNet and AHDR graphs…"):
        unet, cond = export_graphs(model, precision=precision)
    meta = {
        "family": FAMILY.name,
        "task": FAMILY.task,
        "precision": precision,
        CONDITION_GRAPH_KEY: cond_path.name,
        COMPANION_GRAPHS_KEY: cond_path.name,
        PROFILE_AXES_KEY: json.dumps({k: list(v) for k, v in PROFILE_AXES.items()}),
        "network": f"DiffusionUNet{tuple(model.config.as_dict().values())}",
        "patch_multiple": str(model.config.patch_multiple),
        **{k: str(v) for k, v in (source or {}).items()},
    }
    if golden_path is not None:
        meta["golden"] = golden_path.name
    onnx_io.set_metadata(unet, meta)
    onnx_io.set_metadata(
        cond, {k: v for k, v in meta.items() if k not in (CONDITION_GRAPH_KEY, COMPANION_GRAPHS_KEY)}
    )
    result = ArtifactResult(output, cond_path, golden_path, precision, 0)
    result.weights = str((source or {}).get("weights", "raw"))
    case = None
    if golden or verify:
        with status("PyTorch reference (published procedure) on the golden case…"):
            case = golden_case(model)
    with atomic_path(output) as tmp_unet, atomic_path(cond_path) as tmp_cond:
        onnx.save_model(unet, str(tmp_unet))
        onnx.save_model(cond, str(tmp_cond))
        if verify and case is not None:
            with status("ONNX Runtime sampler vs PyTorch on the golden case…"):
                measured = check_golden(tmp_unet, case, condition_path=tmp_cond)
            result.measured = measured
            limit = 45.0 if precision == "fp32" else 30.0
            if measured["psnr_db"] < limit:
                raise ParityError(
                    f"exported DiffHDR misses the PyTorch sampler: {measured['psnr_db']:.1f} dB < {limit} dB",
                    "re-run with --debug and report it",
                )
        result.cond_bytes = tmp_cond.stat().st_size
        result.size_bytes = tmp_unet.stat().st_size + result.cond_bytes
    if golden_path is not None and case is not None:
        with atomic_path(golden_path) as tmp, open(tmp, "wb") as fh:
            np.savez_compressed(fh, **case, precision=np.array(precision))
    return result


class _Export:
    """The single-frame :class:`~hdm_deploy.families.base.FamilyExport` hooks do not apply: DiffHDR is
    exported by :func:`export_artifact` (``Family.artifact_exporter``); these refuse with that fact."""

    family = FAMILY

    def _refuse(self, *_: Any, **__: Any) -> Any:
        raise ExportError(
            "DiffHDR has no single-frame graph", "export it with `hdm-deploy export CKPT -o diffhdr.onnx`"
        )

    plan = wrapper = tracing = translation_table = finish_graph = metadata = golden = _refuse


EXPORT = _Export()
