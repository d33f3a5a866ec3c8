"""Plain numpy reading of PCM and float WAV files (RIFF and RF64), for the renderer's input.

Why: libsndfile's conversion to float64 costs this machine ~35 ns per sample, 0.4-0.6 s of CPU
for a 5-minute 24-bit stereo file: a tenth of a whole ``masterbox master``, and once per pass
when the drive search renders whole passes. numpy does the same conversion in a few ns.

The values are exactly libsndfile's (what ``soundfile`` returns as float64): integers scaled by
``1 / 2**(bits - 1)`` (exact in float64, as libsndfile's scaling of the word placed in the top of
an int32 is), float words as they are. ``tests/test_wav_reader.py`` compares the two for every layout read here.
Anything else (8-bit, big-endian RIFX, compressed formats, more than 2 channels, headers that do
not add up) is not ours: :func:`open_wav` returns ``None`` and the caller uses soundfile, which
also words the errors.

One deliberate difference: a header its recorder never finished (a crash or power cut before the
sizes were written: a ``data`` size of 0 that the RIFF size does not go past) is read to the end
of the file, as ffmpeg and most editors do, where libsndfile reads 0 frames. ``unfinished`` says
so, and the callers say it to the user. The box's own captures are repaired at boot
(``firmware.capture_writer.repair_unfinished``); this is for recordings made elsewhere.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

PCM, FLOAT, EXTENSIBLE = 1, 3, 0xFFFE
SUPPORTED = {(PCM, 16), (PCM, 24), (PCM, 32), (FLOAT, 32), (FLOAT, 64)}
RF64_SIZE = 0xFFFFFFFF      # a 32-bit size field that says "see the ds64 chunk"


def _layout(f, file_size: int):
    """(tag, channels, rate, bits, data offset, frames, unfinished) of an open WAV file, or None."""
    head = f.read(12)
    if len(head) < 12 or head[8:12] != b"WAVE" or head[:4] not in (b"RIFF", b"RF64"):
        return None
    ds64_data = None
    fmt = None
    while True:
        ch = f.read(8)
        if len(ch) < 8:
            return None
        cid, size = ch[:4], struct.unpack("<I", ch[4:])[0]
        start = f.tell()
        if cid == b"ds64":
            body = f.read(min(size, 28))
            if len(body) < 16:
                return None
            ds64_data = struct.unpack("<Q", body[8:16])[0]
        elif cid == b"fmt ":
            body = f.read(min(size, 40))
            if len(body) < 16:
                return None
            tag, channels, rate, _byte_rate, align, bits = struct.unpack("<HHIIHH", body[:16])
            if tag == EXTENSIBLE:
                if len(body) < 40 or struct.unpack("<H", body[18:20])[0] != bits:
                    return None     # fewer valid bits than the container: leave it to libsndfile
                tag = struct.unpack("<H", body[24:26])[0]
                if body[26:40] != b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x00\x38\x9b\x71":
                    return None
            fmt = (tag, channels, rate, bits, align)
        elif cid == b"data":
            if fmt is None:
                return None
            tag, channels, rate, bits, align = fmt
            if (tag, bits) not in SUPPORTED or channels not in (1, 2) or align != channels * bits // 8:
                return None
            if size == RF64_SIZE and head[:4] == b"RF64":
                if ds64_data is None:
                    return None
                size = ds64_data
            unfinished = size == 0 and head[:4] == b"RIFF" and struct.unpack("<I", head[4:8])[0] <= start - 8
            if unfinished:
                size = file_size - start
            frames = min(size, file_size - start) // align
            return tag, channels, rate, bits, start, frames, unfinished and frames > 0
        f.seek(start + size + (size & 1))


class WavReader:
    """The part of ``soundfile.SoundFile`` the renderer uses: samplerate, channels, frames, read, close."""

    def __init__(self, f, layout, name: str = ""):
        tag, self.channels, self.samplerate, bits, self._offset, self.frames, self.unfinished = layout
        self.name = name
        self.subtype = ("FLOAT" if bits == 32 else "DOUBLE") if tag == FLOAT else f"PCM_{bits}"
        self._f = f
        self._f.seek(self._offset)
        self._left = self.frames
        self._bits = bits
        if tag == FLOAT:
            self._word = np.dtype("<f4" if bits == 32 else "<f8")
            self._scale = None
        else:
            self._word = np.dtype("<i2" if bits == 16 else "<i4")
            self._scale = 1.0 / (1 << (bits - 1))
        self._raw = bytearray()
        self._wide = np.empty(0, dtype=np.int32)

    def read(self, frames: int, dtype: str = "float64", always_2d: bool = True, out=None) -> np.ndarray:
        """Up to ``frames`` frames as float64 (n, channels), into ``out`` when given (a view of it)."""
        if dtype != "float64" or not always_2d:
            raise ValueError("WavReader reads float64, 2-D")
        n = min(frames, self._left)
        nbytes = n * self.channels * self._bits // 8
        if len(self._raw) < nbytes + 1:
            self._raw = bytearray(nbytes + 1)
        # one spare byte in front: a 24-bit word and the byte before it make a little-endian
        # int32 whose top three bytes are the word (see below)
        got = self._f.readinto(memoryview(self._raw)[1:nbytes + 1])
        n = got // (self.channels * self._bits // 8)
        self._left = 0 if n == 0 else self._left - n
        dest = np.empty((n, self.channels)) if out is None else out[:n]
        count = n * self.channels
        flat = dest.reshape(count)
        if self._bits == 24:
            if len(self._wide) < count:
                self._wide = np.empty(count, dtype=np.int32)
            wide = self._wide[:count]
            # word k as the int32 at byte 3k (its low byte is the previous word's top byte):
            # shifting it right by 8 leaves the word, sign-extended; then x 2**-23, exact
            words = np.ndarray((count,), dtype="<i4", buffer=self._raw, strides=(3,))
            np.right_shift(words, 8, out=wide)
            np.multiply(wide, self._scale, out=flat)
        else:
            words = np.frombuffer(self._raw, dtype=self._word, count=count, offset=1)
            if self._scale is None:
                flat[:] = words
            else:
                np.multiply(words, self._scale, out=flat)
        return dest

    def tell(self) -> int:
        """Frames read so far."""
        return self.frames - self._left

    def close(self) -> None:
        self._f.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_wav(path: Path) -> WavReader | None:
    """A reader for ``path`` if it is a WAV this module reads exactly like libsndfile, else None."""
    try:
        f = open(path, "rb")  # noqa: SIM115  (owned by the reader, closed by it)
    except OSError:
        return None
    try:
        size = f.seek(0, 2)
        f.seek(0)
        layout = _layout(f, size)
    except (OSError, struct.error):
        layout = None
    if layout is None or layout[5] <= 0:
        f.close()
        return None
    return WavReader(f, layout, str(path))


def unfinished_note(path) -> str | None:
    """What to tell the user when ``path`` is a WAV whose header its recorder never finished (read to
    the end of the file, see the module's docstring); None for any other file."""
    reader = open_wav(Path(path))
    if reader is None:
        return None
    with reader:
        if not reader.unfinished:
            return None
        return (f"{path}: the WAV header was never finished (its recorder stopped before writing the sizes): "
                f"read to the end of the file, {reader.frames / reader.samplerate:.1f} s")
