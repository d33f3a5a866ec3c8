"""Captures: record what passes through the box to WAV without ever disturbing the audio loop.

The engine's audio loop calls :meth:`CaptureSession.push` once per block. ``push`` only copies
the block into a preallocated single-producer/single-consumer ring (numpy; the write index is
published *after* the copy, so the reader never sees a half-written block) and returns. It never
blocks, never takes a lock, never logs and never allocates a buffer; when the ring is full it
drops the whole block and counts the dropped frames (the capture is marked, the audio is not).

A writer thread drains the ring to one WAV file per tap (``input`` = before the chain, ``output``
= after it; all taps come from the same ring rows, so the files are sample-aligned). We write the
RIFF header ourselves rather than through libsndfile so we decide when it is updated:

* the header reserves a 28-byte ``JUNK`` chunk, so a file that passes 4 GB is turned into RF64
  in place (``RIFF`` -> ``RF64``, ``JUNK`` -> ``ds64``, EBU Tech 3306);
* about once a second the data is fsynced and *then* the header's sizes are rewritten to cover
  it and fsynced again, so after a power cut the file is a valid, playable WAV holding everything
  up to at most the last second (any tail past the header's size is recovered by
  :func:`repair_unfinished` at the next boot, which rewrites the header from the file's length).
  A header can only cover what was written before its data fsync began, and shows once that fsync
  returns, so on a busy disk (an fsync of 0.3 s, say) a fixed one-second cadence would leave the
  header 1.3-1.6 s behind. So the next commit starts one interval after this one's start *minus
  the fsync time just measured* (headers show about once a second, each covering what was written
  a second before), and the ring keeps being drained up to the moment a commit is due;
* a hidden marker ``.NAME.recording`` next to the files says "unfinished"; it is removed only
  after the final header is on disk;
* a Broadcast Wave ``bext`` chunk (:mod:`firmware.bwf`) between ``fmt `` and ``data`` says when the
  capture started (date, time, and ``TimeReference``: samples since midnight, so a DAW places it
  on its timeline at the time of day it was recorded, beside other recorders' files), which tap
  and preset, and a coding-history line. Its loudness fields are unset while it records; the
  analysis after the stop writes them in place (:func:`firmware.captures.stamp_capture_loudness`).
  The chunk never changes size, so the header's length is fixed for the file's life.
  Captures made before 2026-11-24 have no chunk and are read the same way.

**Gaps keep the timeline.** When the stream itself loses time (an xrun, a device lost and back), the
engine tells the session how many frames the device's clock ran without a block reaching the loop
(:meth:`CaptureSession.note_gap`: two ints into a small preallocated table, from the loop), and
the writer writes that much silence at that point, as a hardware recorder does. So a capture's
length stays its wall-clock length, its ``TimeReference`` keeps placing every later sample where
it was played, and ``gaps`` / ``gap_frames`` (status and sidecar) say how much of it is silence
the box put there. (Until 2026-11-24 the file was spliced: 12 s with the device gone for ~5 s
made a 6.9 s file with ``dropped_frames`` 0.) Frames the *ring* could not take (a stalled disk)
stay ``dropped_frames``, left out as before.

Before each write the free space of the filesystem is checked against a floor
(``floor_mb``); the capture stops cleanly (header final, reason ``disk_floor``) before the
disk fills. A write that fails anyway (``ENOSPC``, quota) truncates to the last whole frame,
finalises and records ``disk_full``. An optional maximum length stops it with ``max_length``.

After :meth:`CaptureSession.stop` has finalised the files, a background thread has a niced
worker process write each file's analysis sidecar (``NAME.json``, see
:func:`firmware.captures.write_sidecar`), so the analysis never competes with the audio loop
for the interpreter lock.
"""

from __future__ import annotations

import datetime as _dt
import errno
import json
import os
import re
import struct
import subprocess  # here, not at the first sidecar: an import holds the GIL against the audio loop
import sys
import threading
import time
import unicodedata
from pathlib import Path

import numpy as np

