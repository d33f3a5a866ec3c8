"""The Broadcast Wave ``bext`` chunk (EBU Tech 3285 version 2): who made a WAV, when, from what, how loud.

Why: a master delivered to a broadcaster or a distributor is checked by reading its loudness from
the file's metadata (EBU R 128 s1; Tech 3285 v2 added the five loudness fields for it), and a
recording made beside other recorders is placed on a DAW's timeline by its ``TimeReference`` (the
first sample's count since midnight). WaveLab, Pro Tools, Reaper and BWF MetaEdit read these
fields; ffmpeg and libsndfile read them too, which is how ``tests/test_bwf.py`` checks ours.

The chunk body, little-endian, no padding between fields (602 bytes, then the coding history)::

    Description[256] Originator[32] OriginatorReference[32] OriginationDate[10] OriginationTime[8]
    TimeReferenceLow(u32) TimeReferenceHigh(u32) Version(u16) UMID[64]
    LoudnessValue LoudnessRange MaxTruePeakLevel MaxMomentaryLoudness MaxShortTermLoudness (i16 each)
    Reserved[180] CodingHistory[...]

Text is ASCII, NUL-padded. Each loudness field is round(100 x value) (LUFS, LU, dBTP), and
0x7FFF where a value is not known (silence has no integrated loudness). The coding history is
EBU R 98 lines, ``A=PCM,F=48000,W=24,M=stereo,T=free text``, each ending CR LF: a master keeps
its source's lines and adds its own, so the file says how it was made.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import struct
import unicodedata
from dataclasses import dataclass, field
from pathlib import Path

BODY = struct.Struct("<256s32s32s10s8sIIH64s5h180s")
assert BODY.size == 602
VERSION = 2
UNSET = 0x7FFF
LOUDNESS_FIELDS = ("loudness_value", "loudness_range", "max_true_peak_level", "max_momentary_loudness",
                   "max_short_term_loudness")
# the analysis keys (firmware/analysis.py) each loudness field is stamped from
ANALYSIS_KEYS = dict(zip(LOUDNESS_FIELDS, ("integrated_lufs", "loudness_range_lu", "true_peak_dbtp",
                                            "max_momentary_lufs", "max_short_term_lufs"), strict=True))
# BWF MetaEdit's bounds for the fields (-99.99..99.99, a range 0..99.99): a value past them is clamped
_LIMITS = {"loudness_range": (0.0, 99.99)}
_DEFAULT_LIMITS = (-99.99, 99.99)
_CHUNK_HEAD = struct.Struct("<4sI")
_LOUDNESS_OFFSET = struct.calcsize("<256s32s32s10s8sIIH64s")   # where the five loudness fields start in the body
_SCAN_LIMIT = 64 * 1024 * 1024    # chunks before 'data' are read from at most this far into a file
HISTORY_LIMIT = 8192              # characters of coding history we write (libsndfile holds 16 KiB in all)


class BextError(ValueError):
    """A WAV whose bext chunk cannot be read (shorter than the 602 bytes every version has)."""


@dataclass
class Bext:
    """The fields of one ``bext`` chunk, as Python values (loudness in LUFS/LU/dBTP, None when unset)."""

    description: str = ""
    originator: str = "masterbox"
    originator_reference: str = ""
    origination_date: str = ""      # yyyy-mm-dd
    origination_time: str = ""      # hh:mm:ss
    time_reference: int = 0         # samples since midnight at the first sample
    version: int = VERSION
    loudness_value: float | None = None
    loudness_range: float | None = None
    max_true_peak_level: float | None = None
    max_momentary_loudness: float | None = None
    max_short_term_loudness: float | None = None
    coding_history: str = ""
    umid: bytes = field(default=b"", repr=False)

    def stamp_time(self, when: _dt.datetime) -> None:
        """Origination date and time (local, as recorders write them) from ``when``."""
        self.origination_date = f"{when:%Y-%m-%d}"
        self.origination_time = f"{when:%H:%M:%S}"

    def stamp_loudness(self, analysis: dict | None) -> None:
        """The five loudness fields from an ``analyze``-style dict (its missing or None values stay unset)."""
        for name, key in ANALYSIS_KEYS.items():
            setattr(self, name, None if analysis is None else analysis.get(key))

    def as_dict(self) -> dict:
        """For ``analyze --json``: the text fields and the loudness fields as read (None when unset)."""
        out = {k: getattr(self, k) for k in ("description", "originator", "originator_reference",
                                             "origination_date", "origination_time", "time_reference", "version")}
        out.update({k: getattr(self, k) for k in LOUDNESS_FIELDS})
        out["coding_history"] = self.coding_history
        return out


def ascii_text(text: str, size: int) -> bytes:
    """``text`` as the ASCII the chunk holds: accents dropped, other characters as ``?``, cut to ``size``."""
    text = unicodedata.normalize("NFKD", text or "")
    text = "".join(c for c in text if not unicodedata.combining(c))
    raw = text.encode("ascii", "replace")
    return bytes(b if 32 <= b < 127 or b in (10, 13) else 63 for b in raw)[:size]


def _centi(value: float | None, name: str) -> int:
    """round(100 x value) within the field's bounds, or UNSET."""
    if value is None or not math.isfinite(value):
        return UNSET
    lo, hi = _LIMITS.get(name, _DEFAULT_LIMITS)
    return int(round(min(max(float(value), lo), hi) * 100))


