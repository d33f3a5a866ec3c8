"""The engine's last failed start, in a small file next to its control socket.

An engine that cannot open its audio device (a card that is not there, a rate it cannot do)
exits at once with a message on stderr; its supervisor (:mod:`firmware.supervisor`, or systemd
with ``Restart=always``) starts it again. Nobody else sees that message: the control process
only sees "no engine" on the socket, which is also what a slow start looks like. So a failed
start leaves a record the control process can read, through the one thing both already share
on the box and in ``masterbox run``: the run directory (``/run/masterbox`` under systemd, both
units' ``RuntimeDirectory``), the socket's folder.

The record is ``engine.start-failure.json`` next to ``engine.sock``: the error, the engine's
pid and when it happened, as ``CLOCK_MONOTONIC`` seconds (one clock for every process on the
machine, so the reader can ask "did a start fail after I asked for the restart?"). A start that
opens its device removes the record, so the file always describes the newest start.
:class:`firmware.audio_settings.AudioApplier` uses it to roll back as soon as the new settings
are known not to work, and to say why.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

SUFFIX = ".start-failure.json"


def record_path(socket_path: str | Path) -> Path:
    """Where the engine behind ``socket_path`` keeps its last failed start."""
    p = Path(socket_path)
    return p.with_name(p.stem + SUFFIX)


def record(socket_path: str | Path, error: str, device: dict | None = None) -> None:
    """Write the record (best effort: a failing write must not hide the real error)."""
    from firmware.atomic import write_atomic

    data = {"error": str(error), "pid": os.getpid(), "monotonic": round(time.monotonic(), 4),
            "time": time.time(), "device": device or {}}
    try:
        path = record_path(socket_path)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(path, json.dumps(data) + "\n")
    except OSError:
        pass


def clear(socket_path: str | Path) -> None:
    """The device opened: there is no failed start to tell about any more."""
    try:
        record_path(socket_path).unlink(missing_ok=True)
    except OSError:
        pass


def failed_since(socket_path: str | Path, since_monotonic: float) -> dict | None:
    """The record, when a start failed at or after ``since_monotonic``; else None."""
    try:
        data = json.loads(record_path(socket_path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or not isinstance(data.get("monotonic"), (int, float)):
        return None
    return data if data["monotonic"] >= since_monotonic else None
