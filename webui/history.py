"""The loudness history the Live page draws: the last minutes of short-term loudness, in and out.

Every loudness meter of the trade (EBU R128 meters, Youlean, Ozone) plots short-term loudness
over time beside the numbers: it shows a song's shape, where the chorus pushes the limiter and
how the integrated value came about. The history is kept here, in the control process, not in
the browser, so the graph is already there when a page is opened after the song, or when a
phone wakes up.

A thread reads the engine's shared meters (the same reader as the live stream: never the
audio loop) every :data:`PERIOD` seconds and keeps the last :data:`SECONDS`. A missing frame
(no engine, a restart) is kept as a gap, and silence (the meter reads -inf) as ``None``, so
the graph breaks there instead of drawing a line through time nobody measured.
"""

from __future__ import annotations

import math
import threading
import time
from collections import deque
from collections.abc import Callable

PERIOD = 0.5        # s between points: the short-term window (3 s) moves little in between
SECONDS = 600.0     # what the graph can show: ten minutes, a long song or a side of a record
KEYS = ("in_short_term_lufs", "out_short_term_lufs")


def _reading(frame: dict | None, key: str) -> float | None:
    v = (frame or {}).get(key)
    if v is None or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return round(float(v), 2)


class LoudnessHistory:
    """Short-term loudness in and out, one point per :data:`PERIOD`, the last :data:`SECONDS`.

    ``read`` returns the engine's latest meter frame or None. :meth:`sample` takes one point
    (the thread calls it; tests call it directly); :meth:`snapshot` is what the API returns.
    """

    def __init__(self, read: Callable[[], dict | None], period: float = PERIOD, seconds: float = SECONDS,
                 clock: Callable[[], float] = time.time):
        self.read = read
        self.period = float(period)
        self.clock = clock
        n = int(round(seconds / period))
        self._points: dict[str, deque] = {k: deque(maxlen=n) for k in KEYS}
        self._end = None            # wall-clock time of the newest point
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- recording ------------------------------------------------------------------------
    def sample(self) -> None:
        """Append one point per key from the latest meter frame (a gap when there is none)."""
        try:
            frame = self.read()
        except Exception:           # a broken reader must not end the history
            frame = None
        with self._lock:
            for k, points in self._points.items():
                points.append(_reading(frame, k))
            self._end = self.clock()

    def clear(self) -> None:
        """Forget every point (the meters' Reset starts a new measurement)."""
        with self._lock:
            for points in self._points.values():
                points.clear()
            self._end = None

    def snapshot(self) -> dict:
        """``{period, end, seconds, in_short_term_lufs: [...], out_short_term_lufs: [...]}``, oldest first."""
        with self._lock:
            out = {k: list(v) for k, v in self._points.items()}
            n = len(out[KEYS[0]])
            return {"period": self.period, "end": self._end, "seconds": n * self.period, **out}

    # -- the thread ---------------------------------------------------------------------------
    def start(self) -> LoudnessHistory:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="masterbox-history", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=2)

    def _run(self) -> None:
        next_t = time.monotonic()
        while not self._stop.is_set():
            self.sample()
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < -self.period:        # the process stalled: the time it lost is a gap
                self.gap(int(-delay / self.period))
                next_t = time.monotonic()
                delay = 0.0
            self._stop.wait(delay)

    def gap(self, points: int) -> None:
        """``points`` periods nobody measured (keeps the time axis true)."""
        with self._lock:
            for v in self._points.values():
                v.extend([None] * min(points, v.maxlen or points))
