"""An engine whose device is lost keeps its ``--duration``.

In process, the real loop, meter publisher and watchdog around a backend that stands in for a device that is
gone (every read LOST, every reopen refused); and as ``masterbox engine`` on the JACK rig with the server
killed under it.
"""

from __future__ import annotations

import subprocess
import threading
import time

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

