"""Atomic writes: write to a temporary file beside the target, then rename over it.

A crash or a full disk never leaves a file that looks complete but is not. The temporary file is
``.<stem>.<pid>.<random>.part<suffix>``: an error, a cancel or a signal removes it; a process killed
outright (SIGKILL, power loss) cannot, so the next write of the same target removes the temporary
files whose process is gone (see :func:`remove_stale_parts`).
"""
from __future__ import annotations

import contextlib
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

from depthstudio.errors import OutputError

if TYPE_CHECKING:
    from depthstudio.jobs import Job

#: Bytes written between two cancel checks by :func:`write_bytes` / :func:`write_text`.
CHUNK = 8 << 20

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
    remove_stale_parts(target)
    try:
        fd, tmp = tempfile.mkstemp(prefix=f".{target.stem}.{os.getpid()}.", suffix=f".part{target.suffix}",
                                   dir=target.parent)
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


def _pid_alive(pid: int) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: alive, another user's
        return True
    return True


def remove_stale_parts(target: str | os.PathLike) -> list[Path]:
    """Remove temporary files of ``target`` left by processes that no longer run; returns them.

    Only names this module makes (``.<stem>.<pid>.<random>.part<suffix>``) are touched, and only
    when that process is gone: a concurrent writer of the same target keeps its file.
    """
    target = Path(target)
    pattern = re.compile(re.escape(f".{target.stem}.") + r"(\d+)\.[A-Za-z0-9_]+" + re.escape(f".part{target.suffix}") + "$")
    removed: list[Path] = []
    try:
        names = os.listdir(target.parent)
    except OSError:
        return removed
    for name in names:
        match = pattern.match(name)
        if match is None or _pid_alive(int(match.group(1))):
            continue
        with contextlib.suppress(OSError):
            os.unlink(target.parent / name)
            removed.append(target.parent / name)
    return removed


def write_error(target: str | os.PathLike, exc: BaseException) -> OutputError:
    """The one-line error for a failed write of ``target``, also for writers that do not raise an
    OSError with an errno (OpenEXR's "Failed to write pixel data", numpy's short writes): a full
    disk is named as such, with the room left."""
    target = Path(target)
    return OutputError(f"cannot write {target}: {_reason(exc, target.parent)}")


def _reason(exc: BaseException, folder: Path) -> str:
    """What went wrong, in words; a full disk says how much room is left."""
    errno_ = getattr(exc, "errno", None)
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    reason = getattr(exc, "strerror", None) or text
    free = None
    with contextlib.suppress(OSError):
        free = shutil.disk_usage(folder).free
    if errno_ == errno.ENOSPC or (errno_ is None and free is not None and free < 1 << 20):
        reason = "No space left on device"
        if free is not None:
            reason += f" ({free / 1e6:.1f} MB free in {folder})"
        if errno_ is None:
            reason += f"; {text}"
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
            raise OutputError(f"cannot write {target}: {_reason(exc, Path(target).parent)}") from None


def write_bytes(target: str | os.PathLike, data: bytes, job: Job | None = None) -> Path:
    """Write ``data`` atomically, checking ``job`` for a cancel between chunks of :data:`CHUNK` bytes."""
    view = memoryview(data)
    with atomic_write(target, "wb") as handle:
        for start in range(0, len(view), CHUNK):
            if job is not None:
                job.check()
            handle.write(view[start:start + CHUNK])
    return Path(target)


def write_text(target: str | os.PathLike, text: str, job: Job | None = None) -> Path:
    return write_bytes(target, text.encode("utf-8"), job)
