"""An engine whose device is lost: it keeps its ``--duration``, and it counts as started (READY=1) under systemd.

In process, the real loop, meter publisher and watchdog around a backend that stands in for a device that is
gone (every read LOST, every reopen refused) or that comes back; and as ``masterbox engine`` on the JACK rig
with the server killed under it.
"""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from firmware.engine import Engine
from hw.audio.base import LOST, OK, AudioBackend, StreamConfig
from tests.engine.conftest import JACK_PERIOD, JACK_RATE, engine_cmd, read_stats, wait_for


class GoneDevice(AudioBackend):
    """A device that opens, then delivers nothing (the engine sees LOST) until ``back`` is set."""

    name = "gone"

    def __init__(self):
        super().__init__(StreamConfig(rate=48000, period=128))
        self.back = threading.Event()
        self.reopens = 0

    def open(self) -> None:
        pass

    def read(self, x: np.ndarray) -> int:
        if not self.back.is_set():
            self.last_error = "capture device delivered nothing for 1 s"
            self.device_errors += 1
            return LOST
        time.sleep(self.period / self.rate)
        x.fill(0.0)
        return OK

    def write(self, y: np.ndarray) -> int:
        return OK

    def reopen(self) -> bool:
        self.reopens += 1
        return self.back.is_set()

    def close(self) -> None:
        pass


def _still_loading(rate, max_block):
    """A chain factory that never finishes (a chain still compiling, as on a cold cache); its thread is a daemon."""
    threading.Event().wait()


def test_the_duration_ends_the_run_while_the_device_is_lost():
    """``masterbox engine --duration N`` used to run on for as long as the device stayed away."""
    engine = Engine(GoneDevice(), chain_factory=_still_loading, realtime=False)
    done = threading.Event()
    th = threading.Thread(target=lambda: (engine.run(duration=1.5), done.set()), daemon=True)
    t0 = time.monotonic()
    th.start()
    try:
        ended = done.wait(6.0)
        took = time.monotonic() - t0
    finally:
        engine.request_stop()
    assert ended, "the engine ran on past its duration while the device was lost"
    assert 1.4 <= took <= 2.5, took
    assert engine.device_losses == 1 and engine.state == "stopped"


def test_duration_on_the_jack_rig_with_the_server_killed(tmp_path, alsa_rig, jack_server):
    alsa_rig.write(slave="jack")
    alsa_rig.infile.write_bytes(bytes(8 * JACK_RATE * 4))
    env = {**alsa_rig.env, **jack_server.env}
    stats = tmp_path / "stats.json"
    args = ["--backend", "alsa", "--capture-device", "mbin", "--playback-device", "mbout", "--rate",
            str(JACK_RATE), "--period", str(JACK_PERIOD), "--periods", "2", "--format", "S32_LE", "--no-realtime",
            "--duration", "4", "--stats-json", str(stats), "--socket", str(tmp_path / "engine.sock"),
            "--meters", str(tmp_path / "meters.shm")]
    proc = subprocess.Popen(engine_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        from firmware.meters_shm import MeterReader

        reader = MeterReader(str(tmp_path / "meters.shm"))
        wait_for(lambda: (reader.read() or {}).get("blocks"), 30, what="audio to flow")
        t0 = time.monotonic()
        jack_server.kill()  # the interface is unplugged, and stays away
        try:
            proc.wait(timeout=12)
        except subprocess.TimeoutExpired:
            raise AssertionError("the engine ran on past --duration 4 while the device was lost") from None
        took = time.monotonic() - t0
    finally:
        if proc.poll() is None:
            proc.kill()
        _, err = proc.communicate()
    assert proc.returncode == 0, err[-2000:]
    assert took < 8.0, took  # the 4 s, less what had run, plus the 1 s that tells a lost device and the exit
    st = read_stats(stats)
    assert st["device_errors"] >= 1 and st["dropouts"] >= 1


def _notify_socket(path):
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.05)
    return sock


def _collect(sock, until, timeout: float) -> list[str]:
    """Datagrams until ``until(messages)`` holds or ``timeout`` seconds pass."""
    out: list[str] = []
    end = time.monotonic() + timeout
    while time.monotonic() < end and not until(out):
        try:
            out.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    return out


def _ready(messages) -> bool:
    return any(m.startswith("READY=1") for m in messages)


