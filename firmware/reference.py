"""The reference track: a capture made ready for the engine to play beside the master.

A mastering engineer compares the master with a record they trust, at the same loudness, many
times an hour. The box does it with its REF button (Live page): the engine plays the reference in
place of the master, crossfaded (:mod:`dsp.reference_mix`), level-matched to the master.

The audio loop cannot read a WAV, convert its rate or measure it, so a reference is **prepared**
first, by a worker process at the lowest CPU priority (``python -m firmware.reference SRC DST RATE``,
started by the control process): the capture is read (any WAV, RF64, AIFF or FLAC the renderer
reads; mono becomes two equal channels), NaN/infinite/absurd samples become silence as the
chain would make them, it is converted to the engine's rate (soxr, :mod:`dsp.resample`), measured
(BS.1770 integrated loudness and 4x true peak, at that rate; and its long-term spectrum in the
Live page analyser's bands, :class:`firmware.spectrum.LongTermSpectrum`, which the page draws
beside the master's) and written as one file::

    0     8 bytes   magic b"MBREF001"
    8     u32       length of the JSON that follows
    12    JSON      {"rate", "frames", "integrated_lufs", "true_peak_dbtp", "name", "spectrum", ...}
    4096  float32   frames x 2, interleaved

written to a temporary name and renamed, so the engine never sees half of one. The engine maps
it (:func:`open_prepared`): no copy, no allocation in its process's heap, and mapping a file
releases the interpreter lock (so the loop never waits on it). Only the first
:func:`max_bytes` of samples are kept: 256 MiB (about 11 minutes at 48 kHz), or an eighth of the
board's memory if that is less (the engine locks its memory, and a 1 GB board has more to hold); a
longer file is cut there, and the reply says so.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import sys
from collections.abc import Callable
from pathlib import Path

MAGIC = b"MBREF001"
DATA_OFFSET = 4096
MAX_BYTES = 256 << 20          # of samples: 2 x float32 per frame; at most an eighth of the memory
FRAME_BYTES = 8
MAX_GAIN_DB = 24.0             # a reference's gain, matched or given, stays within +-this
READ = 1 << 16                 # frames read per step


class ReferenceError(Exception):
    """The reference cannot be prepared or opened; the message says why, for a person to act on."""


def max_bytes(memory: int | None = None) -> int:
    """How many bytes of samples a reference may take on a board with ``memory`` bytes of RAM (this one's
    when None): :data:`MAX_BYTES`, or an eighth of the memory if that is less."""
    if memory is None:
        try:
            memory = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError):
            memory = 0
    return min(MAX_BYTES, memory // 8) if memory > 0 else MAX_BYTES


def max_frames(memory: int | None = None) -> int:
    return max_bytes(memory) // FRAME_BYTES


def prepare(src: Path, dst: Path, rate: int, tick: Callable[[int], None] | None = None) -> dict:
    """Write ``src`` as a prepared reference at ``rate`` into ``dst``; return its facts.

    Raises :class:`ReferenceError` (a missing, unreadable or non-audio file, more than two
    channels, too short to measure, or an output that cannot be written).
    """
    import numpy as np

    from dsp.chain import BIG
    from dsp.meter import LoudnessMeter
    from firmware.render import RenderError, _open_input
    from firmware.spectrum import LongTermSpectrum

    src, dst = Path(src), Path(dst)
    try:
        snd = _open_input(src)
    except (RenderError, OSError) as e:
        raise ReferenceError(str(e)) from None
    tmp = dst.with_name(f".{dst.name}.tmp")
    with snd:
        rate_in, channels = snd.samplerate, snd.channels
        resampler = None
        if rate_in != rate:
            from dsp.resample import Resampler

            resampler = Resampler(rate_in, rate, 2)
        meter = LoudnessMeter(rate, 2)
        spectrum = LongTermSpectrum(rate)
        limit = max_frames()
        written = 0
        replaced = 0
        buf = np.empty((READ, channels))
        stereo = np.empty((READ, 2))
        try:
            out = open(tmp, "wb")
        except OSError as e:
            raise ReferenceError(f"cannot write the prepared reference {tmp}: {e.strerror}") from None
        with out:
            out.write(bytes(DATA_OFFSET))
            done = False
            while not done:
                x = snd.read(READ, dtype="float64", always_2d=True, out=buf)
                if len(x) == 0:
                    done = True
                    y = resampler.finish() if resampler is not None else stereo[:0]
                else:
                    s = stereo[:len(x)]
                    s[:] = x if channels == 2 else x[:, :1]
                    bad = ~np.isfinite(s) | (np.abs(s) > BIG)
                    if bad.any():
                        replaced += int(np.count_nonzero(bad))
                        s[bad] = 0.0
                    y = resampler.process(s) if resampler is not None else s
                    if tick is not None:
                        tick(len(x))
                y = y[:limit - written]
                if len(y):
                    meter.process(np.ascontiguousarray(y))
                    spectrum.add(y)
                    out.write(y.astype("<f4").tobytes())
                    written += len(y)
                if written >= limit:
                    break
            r = meter.readings()
            info = {"name": src.name, "rate": int(rate), "frames": written, "source_rate": int(rate_in),
                    "source_channels": int(channels), "duration_s": round(written / rate, 3),
                    "integrated_lufs": r.get("integrated_lufs"), "true_peak_dbtp": r.get("true_peak_dbtp"),
                    "sample_peak_dbfs": r.get("sample_peak_dbfs"),
                    "truncated": bool(written >= limit and snd.frames * rate > limit * rate_in),
                    "replaced_samples": replaced, "spectrum": spectrum.levels()}
            head = json.dumps(info).encode()      # ~1.5 KB with the spectrum: the header holds 4 KB
            out.seek(0)
            out.write(MAGIC + struct.pack("<I", len(head)) + head)
        if written < 0.4 * rate:
            tmp.unlink(missing_ok=True)
            raise ReferenceError(f"{src}: too short for a reference ({written / rate * 1000:.0f} ms; at least 400 ms)")
    os.replace(tmp, dst)
    return info


def read_info(path: Path) -> dict:
    """The facts in a prepared reference's header (raises ReferenceError if it is not one)."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(DATA_OFFSET)
            size = os.fstat(f.fileno()).st_size
    except OSError as e:
        raise ReferenceError(f"cannot read the prepared reference {path}: {e.strerror}") from None
    if len(head) < 12 or head[:8] != MAGIC:
        raise ReferenceError(f"{path} is not a prepared reference")
    (n,) = struct.unpack_from("<I", head, 8)
    try:
        info = json.loads(head[12:12 + n])
        frames, rate = int(info["frames"]), int(info["rate"])
    except (ValueError, KeyError, TypeError):
        raise ReferenceError(f"{path}: the prepared reference's header is damaged") from None
    if size != DATA_OFFSET + frames * FRAME_BYTES or frames <= 0 or rate <= 0:
        raise ReferenceError(f"{path}: the prepared reference is cut short or damaged ({size} bytes)")
    return info


