"""The writer's side of a file the engine shares with other processes by memory mapping
(``meters.shm``, ``scope.shm``).

Made whole beside its name and renamed into place, so a reader never maps half a file and a reader
of the previous engine's file sees a new inode and maps again; removed when the writer stops, so
readers answer "no engine". The readers' side stays with each format (:mod:`firmware.meters_shm`,
:mod:`firmware.scope_shm`): what makes a mapped file valid, and which views of it they keep, is
the format's business.
"""

from __future__ import annotations

import mmap
import os
from pathlib import Path


class SharedFile:
    """``path`` made with ``contents`` (zero-padded to ``size`` bytes) and mapped read-write as :attr:`map`."""

    def __init__(self, path: Path, contents: bytes, size: int):
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as f:
            f.write(contents)
            f.truncate(size)
        os.replace(tmp, path)  # readers never see a half-made file
        self._file = open(path, "r+b")
        self.map = mmap.mmap(self._file.fileno(), size)

    def close(self, remove: bool = True) -> None:
        """Unmap (the caller has dropped its views of :attr:`map`) and, by default, remove the file."""
        self.map.close()
        self._file.close()
        if remove:
            self.path.unlink(missing_ok=True)
