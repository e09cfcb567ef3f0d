"""Atomic artifact writes: a crash or Ctrl-C never leaves a half-written model, engine or image."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


def temp_path_beside(target: str | os.PathLike, suffix: str | None = None) -> Path:
    """A fresh temporary file in ``target``'s folder (same filesystem, so the final rename is atomic).

    It keeps ``target``'s suffix (or ``suffix``) so that writers which choose a format from the
    extension (OpenCV, Pillow, numpy) still work.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=suffix if suffix is not None else target.suffix, dir=target.parent
    )
    os.close(fd)
    # mkstemp creates 0600; give the artifact the permissions a plain open() would (0666 & ~umask).
    os.chmod(tmp, 0o666 & ~_umask())
    return Path(tmp)


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


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
    import hashlib

    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk):
            h.update(block)
    return h.hexdigest()
