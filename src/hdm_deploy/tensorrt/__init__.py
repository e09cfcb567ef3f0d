"""TensorRT on Polygraphy: engine building and running, profiles, sidecars, op support, plugins, trtexec flags.

Nothing here imports TensorRT or Polygraphy until a build or a run needs them."""

from hdm_deploy.tensorrt.builder import build_engine
from hdm_deploy.tensorrt.profiles import Profile, compute_profile
from hdm_deploy.tensorrt.runner import TensorRTRunner
from hdm_deploy.tensorrt.trtexec import trtexec_args

__all__ = ["Profile", "TensorRTRunner", "build_engine", "compute_profile", "trtexec_args"]
