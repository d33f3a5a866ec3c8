"""Writes that survive a power cut: temp file, fsync, rename, fsync the directory.

After :func:`write_atomic` returns, the file holds either its old or its new content after
any crash, never a mix, and the rename itself is durable.
"""

from __future__ import annotations

import hashlib
import os
import stat
import tempfile
import time
from pathlib import Path

from firmware.names import cut_bytes

NAME_MAX = 255          # bytes in one file name, where the filesystem does not say (os.pathconf)
RANDOM_CHARS = 8        # the random part mkstemp puts between prefix and suffix


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


def name_max(directory: Path | str) -> int:
    """The longest file name (bytes) ``directory``'s filesystem takes: 255 on ext4, tmpfs, FAT, exFAT."""
    try:
        return int(os.pathconf(directory, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return NAME_MAX


def temporary_prefix(directory: Path | str, name: str, tag: str = "", suffix: str = ".tmp") -> str:
    """The prefix of a hidden temporary file for ``name`` in ``directory``: ``.NAME.`` (``.NAME.TAG.`` with a
    ``tag``), so that the whole ``.NAME.TAG.XXXXXXXX.SUFFIX`` is ``name`` with a dot before it and its
    own random part and ``suffix`` after it, and :func:`remove_stale_temporaries` (and the web UI's cancel,
    which looks for ``.NAME.*.tmp``) recognise it.

    When that would pass the filesystem's limit on a file name (a legal 240-byte ``name`` does, 255
    bytes on ext4), ``name`` is cut to fit, not inside a character, and followed by ``~`` and 8 hex
    digits of its hash (two long names that begin alike keep distinct prefixes): ``.CUT~HASH8.TAG.``.
    Until 2026-11-24 such a name failed with "File name too long" although the output's own name was legal.
    """
    tail = f"{tag}." if tag else ""
    prefix = f".{name}.{tail}"
    limit = name_max(directory)
    if len(os.fsencode(prefix + "X" * RANDOM_CHARS + suffix)) <= limit:
        return prefix
    digest = hashlib.sha1(os.fsencode(name)).hexdigest()[:8]
    room = limit - len(os.fsencode(f".~{digest}.{tail}" + "X" * RANDOM_CHARS + suffix))
    return f".{cut_bytes(os.fsencode(name), room)}~{digest}.{tail}"


def make_temporary(directory: Path | str, name: str, tag: str = "", suffix: str = ".tmp") -> Path:
    """Create an empty hidden temporary file (0600) for ``name`` in ``directory``, named as
    :func:`temporary_prefix` says, and return its path; the caller writes, renames or removes it."""
    directory = Path(directory) if str(directory) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=str(directory), prefix=temporary_prefix(directory, name, tag, suffix),
                               suffix=suffix)
    os.close(fd)
    return Path(tmp)


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
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=temporary_prefix(path.parent, path.name), suffix=".tmp")
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
    """Delete the hidden temporary files (``.NAME.*.tmp``, ``.NAME.*.tmp.wav``, and for a name too long
    for that ``.CUT~HASH8.*.tmp``: :func:`temporary_prefix`) a power cut or a killed process left in
    ``directory``; (name, bytes) of each.

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
