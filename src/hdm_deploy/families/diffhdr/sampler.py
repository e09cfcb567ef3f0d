"""The published patch DDIM sampler, torch-free (numpy, float32 state): drives two sessions.

``feature_fn(cond [B,18,p,p]) → feature [B,F,p,p]`` (AHDR) and ``eps_fn(x_t [B,3,p,p], feature, t) → ε``
(UNet) are any callables — ONNX Runtime sessions (:class:`OrtGraphs`) or TensorRT engines. What
follows is the published ``generalized_steps_overlapping`` (``utils/sampling.py``) step by step:

- betas linear 1e-4 → 0.02 over 1000 steps (float64, cast to float32); ᾱ = cumprod(1 − [0, β]) in
  float32, ᾱ(t) at index t + 1 (so ᾱ(−1) = 1);
- ``skip = 1000 // T``, ``seq = range(0, 1000, skip)`` (T = 3 gives 4 steps: 0, 333, 666, 999),
  ``seq_next = [−1, seq[:-1]]``, iterated from the end;
- patches at ``range(0, H − p + 1, r)`` × ``range(0, W − p + 1, r)``, row-major; per step the ε of every
  patch is summed into a canvas and divided by the coverage count (uniform averaging);
- x̂0 = (x_t − √(1−ᾱ_t)·ε)/√ᾱ_t, x_next = √ᾱ_next·x̂0 + √(1−ᾱ_next)·ε (eta 0); no clipping inside;
  the result is x̂0 of the last step, clamped to [0, 1] by the caller.

Memory is bounded by the image, not the patch count: the condition is built per patch batch from the
uint8 exposures, patches are cropped batch by batch, and only x_t, the ε canvas and the count live
at full size (≈ 0.3 GB for a padded 4K frame). AHDR features are cached across steps only when they
fit ``feature_cache_bytes`` (they do not depend on t; the published code recomputes them every step).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hdm_deploy.core.errors import HdmDeployError
from hdm_deploy.families.diffhdr.family import COND_INPUT, EPS_OUTPUT, FEATURE, T_INPUT, XT_INPUT
from hdm_deploy.families.diffhdr.inputs import condition_tables, fill_condition

__all__ = [
    "NUM_TIMESTEPS",
    "EngineGraphs",
    "OrtGraphs",
    "alphas_bar",
    "grid",
    "initial_noise",
    "sample",
    "timestep_pairs",
]

NUM_TIMESTEPS = 1000
BETA_START, BETA_END = 1e-4, 0.02

Tick = Callable[[int, int | None], None]


def alphas_bar(num: int = NUM_TIMESTEPS) -> np.ndarray:
    """float32 ᾱ with ᾱ[t + 1] for t ∈ [−1, num): cumprod of 1 − [0, β…]."""
    betas = np.linspace(BETA_START, BETA_END, num, dtype=np.float64).astype(np.float32)
    return np.cumprod(1 - np.concatenate([np.zeros(1, np.float32), betas]), dtype=np.float32)


def timestep_pairs(steps: int, num: int = NUM_TIMESTEPS) -> list[tuple[int, int]]:
    """[(t, t_next), …] in sampling order (published: skip = num // steps, seq = range(0, num, skip))."""
    if not 1 <= steps <= num:
        raise HdmDeployError(f"--steps {steps} is out of range", f"use 1 … {num} (published: 25)")
    seq = list(range(0, num, num // steps))
    nxt = [-1, *seq[:-1]]
    return list(zip(reversed(seq), reversed(nxt), strict=True))


def grid(height: int, width: int, patch: int, stride: int) -> list[tuple[int, int]]:
    """Patch corners (published ``overlapping_grid_indices``); the image must already be padded."""
    if height < patch or width < patch or (height - patch) % stride or (width - patch) % stride:
        raise HdmDeployError(
            f"a {width}×{height} image does not fit the {patch}² patch grid at stride {stride}",
            "pad it with inputs.padded_size (uncovered pixels would divide 0 by 0)",
        )
    return [(h, w) for h in range(0, height - patch + 1, stride) for w in range(0, width - patch + 1, stride)]


def initial_noise(
    shape: tuple[int, int], seed: int | None = None, path: str | Path | None = None
) -> np.ndarray:
    """x_T ``[3, H, W]`` float32: from ``path`` (.npy, [3,H,W] or [1,3,H,W]) or a seeded numpy
    generator (PCG64 ``standard_normal``; the published run drew ``torch.randn`` on CUDA, which no
    seed reproduces off that GPU — pass its tensor as a file for bit-level parity)."""
    if path is not None:
        noise = np.load(path).astype(np.float32)
        noise = noise.reshape(noise.shape[-3:]) if noise.ndim == 4 and noise.shape[0] == 1 else noise
        if noise.shape != (3, *shape):
            raise HdmDeployError(
                f"noise file {path} is {noise.shape}, the padded image needs {(3, *shape)}",
                "write the noise for the padded size (see `hdm-deploy hdr --help`)",
            )
        return np.ascontiguousarray(noise)
    rng = np.random.default_rng(seed)
    return rng.standard_normal((3, *shape), dtype=np.float32)


def _batches(items: Sequence, size: int) -> Iterator[Sequence]:
    for i in range(0, len(items), size):
        yield items[i : i + size]


@dataclass
class SampleStats:
    patches: int
    steps: int
    batches_per_step: int
    features_cached: bool


def sample(
    ldrs: list[np.ndarray],
    exposures: tuple[float, float, float],
    noise: np.ndarray,
    feature_fn: Callable[[np.ndarray], np.ndarray],
    eps_fn: Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray],
    *,
    steps: int,
    patch: int,
    stride: int,
    batch: int = 8,
    feature_cache_bytes: int = 1 << 30,
    progress: Tick | None = None,
) -> tuple[np.ndarray, SampleStats]:
    """The tonemapped estimate x̂0 ``[3, H', W']`` (float32, *not* clamped) on the padded grid.

    ``ldrs``: three uint8 RGB ``[H, W, 3]`` exposures (short, medium, long); ``noise`` ``[3, H', W']``
    with (H', W') = :func:`~.inputs.padded_size`. ``progress(advance, total)`` ticks once per patch
    batch (total = steps × batches).
    """
    _, hp, wp = noise.shape
    corners = grid(hp, wp, patch, stride)
    padded = []
    for ldr in ldrs:  # uint8 CHW, zero-padded bottom/right (LDR 0 → condition 0, as published)
        canvas = np.zeros((3, hp, wp), np.uint8)
        canvas[:, : ldr.shape[0], : ldr.shape[1]] = ldr.transpose(2, 0, 1)
        padded.append(canvas)
    tables = condition_tables(exposures)
    count = np.zeros((1, hp, wp), np.float32)
    for h, w in corners:
        count[:, h : h + patch, w : w + patch] += 1
    abar = alphas_bar()
    pairs = timestep_pairs(steps)
    groups = list(_batches(corners, batch))
    total = len(pairs) * len(groups)
    if progress:
        progress(0, total)

    def features(group: Sequence[tuple[int, int]]) -> np.ndarray:
        cond = np.empty((len(group), 6 * len(padded), patch, patch), np.float32)
        for i, (h, w) in enumerate(group):
            fill_condition(cond[i], [x[:, h : h + patch, w : w + patch] for x in padded], tables)
        return np.asarray(feature_fn(cond), dtype=np.float32)

    cache: list[np.ndarray] | None = None
    use_cache: bool | None = None
    x = noise.astype(np.float32, copy=True)
    x0 = x
    for step, (t, t_next) in enumerate(pairs):
        a_t, a_next = abar[t + 1], abar[t_next + 1]
        eps = np.zeros_like(x)
        t_in = np.array([t], np.float32)
        for g, group in enumerate(groups):
            if step > 0 and cache is not None:
                feat = cache[g]
            else:
                feat = features(group)
                if use_cache is None:  # decided on the first batch, once the feature size is known
                    use_cache = len(pairs) > 1 and feat[0].nbytes * len(corners) <= feature_cache_bytes
                    cache = [] if use_cache else None
                if cache is not None:
                    cache.append(feat)
            xt = np.empty((len(group), 3, patch, patch), np.float32)
            for i, (h, w) in enumerate(group):
                xt[i] = x[:, h : h + patch, w : w + patch]
            out = np.asarray(eps_fn(xt, feat, t_in), dtype=np.float32)
            for k, (h, w) in enumerate(group):
                eps[:, h : h + patch, w : w + patch] += out[k]
            if progress:
                progress(1, total)
        eps /= count
        x0 = (x - eps * np.sqrt(1 - a_t)) / np.sqrt(a_t)
        x = np.sqrt(a_next) * x0 + np.sqrt(1 - a_next) * eps
    stats = SampleStats(len(corners), len(pairs), len(groups), cache is not None)
    return x0, stats


class OrtGraphs:
    """The two exported graphs in ONNX Runtime: ``feature(cond)`` and ``eps(x_t, feature, t)``."""

    def __init__(
        self,
        unet_path: str | Path,
        cond_path: str | Path,
        *,
        providers: list[str] | None = None,
        threads: int = 0,
    ):
        import onnxruntime as ort

        options = ort.SessionOptions()
        if threads:
            options.intra_op_num_threads = threads
        providers = providers or ["CPUExecutionProvider"]
        self.unet = ort.InferenceSession(str(unet_path), options, providers=providers)
        self.cond = ort.InferenceSession(str(cond_path), options, providers=providers)
        self._fp16 = {
            i.name: i.type == "tensor(float16)" for i in [*self.unet.get_inputs(), *self.cond.get_inputs()]
        }

    def _in(self, name: str, array: np.ndarray) -> np.ndarray:
        return array.astype(np.float16 if self._fp16.get(name) else np.float32)

    def feature(self, cond: np.ndarray) -> np.ndarray:
        return self.cond.run([FEATURE], {COND_INPUT: self._in(COND_INPUT, cond)})[0]

    def eps(self, x_t: np.ndarray, feature: np.ndarray, t: np.ndarray) -> np.ndarray:
        feeds = {
            XT_INPUT: self._in(XT_INPUT, x_t),
            FEATURE: self._in(FEATURE, feature),
            T_INPUT: self._in(T_INPUT, t),
        }
        return self.unet.run([EPS_OUTPUT], feeds)[0]

    def describe(self) -> dict[str, Any]:
        return {"providers": self.unet.get_providers()}


class EngineGraphs:
    """The two graphs as sessions with ``run(feeds: dict) -> dict`` that cast feeds to their own input
    types — TensorRT engines (``hdm_deploy.tensorrt.graph_runner.TensorRTGraph``, built by
    ``build-engine diffhdr.onnx``): ``feature(cond)`` and ``eps(x_t, feature, t)`` as for :class:`OrtGraphs`."""

    def __init__(self, unet: Any, cond: Any):
        self.unet, self.cond = unet, cond

    def feature(self, cond: np.ndarray) -> np.ndarray:
        return self.cond.run({COND_INPUT: cond})[FEATURE]

    def eps(self, x_t: np.ndarray, feature: np.ndarray, t: np.ndarray) -> np.ndarray:
        out = self.unet.run({XT_INPUT: x_t, FEATURE: feature, T_INPUT: t})[EPS_OUTPUT]
        return np.asarray(out, dtype=np.float32)  # the DDIM update stays FP32 on the host

    def describe(self) -> dict[str, Any]:
        return dict(self.unet.describe()) if hasattr(self.unet, "describe") else {}
