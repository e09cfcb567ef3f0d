"""Finding and loading ``libhdm_deploy_plugins.so`` for engine builds and the TensorRT runner.

Discovery: an explicit path, else :func:`hdm_deploy.plugins.find_plugin_library` (``$HDM_DEPLOY_PLUGIN_LIB``,
the package directory, the build directories); a library named on purpose must exist. Loading is
:func:`hdm_deploy.plugins.load_plugin_library`: import ``tensorrt``, load the library, call its
``initHdmDeployPlugins``, which registers ``HdmDeformConv`` (version 1, namespace ``hdm_deploy``)
with TensorRT's global plugin registry on TRT 8.5 → 11 alike.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

from hdm_deploy import plugins as _plugins
from hdm_deploy.core.contracts import PLUGIN_LIB_ENV, PLUGIN_LIB_NAME, PLUGIN_OPS
from hdm_deploy.core.errors import PluginBuildError
from hdm_deploy.plugins import load_plugin_library as load_and_register

LIB_NAME = PLUGIN_LIB_NAME
ENV_VAR = PLUGIN_LIB_ENV


def find_plugin_library(explicit: str | os.PathLike | None = None, required: bool = True) -> Path | None:
    """Path of the plugin library, or ``None`` (``required=False``) / :class:`PluginBuildError`.

    ``explicit`` (``--plugin-lib``) must exist; otherwise the plugin package's one finder
    (:func:`hdm_deploy.plugins.find_plugin_library`: ``$HDM_DEPLOY_PLUGIN_LIB``, which must exist when
    set, then the package and build directories). A library named on purpose is never replaced by another.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_file():
            raise PluginBuildError(
                f"plugin library not found: {path}",
                "check --plugin-lib or build it with `hdm-deploy build-plugin`",
            )
        return path
    try:
        return Path(_plugins.find_plugin_library())
    except PluginBuildError:
        if required or os.environ.get(ENV_VAR):
            raise
        return None


def model_needs_plugin(op_ids: Iterable[tuple[str, str]]) -> bool:
    """Whether a graph with these ``(domain, op_type)`` nodes needs our plugin library."""
    return any(op in PLUGIN_OPS for op in op_ids)


def load_plugin_library(path: str | os.PathLike) -> ctypes.CDLL:
    """Load the library and register its creators with TensorRT: :func:`hdm_deploy.plugins.load_plugin_library`
    (it imports ``tensorrt`` before loading the library, then calls ``initHdmDeployPlugins``)."""

    return load_and_register(path)
