"""Finding and loading ``libhdm_deploy_plugins.so`` for engine builds and the TensorRT runner.

Discovery order (the same as ``hdm_deploy.plugins.find_plugin_library`` when that exists, which we
call first): an explicit path, ``$HDM_DEPLOY_PLUGIN_LIB``, the package directory
(``hdm_deploy/plugins/``), then build directories (``build/``, ``plugins/build``) of a source
checkout. Loading is ``ctypes.CDLL(..., RTLD_GLOBAL)``: the library registers its creators
(``HdmDeformConv``, version 1, namespace ``hdm_deploy``) with TensorRT's global plugin registry
when it is loaded, which works on TRT 8.5 → 11 alike.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable
from pathlib import Path

from ..errors import PluginBuildError

LIB_NAME = "libhdm_deploy_plugins.so"
ENV_VAR = "HDM_DEPLOY_PLUGIN_LIB"
PLUGIN_OPS = {("hdm_deploy", "HdmDeformConv")}

_loaded: dict[str, ctypes.CDLL] = {}


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
    """Path of the plugin library, or ``None`` (``required=False``) / :class:`PluginBuildError`."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise PluginBuildError(
                f"plugin library not found: {path}",
                "check --plugin-lib or build it with `hdm-deploy build-plugin`",
            )
        return path
    try:  # the plugin package's own discovery, when it exists (it knows its build layout best)
        from .. import plugins as _plugins

        finder = getattr(_plugins, "find_plugin_library", None)
        if finder is not None:
            try:
                found = finder()
            except PluginBuildError:
                found = None
            if found:
                return Path(found)
    except ImportError:  # pragma: no cover
        pass
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
    """dlopen the library globally (idempotent); its static initialisers register the creators."""
    key = str(Path(path).resolve())
    if key not in _loaded:
        try:
            _loaded[key] = ctypes.CDLL(key, mode=ctypes.RTLD_GLOBAL)
        except OSError as exc:
            raise PluginBuildError(
                f"cannot load {path}: {exc}",
                "it must be built against this TensorRT/CUDA; rebuild with `hdm-deploy build-plugin`",
            ) from exc
    return _loaded[key]


def registered_creators(registry) -> list[tuple[str, str, str]]:  # pragma: no cover - needs TensorRT
    """(name, version, namespace) of every creator in a TensorRT plugin registry (TRT 8.5 → 11)."""
    creators = getattr(registry, "all_creators", None) or getattr(registry, "plugin_creator_list", [])
    out = []
    for c in creators:
        out.append(
            (getattr(c, "name", "?"), getattr(c, "plugin_version", "?"), getattr(c, "plugin_namespace", ""))
        )
    return out
