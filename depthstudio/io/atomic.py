"""Atomic writes: write to a temporary file beside the target, then rename over it.

A crash or a full disk never leaves a file that looks complete but is not.
"""
from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

from depthstudio.errors import OutputError

# mkstemp creates files readable by their owner only; outputs get the usual rw-r--r-- (per umask).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def ensure_dir(path: str | os.PathLike) -> Path:
    """Create an output folder (and parents), with a clear error when that is not possible."""
    folder = Path(path)
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"cannot create output folder {folder}: {exc.strerror or exc}") from None
    if not os.access(folder, os.W_OK):
        raise OutputError(f"output folder is not writable: {folder}")
    return folder


@contextlib.contextmanager
def atomic_path(target: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it to ``target``.

    For libraries that insist on writing to a path themselves. The temporary name keeps the
    target's suffix so format detection by extension still works.
    """
    target = Path(target)
    ensure_dir(target.parent)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=f".part{target.suffix}", dir=target.parent)
    except OSError as exc:
        raise OutputError(f"cannot write to {target.parent}: {exc.strerror or exc}") from None
    os.close(fd)
    with contextlib.suppress(OSError):
        os.chmod(tmp, 0o666 & ~_UMASK)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, target)
    except OSError as exc:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise OutputError(f"cannot write {target}: {_reason(exc, target.parent)}") from None
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def _reason(exc: OSError, folder: Path) -> str:
    """What went wrong, in words; a full disk says how much room is left."""
    import errno

    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        with contextlib.suppress(OSError):
            free = shutil.disk_usage(folder).free
            reason += f" ({free / 1e6:.1f} MB free in {folder})"
    return reason


@contextlib.contextmanager
def atomic_write(target: str | os.PathLike, mode: str = "wb") -> Iterator:
    """Open a file object for writing; it appears at ``target`` only when the block succeeds."""
    with atomic_path(target) as tmp:
        try:
            with open(tmp, mode) as handle:
                yield handle
                handle.flush()
                os.fsync(handle.fileno())
        except OSError as exc:
            raise OutputError(f"cannot write {target}: {exc.strerror or exc}") from None


def write_bytes(target: str | os.PathLike, data: bytes) -> Path:
    with atomic_write(target, "wb") as handle:
        handle.write(data)
    return Path(target)


def write_text(target: str | os.PathLike, text: str) -> Path:
    with atomic_write(target, "w") as handle:
        handle.write(text)
    return Path(target)
