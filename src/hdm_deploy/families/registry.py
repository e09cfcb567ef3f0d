"""The model families hdm-deploy knows — one line each — and how to find a model's family.

Adding a family: a folder ``families/<name>/`` with a torch-free ``family.py`` defining ``FAMILY``
(a :class:`~hdm_deploy.families.base.Family`), then one line in :data:`FAMILIES`.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from hdm_deploy.core.errors import ModelFormatError
from hdm_deploy.families.base import Family, resolve

__all__ = ["DEFAULT_FAMILY", "FAMILIES", "detect_family", "get_family", "names"]

#: name → "module:FAMILY" (torch-free modules)
FAMILIES: dict[str, str] = {
    "hdm": "hdm_deploy.families.hdm.family:FAMILY",
    "adfnet": "hdm_deploy.families.adfnet.family:FAMILY",
    "mhnet": "hdm_deploy.families.mhnet.family:FAMILY",
    "diffhdr": "hdm_deploy.families.diffhdr.family:FAMILY",
}
#: The family whose bundled sample checkpoint runs when no model is given.
DEFAULT_FAMILY = "hdm"


def names() -> list[str]:
    return sorted(FAMILIES)


@functools.cache
def get_family(name: str) -> Family:
    """The family registered as ``name`` (``ModelFormatError`` listing the known ones otherwise)."""
    key = str(name).strip().lower()
    if key not in FAMILIES:
        raise ModelFormatError(f"unknown model family {name!r}", f"known families: {', '.join(names())}")
    family = resolve(FAMILIES[key])
    if not isinstance(family, Family) or family.name != key:
        raise ModelFormatError(f"registry entry {key!r} does not name a Family called {key!r}")
    return family


def detect_family(keys: Iterable[str], *, arch: str | None = None) -> tuple[Family, str | None]:
    """The family (and variant) whose ``detect`` recognises these state-dict keys; ``arch`` overrides
    detection (``--arch NAME`` or ``NAME:variant``)."""
    if arch:
        name, _, variant = arch.partition(":")
        return get_family(name), variant or None
    keys = list(keys)
    found = [(f, v) for f in map(get_family, names()) if (v := f.detect(keys)) is not None]
    if len(found) == 1:
        return found[0]
    if not found:
        sample = ", ".join(sorted(keys)[:4]) or "(no keys)"
        raise ModelFormatError(
            f"no known model family has these state-dict keys ({sample}, …)",
            f"pass --arch with one of: {', '.join(names())}",
        )
    raise ModelFormatError(
        f"state-dict keys match several families: {', '.join(f.name for f, _ in found)}",
        "pass --arch to choose",
    )
