"""The engine unit's ExecStart (`python -m firmware.watchdog ...`) against a real notify socket:
READY only once audio flows, watchdog pings while it does, STOPPING when systemd's SIGTERM stops it."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time

from .conftest import REPO


def test_engine_under_the_watchdog_speaks_sd_notify(tmp_path, warm_kernels):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    proc = subprocess.Popen([sys.executable, "-m", "firmware.watchdog", "--backend", "sim"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got: list[tuple[float, str]] = []

    def collect(until):
        while proc.poll() is None and not until():
            try:
                got.append((time.monotonic(), sock.recv(4096).decode()))
            except TimeoutError:
                pass

    try:
        start = time.monotonic()
        collect(lambda: any(m.startswith("READY=1") for _, m in got) or time.monotonic() - start > 120)
        ready_at = time.monotonic()
        collect(lambda: time.monotonic() - ready_at > 3.0)  # three seconds of running audio
        proc.send_signal(signal.SIGTERM)  # what `systemctl stop` sends
        collect(lambda: False)
        out, _ = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert proc.returncode == 0, out
    messages = [m for _, m in got]
    ready = [i for i, m in enumerate(messages) if m.startswith("READY=1")]
    assert len(ready) == 1, messages
    assert f"MAINPID={proc.pid}" in messages[ready[0]]
    assert messages[0].startswith("STATUS=starting")  # before audio: a status, no READY, no pings
    assert "WATCHDOG=1" not in messages[: ready[0]]
    pings = [t for t, m in got if m == "WATCHDOG=1"]
    assert len(pings) >= 5, messages  # every 0.5 s for a 2 s WatchdogSec over 3 s of audio
    assert max(b - a for a, b in zip(pings, pings[1:], strict=False)) < 2.0  # never a gap systemd acts on
    assert messages[-1].startswith("STOPPING=1")
