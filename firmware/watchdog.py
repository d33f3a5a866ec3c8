"""Tell systemd the engine is alive only while its audio loop actually runs.

A process that merely exists is not a working mastering box: a wedged audio loop (a device that
stopped answering, a deadlock in a helper) leaves the process up and the output silent. So the
``WATCHDOG=1`` pings are tied to the engine's *heartbeat*: the block counter only the audio loop
advances, as the engine publishes it in shared memory (:mod:`firmware.meters_shm`, ``blocks``,
at 25 Hz). The pinger reads that snapshot, never the loop's internals, so it costs the loop
nothing and needs no lock. If the counter stops advancing, the pings stop, and ``WatchdogSec=``
makes systemd kill and restart the engine.

The same snapshot says when the engine has *started*: its loop runs and handles the device, processed
audio flows (state ``running``) or the device is lost and being waited for (``device_lost``). That is
when ``READY=1`` goes out, so units ordered after the engine, and ``systemctl start``, wait for a
working engine rather than for a process. A lost or silent device is not a failed start: it is a
state of a running box, reported by ``STATUS=`` (and on the web UI, which starts once the engine
is ready). Until 2026-11-24 READY waited for ``running`` only, so an interface that was present but
silent before the chain had loaded held ``masterbox-control`` (``After=`` the engine) back for
``TimeoutStartSec=`` (10 minutes): no web UI, no panel. ``STATUS=`` lines go out before READY too.

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
    alone would hide a hang. That holds for the dry audio of ``loading`` too: after a device that
    was lost before the chain had loaded comes back, the engine (already READY) passes dry audio
    while the chain finishes loading, and a watchdog without a beat then would kill it. While the
    device is lost the engine is deliberately waiting for it (reopening once a second), so then the
    publisher's ``seq`` counts: systemd restarting the engine would not bring a missing interface
    back sooner.
    """
    if not snapshot:
        return None
    state = snapshot.get("state")
    if state in ("running", "loading") and snapshot.get("blocks") is not None:
        return (state, int(snapshot["blocks"]))
    if state == "device_lost":
        return ("device_lost", int(snapshot["seq"]))
    return None


def flowing(beat) -> bool:
    """Whether a beat says processed audio flows."""
    return bool(beat) and beat[0] == "running"


def started(beat) -> bool:
    """Whether a beat says the engine has started (the moment for ``READY=1``): its loop runs and handles
    the device, with audio flowing or with the device lost and waited for (a state, not a failed start)."""
    return bool(beat) and beat[0] in ("running", "device_lost")


STATE_TEXT = {"device_lost": "audio device lost; retrying every second",
              "loading": "loading the chain (audio passes dry)"}


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
        name = str(m.get("state", "running"))
        parts = [STATE_TEXT.get(name, name)]
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
    """A daemon thread: READY=1 at the first heartbeat, WATCHDOG=1 only while the heartbeat advances (after READY).

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
        """One check: ping (and announce readiness once) if the loop moved since the last check.

        No pings before READY: the dry audio of ``loading`` beats too, and before the engine has
        started a ping would only say the process exists, which systemd's start timeout covers.
        """
        if not self.monitor.poll():
            return
        if not self.ready_sent and self._ready_when(self.monitor.value):
            self.notifier.ready(self._status_text() or "audio flowing")
            self.ready_sent = True
        if self.interval and self.ready_sent:
            self.notifier.watchdog()
            self.pings += 1

    def _status_text(self) -> str | None:
        if self._status is None:
            return None
        try:
            return self._status()
        except Exception:
            return None

    def _status_line(self) -> str | None:
        stalled = self.monitor.stalled_for()
        if stalled is not None and stalled > 2 * self.check:
            return f"audio loop stalled for {stalled:.0f} s"
        return self._status_text()

    def _run(self) -> None:
        """Check the beat; send a status line every ``status_every`` s and at once when the state changes.

        Before READY too: ``systemctl status`` then says why the engine is not ready yet.
        """
        last_status = time.monotonic()
        last_state = None
        while not self._stop.wait(self.check):
            self.step()
            now = time.monotonic()
            beat = self.monitor.value
            state = beat[0] if isinstance(beat, tuple) else None
            if state != last_state or now - last_status >= self._status_every:
                last_status, last_state = now, state
                text = self._status_line()
                if text:
                    self.notifier.status(text)


def engine_watchdog(notifier: Notifier | None = None, meters: str | None = None, **options) -> Watchdog:
    """The engine's watchdog: its beat and status from the meters file, READY once it has :func:`started`."""
    return Watchdog(meters_heartbeat(meters), notifier, status=describe_meters(meters), ready_when=started, **options)


def main(argv: list[str] | None = None) -> int:
    """``python -m firmware.watchdog [engine options]``: ``masterbox engine`` under systemd's watchdog."""
    from firmware import cli

    argv = sys.argv[1:] if argv is None else argv
    notifier = Notifier()
    notifier.status("starting: loading kernels and opening the audio device")
    dog = engine_watchdog(notifier).start()
    try:
        return cli.main(["engine", *argv])
    finally:
        dog.stop("engine stopped")


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
