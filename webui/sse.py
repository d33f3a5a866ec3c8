"""Live meters, state and panel as Server-Sent Events, without letting any client hold anything back.

One *broadcaster* thread per application reads the engine's shared meters (never the audio
loop) at ``sse_hz`` (20 Hz by default), serialises each frame once, and stores it in a
:class:`Hub` that keeps only the **latest** frame of each kind (``meters``, ``state``,
``panel``). Each connected browser waits on the hub and sends whatever is newer than what it
sent last: there is no per-client queue, so a slow client simply skips frames. When the
server can tell how much output is still unsent for a client (waitress, see
:mod:`webui.server`), a client more than ``sse_backlog`` bytes behind is skipped until it
catches up, so a stalled phone never makes the server buffer without bound.

Each stream holds one server thread, so streams are capped at ``sse_max_clients`` (the
rest of the thread pool stays free for the API; extra streams get 503 and the page falls
back to polling ``GET /api/v1/meters``) and live at most ``sse_max_seconds`` before the
browser's EventSource reconnects by itself, so an abandoned tab cannot pin a thread forever.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, current_app, request

from webui.errors import ApiError
from webui.security import login_required

log = logging.getLogger("masterbox.web.sse")

bp = Blueprint("sse", __name__)


class Hub:
    """Latest frame per kind, a global sequence number and a condition to wait on."""

    def __init__(self, max_clients: int = 16):
        self.max_clients = max_clients
        self._cond = threading.Condition()
        self._seq = 0
        self._frames: dict[str, tuple[int, str]] = {}
        self._clients = 0
        self.closed = False
        self.dropped = 0  # frames skipped for clients that were behind (all clients together)

    # -- publishing (broadcaster thread) -------------------------------------------------
    def publish(self, kind: str, data: Any) -> None:
        text = json.dumps(data, separators=(",", ":"), allow_nan=False, default=_jsonable)
        with self._cond:
            self._seq += 1
            self._frames[kind] = (self._seq, text)
            self._cond.notify_all()

    def latest(self, kind: str) -> str | None:
        with self._cond:
            f = self._frames.get(kind)
            return f[1] if f else None

    # -- subscribing (one server thread per client) -------------------------------------
    @property
    def clients(self) -> int:
        with self._cond:
            return self._clients

    def join(self) -> bool:
        with self._cond:
            if self._clients >= self.max_clients:
                return False
            self._clients += 1
            return True

    def leave(self) -> None:
        with self._cond:
            self._clients = max(self._clients - 1, 0)

    def wait(self, after: int, timeout: float) -> tuple[int, list[tuple[str, str]]]:
        """Frames newer than sequence ``after`` (empty on timeout), and the sequence reached."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after, timeout)
            fresh = [(k, t) for k, (s, t) in self._frames.items() if s > after]
            return self._seq, fresh

    def wake_all(self) -> None:
        with self._cond:
            self._seq += 1
            self._cond.notify_all()

    def close(self) -> None:
        """Shutting down: every stream ends at its next wake-up (now)."""
        self.closed = True
        self.wake_all()


def _jsonable(x: Any):
    if hasattr(x, "item"):  # numpy scalars from the meter reader
        return x.item()
    if isinstance(x, (set, tuple)):
        return list(x)
    return str(x)


def finite(d: Any) -> Any:
    """Replace NaN/inf (silence reads -inf dB) by None: JSON has no infinities."""
    if isinstance(d, dict):
        return {k: finite(v) for k, v in d.items()}
    if isinstance(d, (list, tuple)):
        return [finite(v) for v in d]
    if isinstance(d, float) and (d != d or d in (float("inf"), float("-inf"))):
        return None
    if hasattr(d, "item") and not isinstance(d, (str, bytes)):
        return finite(d.item())
    return d


