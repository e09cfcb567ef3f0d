"""How much memory this process may still use (torch-free, no psutil): the kernel's MemAvailable,
capped by the cgroup limit a container runs under (v2 ``memory.max``, v1 ``limit_in_bytes``)."""

from __future__ import annotations

from pathlib import Path


def _read_int(path: str) -> int | None:
    try:
        text = Path(path).read_text().strip()
    except OSError:
        return None
    return int(text) if text.isdigit() else None  # "max" (no limit) → None


def meminfo_available() -> int | None:
    """``MemAvailable`` from /proc/meminfo, in bytes (None where there is no /proc)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def cgroup_available() -> int | None:
    """Bytes left under the cgroup memory limit (None when unlimited or unknown)."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        limit = _read_int(limit_file)
        if limit is not None and limit < 1 << 60:  # v1 reports "unlimited" as a huge number
            return max(limit - (_read_int(usage_file) or 0), 0)
    return None


def available_bytes() -> int | None:
    """The smaller of MemAvailable and the cgroup's headroom; None when neither can be read."""
    values = [v for v in (meminfo_available(), cgroup_available()) if v is not None]
    return min(values) if values else None
