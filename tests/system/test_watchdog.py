"""The watchdog pings systemd only while the audio loop's heartbeat advances."""

from __future__ import annotations

import socket
import threading
import time

import pytest

from firmware.sdnotify import Notifier
from firmware.watchdog import HeartbeatMonitor, Watchdog


class Counter:
    """A heartbeat that the test advances by hand, standing in for the engine's meter sequence."""

    def __init__(self):
        self.value = 0
        self.running = True
        self._lock = threading.Lock()

    def __call__(self):
        with self._lock:
            if self.running:
                self.value += 1
            return self.value


@pytest.fixture
def listener(tmp_path, monkeypatch):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    monkeypatch.setenv("NOTIFY_SOCKET", str(path))
    monkeypatch.setenv("WATCHDOG_USEC", "400000")  # 0.4 s -> a check every 0.1 s
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    yield sock
    sock.close()


def _drain(sock, seconds):
    out = []
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    return out


def test_monitor_reports_advances_and_stalls():
    t = [0.0]
    values = iter([None, 5, 5, 6, 6, 6])
    m = HeartbeatMonitor(lambda: next(values), clock=lambda: t[0])
    assert not m.poll()  # no engine yet
    assert not m.poll()  # first value: nothing to compare with
    assert m.stalled_for() is None
    t[0] = 1.0
    assert not m.poll()
    t[0] = 2.0
    assert m.poll()
    t[0] = 5.0
    assert not m.poll() and not m.poll()
    assert m.stalled_for() == 3.0


def test_a_reader_that_raises_counts_as_no_beat():
    def broken():
        raise FileNotFoundError("no shared memory yet")

    m = HeartbeatMonitor(broken)
    assert not m.poll() and not m.poll()


def test_ready_once_then_pings_only_while_the_heartbeat_moves(listener):
    beat = Counter()
    dog = Watchdog(beat, Notifier(), status=lambda: "running, load 10%")
    assert dog.check == pytest.approx(0.1)
    dog.start()
    try:
        flowing = _drain(listener, 0.8)
        assert flowing[0].startswith("READY=1\nSTATUS=running, load 10%")
        assert sum(m.startswith("READY=1") for m in flowing) == 1
        assert flowing.count("WATCHDOG=1") >= 4

        beat.running = False  # the audio loop hangs: the process lives, the counter stops
        _drain(listener, 0.25)  # the check already in flight may still ping once
        hung = _drain(listener, 1.0)
        assert "WATCHDOG=1" not in hung

        beat.running = True  # and recovers
        assert "WATCHDOG=1" in _drain(listener, 0.5)
    finally:
        dog.stop()
    assert any(m.startswith("STOPPING=1") for m in _drain(listener, 0.3))


def test_no_ready_before_audio_flows(listener):
    beat = Counter()
    beat.running = False
    dog = Watchdog(beat, Notifier()).start()
    try:
        assert _drain(listener, 0.5) == []
        assert not dog.ready_sent
    finally:
        dog.stop()


def test_the_engine_beat_is_the_loops_block_counter_not_the_publishers_sequence():
    from firmware.watchdog import beat_of, flowing, started

    running = {"state": "running", "blocks": 10, "seq": 3}
    assert beat_of(running) == ("running", 10)
    # The publisher thread still publishes (seq moves) but the loop is stuck (blocks does not):
    assert beat_of({**running, "seq": 4}) == beat_of(running)
    assert flowing(beat_of(running))
    # The dry audio of loading beats too (the loop runs), but the engine has not started yet; no engine: no beat.
    loading = beat_of({"state": "loading", "blocks": 0, "seq": 9})
    assert loading == ("loading", 0) and loading != beat_of({"state": "loading", "blocks": 1, "seq": 9})
    assert not started(loading) and started(beat_of(running))
    assert beat_of(None) is None
    # A lost device is waited for by the engine itself: the publisher's sequence keeps it alive, and the
    # engine has started (a lost device is a state to report, not a failed start: READY goes out).
    lost = beat_of({"state": "device_lost", "blocks": 10, "seq": 5})
    assert lost != beat_of({"state": "device_lost", "blocks": 10, "seq": 6})
    assert not flowing(lost) and started(lost)


def test_ready_waits_for_audio_to_flow(listener):
    beats = iter([None, ("device_lost", 1), ("device_lost", 2), ("running", 5), ("running", 6)] + [("running", 7)] * 50)
    dog = Watchdog(lambda: next(beats), Notifier(), ready_when=lambda b: b is not None and b[0] == "running")
    for _ in range(3):
        dog.step()
    assert not dog.ready_sent and dog.pings == 0  # no READY yet, and no pings before it
    dog.step()
    assert dog.ready_sent
    msgs = _drain(listener, 0.2)
    assert msgs[0].startswith("READY=1") and msgs[1] == "WATCHDOG=1"
