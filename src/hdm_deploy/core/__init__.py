"""The torch-free core: errors, atomic files, the runner interface, frame checks, devices, sizes and the
contracts every package shares. Imports nothing else of hdm_deploy."""

from hdm_deploy.core.device import device_for, parse_device
from hdm_deploy.core.errors import EnvironmentProblem, HdmDeployError, HdmDeployWarning
from hdm_deploy.core.runner import Prediction, Runner, check_frames, model_kind, pad_to_multiple, quantize

__all__ = [
    "EnvironmentProblem",
    "HdmDeployError",
    "HdmDeployWarning",
    "Prediction",
    "Runner",
    "check_frames",
    "device_for",
    "model_kind",
    "pad_to_multiple",
    "parse_device",
    "quantize",
]
