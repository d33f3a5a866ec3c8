"""The engine unit's ExecStart (`python -m firmware.watchdog ...`) against a real notify socket:
READY only once audio flows, watchdog pings while it does, STOPPING at the end."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time

from .conftest import REPO


def test_engine_under_the_watchdog_speaks_sd_notify(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    env = dict(os.environ, NOTIFY_SOCKET=str(path), WATCHDOG_USEC="2000000")
    env.pop("WATCHDOG_PID", None)
    t0 = time.monotonic()
    proc = subprocess.Popen([sys.executable, "-m", "firmware.watchdog", "--backend", "sim", "--duration", "4"],
                            env=env, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    got: list[tuple[float, str]] = []
    try:
        while proc.poll() is None and time.monotonic() - t0 < 60:
            try:
                got.append((time.monotonic() - t0, sock.recv(4096).decode()))
            except TimeoutError:
                pass
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
    assert len(pings) >= 4, messages  # every 0.5 s for a 2 s WatchdogSec over about 4 s of audio
    assert max(b - a for a, b in zip(pings, pings[1:], strict=False)) < 2.0  # never a gap systemd would act on
    assert messages[-1].startswith("STOPPING=1")
