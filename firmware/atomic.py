"""Writes that survive a power cut: temp file, fsync, rename, fsync the directory.

After :func:`write_atomic` returns, the file holds either its old or its new content after
any crash, never a mix, and the rename itself is durable.
"""

from __future__ import annotations

import os
import stat
import tempfile
import time
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


def open_files() -> set[tuple[int, int]]:
    """(device, inode) of every file some process has open, as far as /proc lets us see."""
    seen = set()
    for fd_dir in Path("/proc").glob("[0-9]*/fd"):
        try:
            fds = list(fd_dir.iterdir())
        except OSError:         # gone, or not ours to look at
            continue
        for fd in fds:
            try:
                st = fd.stat()
            except OSError:
                continue
            seen.add((st.st_dev, st.st_ino))
    return seen


def remove_stale_temporaries(directory: Path | str, older_than_s: float = 60.0) -> list[tuple[str, int]]:
    """Delete the hidden temporary files (``.NAME.*.tmp``, ``.NAME.*.tmp.wav``) a power cut or a killed
    process left in ``directory``; (name, bytes) of each.

    :func:`write_atomic` and every writer that renames at the end leave one when cut off before
    the rename. One that some process still holds open (a mastering child that outlived its
    control process, an upload being received) or that changed in the last ``older_than_s`` is
    left alone: another process may be writing it.
    """
    directory = Path(directory)
    if not directory.is_dir():
        return []
    now = time.time()
    candidates = []
    for tmp in directory.glob(".*"):
        if not (tmp.name.endswith(".tmp") or tmp.name.endswith(".tmp.wav")):
            continue
        try:
            st = tmp.lstat()
        except FileNotFoundError:
            continue
        if stat.S_ISREG(st.st_mode) and now - st.st_mtime >= older_than_s:
            candidates.append((tmp, st))
    if not candidates:
        return []
    busy = open_files()
    removed = []
    for tmp, st in candidates:
        if (st.st_dev, st.st_ino) in busy:
            continue
        try:
            tmp.unlink()
        except FileNotFoundError:
            continue
        removed.append((tmp.name, st.st_size))
    if removed:
        fsync_dir(directory)
    return removed