class Broadcaster:
    """The one thread that reads meters/state/panel and publishes into the hub.

    It only runs its loop while at least one stream is connected, and it never waits on a
    client: publishing replaces the latest frame and notifies whoever is waiting.
    """

    def __init__(self, hub: Hub, sources: dict[str, Callable[[], Any]], hz: float = 20.0):
        self.hub = hub
        self.sources = sources
        self.period = 1.0 / hz
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._last: dict[str, str] = {}
        self.ticks = 0

    def ensure_running(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._stop.clear()
                self._thread = threading.Thread(target=self._run, name="masterbox-sse", daemon=True)
                self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.hub.wake_all()
        t = self._thread
        if t is not None:
            t.join(timeout=2)

    def poll_once(self) -> None:
        """Read every source once and publish what changed (also used for the first frame)."""
        for kind, read in self.sources.items():
            try:
                data = finite(read())
            except Exception as e:  # a failing source must not kill the stream
                log.warning("SSE source %s failed: %s", kind, e)
                continue
            text = json.dumps(data, sort_keys=True, default=_jsonable)
            if self._last.get(kind) != text:
                self._last[kind] = text
                self.hub.publish(kind, data)

    def _run(self) -> None:
        next_t = time.monotonic()
        idle_since = None
        while not self._stop.is_set():
            if self.hub.clients == 0:
                idle_since = idle_since or time.monotonic()
                if time.monotonic() - idle_since > 30:
                    return  # restarted by the next stream
                self._stop.wait(0.25)
                next_t = time.monotonic()
                continue
            idle_since = None
            with self._lock:
                self.poll_once()
            self.ticks += 1
            next_t += self.period
            delay = next_t - time.monotonic()
            if delay < -self.period:  # fell behind (a stalled source): do not try to catch up
                next_t = time.monotonic()
                delay = 0
            self._stop.wait(max(delay, 0))


class EventStream:
    """The iterable a streaming response sends; ``close()`` frees the client slot exactly once."""

    def __init__(self, hub: Hub, initial: list[tuple[str, str]], backlog: Callable[[], int] | None,
                 max_backlog: int, max_seconds: float, keepalive: float = 15.0):
        self.hub = hub
        self.backlog = backlog
        self.max_backlog = max_backlog
        self.deadline = time.monotonic() + max_seconds
        self.keepalive = keepalive
        self._pending = "retry: 2000\n\n" + "".join(_event(k, t) for k, t in initial)
        self._seq = 0
        self._closed = False
        with hub._cond:
            self._seq = hub._seq

    def __iter__(self):
        return self

    def __next__(self) -> bytes:
        if self._pending:
            out, self._pending = self._pending, ""
            return out.encode()
        while not self._closed and not self.hub.closed:
            remaining = self.deadline - time.monotonic()
            if remaining <= 0:
                self.close()
                raise StopIteration
            self._seq, fresh = self.hub.wait(self._seq, min(self.keepalive, remaining))
            if self._closed or self.hub.closed:
                break
            if not fresh:
                return b": keepalive\n\n"
            if self.backlog is not None and self.backlog() > self.max_backlog:
                gone = getattr(self.backlog, "gone", None)
                if gone is not None and gone():
                    break  # the client hung up while we were skipping its frames
                self.hub.dropped += 1  # behind: skip to the next frame, never queue
                continue
            return "".join(_event(k, t) for k, t in fresh).encode()
        self.close()
        raise StopIteration

    def close(self) -> None:
        if not self._closed:
            self._closed = True
            self.hub.leave()


def _event(kind: str, text: str) -> str:
    return f"event: {kind}\ndata: {text}\n\n"


@bp.get("/api/v1/events")
@login_required
def events():
    ctx = current_app.extensions["masterbox"]
    hub, caster = ctx.hub, ctx.broadcaster
    if not hub.join():
        raise ApiError(503, f"too many live streams ({hub.max_clients}); poll GET /api/v1/meters instead",
                       retry_after=10)
    try:
        caster.ensure_running()
        with caster._lock:
            caster.poll_once()
        initial = [(k, hub.latest(k)) for k in ("state", "panel", "meters") if hub.latest(k) is not None]
        holder = request.environ.get("masterbox.backlog")
        stream = EventStream(hub, initial, holder, ctx.settings["sse_backlog"], ctx.settings["sse_max_seconds"])
    except BaseException:
        hub.leave()
        raise
    resp = Response(stream, mimetype="text/event-stream")
    resp.headers["Cache-Control"] = "no-store"
    resp.headers["X-Accel-Buffering"] = "no"
    resp.call_on_close(stream.close)
    return resp
