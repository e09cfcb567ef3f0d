"""Finding and loading ``libhdm_deploy_plugins.so`` for engine builds and the TensorRT runner.

Discovery order (the same as ``hdm_deploy.plugins.find_plugin_library`` when that exists, which we
call first): an explicit path, ``$HDM_DEPLOY_PLUGIN_LIB``, the package directory
(``hdm_deploy/plugins/``), then build directories (``build/``, ``plugins/build``) of a source
checkout; a library named on purpose (explicit path or the variable) must exist. Loading is
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


def candidate_paths(
    explicit: str | os.PathLike | None = None, env: dict[str, str] | None = None
) -> list[Path]:
    """Where we look, in order (pure: no file-system access)."""
    env = os.environ if env is None else env
    out: list[Path] = []
    if explicit:
        out.append(Path(explicit))
    if env.get(ENV_VAR):
        out.append(Path(env[ENV_VAR]))
    pkg = Path(__file__).resolve().parent.parent  # hdm_deploy/
    out.append(pkg / "plugins" / LIB_NAME)
    out.append(pkg / "plugins" / "lib" / LIB_NAME)
    repo = pkg.parent.parent  # src/hdm_deploy → repo root in a source checkout
    for build in ("build", "build/plugins", "src/hdm_deploy/plugins/build", "plugins/build"):
        out.append(repo / build / LIB_NAME)
    return out


def find_plugin_library(explicit: str | os.PathLike | None = None, required: bool = True) -> Path | None:
    """Path of the plugin library, or ``None`` (``required=False``) / :class:`PluginBuildError`.

    A library named on purpose (``explicit``, else ``$HDM_DEPLOY_PLUGIN_LIB``) must exist, whatever
    ``required`` says: we never fall back silently to another library.
    """
    given, source = (explicit, "--plugin-lib") if explicit else (os.environ.get(ENV_VAR), f"${ENV_VAR}")
    if given:
        path = Path(given).expanduser()
        if not path.is_file():
            raise PluginBuildError(
                f"plugin library not found: {path}",
                f"check {source} or build it with `hdm-deploy build-plugin`",
            )
        return path
    try:  # the plugin package's own discovery (it knows its build layout best)
        found = _plugins.find_plugin_library()
    except PluginBuildError:
        found = None
    if found:
        return Path(found)
    for path in candidate_paths():
        if path.is_file():
            return path
    if required:
        raise PluginBuildError(
            f"{LIB_NAME} not found (looked at ${ENV_VAR}, the package and build directories)",
            f"build it with `hdm-deploy build-plugin`, or set {ENV_VAR}=/path/to/{LIB_NAME}",
        )
    return None


def model_needs_plugin(op_ids: Iterable[tuple[str, str]]) -> bool:
    """Whether a graph with these ``(domain, op_type)`` nodes needs our plugin library."""
    return any(op in PLUGIN_OPS for op in op_ids)


def load_plugin_library(path: str | os.PathLike) -> ctypes.CDLL:
    """Load the library and register its creators with TensorRT: :func:`hdm_deploy.plugins.load_plugin_library`
    (it imports ``tensorrt`` before loading the library, then calls ``initHdmDeployPlugins``)."""

    return load_and_register(path)
