"""Serving the web UI with waitress (never Flask's development server on the box).

Thread budget: every live meter stream (SSE) holds one waitress worker thread for as long as
it is open, so the pool is sized ``threads`` (24 by default) and streams are capped at
``sse_max_clients`` (16, and never more than ``threads - 4``): at least four workers are
always free for API requests and pages however many browsers watch the meters.

Backpressure: waitress buffers whatever the application yields for a client that is not
reading. :class:`BacklogProbe` lets the SSE stream ask how many bytes are still unsent on
its own connection, so a stalled client has its frames skipped instead of buffered.
"""

from __future__ import annotations

import logging
import threading

from firmware.capture_upload import CHUNK_BYTES as UPLOAD_PIECE_BYTES

log = logging.getLogger("masterbox.web.server")

SSE_PATH = "/api/v1/events"


class QuietStreamEnds(logging.Filter):
    """Drops waitress's "Client disconnected while serving /api/v1/events": a browser leaving a page
    ends its live stream that way every time, and one such line per page view buried the System
    page's recent log and the journal. A disconnect anywhere else is still logged."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != f"Client disconnected while serving {SSE_PATH}"


_QUIET = QuietStreamEnds()


class BacklogProbe:
    """Callable ``() -> int``: bytes waitress holds unsent for this request's connection."""

    def __init__(self):
        self.channel = None

    def __call__(self) -> int:
        ch = self.channel
        if ch is None:
            return 0
        try:
            return int(ch.total_outbufs_len)
        except (AttributeError, TypeError, ValueError):
            return 0

    def gone(self) -> bool:
        """True once the client's connection is closed (a skipped stream would not notice)."""
        ch = self.channel
        return ch is not None and not getattr(ch, "connected", True)


class BacklogMiddleware:
    """Puts a :class:`BacklogProbe` in the SSE request's environ and arms it at start_response.

    waitress's ``start_response`` returns the task's bound ``write`` method, whose owner
    knows the channel; other servers simply leave the probe reporting 0.
    """

    def __init__(self, app):
        self.app = app

    def __call__(self, environ, start_response):
        if environ.get("PATH_INFO") != SSE_PATH:
            return self.app(environ, start_response)
        probe = BacklogProbe()
        environ["masterbox.backlog"] = probe

        def _start(status, headers, exc_info=None):
            write = start_response(status, headers, exc_info) if exc_info else start_response(status, headers)
            task = getattr(write, "__self__", None)
            probe.channel = getattr(task, "channel", None)
            return write

        return self.app(environ, _start)


def make_server(app, host: str | None = None, port: int | None = None, **overrides):
    """A waitress server for ``app`` (not yet running); ``port=0`` picks a free port."""
    from waitress import create_server

    settings = app.extensions["masterbox"].settings
    host = settings["host"] if host is None else host
    port = settings["port"] if port is None else port
    opts = dict(
        host=host,
        port=int(port),
        threads=int(settings["threads"]),
        ident="masterbox",
        # a body larger than the app accepts is refused before it is read into memory
        max_request_body_size=int(settings["max_body_bytes"]) + 1024,
        # an upload's piece is read in large gulps and kept in memory, not spooled through a temporary
        # file: 5.4 -> 1.4 s of server CPU per uploaded GB (bench/bench_storage.py, docs/storage.md)
        inbuf_overflow=UPLOAD_PIECE_BYTES + 65536,
        recv_bytes=256 * 1024,
        channel_timeout=60,
        connection_limit=200,
        clear_untrusted_proxy_headers=True,
    )
    opts.update(overrides)
    logging.getLogger("waitress").addFilter(_QUIET)      # once: the same filter object is not added twice
    return create_server(BacklogMiddleware(app), **opts)


class ServerThread:
    """waitress in a background thread (the control process's main thread runs the rest)."""

    def __init__(self, app, host: str | None = None, port: int | None = None, **overrides):
        self.server = make_server(app, host, port, **overrides)
        self.app = app
        self._thread = threading.Thread(target=self._run, name="masterbox-web", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.effective_port)

    @property
    def url(self) -> str:
        host = self.server.effective_host
        host = "127.0.0.1" if host in ("0.0.0.0", "") else host
        return f"http://{host}:{self.port}"

    def _run(self):
        try:
            self.server.run()
        except OSError:
            pass  # closed by stop()

    def start(self) -> ServerThread:
        self._thread.start()
        log.info("web UI on %s", self.url)
        return self

    def stop(self) -> None:
        """End the live streams, close every connection, stop the worker threads."""
        from waitress import wasyncore

        ctx = self.app.extensions["masterbox"]
        ctx.hub.close()
        ctx.broadcaster.stop()
        ctx.history.stop()
        server = self.server
        # the connections belong to the server's loop thread: close them there
        try:
            server.trigger.pull_trigger(lambda: wasyncore.close_all(server._map))
        except OSError:  # the loop (and its trigger) already ended
            pass
        self._thread.join(timeout=5)
        server.task_dispatcher.shutdown(timeout=2)


def serve(app, host: str | None = None, port: int | None = None) -> None:
    """Serve in the calling thread until interrupted."""
    server = make_server(app, host, port)
    log.info("web UI on http://%s:%s", server.effective_host, server.effective_port)
    try:
        server.run()
    finally:
        app.extensions["masterbox"].broadcaster.stop()
        app.extensions["masterbox"].history.stop()
