"""Tell systemd the engine is alive only while its audio loop actually runs.

A process that merely exists is not a working mastering box: a wedged audio loop (a device that
stopped answering, a deadlock in a helper) leaves the process up and the output silent. So the
``WATCHDOG=1`` pings are tied to the engine's *heartbeat*: the block counter only the audio loop
advances, as the engine publishes it in shared memory (:mod:`firmware.meters_shm`, ``blocks``,
at 25 Hz). The pinger reads that snapshot, never the loop's internals, so it costs the loop
nothing and needs no lock. If the counter stops advancing, the pings stop, and ``WatchdogSec=``
makes systemd kill and restart the engine.

The same counter says when audio first flows (state ``running``), which is when ``READY=1`` goes
out: units ordered after the engine, and ``systemctl start``, wait for real audio rather than for
a process.

:class:`HeartbeatMonitor` is the pure part (has the counter moved? for how long has it not?),
shared with :mod:`firmware.supervisor`, which restarts a hung engine the same way when there is no
systemd. :class:`Watchdog` is the thread. ``python -m firmware.watchdog [engine options]`` runs
``masterbox engine`` in this process with the watchdog thread beside it; that is the engine unit's
``ExecStart``.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from collections.abc import Callable

from firmware.sdnotify import Notifier, watchdog_interval

Heartbeat = Callable[[], object]  # any value; a change means "the loop moved"; None: no beat


class HeartbeatMonitor:
    """Watches a counter that a live loop keeps advancing; reports advances and stalls."""

    def __init__(self, heartbeat: Heartbeat, clock: Callable[[], float] = time.monotonic):
        self._heartbeat = heartbeat
        self._clock = clock
        self._last = None
        self.value = None  # the latest reading
        self.last_advance: float | None = None  # clock time of the last observed advance
        self.advances = 0

    def poll(self) -> bool:
        """Read the counter once; True when it moved since the previous poll (see :attr:`value`)."""
        try:
            value = self._heartbeat()
        except Exception:  # a reader that cannot read yet (no shared memory) is simply "no beat"
            value = None
        moved = value is not None and self._last is not None and value != self._last
        if value is not None:
            self._last = value
        self.value = value
        if moved:
            self.advances += 1
            self.last_advance = self._clock()
        return moved

    def stalled_for(self) -> float | None:
        """Seconds since the counter last moved; None when it has never moved yet."""
        if self.last_advance is None:
            return None
        return self._clock() - self.last_advance


def beat_of(snapshot: dict | None):
    """The heartbeat in one meters snapshot.

    While audio runs it is the audio loop's own block counter (``blocks``), which only the loop
    advances: the meter publisher thread keeps publishing even if the loop hangs, so its ``seq``
    alone would hide a hang. While the device is lost the engine is deliberately waiting for it
    (reopening once a second), so then the publisher's ``seq`` counts: systemd restarting the
    engine would not bring a missing interface back sooner. While loading there is no beat yet.
    """
    if not snapshot:
        return None
    state = snapshot.get("state")
    if state == "running" and snapshot.get("blocks") is not None:
        return ("running", int(snapshot["blocks"]))
    if state == "device_lost":
        return ("device_lost", int(snapshot["seq"]))
    return None


def flowing(beat) -> bool:
    """Whether a beat says audio flows (the moment for ``READY=1``)."""
    return bool(beat) and beat[0] == "running"


def meters_heartbeat(path: str | None = None) -> Heartbeat:
    """The engine's heartbeat (see :func:`beat_of`) read from its shared meters; None without an engine."""
    state: dict = {}

    def read():
        reader = state.get("reader")
        if reader is None:
            from firmware.meters_shm import MeterReader

            reader = state["reader"] = MeterReader(path)
        return beat_of(reader.read())

    return read


def describe_meters(path: str | None = None) -> Callable[[], str | None]:
    """One line for ``systemctl status``: rate/load/xruns from the shared meters, if there are any."""
    state: dict = {}

    def text() -> str | None:
        reader = state.get("reader")
        if reader is None:
            from firmware.meters_shm import MeterReader

            reader = state["reader"] = MeterReader(path)
        m = reader.read()
        if not m:
            state.pop("reader", None)
            return None
        parts = [str(m.get("state", "running"))]
        if m.get("load") is not None:
            parts.append(f"load {100 * float(m['load']):.0f}%")
        if m.get("xruns") is not None:
            at_start = m.get("xruns_loading") or 0
            parts.append(f"xruns {int(m['xruns'])}" + (f" ({at_start} at start)" if at_start else ""))
        if m.get("bypass"):
            parts.append("bypassed")
        return ", ".join(parts)

    return text


class Watchdog:
    """A daemon thread: READY=1 at the first heartbeat, WATCHDOG=1 only while the heartbeat advances.

    ``check`` is how often the counter is read; by default a quarter of systemd's watchdog
    interval (systemd's advice is to ping at least twice per interval), at most 1 s.
    """

    def __init__(
        self,
        heartbeat: Heartbeat,
        notifier: Notifier | None = None,
        check: float | None = None,
        status: Callable[[], str | None] | None = None,
        status_every: float = 5.0,
        ready_when: Callable[[object], bool] = lambda beat: True,
    ):
        self.notifier = notifier or Notifier()
        self.interval = watchdog_interval()
        if check is None:
            check = min(1.0, self.interval / 4) if self.interval else 1.0
        self.check = check
        self.monitor = HeartbeatMonitor(heartbeat)
        self._status = status
        self._status_every = status_every
        self._ready_when = ready_when
        self.ready_sent = False
        self.pings = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sd-watchdog", daemon=True)

    def start(self) -> Watchdog:
        self._thread.start()
        return self

    def stop(self, status: str | None = "stopping") -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=2 * self.check + 1)
        self.notifier.stopping(status)

    def step(self) -> None:
        """One check: ping (and announce readiness once) if the loop moved since the last check."""
        if not self.monitor.poll():
            return
        if not self.ready_sent and self._ready_when(self.monitor.value):
            self.notifier.ready(self._status_text() or "audio flowing")
            self.ready_sent = True
        if self.interval:
            self.notifier.watchdog()
            self.pings += 1

    def _status_text(self) -> str | None:
        if self._status is None:
            return None
        try:
            return self._status()
        except Exception:
            return None

    def _run(self) -> None:
        last_status = time.monotonic()
        while not self._stop.wait(self.check):
            self.step()
            now = time.monotonic()
            if self.ready_sent and now - last_status >= self._status_every:
                last_status = now
                stalled = self.monitor.stalled_for()
                if stalled is not None and stalled > 2 * self.check:
                    self.notifier.status(f"audio loop stalled for {stalled:.0f} s")
                else:
                    text = self._status_text()
                    if text:
                        self.notifier.status(text)


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware.watchdog [engine options]``: ``masterbox engine`` under systemd's watchdog."""
    from firmware import cli

    argv = sys.argv[1:] if argv is None else argv
    notifier = Notifier()
    notifier.status("starting: loading kernels and opening the audio device")
    dog = Watchdog(meters_heartbeat(), notifier, status=describe_meters(), ready_when=flowing).start()
    try:
        return cli.main(["engine", *argv])
    finally:
        dog.stop("engine stopped")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