def _uncenti(raw: int) -> float | None:
    return None if raw == UNSET else raw / 100.0


def pack(b: Bext) -> bytes:
    """The chunk's body (even length: one NUL after an odd coding history)."""
    ref = int(b.time_reference) & 0xFFFFFFFFFFFFFFFF
    body = BODY.pack(ascii_text(b.description, 256), ascii_text(b.originator, 32),
                     ascii_text(b.originator_reference, 32), ascii_text(b.origination_date, 10),
                     ascii_text(b.origination_time, 8), ref & 0xFFFFFFFF, ref >> 32, int(b.version),
                     bytes(b.umid)[:64], *(_centi(getattr(b, k), k) for k in LOUDNESS_FIELDS), b"")
    history = ascii_text(b.coding_history, 1 << 20)
    out = body + history
    return out + b"\0" if len(out) & 1 else out


def chunk(b: Bext) -> bytes:
    """``bext``, its size, its body."""
    body = pack(b)
    return _CHUNK_HEAD.pack(b"bext", len(body)) + body


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode("ascii", "replace")


def unpack(body: bytes) -> Bext:
    """A :class:`Bext` from a chunk's body; version 0 and 1 chunks read with their loudness unset."""
    if len(body) < BODY.size:
        raise BextError(f"bext chunk of {len(body)} bytes, shorter than the {BODY.size} every version has")
    (desc, orig, ref, date, time, lo, hi, version, umid, *loud, _reserved) = BODY.unpack_from(body)
    b = Bext(_text(desc), _text(orig), _text(ref), _text(date), _text(time), lo | hi << 32, version,
             coding_history=_text(body[BODY.size:]), umid=umid)
    if version >= 2:
        for name, raw in zip(LOUDNESS_FIELDS, loud, strict=True):
            setattr(b, name, _uncenti(raw))
    return b


def locate(path) -> tuple[int, int] | None:
    """(offset of the bext body, its size) in a RIFF/RF64/BW64 WAVE file, or None if it has none."""
    with open(path, "rb") as f:
        head = f.read(12)
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64", b"BW64") or head[8:12] != b"WAVE":
            return None
        pos = 12
        while pos < _SCAN_LIMIT:
            f.seek(pos)
            raw = f.read(8)
            if len(raw) < 8:
                return None
            cid, size = _CHUNK_HEAD.unpack(raw)
            if cid == b"bext":
                return pos + 8, size
            if cid == b"data":
                return None         # a bext after the samples: not where any writer puts it
            pos += 8 + size + (size & 1)
    return None


def read(path) -> Bext | None:
    """The bext chunk of the WAV at ``path``; None when there is none or the file is not a WAV."""
    where = locate(path)
    if where is None:
        return None
    offset, size = where
    with open(path, "rb") as f:
        f.seek(offset)
        body = f.read(min(size, 1 << 20))
    if len(body) < min(size, BODY.size):
        raise BextError(f"{Path(path).name}: the bext chunk is cut short")
    return unpack(body)


