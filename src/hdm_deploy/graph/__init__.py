"""Torch-free ONNX graph work on onnx-ir: loading/saving, metadata, DeformConv flavours, opset lowering,
the FP16-islands pass and the golden-bundle format."""

from hdm_deploy.graph.flavours import convert_deform, convert_file, detect_flavour, inline_functions
from hdm_deploy.graph.golden import GoldenBundle, golden_path_for, load_golden, write_golden
from hdm_deploy.graph.metadata import ModelFacts, model_facts, read_metadata
from hdm_deploy.graph.precision import apply_precision

__all__ = [
    "GoldenBundle",
    "ModelFacts",
    "apply_precision",
    "convert_deform",
    "convert_file",
    "detect_flavour",
    "golden_path_for",
    "inline_functions",
    "load_golden",
    "model_facts",
    "read_metadata",
    "write_golden",
]