from firmware import __version__, bwf, rt  # bwf here: an import at a capture's start holds the GIL
from firmware.atomic import fsync_dir
from firmware.capture_sidecar import write_pending_sidecar
from firmware.names import preset_label, settings_phrase
from firmware.processes import pid_alive

FORMATS = {"PCM_24": (1, 3), "FLOAT": (3, 4)}  # name -> (WAVE format tag, bytes per sample)
GAP_SLOTS = 256  # gaps the loop may report before the writer has filled them (more are counted, not filled)
TAPS = ("input", "output")
CAPTURE_DESCRIPTION = "masterbox capture"   # how a capture's bext description starts (firmware.captures looks)
HEADER_BYTES = 80  # RIFF(12) + JUNK/ds64(8+28) + fmt(8+16) + data(8), without a bext chunk
MAX_HEADER_BYTES = 8192  # what to read to parse any header of ours (with its bext chunk)
_JUNK_OFF, _FMT_OFF, _DATA_OFF = 12, 48, 72  # _DATA_OFF: where the bext chunk goes when there is one
_U32_MAX = 0xFFFFFFFF
RF64_ABOVE = _U32_MAX  # RIFF size past which the header turns RF64 (tests lower it to cross it quickly)
HEADER_INTERVAL_S = 1.0
MIN_COMMIT_GAP_S = 0.25  # between header commits however slow the disk is (time to drain the ring)
MARKER_SUFFIX = ".recording"


# -- the WAV header -----------------------------------------------------------------------
def wav_header(rate: int, channels: int, fmt: str, data_bytes: int, bext: bytes = b"") -> bytes:
    """The header for ``data_bytes`` of sample data: RIFF below 4 GB, RF64 above; 80 bytes plus
    ``bext`` (a whole chunk, :func:`firmware.bwf.chunk`, of even length) before ``data``."""
    tag, width = FORMATS[fmt]
    block = channels * width
    fmt_chunk = struct.pack("<4sIHHIIHH", b"fmt ", 16, tag, channels, rate, rate * block, block, width * 8)
    size = HEADER_BYTES + len(bext)
    riff_size = size - 8 + data_bytes
    if riff_size <= RF64_ABOVE:
        head = struct.pack("<4sI4s", b"RIFF", riff_size, b"WAVE")
        junk = struct.pack("<4sI", b"JUNK", 28) + bytes(28)
        data = struct.pack("<4sI", b"data", data_bytes)
    else:
        head = struct.pack("<4sI4s", b"RF64", _U32_MAX, b"WAVE")
        junk = struct.pack("<4sIQQQI", b"ds64", 28, riff_size, data_bytes, data_bytes // block, 0)
        data = struct.pack("<4sI", b"data", _U32_MAX)
    out = head + junk + fmt_chunk + bext + data
    assert len(out) == size and not len(bext) & 1
    return out


def parse_header(raw: bytes) -> dict | None:
    """Read back a header written by :func:`wav_header` (None if it is not one of ours).

    ``raw``: the file's first bytes (:data:`MAX_HEADER_BYTES` covers any of ours). The result has
    the header's length (``header_bytes``, where the samples start) and its ``bext`` chunk (or b"")."""
    if len(raw) < HEADER_BYTES or raw[8:12] != b"WAVE" or raw[0:4] not in (b"RIFF", b"RF64"):
        return None
    if raw[_JUNK_OFF:_JUNK_OFF + 4] not in (b"JUNK", b"ds64") or raw[_FMT_OFF:_FMT_OFF + 4] != b"fmt ":
        return None
    bext = b""
    if raw[_DATA_OFF:_DATA_OFF + 4] == b"bext":
        size = struct.unpack("<I", raw[_DATA_OFF + 4:_DATA_OFF + 8])[0]
        bext = raw[_DATA_OFF:_DATA_OFF + 8 + size + (size & 1)]
        if len(bext) != 8 + size + (size & 1):
            return None
    data_off = _DATA_OFF + len(bext)
    if raw[data_off:data_off + 4] != b"data":
        return None
    _, _, tag, ch, rate, _, block, bits = struct.unpack("<4sIHHIIHH", raw[_FMT_OFF:_FMT_OFF + 24])
    fmt = {(1, 24): "PCM_24", (3, 32): "FLOAT"}.get((tag, bits))
    if fmt is None or ch == 0 or block != ch * bits // 8:
        return None
    if raw[0:4] == b"RF64":
        data_bytes = struct.unpack("<Q", raw[_JUNK_OFF + 16:_JUNK_OFF + 24])[0]
    else:
        data_bytes = struct.unpack("<I", raw[data_off + 4:data_off + 8])[0]
    return {"rate": rate, "channels": ch, "fmt": fmt, "block": block, "data_bytes": data_bytes,
            "header_bytes": data_off + 8, "bext": bext}


def encode(block: np.ndarray, fmt: str) -> bytes:
    """Float64 frames (n, ch) -> interleaved little-endian sample bytes (24-bit PCM or float32).

    24-bit: ``rint(x * 2^23)`` clipped to the 24-bit range, NaN written as 0 (as
    :func:`dsp.capture_copy.encode_rows` does; a NaN has no integer value of its own).
    """
    if fmt == "FLOAT":
        return np.ascontiguousarray(block, dtype="<f4").tobytes()
    q = np.clip(np.rint(block * 8388608.0), -8388608.0, 8388607.0)
    q = np.where(np.isnan(q), 0.0, q).astype("<i4")
    return q.reshape(-1).view(np.uint8).reshape(-1, 4)[:, :3].tobytes()


def quantize(block: np.ndarray, fmt: str) -> np.ndarray:
    """What a float64 block reads back as from the file (for tests and for checking)."""
    if fmt == "FLOAT":
        return block.astype(np.float32).astype(np.float64)
    return np.clip(np.rint(block * 8388608.0), -8388608.0, 8388607.0) / 8388608.0


# -- names --------------------------------------------------------------------------------
def safe_part(text: str, fallback: str = "capture", limit: int = 40) -> str:
    """ASCII letters, digits, ``-`` only: file names that survive every filesystem and URL."""
    text = unicodedata.normalize("NFKD", text or "").encode("ascii", "ignore").decode("ascii")
    text = re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:limit].strip("-")
    return text or fallback