def open_prepared(path: Path, rate: int):
    """Map a prepared reference for the engine: ``(samples, info)``, samples a read-only
    (frames, 2) float32 array over the file. Raises ReferenceError (not one, damaged, or made
    for another rate)."""
    import numpy as np

    info = read_info(path)
    if info["rate"] != rate:
        raise ReferenceError(f"the reference was prepared at {info['rate']} Hz; the engine runs at {rate} Hz")
    with open(path, "rb") as f:
        mm = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)   # the interpreter lock is released meanwhile
    samples = np.frombuffer(mm, dtype="<f4", count=info["frames"] * 2, offset=DATA_OFFSET).reshape(-1, 2)
    return samples, info


def match_gain_db(master_lufs: float | None, reference_lufs: float | None, reference_peak_dbtp: float | None,
                  ceiling_dbtp: float) -> tuple[float, float | None]:
    """The reference's gain for a level match: ``(gain_db, short_by_db)``.

    The gain brings the reference's integrated loudness to the master's, within +-:data:`MAX_GAIN_DB`. Raising a
    quiet reference must not push its true peak past the box's ceiling (the output never goes over
    it, reference or not), so the raise stops there and ``short_by_db`` says by how much the match
    fell short; None when the match is exact. With either loudness undefined the gain is 0 dB.
    """
    if master_lufs is None or reference_lufs is None or not (math.isfinite(master_lufs)
                                                             and math.isfinite(reference_lufs)):
        return 0.0, None
    want = min(MAX_GAIN_DB, max(-MAX_GAIN_DB, master_lufs - reference_lufs))
    gain = want
    if reference_peak_dbtp is not None and math.isfinite(reference_peak_dbtp):
        gain = min(gain, ceiling_dbtp - reference_peak_dbtp)
    short = round(want - gain, 2) if want - gain > 0.005 else None
    return round(gain, 2), short


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware.reference SRC DST RATE``: prepare; print the facts as JSON."""
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 3:
        print("usage: python -m firmware.reference SRC DST RATE", file=sys.stderr)
        return 2
    try:
        info = prepare(Path(argv[0]), Path(argv[1]), int(argv[2]))
    except ReferenceError as e:
        print(str(e), file=sys.stderr)
        return 1
    print(json.dumps(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
