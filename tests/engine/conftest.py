"""Rigs for testing the engine on the real ALSA path without a sound card.

* :func:`alsa_rig`: an ALSA configuration written into the test's own ``XDG_CONFIG_HOME``
  (nothing global is touched) with ``type file`` PCMs over ``null``: ``mbin`` captures the raw
  samples of an ``infile``, ``mbout`` writes what is played to a raw file. Exact bytes, unpaced.
  With a JACK server, the same PCMs sit on a ``type jack`` PCM instead (through ``plug``, since
  the JACK plugin only speaks float) and run in real time.
* :func:`jack_server`: ``jackd -d dummy`` under a unique server name (JACK_DEFAULT_SERVER), never
  real-time, never auto-started by a client (JACK_NO_START_SERVER), stopped and cleaned up after.
  :func:`module_jack_server` is the same, one for a whole module.

Engines run as subprocesses (``masterbox engine``), the way the box runs them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from tests.waiting import wait_for  # noqa: F401  (the engine tests import it from here)

JACK_RATE = 48000
JACK_PERIOD = 128
JACK_FIFO_PRIORITY = 60  # below the engine's loop (70), above every ordinary process
XRUN_LOSS_PERIODS = 4    # what one xrun may cost the stream: the buffer (2 periods) and the restart (2)


def xrun_loss_s(xruns: int) -> float:
    """Seconds of the rig's stream that ``xruns`` xruns may have lost (the host's, tests/host_witness.py)."""
    return xruns * XRUN_LOSS_PERIODS * JACK_PERIOD / JACK_RATE


def _may_use_fifo() -> bool:
    if shutil.which("chrt") is None:
        return False
    return subprocess.run(["chrt", "-f", "1", "true"], capture_output=True).returncode == 0


@dataclass
class AlsaRig:
    """One asoundrc in its own config home; ``env`` makes a subprocess see it."""

    root: Path
    infile: Path
    outfile: Path
    env: dict = field(default_factory=dict)

    def write(self, slave: str = "null") -> None:
        alsa_dir = self.root / "alsa"
        alsa_dir.mkdir(parents=True, exist_ok=True)
        jack = ""
        if slave == "jack":
            jack = """
pcm.mbjack {
  type jack
  playback_ports { 0 system:playback_1 1 system:playback_2 }
  capture_ports { 0 system:capture_1 1 system:capture_2 }
}
pcm.mbjackplug { type plug slave.pcm "mbjack" }
"""
            slave = "mbjackplug"
        (alsa_dir / "asoundrc").write_text(f"""{jack}
