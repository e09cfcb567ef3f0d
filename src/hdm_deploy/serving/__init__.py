"""Serving on NVIDIA Triton Inference Server (torch-free).

:mod:`~hdm_deploy.serving.repository` writes a Triton model repository for any family's exported
graph or engine; :mod:`~hdm_deploy.serving.triton_model` is the Python-backend model around our
runners; :mod:`~hdm_deploy.serving.server` starts the ``tritonserver`` that ``nvidia-pytriton``
bundles (extra ``serve``). The client side is a runner: :mod:`hdm_deploy.runtime.triton_client`.
"""

from hdm_deploy.serving.repository import RepositoryOptions, write_repository

__all__ = ["RepositoryOptions", "write_repository"]
