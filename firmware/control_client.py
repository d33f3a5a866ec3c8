"""Talking to a running engine: :class:`EngineClient` over the control socket.

Used by the control process (panel, web UI, learning) and by scripts. Each call sends one JSON
line and waits for its one-line reply; the connection is made on first use and re-made after
the engine restarts. A refused request raises :class:`EngineError` with the engine's message;
no engine (no socket, nobody listening, no answer in ``timeout`` seconds) raises
:class:`EngineUnavailable`.
"""

from __future__ import annotations

import itertools
import json
import socket
import threading
from pathlib import Path
from typing import Any


class EngineUnavailable(ConnectionError):
    """No engine answers on the control socket."""


class EngineError(RuntimeError):
    """The engine understood the request and refused it; ``reply`` holds its full answer."""

    def __init__(self, message: str, reply: dict | None = None):
        super().__init__(message)
        self.reply = reply or {}


class EngineClient:
    """``EngineClient(path=None, timeout=1.0)``; ``path`` defaults to ``run_dir()/engine.sock``."""

    def __init__(self, path: str | Path | None = None, timeout: float = 1.0):
        self._path = Path(path) if path is not None else None
        self.timeout = timeout
        self._sock: socket.socket | None = None
        self._rfile = None
        self._lock = threading.Lock()  # one request at a time per client (threads may share one)
        self._ids = itertools.count(1)

    @property
    def path(self) -> Path:
        if self._path is not None:
            return self._path
        from firmware.control_channel import default_socket_path

        return default_socket_path()

    # -- plumbing -----------------------------------------------------------------------
    def _connect(self) -> None:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        try:
            s.connect(str(self.path))
        except OSError as e:
            s.close()
            why = e.strerror or e
            raise EngineUnavailable(f"the engine is not running (no answer on {self.path}: {why})") from None
        self._sock = s
        self._rfile = s.makefile("rb")

    def close(self) -> None:
        if self._sock is not None:
            try:
                self._rfile.close()
                self._sock.close()
            finally:
                self._sock = None
                self._rfile = None

    def request(self, cmd: str, **fields: Any) -> dict:
        """Send one command and return the engine's reply (``ok`` true); raise on refusal."""
        with self._lock:
            rid = next(self._ids)
            line = (json.dumps({"v": 1, "cmd": cmd, "id": rid, **fields}) + "\n").encode()
            for attempt in (1, 2):  # once more on a fresh connection if the engine restarted
                if self._sock is None:
                    self._connect()
                try:
                    self._sock.sendall(line)
                    raw = self._rfile.readline()
                except TimeoutError:
                    self.close()
                    raise EngineUnavailable(f"the engine did not answer within {self.timeout:g} s") from None
                except OSError:
                    raw = b""
                if raw:
                    break
                self.close()
                if attempt == 2:
                    raise EngineUnavailable("the engine closed the connection")
            reply = json.loads(raw)
        if not reply.get("ok"):
            raise EngineError(reply.get("error", "refused"), reply)
        return reply

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    # -- the commands -------------------------------------------------------------------
    def hello(self) -> dict:
        return self.request("hello")

    def status(self) -> dict:
        return self.request("status")

    def wait_running(self, timeout: float, gave_up=None, step: float = 0.1) -> bool:
        """Poll until the engine processes audio through the chain (state ``running``).

        Why a poll: a starting engine answers on its socket before its kernels are loaded (a
        numba cache made cold by a change to ``dsp/`` compiles first). Returns False after
        ``timeout`` seconds, or as soon as ``gave_up()`` is true (e.g. the process has exited).
        """
        import time

        deadline = time.monotonic() + timeout
        while True:
            try:
                if self.status().get("state") == "running":
                    return True
            except (EngineUnavailable, EngineError):
                pass
            if (gave_up is not None and gave_up()) or time.monotonic() > deadline:
                return False
            time.sleep(step)

    def set_params(self, values: dict) -> dict:
        """Apply a partial set of user values at once (all or nothing); returns what was applied."""
        return self.request("set_params", params=dict(values))["applied"]

    def bypass(self, on: bool, level_match: bool | None = None) -> dict:
        return self.request("bypass", on=bool(on), level_match=level_match)

    def compare(self, on: bool) -> dict:
        """True at each switch between settings 1 and 2 (heard at equal loudness), False on an edit."""
        return self.request("compare", on=bool(on))

    def monitor(self, mode: str) -> dict:
        """Listen to the output in stereo, mono, side, left or right (recordings stay stereo)."""
        return self.request("monitor", mode=mode)

    def preview(self, service: str) -> dict:
        """Hear the output as a streaming service would play it (``off``, ``spotify``, ...)."""
        return self.request("preview", service=service)

    def capture_start(self, tap: str = "output", fmt: str = "PCM_24", max_seconds: float | None = None,
                      preset: str = "", modified: bool = False) -> dict:
        return self.request("capture_start", tap=tap, fmt=fmt, max_seconds=max_seconds, preset=preset,
                            modified=modified)["capture"]

    def capture_stop(self) -> dict:
        return self.request("capture_stop")["capture"]

    def meters_reset(self) -> dict:
        return self.request("meters_reset")

    def learn_start(self) -> dict:
        return self.request("learn_start")

    def learn_stop(self) -> dict:
        return self.request("learn_stop")

    def reference_load(self, path: str) -> dict:
        """Map a prepared reference track (firmware/reference.py); returns its status (off)."""
        return self.request("reference_load", path=str(path))["reference"]

    def reference(self, on: bool, gain_db: float | None = None) -> dict:
        """REF on (level-matched unless ``gain_db``) or off; returns the reference's status."""
        return self.request("reference", on=bool(on), gain_db=gain_db)["reference"]

    def reference_clear(self) -> dict:
        return self.request("reference_clear")

    def stop_engine(self) -> dict:
        return self.request("stop")