def stamp_loudness_in_place(path, analysis: dict) -> bool:
    """Write the five loudness fields of ``analysis`` into the bext chunk of the WAV at ``path``, in place.

    Only a version 2 chunk whose five fields are all unset is written (a file that carries its
    loudness already, or one with an older chunk, is left as it is) and only those 10 bytes change:
    the chunk keeps its size, so nothing after it moves. Returns True when the file was written
    (and fsynced). Why in place: a capture can be gigabytes, and the header's sizes are rewritten
    in place about once a second the whole time it records, so this is the same kind of write.
    """
    b = read(path)
    if b is None or b.version < 2 or any(getattr(b, k) is not None for k in LOUDNESS_FIELDS):
        return False
    b.stamp_loudness(analysis)
    if all(getattr(b, k) is None for k in LOUDNESS_FIELDS):
        return False
    offset, _ = locate(path)
    with open(path, "r+b") as f:
        f.seek(offset + _LOUDNESS_OFFSET)
        f.write(struct.pack("<5h", *(_centi(getattr(b, k), k) for k in LOUDNESS_FIELDS)))
        f.flush()
        os.fsync(f.fileno())
    return True


def coding_line(rate: int, bits: int | str, channels: int, text: str) -> str:
    """One EBU R 98 coding-history line for PCM: ``A=PCM,F=rate,W=bits,M=mono|stereo,T=text`` CR LF."""
    mode = "mono" if channels == 1 else "stereo"
    return f"A=PCM,F={int(rate)},W={bits},M={mode},T={text}\r\n"


def history_after(source: Bext | None, line: str) -> str:
    """``line`` after the coding history of the file it was made from (each of its lines ending CR LF);
    the source's oldest lines are dropped where the whole would pass :data:`HISTORY_LIMIT`."""
    before = (source.coding_history if source else "").strip("\0")
    lines = [s + "\r\n" for s in before.replace("\r\n", "\n").split("\n") if s.strip()]
    room = HISTORY_LIMIT - len(line)
    while lines and sum(map(len, lines)) > room:
        lines.pop(0)
    return "".join(lines) + line


def time_of_day_samples(when: _dt.datetime, rate: int) -> int:
    """Samples since the local midnight before ``when``: the TimeReference of a recording started then."""
    midnight = when.replace(hour=0, minute=0, second=0, microsecond=0)
    return int(round((when - midnight).total_seconds() * rate))


def libsndfile_struct(b: Bext) -> bytes:
    """``b`` laid out as libsndfile's ``SF_BROADCAST_INFO`` (C alignment: 2 bytes after the date and time),
    for ``sf_command(SFC_SET_BROADCAST_INFO)``: the fields, then the coding history's length and text."""
    body = pack(b)
    history = body[BODY.size:].rstrip(b"\0")
    return body[:338] + b"\0\0" + body[338:BODY.size] + struct.pack("<I", len(history)) + history + b"\0"


SFC_SET_BROADCAST_INFO = 0x10F1    # sndfile.h


def set_with_libsndfile(snd, b: Bext) -> None:
    """Give the ``soundfile.SoundFile`` ``snd`` (open for writing a WAV or RF64) the chunk ``b``.

    python-soundfile has no call for it, so this goes through its libsndfile binding. libsndfile
    takes a first chunk only before any samples are written, and then a new one of the same
    coding history at any time before the file is closed (it writes the header at close).
    libsndfile appends a coding-history line of its own (``T=libsndfile-1.x``).
    """
    from soundfile import _ffi, _snd

    raw = libsndfile_struct(b)
    if not _snd.sf_command(snd._file, SFC_SET_BROADCAST_INFO, _ffi.new("char[]", raw), len(raw)):
        raise BextError(f"libsndfile refused the bext chunk for {snd.name}")


def mismatches(b: Bext, analysis: dict, tolerance: float = 0.1) -> list[str]:
    """The loudness fields of ``b`` that disagree with ``analysis`` (what the file measures) by more than
    ``tolerance`` (LU or dB); a field only one side has counts as disagreeing, one neither has does not."""
    out = []
    for name, key in ANALYSIS_KEYS.items():
        stamped, measured = getattr(b, name), analysis.get(key)
        if stamped is None and measured is None:
            continue
        if stamped is None or measured is None or abs(stamped - measured) > tolerance:
            out.append(name)
    return out
