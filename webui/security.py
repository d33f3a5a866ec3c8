"""Security on a shared LAN: sessions, CSRF, login throttling and response headers.

* Sessions are Flask's signed cookie (HttpOnly, SameSite=Strict) carrying the password
  generation they logged in with; a password change invalidates them all.
* Every state-changing request (anything but GET/HEAD/OPTIONS) must echo the session's CSRF
  token in ``X-CSRF-Token`` (or a ``csrf_token`` form field), and a cross-site ``Origin`` is
  refused outright. GET never changes anything, so links and prefetches are harmless.
* Failed logins are throttled per client address with a sliding window; the table of
  addresses is bounded so a scan cannot grow it without limit.
* Every response carries a CSP without inline script, plus the usual hardening headers.
"""

from __future__ import annotations

import functools
import hmac
import secrets
import threading
import time
from collections import OrderedDict, deque
from urllib.parse import urlsplit

from flask import Flask, current_app, redirect, request, session, url_for

from webui.errors import ApiError, wants_json

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def csrf_token() -> str:
    """The session's CSRF token (made on first use, kept for the session's life)."""
    token = session.get("csrf")
    if not token:
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def logged_in() -> bool:
    pw = current_app.extensions["masterbox"].passwords
    return bool(session.get("auth")) and session.get("gen") == pw.generation and pw.is_set


def login_required(view):
    """API views answer 401 JSON; pages redirect to the login (or setup) page."""

    @functools.wraps(view)
    def wrapper(*args, **kwargs):
        if not logged_in():
            pw = current_app.extensions["masterbox"].passwords
            if wants_json(request):
                if not pw.is_set:
                    raise ApiError(401, "no password is set yet: open /setup or run `masterbox passwd` on the box")
                raise ApiError(401, "log in first")
            if not pw.is_set:
                return redirect(url_for("auth.setup"))
            return redirect(url_for("auth.login", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper


def safe_next(target: str | None) -> str:
    """Only same-site relative paths are followed after login (no open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return url_for("pages.live")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc:
        return url_for("pages.live")
    return target


class LoginThrottle:
    """At most ``attempts`` failed logins per ``window`` seconds from one address."""

    def __init__(self, attempts: int = 5, window: float = 60.0, max_clients: int = 4096, clock=time.monotonic):
        self.attempts = attempts
        self.window = window
        self.max_clients = max_clients
        self._clock = clock
        self._lock = threading.Lock()
        self._fails: OrderedDict[str, deque] = OrderedDict()

    def retry_after(self, client: str) -> int:
        """Seconds this client must wait before trying again (0: go ahead)."""
        with self._lock:
            q = self._prune(client)
            if q is None or len(q) < self.attempts:
                return 0
            return max(int(q[0] + self.window - self._clock()) + 1, 1)

    def failed(self, client: str) -> None:
        with self._lock:
            q = self._prune(client)
            if q is None:
                q = deque(maxlen=self.attempts)
                self._fails[client] = q
                while len(self._fails) > self.max_clients:
                    self._fails.popitem(last=False)
            q.append(self._clock())
            self._fails.move_to_end(client)

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._fails.pop(client, None)

    def _prune(self, client: str):
        q = self._fails.get(client)
        if q is None:
            return None
        cutoff = self._clock() - self.window
        while q and q[0] < cutoff:
            q.popleft()
        if not q:
            del self._fails[client]
            return None
        return q


def client_address() -> str:
    # The box serves the LAN directly; no proxy headers are trusted.
    return request.remote_addr or "unknown"


def register(app: Flask) -> None:
    @app.before_request
    def _csrf_guard():
        if request.method in SAFE_METHODS:
            return None
        origin = request.headers.get("Origin")
        if origin and origin != "null":
            o = urlsplit(origin)
            if o.netloc != request.host:
                raise ApiError(403, f"cross-site request refused (Origin {origin} is not this box)")
        sent = request.headers.get("X-CSRF-Token")
        if sent is None and request.mimetype in ("application/x-www-form-urlencoded", "multipart/form-data"):
            sent = request.form.get("csrf_token")
        expected = session.get("csrf")
        if not sent:
            raise ApiError(403, "missing CSRF token: send the X-CSRF-Token header from GET /api/v1/auth/session")
        if not expected or not hmac.compare_digest(str(sent), str(expected)):
            raise ApiError(403, "CSRF token does not match this session; reload the page")
        return None

    @app.after_request
    def _headers(resp):
        h = resp.headers
        h.setdefault("Content-Security-Policy", CSP)
        h.setdefault("X-Content-Type-Options", "nosniff")
        h.setdefault("X-Frame-Options", "DENY")
        h.setdefault("Referrer-Policy", "no-referrer")
        h.setdefault("Cross-Origin-Opener-Policy", "same-origin")
        h.setdefault("Cross-Origin-Resource-Policy", "same-origin")
        h.setdefault("Permissions-Policy", "camera=(), microphone=(), geolocation=()")
        if request.path.startswith("/api/") and "Cache-Control" not in h:
            h["Cache-Control"] = "no-store"
        return resp
