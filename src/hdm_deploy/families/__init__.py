"""Model families, one folder each (``hdm/``), found through :mod:`.registry`."""

from hdm_deploy.families.base import Family, FamilyExport, FrameContract
from hdm_deploy.families.registry import detect_family, get_family, names

__all__ = [
    "Family",
    "FamilyExport",
    "FrameContract",
    "detect_family",
    "get_family",
    "names",
]