def capture_base(preset: str, when: _dt.datetime | None = None) -> str:
    when = when or _dt.datetime.now()
    return f"{when:%Y-%m-%d_%H%M%S}_{safe_part(preset, 'nopreset')}"


def capture_bext(tap: str, preset: str, started: _dt.datetime, rate: int, channels: int, fmt: str,
                 modified: bool = False) -> bytes:
    """The bext chunk of one tap's file: when it started (and its TimeReference), what it is. Its settings
    are named as a master's are (:func:`firmware.names.preset_label`, :func:`~firmware.names.settings_phrase`):
    ``preset NAME``, ``preset NAME (modified)`` when changed since the recall, or ``no preset``."""
    where = "before the chain" if tap == "input" else "after the chain"
    what = f"{CAPTURE_DESCRIPTION}, {tap} ({where}), {settings_phrase(preset_label(preset, modified))}"
    line = f"masterbox {__version__} capture ({tap}{', float' if fmt == 'FLOAT' else ''})"
    b = bwf.Bext(description=what, time_reference=bwf.time_of_day_samples(started, rate),
                 coding_history=bwf.coding_line(rate, FORMATS[fmt][1] * 8, channels, line))
    b.stamp_time(started)
    return bwf.chunk(b)


# -- the session --------------------------------------------------------------------------
_copy_kernel = None    # dsp.capture_copy.copy_block once the engine has warmed it (see use_kernels)
_encode_kernel = None  # dsp.capture_copy.encode_rows, likewise


def use_kernels(kernels) -> None:
    """From now on :meth:`CaptureSession.push` copies and the writer encodes with the compiled
    kernels (the engine's loader calls this with :func:`dsp.capture_copy.warm`'s
    ``(copy_block, encode_rows)``; None goes back to numpy for both)."""
    global _copy_kernel, _encode_kernel
    _copy_kernel, _encode_kernel = kernels if kernels is not None else (None, None)