pcm.mbin {{
  type file
  slave.pcm "{slave}"
  file "/dev/null"
  infile "{self.infile}"
  format "raw"
}}
pcm.mbout {{
  type file
  slave.pcm "{slave}"
  file "{self.outfile}"
  format "raw"
}}
""")
        self.env["XDG_CONFIG_HOME"] = str(self.root)


@pytest.fixture
def alsa_rig(tmp_path):
    rig = AlsaRig(tmp_path / "xdg", tmp_path / "in.raw", tmp_path / "out.raw")
    rig.env = {**os.environ, "XDG_CONFIG_HOME": str(rig.root), "PYTHONUNBUFFERED": "1"}
    rig.write()
    return rig


class JackServer:
    """A ``jackd -d dummy`` process; :meth:`kill` and :meth:`start` for device-loss tests."""

    def __init__(self, name: str, log: Path):
        self.name = name
        self.log = log
        self.proc: subprocess.Popen | None = None
        self.lines: list[tuple[float, str]] = []
        self.env = {**os.environ, "JACK_DEFAULT_SERVER": name, "JACK_NO_AUDIO_RESERVATION": "1",
                    "JACK_NO_START_SERVER": "1"}

    def start(self) -> None:
        cmd = ["jackd", "--no-realtime", "-d", "dummy", "-r", str(JACK_RATE), "-p", str(JACK_PERIOD)]
        if _may_use_fifo():
            # jackd's own real-time mode stays off (--no-realtime: it needs no audio group or
            # limits), but its clock thread is lifted above ordinary processes when the system
            # allows, so other work on a shared machine cannot stall the rig's clock
            cmd = ["chrt", "-f", str(JACK_FIFO_PRIORITY), *cmd]
        self.proc = subprocess.Popen(
            cmd, env=self.env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
        threading.Thread(target=self._follow, args=(self.proc,), daemon=True).start()
        r = subprocess.run(["jack_wait", "-w", "-t", "10"], env=self.env, capture_output=True, text=True)
        if r.returncode != 0 or "available" not in r.stdout:
            self.kill()
            raise RuntimeError(f"jackd did not come up: {r.stdout} {r.stderr} {self.log.read_text()[-500:]}")
        if cmd[0] == "chrt":  # jackd made its own threads ordinary again: lift all of them
            subprocess.run(["chrt", "-a", "-f", "-p", str(JACK_FIFO_PRIORITY), str(self.proc.pid)],
                           capture_output=True)

    def _follow(self, proc) -> None:
        """Keep jackd's log with the CLOCK_MONOTONIC time each line arrived."""
        with open(self.log, "a") as log:
            for raw in proc.stdout:
                line = raw.decode(errors="replace").rstrip()
                t = time.monotonic()
                self.lines.append((t, line))
                log.write(f"{t:.4f} {line}\n")

    def clock_stalls(self, min_us: float = 1000.0) -> list[float]:
        """Times at which jackd's own dummy clock reported a late cycle of at least ``min_us``.

        jackd runs its dummy driver on a timer; when the machine does not run it in time it
        logs ``JackTimedDriver::Process XRun = N usec``: the rig's clock itself stumbled.
        """
        out = []
        for t, line in self.lines:
            m = re.search(r"JackTimedDriver::Process XRun = (\d+) usec", line)
            if m and float(m.group(1)) >= min_us:
                out.append(t)
        return out

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def cleanup(self) -> None:
        self.kill()
        for p in Path("/dev/shm").glob(f"jack*{self.name}*"):
            try:
                p.unlink()
            except OSError:
                pass


def _running_jack_server(log_dir: Path):
    if shutil.which("jackd") is None:
        pytest.fail("jackd is missing: install Debian jackd2 (debian-packages.txt)")
    server = JackServer(f"mbtest{os.getpid()}{uuid.uuid4().hex[:6]}", log_dir / "jackd.log")
    server.start()
    try:
        yield server
    finally:
        server.cleanup()


@pytest.fixture
def jack_server(tmp_path):
    yield from _running_jack_server(tmp_path)


@pytest.fixture(scope="module")
def module_jack_server(tmp_path_factory):
    """One server for a module whose tests only open PCMs on it (none kills it, none counts xruns)."""
    yield from _running_jack_server(tmp_path_factory.mktemp("jackd"))


def engine_cmd(*args: str) -> list[str]:
    exe = Path(sys.executable).with_name("masterbox")
    base = [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]
    return [*base, "engine", *args]


def run_engine(args: list[str], env: dict, timeout: float = 300.0) -> subprocess.CompletedProcess:
    r = subprocess.run(engine_cmd(*args), env=env, capture_output=True, text=True, timeout=timeout)
    assert r.returncode == 0, f"engine failed ({r.returncode}):\n{r.stderr[-3000:]}"
    return r


def start_engine(args: list[str], env: dict) -> subprocess.Popen:
    return subprocess.Popen(engine_cmd(*args), env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def read_stats(path: Path) -> dict:
    return json.loads(Path(path).read_text())




def programme(seconds: float, rate: int, seed: int = 1) -> np.ndarray:
    from dsp.programme import render_programme

    return render_programme(seconds, rate, seed=seed)
