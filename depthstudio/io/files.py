"""Input files: say what is wrong with one (not found, permission denied, symlink loop, empty, a folder)."""
from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from depthstudio.errors import InputError


def os_reason(exc: OSError) -> str:
    """An OSError in a few words a user can act on (no errno numbers)."""
    code = exc.errno
    if code in (errno.EACCES, errno.EPERM):
        return "permission denied"
    if code == errno.ELOOP:
        return "symlink loop"
    if code == errno.ENOSPC:
        return "no space left on device"
    if code == errno.EROFS:
        return "read-only file system"
    if code == errno.EDQUOT:
        return "disk quota exceeded"
    if code in (errno.ENOENT, errno.ENOTDIR):
        return "not found"
    if code == errno.ENAMETOOLONG:
        return "file name too long"
    if code == errno.EISDIR:
        return "is a folder"
    return exc.strerror.lower() if exc.strerror else str(exc)


def check_input(path: str | os.PathLike, what: str = "file") -> Path:
    """Return ``path`` when it is a non-empty file this process can read, else raise InputError.

    ``what`` names the file in messages ("file", "depth file"). A path that does not resolve says
    why: not found, a broken symlink, a symlink loop, permission denied.
    """
    path = Path(path)
    try:
        st = os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ENOENT and os.path.islink(path):
            raise InputError(f"{path}: broken symlink (points to {os.readlink(path)})") from None
        reason = os_reason(exc)
        raise InputError(f"{path}: {what} not found" if reason == "not found" else f"{path}: {reason}") from None
    if stat.S_ISDIR(st.st_mode):
        raise InputError(f"{path}: is a folder, not a {what}")
    try:
        with open(path, "rb"):
            pass
    except OSError as exc:
        raise InputError(f"{path}: {os_reason(exc)}") from None
    if st.st_size == 0:
        raise InputError(f"{path}: {what} is empty (0 bytes)")
    return path


def read_error(path: str | os.PathLike, exc: OSError) -> InputError | None:
    """An InputError for OS-level read failures (permission, symlink loop), None for format errors."""
    if getattr(exc, "errno", None) in (errno.EACCES, errno.EPERM, errno.ELOOP, errno.ENOENT, errno.EISDIR, errno.EIO):
        return InputError(f"{path}: {os_reason(exc)}")
    return None