def _pings_after_loading(messages) -> int:
    """WATCHDOG=1 pings after the status line that says the chain is loading (-1 before it)."""
    for i, m in enumerate(messages):
        if m.startswith("STATUS=loading the chain"):
            return messages[i:].count("WATCHDOG=1")
    return -1


def test_ready_while_the_device_is_lost_before_the_chain_has_loaded(tmp_path, monkeypatch):
    """The engine's loop runs and waits for its device: it has started. READY=1 used to wait for processed audio,
    which a lost device before the chain loaded never gave: masterbox-control (After= the engine) waited 10 min."""
    from firmware.meters_shm import MeterPublisher, MeterWriter
    from firmware.sdnotify import Notifier
    from firmware.watchdog import engine_watchdog

    sock = _notify_socket(tmp_path / "notify.sock")
    monkeypatch.setenv("WATCHDOG_USEC", "400000")
    monkeypatch.delenv("WATCHDOG_PID", raising=False)
    meters = str(tmp_path / "meters.shm")
    device = GoneDevice()
    engine = Engine(device, chain_factory=_still_loading, realtime=False)
    publisher = MeterPublisher(engine, MeterWriter(meters))
    publisher.start()
    dog = engine_watchdog(Notifier(str(tmp_path / "notify.sock")), meters).start()
    th = threading.Thread(target=engine.run, daemon=True)
    th.start()
    try:
        lost = _collect(sock, _ready, 8.0)
        assert _ready(lost), f"no READY=1 while the device was lost: {lost}"
        ready = next(m for m in lost if m.startswith("READY=1"))
        assert "STATUS=audio device lost; retrying every second" in ready
        assert engine.state == "device_lost" and engine.chain is None
        device.back.set()  # the interface answers again; the chain is still loading: dry audio, and a beat
        wait_for(lambda: engine.state == "loading" and engine.blocks > 10, 10, what="dry audio again")
        again = _collect(sock, lambda m: _pings_after_loading(m) >= 5, 6.0)
        assert _pings_after_loading(again) >= 5, again  # the dry loop's beat keeps the watchdog fed
    finally:
        engine.request_stop()
        th.join(5)
        dog.stop()
        publisher.stop()
        sock.close()


def test_ready_under_the_real_watchdog_when_the_jack_server_dies_at_start(tmp_path, alsa_rig, jack_server):
    """``python -m firmware.watchdog`` (the unit's ExecStart) with a fake NOTIFY_SOCKET; the server is killed
    as soon as the device is open, before the chain has loaded: READY=1 comes, with the device lost."""
    alsa_rig.write(slave="jack")
    alsa_rig.infile.write_bytes(bytes(8 * JACK_RATE * 4))
    sock = _notify_socket(tmp_path / "notify.sock")
    run = tmp_path / "run"
    env = {**alsa_rig.env, **jack_server.env, "NOTIFY_SOCKET": str(tmp_path / "notify.sock"),
           "WATCHDOG_USEC": "2000000", "MASTERBOX_RUN": str(run)}
    args = ["--backend", "alsa", "--capture-device", "mbin", "--playback-device", "mbout", "--rate",
            str(JACK_RATE), "--period", str(JACK_PERIOD), "--periods", "2", "--format", "S32_LE", "--no-realtime"]
    proc = subprocess.Popen([sys.executable, "-m", "firmware.watchdog", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, cwd=str(Path(__file__).resolve().parents[2]))
    try:
        from firmware.meters_shm import MeterReader

        reader = MeterReader(str(run / "meters.shm"))
        wait_for(lambda: (reader.read() or {}).get("state") in ("loading", "running"), 30, step=0.005,
                 what="the device to open")
        # at once (the chain takes ~0.5 s more to load); SIGTERM, never SIGKILL: a killed jackd leaves its
        # entry in JACK's shared server registry (8 slots), and the machine's next servers fail to start
        jack_server.kill()
        messages = _collect(sock, _ready, 10.0)
        assert _ready(messages), f"no READY=1 while the device was lost: {messages}"
        ready = next(m for m in messages if m.startswith("READY=1"))
        assert "STATUS=audio device lost" in ready, ready
    finally:
        proc.terminate()
        try:
            proc.communicate(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.communicate()
        sock.close()
