"""The engine's control channel: a Unix socket speaking JSON lines (docs/control-protocol.md).

One thread runs a ``selectors`` loop over the listening socket and every connected client; it is
never the audio thread, and everything a request needs (validation, building a new flat
parameter array, opening a capture) happens here. The engine is only touched through its
request methods, each of which publishes its result with one reference assignment.

Whatever a client sends cannot hurt the audio: malformed JSON, unknown commands, lines longer
than :data:`MAX_LINE`, or a half line followed by a hang-up are answered (where possible) with
``{"ok": false, "error": ...}`` and logged; the connection or the line is dropped, the server
carries on. Nor can a client that stops reading its replies hold up the others: replies are sent
without blocking, what a client has not taken yet waits in its own buffer while the selector serves
everyone else, and a client that lets :data:`MAX_PENDING` bytes pile up is dropped. (Until
2026-11-24 a reply was sent blocking with a 1 s timeout from this one thread, so a client that sent
60 status requests and read none held every other client up for 47 s.)
"""

from __future__ import annotations

import json
import logging
import math
import os
import selectors
import socket
import threading
import time
from pathlib import Path

from dsp import schema
from firmware import paths
from firmware.capture_writer import FORMATS as CAPTURE_FORMATS
from firmware.capture_writer import CaptureSession  # not at the first capture_start: an import holds the GIL
from firmware.reference import MAX_GAIN_DB, ReferenceError, match_gain_db, open_prepared

log = logging.getLogger("masterbox.control_channel")

PROTOCOL_VERSION = 1
MAX_LINE = 256 * 1024  # a full parameter set is ~8 KB of JSON; anything near this is a mistake
MAX_CLIENTS = 32
MAX_PENDING = 1024 * 1024  # reply bytes a client has not read yet; beyond this it is dropped
TAPS = ("output", "input", "both")
MAX_CAPTURE_SECONDS = 1e9  # a capture's max_seconds: far above the config's 1e6 minutes; 10**400 overflowed a float


def default_socket_path() -> Path:
    return paths.run_dir() / "engine.sock"


class RequestError(Exception):
    """A request that is understood but refused; the message goes back to the client."""


