"""A valid engine sidecar for tests that need one (no TensorRT involved)."""

from __future__ import annotations

from hdm_deploy.tensorrt.profiles import compute_profile
from hdm_deploy.tensorrt.sidecar import EngineSidecar


def make_sidecar(**overrides) -> EngineSidecar:
    """An FP16 Orin / TensorRT 10.3 sidecar with the default uint8 profile; ``overrides`` replace fields."""
    fields = dict(
        trt_version="10.3.0.30",
        gpu_name="Orin",
        compute_capability="8.7",
        precision="fp16",
        strongly_typed=True,
        tf32=False,
        profiles=[compute_profile({"io": "uint8"}).as_dict()],
        onnx_sha256="ab" * 32,
    )
    fields.update(overrides)
    return EngineSidecar(**fields)
