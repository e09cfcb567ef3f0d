"""Atomic artifact writes and output-path safety.

* A crash or Ctrl-C never leaves a half-written model, engine or image: writes go to a temporary
  file ``.NAME.tmp-<pid>-<n><suffix>`` beside the target and are renamed onto it at the end. The
  temp file is removed on any exception (Ctrl-C and, with the CLI's handler, SIGTERM included);
  after a SIGKILL the next write beside the same target removes temp files of dead processes.
* Inputs are sacred: :func:`refuse_overwrite` refuses, before any work, an output that is (after
  symlinks, hard links, and case folding where the file system folds case) one of the inputs.
"""

from __future__ import annotations

import contextlib
import hashlib
import itertools
import os
import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from hdm_deploy.core.errors import OutputPathError

_counter = itertools.count()
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.tmp-(?P<pid>\d+)-\d+")


def temp_name(target: str | os.PathLike, suffix: str | None = None) -> str:
    """``.NAME.tmp-<pid>-<n><suffix>``: recognisable, so stale ones can be found and removed."""
    target = Path(target)
    return (
        f".{target.name}.tmp-{os.getpid()}-{next(_counter)}{suffix if suffix is not None else target.suffix}"
    )


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def clean_stale_temps(target: str | os.PathLike) -> list[Path]:
    """Remove temp files beside ``target`` left by processes that no longer run (SIGKILL, power loss)."""
    target = Path(target)
    removed: list[Path] = []
    try:
        entries = list(target.parent.iterdir())
    except OSError:
        return removed
    for entry in entries:
        m = _TEMP_RE.match(entry.name)
        if m and m.group("name") == target.name and not _pid_alive(int(m.group("pid"))):
            with contextlib.suppress(OSError):
                entry.unlink()
                removed.append(entry)
    return removed


def temp_path_beside(target: str | os.PathLike, suffix: str | None = None) -> Path:
    """A fresh temporary file in ``target``'s folder (same filesystem, so the final rename is atomic).

    It keeps ``target``'s suffix (or ``suffix``) so that writers which choose a format from the
    extension (OpenCV, Pillow, numpy) still work. Stale temp files of dead processes beside the same
    target are removed first.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temps(target)
    tmp = target.parent / temp_name(target, suffix)
    # O_EXCL: never follow or reuse something already there; 0666 & ~umask like a plain open().
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
    os.close(fd)
    return tmp


def discard(tmp: Path) -> None:
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temporary path beside ``target``; rename it onto ``target`` only if the block succeeds."""
    tmp = temp_path_beside(target, suffix)
    try:
        yield tmp
        os.replace(tmp, target)
    except BaseException:
        discard(tmp)
        raise


def atomic_write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
    return Path(target)


def atomic_write_text(target: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(target, text.encode("utf-8"))


def sha256_file(path: str | os.PathLike, chunk: int = 1 << 20) -> str:

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()


def same_file(a: str | os.PathLike, b: str | os.PathLike) -> bool:
    """True when ``a`` and ``b`` name the same existing file or folder.

    Compared by device and inode after the OS resolves both names, so symlinks, hard links, ``..``
    and case-insensitive file systems (``PHOTO.JPG`` opens ``photo.jpg``) are all caught.
    """
    try:
        return os.path.samefile(a, b)
    except (OSError, ValueError):
        return False


def refuse_overwrite(
    inputs: Iterable[str | os.PathLike | None], outputs: Iterable[str | os.PathLike | None]
) -> None:
    """Raise :class:`OutputPathError` (exit 2) if any output would replace any input. Call before any work.

    ``None`` entries are ignored (optional outputs). An output that does not exist yet cannot be an
    input; one that exists is compared by inode, which also catches links and case folding.
    """
    ins = [Path(p) for p in inputs if p is not None]
    for out in outputs:
        if out is None:
            continue
        for src in ins:
            if same_file(out, src):
                shown = f"{out}" if Path(out) == src else f"{out} (= {src})"
                raise OutputPathError(
                    f"refusing to overwrite the input {shown}",
                    "choose another output path (-o); inputs are never written",
                )


def probe_writable(folder: str | os.PathLike) -> Path:
    """Create ``folder`` (and parents) and prove a file can be written there, before any work.

    Writes and removes a real temp file, so read-only mounts, immutable folders and full disks are
    caught even for root (which ignores permission bits). Raises ``OSError`` (the CLI: exit 3) or
    :class:`OutputPathError` when a file stands where the folder should be.
    """
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise OutputPathError(f"{folder} is a file, not a folder", "choose another output path")
    folder.mkdir(parents=True, exist_ok=True)
    discard(temp_path_beside(folder / ".hdm-deploy-write-test"))
    return folder
