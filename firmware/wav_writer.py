"""A 16/24-bit PCM WAV writer with libsndfile's exact bytes, for ``masterbox master``'s output.

Why: writing the 24-bit output through libsndfile (``soundfile``) cost ~0.2 s of CPU per pass
for a 5-minute stereo file (its double-to-PCM conversion), and importing soundfile another
few tens of milliseconds. The conversion here is a kernel (:mod:`dsp.pcm`, in the
ahead-of-time build too), the header a ``struct``.

The file is what ``soundfile.SoundFile(path, "w", format="WAV", subtype="PCM_16"/"PCM_24")``
writes for the same samples, byte for byte: a 44-byte header (``RIFF``, a 16-byte ``fmt ``
chunk of format 1, ``data``), the interleaved little-endian words, and one zero pad byte when
the data has an odd length (the ``data`` size does not count it, the ``RIFF`` size does).
``tests/test_wav_writer.py`` compares files with libsndfile's. Only what fits a 32-bit RIFF
size: the renderer uses soundfile for RF64, FLAC, AIFF and 32-bit float.

With ``bext`` (a :class:`firmware.bwf.Bext`) a Broadcast Wave ``bext`` chunk sits between ``fmt ``
and ``data``, where libsndfile puts it; set :attr:`WavWriter.bext` again before ``close()`` to
stamp what was only known at the end (the loudness), keeping the coding history's length.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

BITS = (16, 24)
HEADER = struct.Struct("<4sI4s4sIHHIIHH4sI")
MAX_DATA_BYTES = 0xFFFFFFFF - 36 - 1    # what the RIFF size field can describe


class WavWriter:
    """``write(y)`` blocks of (frames, channels) float64 samples; ``close()`` (or ``with``) finishes the header."""

    def __init__(self, path, rate: int, channels: int, bits: int, bext=None):
        if bits not in BITS:
            raise ValueError(f"bits must be one of {BITS}, got {bits}")
        if channels not in (1, 2):
            raise ValueError(f"channels must be 1 or 2, got {channels}")
        from dsp import aot, pcm

        name = f"pcm{bits}_le"
        self._kernel = aot.kernel(name, getattr(pcm, name))   # compiled after aot.enable(), else JIT
        self.path = Path(path)
        self.rate, self.channels, self.bits = int(rate), int(channels), int(bits)
        self._width = bits // 8 * channels          # bytes per frame
        self._buf = np.empty(0, dtype=np.uint8)
        self._data = 0
        self.bext = bext
        self._bext_bytes = len(self._bext_chunk())
        self._f = open(self.path, "wb")
        try:
            self._f.write(self._header())
        except BaseException:
            self._f.close()
            raise

    def _bext_chunk(self) -> bytes:
        if self.bext is None:
            return b""
        from firmware.bwf import chunk

        return chunk(self.bext)

    def _header(self) -> bytes:
        pad = self._data & 1
        bext = self._bext_chunk()
        if len(bext) != self._bext_bytes:
            raise ValueError(f"{self.path}: the bext chunk changed size ({self._bext_bytes} -> {len(bext)} bytes)")
        head = HEADER.pack(b"RIFF", 36 + len(bext) + self._data + pad, b"WAVE", b"fmt ", 16, 1, self.channels,
                           self.rate, self.rate * self._width, self._width, self.bits, b"data", self._data)
        return head[:36] + bext + head[36:]

    def write(self, y) -> None:
        if y.ndim != 2 or y.shape[1] != self.channels:
            raise ValueError(f"expected (frames, {self.channels}) samples, got shape {y.shape}")
        y = np.ascontiguousarray(y, dtype=np.float64)
        n = len(y) * self._width
        if self._data + n > MAX_DATA_BYTES - self._bext_bytes:
            raise ValueError(f"{self.path}: more than a RIFF WAV file can hold; use RF64")
        if len(self._buf) < n:
            self._buf = np.empty(n, dtype=np.uint8)
        out = self._buf[:n]
        self._kernel(y, out)
        self._f.write(out.data)
        self._data += n

    def close(self) -> None:
        if self._f.closed:
            return
        try:
            if self._data & 1:
                self._f.write(b"\0")
            self._f.seek(0)
            self._f.write(self._header())
        finally:
            self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()
