"""Writes that survive a power cut: temp file, fsync, rename, fsync the directory.

After :func:`write_atomic` returns, the file holds either its old or its new content after
any crash, never a mix, and the rename itself is durable.
"""

from __future__ import annotations

import os
import stat
import tempfile
from pathlib import Path


def ordinary_mode(path: Path | str) -> int:
    """The permissions ``path`` gets when written the ordinary way: its own when it exists (a
    replaced file keeps them), else 0666 less the umask. A temporary file from ``mkstemp`` is
    0600, which, renamed into place, would hide a master from the group and from a share."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path | str, data: bytes | str, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` atomically and durably."""
    path = Path(path)
    if isinstance(data, str):
        data = data.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    fsync_dir(path.parent)
