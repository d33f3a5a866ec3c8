"""The control unit's ExecStart (`python -m firmware.control_main`) against a real notify socket:
READY once the web port listens (with no engine running: control never waits for audio), STOPPING
and a clean exit on SIGTERM."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

from .conftest import REPO


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_control_process_is_ready_when_serving_and_stops_cleanly(tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(0.2)
    port = _free_port()
    env = dict(os.environ, NOTIFY_SOCKET=str(path))
    proc = subprocess.Popen([sys.executable, "-m", "firmware.control_main", "--sim-panel", "--host", "127.0.0.1",
                             "--port", str(port)], env=env, cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True)
    messages: list[str] = []
    try:
        end = time.monotonic() + 60
        while proc.poll() is None and time.monotonic() < end and not messages:
            try:
                messages.append(sock.recv(4096).decode())
            except TimeoutError:
                pass
        assert messages and messages[0].startswith("READY=1"), messages
        assert f"web UI on http://127.0.0.1:{port}" in messages[0]
        # READY means serving: the web UI answers right away.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/auth/session", timeout=5) as r:
            assert r.status == 200
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=30)
        try:
            messages.append(sock.recv(4096).decode())
        except TimeoutError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        sock.close()
    assert proc.returncode == 0, out
    assert messages[-1].startswith("STOPPING=1")
