"""Several files as one ZIP, produced while it is sent: nothing is held in memory but one chunk.

The captures of a session (an album's masters, the takes of a day) are downloaded together.
WAV does not compress, so the members are stored as they are (``ZIP_STORED``), and
:mod:`zipfile` writes to a stream it cannot seek in by putting each member's CRC and sizes
after its data (a data descriptor); ZIP64 records are used for members of about 2 GiB or more, so an
RF64 capture of several hours fits. Every ZIP reader (Info-ZIP, Windows, macOS, Python) reads it.
"""

from __future__ import annotations

import io
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path

CHUNK = 1 << 20


class _Pipe(io.RawIOBase):
    """The bytes :class:`zipfile.ZipFile` writes, kept until the generator hands them on."""

    def __init__(self):
        self._parts: list[bytes] = []

    def writable(self) -> bool:
        return True

    def write(self, b) -> int:
        self._parts.append(bytes(b))
        return len(b)

    def take(self) -> bytes:
        out = b"".join(self._parts)
        self._parts.clear()
        return out


def zip_stream(members: Iterable[tuple[str, Path]], chunk: int = CHUNK) -> Iterator[bytes]:
    """Yield a ZIP of ``members`` ((name in the archive, file on disk), in order), a chunk at a time."""
    pipe = _Pipe()
    with zipfile.ZipFile(pipe, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as zf:
        for arcname, path in members:
            info = zipfile.ZipInfo.from_file(path, arcname)     # size, date and mode from the file
            info.compress_type = zipfile.ZIP_STORED
            with open(path, "rb") as src, zf.open(info, "w") as dst:
                while buf := src.read(chunk):
                    dst.write(buf)
                    if out := pipe.take():
                        yield out
    if out := pipe.take():                                      # the central directory
        yield out