class ControlServer:
    """Serve ``engine`` (a :class:`firmware.engine.Engine`) on ``path`` until :meth:`stop`."""

    def __init__(self, engine, path: str | Path | None = None, publisher=None, capture_dir: Path | None = None,
                 capture_floor_mb: int = 500):
        self.engine = engine
        self.path = Path(path) if path is not None else default_socket_path()
        self.publisher = publisher
        self.capture_dir = capture_dir
        self.capture_floor_mb = capture_floor_mb
        self.errors = 0  # malformed requests seen (for tests and status)
        self._stop = threading.Event()
        self._sel = selectors.DefaultSelector()
        self._buffers: dict[socket.socket, bytearray] = {}
        self._pending: dict[socket.socket, bytearray] = {}   # replies waiting for the client to read them
        self._discarding: set[socket.socket] = set()
        self._learn_t0: float | None = None
        self._thread = threading.Thread(target=self._serve, name="control-channel", daemon=True)

    # -- life cycle ---------------------------------------------------------------------
    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists() or self.path.is_symlink():
            if _socket_answers(self.path):
                raise RuntimeError(f"another engine is already listening on {self.path}")
            self.path.unlink()
        self._listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._listener.bind(str(self.path))
        os.chmod(self.path, 0o660)
        self._listener.listen(8)
        self._listener.setblocking(False)
        self._sel.register(self._listener, selectors.EVENT_READ)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=2.0)
        for s in list(self._buffers):
            self._drop(s)
        try:
            self._sel.unregister(self._listener)
        except (KeyError, ValueError):
            pass
        self._listener.close()
        try:
            self.path.unlink()
        except FileNotFoundError:
            pass

    def _serve(self) -> None:
        if getattr(self.engine, "realtime", False):
            from firmware import rt

            rt.boost_helper_thread()  # never pre-empted while holding the GIL the loop needs
        while not self._stop.is_set():
            for key, mask in self._sel.select(timeout=0.2):
                sock = key.fileobj
                try:
                    if sock is self._listener:
                        self._accept()
                        continue
                    if mask & selectors.EVENT_WRITE:
                        self._flush(sock)
                    if mask & selectors.EVENT_READ and sock in self._buffers:
                        self._receive(sock)
                except Exception:  # noqa: BLE001 - one bad client never stops the server
                    log.exception("control channel: unexpected error; dropping that client")
                    self._drop(sock)

    def _accept(self) -> None:
        conn, _ = self._listener.accept()
        if len(self._buffers) >= MAX_CLIENTS:
            conn.setblocking(False)
            try:  # a few bytes into an empty socket buffer: never waits
                conn.send((json.dumps({"ok": False, "error": f"too many clients (max {MAX_CLIENTS})"}) + "\n").encode())
            except OSError:
                pass
            conn.close()
            return
        conn.setblocking(False)
        self._buffers[conn] = bytearray()
        self._sel.register(conn, selectors.EVENT_READ)

    def _drop(self, sock) -> None:
        try:
            self._sel.unregister(sock)
        except (KeyError, ValueError):
            pass
        buf = self._buffers.pop(sock, None)
        self._pending.pop(sock, None)
        self._discarding.discard(sock)
        if buf:
            self.errors += 1
            log.error("control channel: client left %d bytes without a newline; ignored", len(buf))
        sock.close()

    def _receive(self, sock) -> None:
        try:
            data = sock.recv(65536)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(sock)
            return
        buf = self._buffers[sock]
        buf += data
        while True:
            nl = buf.find(b"\n")
            if nl < 0:
                if len(buf) > MAX_LINE:
                    if sock not in self._discarding:
                        self._refuse(sock, f"line longer than {MAX_LINE} bytes; ignored")
                        self._discarding.add(sock)
                    buf.clear()
                return
            line = bytes(buf[:nl])
            del buf[: nl + 1]
            if sock in self._discarding:  # the tail of an over-long line
                self._discarding.discard(sock)
                continue
            if len(line) > MAX_LINE:
                self._refuse(sock, f"line longer than {MAX_LINE} bytes; ignored")
                continue
            if line.strip():
                self._send(sock, self.handle_line(line))
                if sock not in self._buffers:   # dropped: it let too many replies pile up
                    return

    def _refuse(self, sock, why: str) -> None:
        self.errors += 1
        log.error("control channel: %s", why)
        self._send(sock, {"ok": False, "error": why})

    def _send(self, sock, reply: dict) -> None:
        """Queue one reply line for ``sock`` and send what the socket takes now, without waiting."""
        data = encode_reply(reply)
        out = self._pending.get(sock)
        if out is not None:             # older replies still wait: keep the order
            out += data
            if len(out) > MAX_PENDING:
                self.errors += 1
                log.error("control channel: a client left %d bytes of replies unread; dropped", len(out))
                self._drop(sock)
            return
        try:
            sent = sock.send(data)
        except (BlockingIOError, InterruptedError):
            sent = 0
        except OSError:
            return  # the client went away; its socket is dropped on the next read
        if sent < len(data):
            self._pending[sock] = bytearray(data[sent:])
            self._sel.modify(sock, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def _flush(self, sock) -> None:
        """Send what waits for ``sock`` as far as it takes it; when all is sent, stop watching for room."""
        out = self._pending.get(sock)
        if out:
            try:
                sent = sock.send(out)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                self._drop(sock)
                return
            del out[:sent]
        if not out:
            self._pending.pop(sock, None)
            self._sel.modify(sock, selectors.EVENT_READ)

    # -- requests -----------------------------------------------------------------------
    def handle_line(self, line: bytes) -> dict:
        """One request line -> one reply object (never raises)."""
        try:
            req = strict_loads(line)
        except ValueError as e:  # JSONDecodeError, UnicodeDecodeError, NaN/Infinity, too many digits
            self.errors += 1
            log.error("control channel: not JSON (%s): %.80r", e, line)
            return {"ok": False, "error": f"not a JSON object: {e}"}
        if not isinstance(req, dict):
            self.errors += 1
            log.error("control channel: request is not an object: %.80r", line)
            return {"ok": False, "error": "a request must be a JSON object with a \"cmd\""}
        rid = req.get("id")
        try:
            v = req.get("v", PROTOCOL_VERSION)
            if not is_number(v) or not isinstance(v, int) or not 1 <= v <= PROTOCOL_VERSION:
                raise RequestError(f"protocol version {json.dumps(v)[:40]} is not supported; "
                                   f"this engine speaks {PROTOCOL_VERSION}")
            cmd = req.get("cmd")
            handler = getattr(self, f"cmd_{cmd}", None) if isinstance(cmd, str) else None
            if handler is None:
                raise RequestError(f"unknown command {cmd!r}; known: {', '.join(self.commands())}")
            reply = {"ok": True, **handler(req)}
        except schema.SchemaErrors as e:
            self.errors += 1
            reply = {"ok": False, "error": str(e), "fields": {pe.field: pe.reason for pe in e.errors}}
        except RequestError as e:
            self.errors += 1
            log.error("control channel: %s", e)
            reply = {"ok": False, "error": str(e)}
        except Exception as e:  # noqa: BLE001 - the reply says what went wrong; the engine goes on
            self.errors += 1
            log.exception("control channel: command failed")
            reply = {"ok": False, "error": f"{type(e).__name__}: {e}"}
        if rid is not None:
            reply["id"] = rid
        return reply

    @classmethod
    def commands(cls) -> list[str]:
        return sorted(n[4:] for n in dir(cls) if n.startswith("cmd_"))

    def cmd_hello(self, req) -> dict:
        from firmware import __version__

        return {"protocol": PROTOCOL_VERSION, "engine": __version__, "commands": self.commands()}

    def cmd_status(self, req) -> dict:
        st = self.engine.status()
        st["protocol"] = PROTOCOL_VERSION
        st["learning"] = self._learn_t0 is not None
        st["values"] = self.engine.values if req.get("values") else None
        return st

    def cmd_set_params(self, req) -> dict:
        params = req.get("params")
        if not isinstance(params, dict) or not params:
            raise RequestError("set_params needs \"params\": a non-empty object of id: value")
        applied = self.engine.set_params(params)
        return {"applied": applied}

    def cmd_bypass(self, req) -> dict:
        on = req.get("on")
        if not isinstance(on, bool):
            raise RequestError("bypass needs \"on\": true or false")
        lm = req.get("level_match")
        if lm is not None:
            self.engine.set_params({"ab.level_match": lm})
        self.engine.set_bypass(on)
        return {"bypass": on}

    def cmd_compare(self, req) -> dict:
        """Equal-loudness compare of two versions of the settings: ``on`` true at each switch, false on an edit."""
        on = req.get("on")
        if not isinstance(on, bool):
            raise RequestError("compare needs \"on\": true or false")
        self.engine.match_compare(on)
        return {"compare": on}

    def cmd_monitor(self, req) -> dict:
        """The listening mode (stereo, mono, side, left, right): the output only, crossfaded."""
        return self._named(req, "monitor", "mode", self.engine.set_monitor)

    def cmd_preview(self, req) -> dict:
        """As streamed: hear the output at the gain a streaming service would apply (``off``: as it is)."""
        return self._named(req, "preview", "service", self.engine.set_preview)

    @staticmethod
    def _named(req, cmd: str, key: str, setter) -> dict:
        """``setter(req[key])``, a name the engine checks; its ValueError (naming the choices) refuses it."""
        value = req.get(key)
        try:
            setter(value)
        except ValueError as e:
            raise RequestError(f"{cmd} needs \"{key}\": {e}") from None
        return {cmd: value}

    def cmd_meters_reset(self, req) -> dict:
        self.engine.reset_meters()
        return {}

    def cmd_capture_start(self, req) -> dict:
        e = self.engine
        if e.capture is not None:
            raise RequestError("a capture is already running; stop it first")
        tap = req.get("tap", "output")
        if tap not in TAPS:
            raise RequestError(f"tap must be one of {', '.join(TAPS)}")
        taps = ("input", "output") if tap == "both" else (tap,)
        fmt = _capture_format(req.get("fmt", "PCM_24"))
        max_seconds = req.get("max_seconds")
        if max_seconds is not None and (not is_number(max_seconds) or not 0 < max_seconds <= MAX_CAPTURE_SECONDS):
            raise RequestError(f"max_seconds must be a positive number up to {MAX_CAPTURE_SECONDS:g}, or null")
        modified = req.get("modified", False)
        if not isinstance(modified, bool):
            raise RequestError("modified must be true or false (the settings changed since the preset's recall)")
        if e.last_capture is not None and e.last_capture.writing:
            raise RequestError("the previous capture is still being written to disk; try again in a moment")
        directory = self.capture_dir or paths.ensure(paths.captures_dir())
        try:
            session = CaptureSession(directory, e.rate, 2, taps=taps, fmt=fmt, preset=str(req.get("preset", "")),
                                     modified=modified, max_seconds=max_seconds, floor_mb=self.capture_floor_mb,
                                     ring=e.capture_ring)
        except OSError as err:  # the folder or the file cannot be made: a person must act, no traceback helps
            raise RequestError(f"cannot record into {directory}: {err.strerror or err}") from None
        e.last_capture = session
        e.capture = session  # the loop starts pushing at its next block
        return {"capture": session.status()}

    def cmd_capture_stop(self, req) -> dict:
        e = self.engine
        session = e.capture
        if session is None:
            raise RequestError("no capture is running")
        e.capture = None
        # let the loop finish any push it had started with the old reference
        deadline = time.monotonic() + 0.2
        b0 = e.blocks
        while e.blocks < b0 + 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        return {"capture": session.stop()}

    def cmd_learn_start(self, req) -> dict:
        """Start measuring the input afresh (loudness, range, peaks) for the control's learning."""
        self.engine.reset_meters()
        self._learn_t0 = time.monotonic()
        if self.publisher is not None:
            self.publisher.learning = True
        return {"learning": True}

    def cmd_learn_stop(self, req) -> dict:
        """Stop learning and return what the input meter measured since ``learn_start``."""
        if self._learn_t0 is None:
            raise RequestError("learning was not started")
        seconds = time.monotonic() - self._learn_t0
        self._learn_t0 = None
        readings = None
        if self.publisher is not None:
            self.publisher.learning = False
            readings = dict(self.publisher.latest.get("_in_readings") or {}) or None
        return {"learning": False, "seconds": round(seconds, 3), "input": readings}

    def cmd_reference_load(self, req) -> dict:
        """Map a prepared reference track (:mod:`firmware.reference`) for the REF switch; it starts off."""
        path = req.get("path")
        if not isinstance(path, str) or not path:
            raise RequestError("reference_load needs \"path\": a prepared reference file")
        try:
            samples, info = open_prepared(Path(path), self.engine.rate)
        except ReferenceError as e:
            raise RequestError(str(e)) from None
        info.pop("spectrum", None)      # the page's business (GET /api/v1/reference), not the engine's
        self.engine.load_reference(samples, info)
        return {"reference": self.engine.reference_status()}

    def cmd_reference(self, req) -> dict:
        """REF on or off. On: level-matched to the master (its integrated loudness since the meters'
        reset, else its short-term), its raise held under the limiter's ceiling, unless ``gain_db``."""
        on = req.get("on")
        if not isinstance(on, bool):
            raise RequestError("reference needs \"on\": true or false")
        gain_db = req.get("gain_db")
        if gain_db is not None and (not is_number(gain_db) or not -MAX_GAIN_DB <= gain_db <= MAX_GAIN_DB):
            raise RequestError(f"gain_db must be a number of dB in -{MAX_GAIN_DB:g}..{MAX_GAIN_DB:g}, "
                               "or null for a level match")
        e = self.engine
        ref = e.reference_status()
        if ref is None:
            raise RequestError("no reference track is loaded")
        match: dict = {"matched_to": "given"}      # a gain named by the request
        if on and gain_db is None:
            match = {"matched_to": None}             # a match with nothing to match to: 0 dB
            latest = self.publisher.latest if self.publisher is not None else {}
            for key, what in (("out_integrated_lufs", "integrated"), ("out_short_term_lufs", "short_term")):
                if latest.get(key) is not None:
                    match = {"matched_to": what, "master_lufs": round(latest[key], 2)}
                    break
            gain_db, short = match_gain_db(match.get("master_lufs"), ref.get("integrated_lufs"),
                                           ref.get("true_peak_dbtp"), float(e.values["lim.ceiling_dbtp"]))
            match["short_by_db"] = short
        e.set_reference(on, float(gain_db or 0.0), match)
        return {"reference": e.reference_status()}

    def cmd_reference_clear(self, req) -> dict:
        """Drop the reference track (it fades out first if it was heard)."""
        self.engine.load_reference(None)
        return {"reference": None}

    def cmd_stall(self, req) -> dict:
        """Diagnostics: make the loop sleep once for ``ms`` milliseconds (forces an xrun)."""
        ms = req.get("ms")
        if not is_number(ms) or not 0 < ms <= 2000:
            raise RequestError("stall needs \"ms\" in 0..2000")
        self.engine.stall_once(ms / 1000.0)
        return {"stall_ms": ms}

    def cmd_stop(self, req) -> dict:
        """Ask the engine to stop (it finishes the current block, closes the device and exits)."""
        self.engine.request_stop()
        return {"stopping": True}


def _no_constant(token: str):
    raise ValueError(f"{token} is not a JSON number (strict JSON has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"{text[:40]} is too large a number")
    return value


def strict_loads(line: bytes):
    """A request line parsed as strict JSON (RFC 8259), else ValueError saying why.

    Python's json takes ``NaN``, ``Infinity`` and ``-Infinity`` (and ``1e999`` becomes an infinite float); a
    request carrying one is refused whole, like any line that is not JSON. This also keeps the replies strict:
    an ``id`` of ``Infinity`` used to be echoed as the same token, which no strict JSON reader takes.
    (A number of more than 4300 digits is a ValueError of Python's int too, no longer a dropped client.)
    """
    return json.loads(line, parse_constant=_no_constant, parse_float=_finite_float)


def _finite(value):
    """``value`` with every non-finite float in it replaced by None (JSON's null)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value


def encode_reply(reply: dict) -> bytes:
    """One reply line, always strict JSON: a NaN or infinity some status value carries is sent as null
    (and logged: it is a mistake upstream), never as Python's non-standard ``NaN``/``Infinity`` tokens."""
    try:
        text = json.dumps(reply, default=str, allow_nan=False)
    except ValueError:
        log.error("control channel: a reply held NaN or an infinity; sent as null: %.200r", reply)
        text = json.dumps(_finite(reply), default=str, allow_nan=False)
    return (text + "\n").encode()


def is_number(value) -> bool:
    """Whether ``value`` (from a parsed request) is a finite JSON number.

    A bool is refused: Python's ``True`` is an ``int`` equal to 1, so a bare isinstance check took
    ``"ms": true`` as 1 ms and ``"v": true`` as protocol version 1. Every numeric field of a command is
    checked with this one test (then for its own range); NaN and infinities are refused too.
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    return isinstance(value, int) or math.isfinite(value)


def _capture_format(fmt) -> str:
    """``fmt`` of a capture_start, checked here so a wrong one is a plain refusal.

    (CaptureSession's own ValueError reached the client as "ValueError: capture format must be one of ..."
    and the log as a traceback, for a request as ordinary as ``"fmt": "PCM_16"``.)
    """
    if not isinstance(fmt, str) or fmt not in CAPTURE_FORMATS:
        raise RequestError(f"fmt must be one of {', '.join(CAPTURE_FORMATS)} (24-bit PCM or 32-bit float), "
                           f"not {json.dumps(fmt)[:40]}")
    return fmt


def _socket_answers(path: Path) -> bool:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(0.5)
    try:
        s.connect(str(path))
        return True
    except OSError:
        return False
    finally:
        s.close()