class CaptureSession:
    """One recording: a ring the audio loop fills and a thread that writes it to WAV.

    ``floor_mb`` may be fractional (tests use tiny filesystems). ``ring_seconds`` is how long
    the disk may stall before frames are dropped; ``ring`` (optional) is a preallocated float64
    ``(frames, >= channels * len(taps))`` array to use instead, which must not be shared with a
    session whose writer is still running (see :attr:`writing`).
    """

    def __init__(self, directory, rate: int, channels: int, taps=("output",), fmt: str = "PCM_24",
                 preset: str = "", max_seconds: float | None = None, floor_mb: float = 500,
                 ring_seconds: float = 8.0, analyze: bool = True, when: _dt.datetime | None = None,
                 ring: np.ndarray | None = None, modified: bool = False):
        taps = tuple(taps)
        if fmt not in FORMATS:
            raise ValueError(f"capture format must be one of {', '.join(FORMATS)}, got {fmt!r}")
        if not taps or any(t not in TAPS for t in taps) or len(set(taps)) != len(taps):
            raise ValueError(f"capture taps must be some of {', '.join(TAPS)}, got {taps!r}")
        if max_seconds is not None and max_seconds <= 0:
            max_seconds = None
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        self.rate, self.channels, self.taps, self.fmt = int(rate), int(channels), taps, fmt
        self.preset = preset or ""
        self.modified = bool(modified)   # the settings changed since ``preset`` was recalled (its bext says so)
        self.max_frames = int(round(max_seconds * rate)) if max_seconds else None
        self.floor_bytes = int(float(floor_mb) * 1024 * 1024)
        self._analyze = analyze
        self._width = FORMATS[fmt][1]
        self._frame_bytes = self.channels * self._width  # per file
        self.started = when or _dt.datetime.now()
        base = capture_base(self.preset, self.started)
        self.name = self._unique(base)
        self.files = {t: self.directory / self._file_name(t) for t in taps}
        self._bext = {t: capture_bext(t, self.preset, self.started, self.rate, self.channels, fmt,
                                       self.modified) for t in taps}

        # the ring: one row per frame, taps side by side (so they stay sample-aligned). The engine
        # lends one it made at start-up: making 12 MB of locked pages here would hold the GIL
        # against the audio loop for milliseconds at every capture start.
        cols = self.channels * len(taps)
        if ring is None:
            ring = np.zeros((max(int(ring_seconds * rate), 4096), cols), dtype=np.float64)
        elif ring.dtype != np.float64 or ring.ndim != 2 or ring.shape[1] < cols:
            raise ValueError(f"capture ring must be float64 (frames, >= {cols}), got {ring.dtype} {ring.shape}")
        self._ring = ring[:, :cols]
        self._cap = ring.shape[0]
        self._w = 0  # frames ever written by push (producer-owned, published after the copy)
        self._r = 0  # frames ever consumed by the writer (consumer-owned)
        self._tap_cols = [(t, slice(i * self.channels, (i + 1) * self.channels)) for i, t in enumerate(taps)]
        # the compiled copy (dsp.capture_copy) takes the whole ring and the taps' first columns;
        # it is used for stereo blocks into a C-contiguous ring once the engine has warmed it
        self._ring_base = ring
        self._in_col = taps.index("input") * self.channels if "input" in taps else -1
        self._out_col = taps.index("output") * self.channels if "output" in taps else -1
        self._fast = self.channels == 2 and ring.flags.c_contiguous
        # the writer's encoded bytes (one chunk of one tap), reused for every write
        self._chunk_frames = max(self.rate // 10, 1024)
        self._out = np.zeros(self._chunk_frames * self._frame_bytes, dtype=np.uint8)
        self._silence = bytes(self._chunk_frames * self._frame_bytes)
        self.dropped = 0
        self._accepting = True
        # gaps in the stream (note_gap): where (in frames pushed) and how long; the loop writes, the writer fills
        self._gap_at = np.zeros(GAP_SLOTS, dtype=np.int64)
        self._gap_len = np.zeros(GAP_SLOTS, dtype=np.int64)
        self._gaps_w = 0  # gaps ever noted (loop-owned, published after the table entry)
        self._gaps_r = 0  # gaps filled (writer-owned)
        self._gap_left = 0  # frames of silence the writer still owes the gap it is filling
        self.gap_frames = 0  # silence written for gaps
        self.gaps_unfilled = 0  # gaps noted while the table was full: counted, not filled

        self.frames_written = 0
        self.committed_frames = 0  # what the header on disk covers (data fsynced first)
        self.slowest_fsync_s = 0.0  # the longest data fsync of a header commit (the disk's share of the lag)
        self._next_commit = 0.0
        self.reason: str | None = None
        self.error: str | None = None
        self.analysis: str | None = None
        self._state = "recording"
        self._stop_req = threading.Event()
        self._lock = threading.Lock()  # stop() callers only, never the audio loop
        self._analysis_thread: threading.Thread | None = None

        self._fds: dict[str, int] = {}
        self._marker = self.directory / f".{self.name}{MARKER_SUFFIX}"
        self._open_files()
        self._thread = threading.Thread(target=self._run, name=f"capture-{self.name}", daemon=True)
        self._thread.start()

    # -- naming -------------------------------------------------------------------------
    def _file_name(self, tap: str, name: str | None = None) -> str:
        return f"{name or self.name}_{tap}.wav"

    def _unique(self, base: str) -> str:
        name, n = base, 1
        # a leftover sidecar (its WAV deleted from a shell) must not pass for the new file's analysis
        while any((self.directory / self._file_name(t, name)).exists()
                  or (self.directory / self._file_name(t, name)).with_suffix(".json").exists() for t in TAPS):
            n += 1
            name = f"{base}-{n}"
        return name

    def _open_files(self) -> None:
        marker = {"name": self.name, "pid": os.getpid(), "files": [p.name for p in self.files.values()],
                  "rate": self.rate, "channels": self.channels, "fmt": self.fmt, "preset": self.preset,
                  "started": self.started.isoformat(timespec="seconds"),
                  "facts": {p.name: self.facts(t) for t, p in self.files.items()}}
        self._marker.write_text(json.dumps(marker))
        for tap, path in self.files.items():
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            self._fds[tap] = fd
            _write_all(fd, self._header(tap, 0))
            os.fsync(fd)
        fsync_dir(self.directory)

    def facts(self, tap: str) -> dict:
        """How ``tap``'s file was recorded, as its analysis sidecar keeps it (the Captures page shows
        them). Also in the marker, so that a capture finalised after a crash keeps them."""
        return {"preset": self.preset, "modified": self.modified, "tap": tap,
                "started": self.started.isoformat(timespec="seconds"), "sample_format": self.fmt}

    def _finished_facts(self, tap: str) -> dict:
        return {**self.facts(tap), "stop_reason": self.reason, "writer_error": self.error,
                "dropped_frames": self.dropped, "gaps": self.gaps, "gap_frames": self.gap_frames}

    def _header(self, tap: str, data_bytes: int) -> bytes:
        return wav_header(self.rate, self.channels, self.fmt, data_bytes, self._bext[tap])

    # -- audio loop side ------------------------------------------------------------------
    def push(self, x_in: np.ndarray, y_out: np.ndarray) -> None:
        """Copy one block into the ring. Real-time safe: no locks, no waiting, no buffers made."""
        if not self._accepting:
            return
        n = y_out.shape[0]
        w = self._w
        if n > self._cap - (w - self._r):
            self.dropped += n
            return
        start = w % self._cap
        kernel = _copy_kernel
        if kernel is not None and self._fast:
            kernel(self._ring_base, start, x_in, y_out, self._in_col, self._out_col)
            self._w = w + n  # publish after the copy
            return
        first = min(n, self._cap - start)
        ring = self._ring
        for tap, cols in self._tap_cols:
            src = x_in if tap == "input" else y_out
            ring[start:start + first, cols] = src[:first]
            if first < n:
                ring[0:n - first, cols] = src[first:n]
        self._w = w + n  # publish after the copy

    def note_gap(self, frames: int) -> None:
        """The stream lost ``frames`` here (the loop's side, before the next push): the writer fills them with silence.

        Real-time safe like :meth:`push`: two ints into preallocated arrays, then the count is published.
        A break before the capture's first block is not its time: the file starts with that block.
        """
        k = self._gaps_w
        if not self._accepting or frames <= 0 or self._w == 0:
            return
        if k - self._gaps_r >= GAP_SLOTS:
            self.gaps_unfilled += 1
            return
        i = k % GAP_SLOTS
        self._gap_at[i] = self._w
        self._gap_len[i] = frames
        self._gaps_w = k + 1

    @property
    def gaps(self) -> int:
        """Gaps in the stream noted so far (each filled with silence, but for ``gaps_unfilled``)."""
        return self._gaps_w + self.gaps_unfilled

    def _next_run(self, avail: int) -> tuple[int, bool]:
        """(frames, silence): what the writer writes next, ring rows up to the next gap or the gap's silence."""
        if self._gap_left == 0 and self._gaps_r < self._gaps_w:
            i = self._gaps_r % GAP_SLOTS
            if self._gap_at[i] <= self._r:
                self._gap_left = int(self._gap_len[i])
                self._gaps_r += 1
            else:
                avail = min(avail, int(self._gap_at[i]) - self._r)
        if self._gap_left:
            return min(self._gap_left, self._chunk_frames), True
        return min(avail, self._cap - self._r % self._cap, self._chunk_frames), False

    # -- writer thread --------------------------------------------------------------------
    def _run(self) -> None:
        self._next_commit = time.monotonic() + HEADER_INTERVAL_S
        try:
            while True:
                stopping = self._stop_req.is_set()
                if self._drain():
                    break
                if time.monotonic() >= self._next_commit:
                    self._commit_headers()
                if stopping and self._r == self._w and not self._gap_left and self._gaps_r == self._gaps_w:
                    # push() stopped accepting before stop_req was set; every gap noted is filled
                    self.reason = self.reason or "stopped"
                    break
                time.sleep(0.02)
        except Exception as e:  # the writer must end with valid files whatever happened
            self.reason = "error"
            self.error = f"{type(e).__name__}: {e}"
        self._accepting = False
        self._finalise()

    def _drain(self) -> bool:
        """Write what the ring holds; True when the capture must end (limit, floor, disk full)."""
        avail = self._w - self._r
        while (avail > 0 or self._gap_left or self._gaps_r < self._gaps_w) \
                and time.monotonic() < self._next_commit:  # a due header goes first
            n, silence = self._next_run(avail)
            if n <= 0:
                break
            if self.max_frames is not None:
                n = min(n, self.max_frames - self.frames_written)
                if n <= 0:
                    self.reason = "max_length"
                    return True
            need = n * self._frame_bytes * len(self.files)
            if _free_bytes(self.directory) - need < self.floor_bytes:
                self.reason = "disk_floor"
                return True
            start = self._r % self._cap
            try:
                if silence:
                    self._write_silence(n)
                else:
                    self._write_rows(start, n)
            except OSError as e:
                if e.errno not in (errno.ENOSPC, errno.EDQUOT):
                    raise
                self.reason = "disk_full"
                return True
            self.frames_written += n
            if silence:
                self._gap_left -= n
                self.gap_frames += n
            else:
                self._r += n
            avail = self._w - self._r
        if self.max_frames is not None and self.frames_written >= self.max_frames:
            self.reason = "max_length"
            return True
        return False

    def _write_rows(self, start: int, n: int) -> None:
        """Ring rows ``start .. start + n`` to every tap's file. With the compiled kernel the
        encoding runs without the GIL into a reused buffer, so the loop never waits for it."""
        kernel = _encode_kernel
        if kernel is not None and self._ring_base.flags.c_contiguous:
            view = memoryview(self._out)
            for tap, cols in self._tap_cols:
                nbytes = kernel(self._ring_base, start, n, cols.start, self.channels, self._width, self._out)
                _write_all(self._fds[tap], view[:nbytes])
            return
        rows = self._ring[start:start + n]
        for tap, cols in self._tap_cols:
            _write_all(self._fds[tap], encode(rows[:, cols], self.fmt))

    def _write_silence(self, n: int) -> None:
        """``n`` frames of digital silence to every tap's file (zero bytes in PCM_24 and in FLOAT alike)."""
        zeros = memoryview(self._silence)[:n * self._frame_bytes]
        for fd in self._fds.values():
            _write_all(fd, zeros)

    def _commit_headers(self) -> None:
        """fsync the data, then point the header at it, then fsync again: never ahead of the data.
        Then schedule the next commit (see the module docstring: the disk's fsync time is taken
        off the interval, so the header on disk stays about one interval behind the writes)."""
        t0 = time.monotonic()
        frames = self.frames_written
        headers = {tap: self._header(tap, frames * self._frame_bytes) for tap in self._fds}
        for fd in self._fds.values():
            os.fsync(fd)
        synced = time.monotonic() - t0
        for tap, fd in self._fds.items():
            os.pwrite(fd, headers[tap], 0)
        for fd in self._fds.values():
            os.fsync(fd)
        self.committed_frames = frames
        self.slowest_fsync_s = max(self.slowest_fsync_s, synced)
        self._next_commit = max(t0 + HEADER_INTERVAL_S - synced, time.monotonic() + MIN_COMMIT_GAP_S)

    def _finalise(self) -> None:
        data_bytes = self.frames_written * self._frame_bytes
        for tap, fd in self._fds.items():
            try:
                header = self._header(tap, data_bytes)
                os.ftruncate(fd, len(header) + data_bytes)  # drop a partial frame after ENOSPC
                os.pwrite(fd, header, 0)
                os.fsync(fd)
            except OSError as e:
                self.error = self.error or f"finalising {self.files[tap].name}: {e}"
            finally:
                os.close(fd)
        self._fds.clear()
        # the facts are kept before the marker goes: the engine may be killed before its analysis is written
        _keep_facts({path: self._finished_facts(tap) for tap, path in self.files.items()})
        try:
            self._marker.unlink()
        except FileNotFoundError:
            pass
        fsync_dir(self.directory)
        self._state = "stopped"
        if self._analyze:
            self.analysis = "pending"
            self._analysis_thread = threading.Thread(target=self._write_sidecars, name=f"analyze-{self.name}")
            self._analysis_thread.start()

    def _write_sidecars(self) -> None:
        """Analyse in a niced worker process: a long analysis here would hold the GIL against the
        engine's audio loop; this thread only waits for the worker.

        In the engine this thread inherits the control channel's SCHED_FIFO 40 (right for a
        thread that takes the GIL); the worker must not, or its CPU-bound second of analysis
        runs at a real-time priority where ``nice`` means nothing, and the kernel's real-time
        throttling then stalls the audio loop for up to 50 ms. So it starts as an ordinary process.
        """
        jobs = [[str(path), self._finished_facts(tap)] for tap, path in self.files.items()]
        rt.children_start_ordinary()
        try:
            r = subprocess.run([sys.executable, "-m", "firmware.captures", "sidecar", "--jobs", json.dumps(jobs)],
                               capture_output=True, text=True, timeout=24 * 3600)
            if r.returncode != 0:
                raise RuntimeError((r.stderr.strip().splitlines() or ["worker failed"])[-1])
            self.analysis = "done"
        except Exception as e:
            self.analysis = f"failed: {type(e).__name__}: {e}"

    # -- control side ---------------------------------------------------------------------
    @property
    def writing(self) -> bool:
        """True while the writer thread may still read the ring (even after ``stop()`` timed out)."""
        return self._thread.is_alive()

    def stop(self, timeout: float = 30.0) -> dict:
        """Stop recording and finalise the files (the sidecar follows in the background)."""
        with self._lock:
            if self._state == "recording":
                self._state = "stopping"
            self._accepting = False  # blocks pushed from now on are after the end
            self._stop_req.set()
            self._thread.join(timeout)
        return self.status()

    def wait_analysis(self, timeout: float | None = None) -> str | None:
        """Block until the analysis sidecars are written (tests, orderly shutdown)."""
        if self._analysis_thread is not None:
            self._analysis_thread.join(timeout)
        return self.analysis

    @property
    def active(self) -> bool:
        return self._state != "stopped"

    def status(self) -> dict:
        return {
            "state": self._state, "name": self.name, "reason": self.reason, "error": self.error,
            "files": [str(p) for p in self.files.values()], "taps": list(self.taps), "format": self.fmt,
            "rate": self.rate, "channels": self.channels, "preset": self.preset, "modified": self.modified,
            "frames": self.frames_written, "seconds": self.frames_written / self.rate,
            "dropped_frames": self.dropped, "gaps": self.gaps, "gap_frames": self.gap_frames,
            "ring_fill": (self._w - self._r) / self._cap,
            "max_seconds": self.max_frames / self.rate if self.max_frames else None,
            "started": self.started.isoformat(timespec="seconds"), "analysis": self.analysis,
        }


def _write_all(fd: int, data) -> None:
    view = memoryview(data)
    while view:
        n = os.write(fd, view)
        view = view[n:]


def _free_bytes(directory: Path) -> int:
    st = os.statvfs(directory)
    return st.f_bavail * st.f_frsize


# -- boot-time repair ---------------------------------------------------------------------
def repair_file(path: Path) -> dict:
    """Rewrite the header of one of our WAVs to cover every whole frame on disk."""
    with open(path, "r+b") as f:
        hdr = parse_header(f.read(MAX_HEADER_BYTES))
        if hdr is None:
            return {"file": path.name, "repaired": False, "reason": "not a masterbox capture header"}
        size = os.fstat(f.fileno()).st_size
        data_bytes = (size - hdr["header_bytes"]) // hdr["block"] * hdr["block"]
        f.truncate(hdr["header_bytes"] + data_bytes)
        f.seek(0)
        f.write(wav_header(hdr["rate"], hdr["channels"], hdr["fmt"], data_bytes, hdr["bext"]))
        f.flush()
        os.fsync(f.fileno())
    return {"file": path.name, "repaired": True, "frames": data_bytes // hdr["block"],
            "recovered_bytes": data_bytes - hdr["data_bytes"]}


def _keep_facts(facts: dict[Path, dict]) -> None:
    """Give each finished file a pending sidecar holding how it was recorded (its analysis, written
    later and maybe by another process, carries them over: :func:`firmware.capture_sidecar.write_pending_sidecar`).
    Best effort: on a full disk the capture is still whole, only its list entry says less."""
    for path, f in facts.items():
        try:
            write_pending_sidecar(path, f)
        except OSError:
            pass


def repair_unfinished(directory) -> list[dict]:
    """Finalise captures a crash or power cut left unfinished (run at boot, before recording).

    Only files named by a ``.NAME.recording`` marker whose process is gone are touched; nothing
    else in the folder is opened for writing.
    """
    directory = Path(directory)
    done: list[dict] = []
    if not directory.is_dir():
        return done
    for marker in sorted(directory.glob(f".*{MARKER_SUFFIX}")):
        try:
            info = json.loads(marker.read_text())
            files = [directory / Path(n).name for n in info.get("files", [])]
            pid = int(info.get("pid", 0))
            facts = info.get("facts") if isinstance(info.get("facts"), dict) else {}   # before 2026-11-25: none
        except (OSError, ValueError, TypeError, AttributeError):
            files, pid, facts = [], 0, {}
        if pid and pid_alive(pid):
            continue
        kept = {}
        for path in files:
            if path.exists():
                try:
                    done.append(repair_file(path))
                except OSError as e:
                    done.append({"file": path.name, "repaired": False, "reason": str(e)})
                if isinstance(facts.get(path.name), dict):
                    kept[path] = {**facts[path.name], "stop_reason": "interrupted"}
        _keep_facts(kept)
        marker.unlink(missing_ok=True)
    if done:
        fsync_dir(directory)
    return done
