"""Loudness learning: set the output drive so the programme's output lands on the preset's target.

While the programme plays, :class:`Learner` watches the engine's output meter (integrated
loudness since the last meter reset, from shared memory: no traffic to the audio loop) and
adjusts ``out.drive_db`` - the gain into the limiter - until the output's integrated loudness
is on ``target.lufs``. The limiter keeps the ceiling whatever the drive.

How it converges: the output loudness is a monotonic but non-linear function of the drive
(1 dB per dB below limiting, less once the limiter works). Each round resets the meters,
listens for :data:`WINDOW_S` seconds, and moves the drive by ``error / slope``, the slope taken
from the last two rounds (secant method; 1.0 at first), clamped so a noisy round cannot throw
it far. Once within :data:`GOOD_LU`, it keeps listening without resetting, so the estimate
covers more and more of the programme, and corrects again only if the longer measurement
drifts past :data:`REOPEN_LU`. It runs until stopped or for a set time.

The learner talks only through callables, so it runs the same on the box, in the sim and in
unit tests with a model of the chain.
"""

from __future__ import annotations

import threading
import time
from typing import Any, Callable

from dsp import schema

WINDOW_S = 4.0  # listening time per round (gated integrated loudness needs a few seconds)
GOOD_LU = 0.3
REOPEN_LU = 0.7
MAX_STEP_DB = 12.0
POLL_S = 0.1
NO_METERS_TIMEOUT_S = 5.0


class Learner:
    """``read_meters() -> dict | None`` (the engine's meter snapshot), ``reset_meters()``,
    ``get_value(id)`` (current state), ``set_drive(db)`` (through the state, so it is persisted
    and shown everywhere)."""

    def __init__(self, read_meters: Callable[[], dict | None], reset_meters: Callable[[], Any],
                 get_value: Callable[[str], Any], set_drive: Callable[[float], Any],
                 window_s: float = WINDOW_S, clock: Callable[[], float] = time.monotonic,
                 on_done: Callable[[dict], Any] | None = None):
        self._read, self._reset, self._get, self._set = read_meters, reset_meters, get_value, set_drive
        self._on_done = on_done  # told the final status (e.g. to clear the engine's "learning" light)
        self.window_s = window_s
        self._clock = clock
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._status: dict[str, Any] = {"state": "idle"}

    # -- control --------------------------------------------------------------------------
    def start(self, seconds: float | None = None) -> dict:
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                return dict(self._status)
            self._stop.clear()
            self._status = {"state": "listening", "target_lufs": float(self._get("target.lufs")),
                            "drive_db": float(self._get("out.drive_db")), "measured_lufs": None,
                            "error_lu": None, "rounds": 0, "seconds": seconds, "elapsed_s": 0.0, "reason": None}
            self._thread = threading.Thread(target=self._run, args=(seconds,), name="learn", daemon=True)
            self._thread.start()
            return dict(self._status)

    def stop(self, timeout: float = 2.0) -> dict:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        with self._lock:
            if self._status.get("state") in ("listening", "adjusting", "settled"):
                self._status["state"] = "stopped"
                self._status["reason"] = self._status.get("reason") or "stopped"
            return dict(self._status)

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def status(self) -> dict:
        with self._lock:
            return dict(self._status)

    def wait(self, timeout: float | None = None) -> dict:
        if self._thread is not None:
            self._thread.join(timeout)
        return self.status()

    # -- the loop -------------------------------------------------------------------------
    def _update(self, **kw) -> None:
        with self._lock:
            self._status.update(kw)

    def _run(self, seconds: float | None) -> None:
        lo, hi = schema.BY_ID["out.drive_db"].min, schema.BY_ID["out.drive_db"].max
        t0 = self._clock()
        deadline = t0 + seconds if seconds else None
        drive = float(self._get("out.drive_db"))
        history: list[tuple[float, float]] = []
        settled = False
        try:
            self._reset()
            t_round = self._clock()
            last_meters = self._clock()
            while not self._stop.wait(POLL_S):
                now = self._clock()
                self._update(elapsed_s=now - t0)
                if deadline is not None and now >= deadline:
                    self._finish("done", "time is up")
                    return
                m = self._read()
                if m is None:
                    if now - last_meters > NO_METERS_TIMEOUT_S:
                        self._finish("failed", "no meters: the engine is not running")
                        return
                    continue
                last_meters = now
                target = float(self._get("target.lufs"))
                loud = m.get("out_integrated_lufs")
                if loud is None or now - t_round < self.window_s:
                    self._update(target_lufs=target, measured_lufs=loud)
                    continue
                err = target - loud
                self._update(target_lufs=target, measured_lufs=loud, error_lu=err)
                if abs(err) <= (REOPEN_LU if settled else GOOD_LU):
                    if not settled:
                        settled = True
                        history.append((drive, loud))
                        self._update(state="settled")
                    continue
                settled = False
                history.append((drive, loud))
                slope = 1.0
                if len(history) >= 2:
                    (d1, l1), (d2, l2) = history[-2], history[-1]
                    if abs(d2 - d1) > 0.05:
                        slope = min(max((l2 - l1) / (d2 - d1), 0.15), 1.2)
                new = min(max(drive + max(min(err / slope, MAX_STEP_DB), -MAX_STEP_DB), lo), hi)
                if abs(new - drive) < 0.01:
                    self._finish("failed", f"drive is at its limit ({drive:+.1f} dB); the target cannot be reached")
                    return
                drive = new
                self._set(round(drive, 2))
                self._reset()
                t_round = self._clock()
                self._update(state="adjusting", drive_db=drive, rounds=len(history))
            self._finish("stopped", "stopped")
        except Exception as e:  # a learner failure must never take the control process down
            self._finish("failed", f"{type(e).__name__}: {e}")

    def _finish(self, state: str, reason: str) -> None:
        self._update(state=state, reason=reason)
        if self._on_done is not None:
            try:
                self._on_done(self.status())
            except Exception:
                pass  # a display hook must not change the outcome
