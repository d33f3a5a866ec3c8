"""Tell systemd the engine is alive only while its audio loop actually runs.

A process that merely exists is not a working mastering box: a wedged audio loop (a device that
stopped answering, a deadlock in a helper) leaves the process up and the output silent. So the
``WATCHDOG=1`` pings are tied to the engine's *heartbeat*: the sequence counter the audio loop bumps
each time it publishes meters into shared memory (:mod:`firmware.meters_shm`, at >= 20 Hz). The
pinger reads that counter, never the loop's internals, so it costs the loop nothing and needs no
lock. If the counter stops advancing, the pings stop, and ``WatchdogSec=`` makes systemd kill and
restart the engine.

The same counter says when audio first flows, which is when ``READY=1`` goes out (units ordered
after the engine, and ``systemctl start``, wait for real audio rather than for a process).

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

Heartbeat = Callable[[], "int | None"]


class HeartbeatMonitor:
    """Watches a counter that a live loop keeps advancing; reports advances and stalls."""

    def __init__(self, heartbeat: Heartbeat, clock: Callable[[], float] = time.monotonic):
        self._heartbeat = heartbeat
        self._clock = clock
        self._last: int | None = None
        self.last_advance: float | None = None  # clock time of the last observed advance
        self.advances = 0

    def poll(self) -> bool:
        """Read the counter once; True when it moved since the previous poll."""
        try:
            value = self._heartbeat()
        except Exception:  # a reader that cannot read yet (no shared memory) is simply "no beat"
            value = None
        moved = value is not None and self._last is not None and value != self._last
        if value is not None:
            self._last = value
        if moved:
            self.advances += 1
            self.last_advance = self._clock()
        return moved

    def stalled_for(self) -> float | None:
        """Seconds since the counter last moved; None when it has never moved yet."""
        if self.last_advance is None:
            return None
        return self._clock() - self.last_advance


def meters_heartbeat(path: str | None = None) -> Heartbeat:
    """A heartbeat read from the engine's shared meters (``seq``); None while no engine publishes."""
    state: dict = {}

    def read() -> int | None:
        reader = state.get("reader")
        if reader is None:
            from firmware.meters_shm import MeterReader

            reader = state["reader"] = MeterReader(path)
        snapshot = reader.read()
        if not snapshot:
            state.pop("reader", None)  # the engine may create the segment later: reopen next time
            return None
        return int(snapshot.get("heartbeat", snapshot.get("seq")))

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
            parts.append(f"xruns {int(m['xruns'])}")
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
    ):
        self.notifier = notifier or Notifier()
        self.interval = watchdog_interval()
        if check is None:
            check = min(1.0, self.interval / 4) if self.interval else 1.0
        self.check = check
        self.monitor = HeartbeatMonitor(heartbeat)
        self._status = status
        self._status_every = status_every
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
        if not self.ready_sent:
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
    dog = Watchdog(meters_heartbeat(), notifier, status=describe_meters()).start()
    try:
        return cli.main(["engine", *argv])
    finally:
        dog.stop("engine stopped")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
