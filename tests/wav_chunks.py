"""WAV chunk helpers for tests: a file's chunks, its bytes without the metadata, and the bext
chunk as libsndfile reads it (the oracle for firmware/bwf.py: libsndfile's own parser, through
``sf_command(SFC_GET_BROADCAST_INFO)``, laid out as its C struct ``SF_BROADCAST_INFO``)."""

from __future__ import annotations

import struct
from pathlib import Path

SFC_GET_BROADCAST_INFO = 0x10F0
# SF_BROADCAST_INFO: C alignment puts 2 bytes after the 338 bytes of text
_SF_BROADCAST_INFO = struct.Struct("<256s32s32s10s8s2xIIH64s5h180sI")


def chunks(raw: bytes) -> list[tuple[bytes, int, int]]:
    """(id, offset of the body, size) of each chunk of a RIFF WAVE file's bytes."""
    assert raw[:4] == b"RIFF" and raw[8:12] == b"WAVE"
    out, pos = [], 12
    while pos + 8 <= len(raw):
        cid, size = struct.unpack_from("<4sI", raw, pos)
        out.append((cid, pos + 8, size))
        pos += 8 + size + (size & 1)
    return out


def without_bext(path) -> bytes:
    """The file's bytes with its bext chunk taken out and the RIFF size lowered to match: what a
    writer that adds no metadata writes for the same samples."""
    raw = Path(path).read_bytes()
    for cid, body, size in chunks(raw):
        if cid == b"bext":
            gone = 8 + size + (size & 1)
            riff = struct.unpack_from("<I", raw, 4)[0] - gone
            return raw[:4] + struct.pack("<I", riff) + raw[8:body - 8] + raw[body - 8 + gone:]
    return raw


def libsndfile_bext(path) -> dict | None:
    """The bext fields as libsndfile reads them (loudness as the raw centi-unit integers), or None."""
    import soundfile as sf
    from soundfile import _ffi, _snd

    buf = _ffi.new("char[]", 1 << 16)
    with sf.SoundFile(str(path)) as f:
        if not _snd.sf_command(f._file, SFC_GET_BROADCAST_INFO, buf, len(buf)):
            return None
        raw = bytes(_ffi.buffer(buf))
    (desc, orig, ref, date, time, lo, hi, version, _umid, lv, lr, tp, mm, ms, _res,
     history_size) = _SF_BROADCAST_INFO.unpack_from(raw)
    text = lambda b: b.split(b"\0", 1)[0].decode("ascii")     # noqa: E731
    history = raw[_SF_BROADCAST_INFO.size:_SF_BROADCAST_INFO.size + history_size]
    return {"description": text(desc), "originator": text(orig), "originator_reference": text(ref),
            "origination_date": text(date), "origination_time": text(time), "time_reference": lo | hi << 32,
            "version": version, "loudness_value": lv, "loudness_range": lr, "max_true_peak_level": tp,
            "max_momentary_loudness": mm, "max_short_term_loudness": ms, "coding_history": text(history)}
