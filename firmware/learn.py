"""Loudness learning: set the output drive so the programme's output lands on the preset's target.

While the programme plays, :class:`Learner` watches the engine's meters (from shared memory: no
traffic to the audio loop) and adjusts ``out.drive_db`` - the gain into the limiter - until the
output's integrated loudness is on ``target.lufs``. The limiter keeps the ceiling whatever the
drive.

Why it measures the chain's *gain* and not just the output: music is not equally loud all the
way through, so the output loudness of any few seconds says as much about that passage as about
the drive. The learner splits the two questions:

* how loud is the programme? The input's integrated loudness of every round, pooled (energy
  mean weighted by time) over the whole learning session - more accurate the longer it runs;
* what does the chain add at this drive? ``G = out - in`` over the same windows. It depends on
  the passage too (a limiter takes more off a chorus than off a breakdown: on the demo
  programmes one 4 s window's ``G`` is off the whole programme's by 0.5-1.1 LU rms), so it is
  pooled over every round heard within :data:`NEAR_DB` of the drive, each moved to the current
  drive along the slope. Small trims of the drive therefore keep what was heard before them.

The predicted output is ``programme + G(drive)``. The output is a monotonic but non-linear
function of the drive (1 dB per dB below limiting, less once the limiter works), so each
correction is ``error / slope``, the slope the secant from the drive tried farthest from the
current one (at least :data:`SLOPE_MIN_DB` away, else 1.0: one round's passage spread over a
closer pair made slopes of 0.15 and steps of 6 dB), clamped so one odd round cannot throw it far.
Within :data:`GOOD_LU` it reports "settled" and keeps listening, still trimming the drive by the
pooled error (at most GOOD_LU a round): a dead band alone left it up to GOOD_LU off on the side
it came from, which with the one-round estimate made it land 0.2-0.7 LU low on most programmes
(and the loud preset not at all). Past :data:`REOPEN_LU` it corrects again, by at most
:data:`REOPEN_STEP_DB` a round once it has been close. Each round resets the meters and listens
:data:`WINDOW_S` seconds; learning runs until stopped or for a set time. Where it lands against
a rendered truth: ``tests/state/test_learn_on_chain.py``.

Without an input reading (``in_integrated_lufs`` missing) it falls back to the output alone.
The learner talks only through callables, so it runs the same on the box, in the sim and in
unit tests with a model of the chain.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable
from typing import Any

from dsp import schema

WINDOW_S = 4.0  # listening time per round (gated integrated loudness needs a few seconds)
GOOD_LU = 0.3
REOPEN_LU = 0.7
MAX_STEP_DB = 12.0
FINE_LU = 0.05  # within this the drive stays where it is
NEAR_DB = 1.5  # rounds heard within this of the current drive count towards its gain estimate
SLOPE_MIN_DB = 3.0  # the secant slope comes from drives at least this far apart (closer: noise)
REOPEN_STEP_DB = 2.0  # largest move once it has been within GOOD_LU
MIN_SLOPE = 0.15  # below this more drive only crushes (and one noisy round must not throw the drive far)
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
        prog = _Pool()  # the programme's loudness (input), over every round
        rounds: list[tuple[float, float, float, float]] = []  # (drive, input, output, seconds) of every round
        at_drive = _Pool(), _Pool()  # (input, output) of the rounds at the current drive exactly
        visits: list[tuple[float, float]] = []  # (drive, chain gain heard there) of the drives tried
        slope = 1.0
        corrections = 0
        settled = ever_settled = False
        try:
            self._reset()
            t_round = last_meters = self._clock()
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
                out = m.get("out_integrated_lufs")
                if out is None or now - t_round < self.window_s:
                    continue
                inp = m.get("in_integrated_lufs")
                inp = 0.0 if inp is None else inp  # no input meter: judge by the output alone
                span = now - t_round
                prog.add(inp, span)
                rounds.append((drive, inp, out, span))
                at_drive[0].add(inp, span)
                at_drive[1].add(out, span)
                self._reset()
                t_round = self._clock()
                # the slope of the gain against the drive: the secant from the drive tried farthest
                # from this one, if far enough for the passages' own spread (one round's gain is
                # off by up to 1 LU) to be small beside it; 1.0 until then
                here = (drive, at_drive[1].lufs() - at_drive[0].lufs())
                if visits and visits[-1][0] == drive:
                    visits[-1] = here
                else:
                    visits.append(here)
                d1, g1 = max(visits, key=lambda v: abs(v[0] - drive))
                if abs(d1 - drive) >= SLOPE_MIN_DB:
                    slope = min(max((here[1] - g1) / (drive - d1), MIN_SLOPE), 1.2)
                gain = _gain_at(rounds, drive, slope)
                predicted = prog.lufs() + gain
                err = target - predicted
                self._update(target_lufs=target, measured_lufs=predicted, error_lu=err)
                if abs(err) <= (REOPEN_LU if settled else GOOD_LU):
                    if not settled:
                        settled = ever_settled = True
                        self._update(state="settled")
                    if abs(err) <= FINE_LU:
                        continue
                    # close enough to say so, and still trimmed (by at most GOOD_LU): a dead band
                    # alone would leave it as far off as the band, on the side it came from
                    step = max(min(err, GOOD_LU), -GOOD_LU) / slope
                else:
                    # once it has been close, a larger error is more likely a passage than a
                    # wrong drive: move at most REOPEN_STEP_DB a round
                    most = REOPEN_STEP_DB if (settled or ever_settled) else MAX_STEP_DB
                    settled = False
                    step = max(min(err / slope, most), -most)
                new = min(max(drive + step, lo), hi)
                if abs(new - drive) < 0.01:
                    if settled:
                        continue
                    self._finish("failed", f"drive is at its limit ({drive:+.1f} dB); the target cannot be reached")
                    return
                drive = new
                at_drive = _Pool(), _Pool()
                corrections += 1
                self._set(round(drive, 2))
                self._reset()
                t_round = self._clock()
                self._update(state="settled" if settled else "adjusting", drive_db=drive, rounds=corrections)
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


def _gain_at(rounds: list[tuple[float, float, float, float]], drive: float, slope: float) -> float:
    """The chain's gain (output minus input loudness) at ``drive``, from every round heard within
    :data:`NEAR_DB` of it, each moved to ``drive`` along ``slope``.

    Why not just the rounds at this very drive: the gain depends on the passage (a limiter takes
    more off a chorus than off a breakdown: on the demo programmes one 4 s window's gain is off
    the whole programme's by 0.5-1.1 LU rms), so it is only right pooled over enough of the
    programme, and small trims of the drive must not throw away what was heard before them."""
    near = [(d, i, o, s) for d, i, o, s in rounds if abs(d - drive) <= NEAR_DB]
    pin, pout = _Pool(), _Pool()
    for d, i, o, s in near:
        pin.add(i, s)
        pout.add(o + slope * (drive - d), s)
    return pout.lufs() - pin.lufs()


class _Pool:
    """Loudness readings pooled as an energy mean weighted by how long each was measured."""

    def __init__(self):
        self.energy = 0.0
        self.seconds = 0.0

    def add(self, lufs: float, seconds: float) -> None:
        self.energy += 10 ** (lufs / 10) * seconds
        self.seconds += seconds

    def lufs(self) -> float:
        return 10 * math.log10(self.energy / self.seconds)
