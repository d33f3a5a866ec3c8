"""The last moments of audio, before and after the chain, from the engine to the spectrum analyser.

The engine's audio loop appends every block to a ring in its own memory, and its meter publisher
copies that, 25 times a second, into the same rows of a ring of float32 samples in
``run_dir()/scope.shm`` (:mod:`dsp.scope_tap` says why two copies); the control process maps the
file and copies the newest frames out when a page wants a spectrum (:mod:`firmware.spectrum`).
All the analysis cost lands in the control process, and only while someone is looking; the audio
loop never learns whether anyone reads. Layout (little endian)::

    0   8 bytes  magic b"MBSCOPE1"
    8   u32      layout version
    12  u32      sample rate
    16  u32      ring frames
    20  u32      columns (4: input L, input R, output L, output R)
    24  i64      frames ever written (advanced after the samples are in place)
    32  i64      writer pid
    40  24 bytes reserved (zero)
    64  f32 * frames * columns, row-major

A reader takes the count, copies the rows behind it, and takes the count again: if the writer has
meanwhile written over the oldest rows it copied, it copies again.
"""

from __future__ import annotations

import mmap
import os
import struct
import time
from pathlib import Path

import numpy as np

from firmware import paths
from firmware.processes import pid_alive
from firmware.shm_file import SharedFile

MAGIC = b"MBSCOPE1"
LAYOUT_VERSION = 1
COLUMNS = 4
HEADER = 64
RING_SECONDS = 1.5  # the analyser reads at most ~0.75 s (firmware/spectrum.py); twice that is plenty
MAX_BLOCK = 8192  # how far the writer may be writing ahead of the count (dsp.scope_tap.PUBLISH_STEP)
_HEAD = struct.Struct("<8sIIIIqq")


def default_path() -> Path:
    return paths.run_dir() / "scope.shm"


def ring_frames(rate: int) -> int:
    return int(RING_SECONDS * rate)


class ScopeWriter:
    """The engine side: makes the file and exposes ``ring`` and ``head`` for the loop's tap."""

    def __init__(self, rate: int, path: str | Path | None = None):
        self.path = Path(path) if path is not None else default_path()
        frames = ring_frames(rate)
        # zero samples; every page is touched below, before the loop runs
        self._shared = SharedFile(self.path, _HEAD.pack(MAGIC, LAYOUT_VERSION, int(rate), frames, COLUMNS, 0,
                                                        os.getpid()), HEADER + 4 * frames * COLUMNS)
        self._map = self._shared.map
        self.head = np.frombuffer(self._map, dtype="<i8", count=1, offset=24)
        self.ring = np.frombuffer(self._map, dtype="<f4", count=frames * COLUMNS, offset=HEADER)
        self.ring = self.ring.reshape(frames, COLUMNS)
        self.ring.fill(0.0)  # fault the pages in now (and let mlockall keep them), not in the audio loop

    def close(self, remove: bool = True) -> None:
        if self._map is None:
            return
        del self.head, self.ring
        self._map = None
        self._shared.close(remove)


class ScopeReader:
    """The reader side. ``latest(frames)`` returns ``(rate, samples)`` or None (see there)."""

    STALL_S = 1.0  # no new frames for this long: the engine is stopped, stalled or gone

    def __init__(self, path: str | Path | None = None):
        self.path = Path(path) if path is not None else None
        self._map = None
        self._ino = None
        self._last_head = -1
        self._moved_at = 0.0

    def _attach(self) -> bool:
        p = self.path if self.path is not None else default_path()
        try:
            st = p.stat()
        except FileNotFoundError:
            self._detach()
            return False
        if self._map is not None and st.st_ino == self._ino:
            return True
        self._detach()
        if st.st_size < HEADER:
            return False
        try:
            with open(p, "rb") as f:
                m = mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ)
        except (OSError, ValueError):
            return False
        magic, version, rate, frames, cols, _, _ = _HEAD.unpack_from(m, 0)
        if (magic, version, cols) != (MAGIC, LAYOUT_VERSION, COLUMNS) or len(m) < HEADER + 4 * frames * cols:
            m.close()
            return False
        self._map, self._ino = m, st.st_ino
        self.rate, self.frames = rate, frames
        self._ring = np.frombuffer(m, dtype="<f4", count=frames * cols, offset=HEADER).reshape(frames, cols)
        self._last_head = -1
        return True

    def _detach(self) -> None:
        if self._map is not None:
            del self._ring
            self._map.close()
        self._map = None
        self._ino = None

    def _head(self) -> int:
        return struct.unpack_from("<q", self._map, 24)[0]

    def latest(self, frames: int) -> tuple[int, np.ndarray] | None:
        """The newest ``frames`` rows as float64 ``(frames, 4)``, with the sample rate.

        None when no engine writes the file, its writer is dead, fewer frames than asked have
        been written, or nothing new has arrived for :attr:`STALL_S` (a stopped or stalled
        engine: an analyser must not keep showing the last moment as if it were live).
        """
        if not self._attach():
            return None
        if frames > self.frames // 2:
            raise ValueError(f"at most {self.frames // 2} frames can be read from this ring")
        pid = struct.unpack_from("<q", self._map, 32)[0]
        now = time.monotonic()
        for _ in range(10):
            h1 = self._head()
            if h1 < frames:
                return None
            start = (h1 - frames) % self.frames
            first = min(frames, self.frames - start)
            out = np.empty((frames, COLUMNS))
            out[:first] = self._ring[start:start + first]
            out[first:] = self._ring[:frames - first]
            if self._head() - h1 <= self.frames - frames - MAX_BLOCK:
                break  # the loop (a block ahead of the count at most) did not reach the rows we copied
        else:
            return None
        if h1 != self._last_head:
            self._last_head, self._moved_at = h1, now
        elif now - self._moved_at > self.STALL_S:
            return None
        if not pid_alive(pid):
            return None
        return self.rate, out

    def close(self) -> None:
        self._detach()
