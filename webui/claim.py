"""Claiming the box from the front panel: the second way to set the first password.

A box fresh out of the installer has no web password, and there must be no default one. The
console (``masterbox passwd``) is one way in; the other is physical presence: a browser opens
the setup page, *arms* a claim window, and someone standing at the box presses a front-panel
button within the window. Only the browser session that armed the window may then choose the
password.

The panel controller lives in ``firmware`` and must not import ``webui``, so the hook is a
duck-typed object attached to ``Control`` as ``control.claim``: the panel calls
:meth:`ClaimWindow.press` on every short button press, and when it returns ``True`` the press
was consumed by the claim and the button's normal action is skipped.
"""

from __future__ import annotations

import secrets
import threading
import time


class ClaimWindow:
    """One armed claim at a time, bound to the session token that armed it."""

    def __init__(self, seconds: float = 120.0, grace: float = 300.0, clock=time.monotonic):
        self.seconds = seconds  # how long the setup page waits for a button press
        self.grace = grace  # how long the browser then has to choose a password
        self._clock = clock
        self._lock = threading.Lock()
        self._token: str | None = None
        self._deadline = 0.0
        self._pressed_at: float | None = None

    # -- browser side -----------------------------------------------------------------
    def arm(self, token: str | None = None) -> str:
        """Open the window for ``token`` (a fresh one if None); returns the token.

        Raises :class:`ClaimBusy` while another session's window is still open, so two
        browsers cannot both wait for the same button press.
        """
        with self._lock:
            now = self._clock()
            if self._token is not None and token != self._token and self._live(now):
                raise ClaimBusy(int(self._remaining(now)) + 1)
            self._token = token or secrets.token_urlsafe(24)
            self._deadline = now + self.seconds
            self._pressed_at = None
            return self._token

    def status(self, token: str | None) -> dict:
        """What the setup page shows: waiting, pressed (go on), expired or not armed."""
        with self._lock:
            now = self._clock()
            if token is None or token != self._token:
                return {"state": "idle", "remaining_s": 0}
            if self._pressed_at is not None:
                if now - self._pressed_at <= self.grace:
                    return {"state": "pressed", "remaining_s": round(self.grace - (now - self._pressed_at))}
                return {"state": "expired", "remaining_s": 0}
            if now <= self._deadline:
                return {"state": "waiting", "remaining_s": round(self._deadline - now)}
            return {"state": "expired", "remaining_s": 0}

    def consume(self, token: str | None) -> bool:
        """True (once) if ``token`` armed the window and the button was pressed in time."""
        with self._lock:
            now = self._clock()
            ok = (
                token is not None
                and token == self._token
                and self._pressed_at is not None
                and now - self._pressed_at <= self.grace
            )
            if ok:
                self._token, self._pressed_at = None, None
            return ok

    def cancel(self) -> None:
        with self._lock:
            self._token, self._pressed_at = None, None

    # -- panel side --------------------------------------------------------------------
    @property
    def armed(self) -> bool:
        """True while a browser waits for a press (the panel may blink a LED to say so)."""
        with self._lock:
            return self._token is not None and self._pressed_at is None and self._clock() <= self._deadline

    def press(self, button: str = "") -> bool:
        """A front-panel button was pressed; True if that press claimed the web UI."""
        with self._lock:
            if self._token is None or self._pressed_at is not None or self._clock() > self._deadline:
                return False
            self._pressed_at = self._clock()
            return True

    # -- helpers (lock held) -----------------------------------------------------------
    def _live(self, now: float) -> bool:
        if self._pressed_at is not None:
            return now - self._pressed_at <= self.grace
        return now <= self._deadline

    def _remaining(self, now: float) -> float:
        if self._pressed_at is not None:
            return max(self.grace - (now - self._pressed_at), 0.0)
        return max(self._deadline - now, 0.0)


class ClaimBusy(Exception):
    """Another browser already waits for the button; ``retry_after`` seconds until it expires."""

    def __init__(self, retry_after: int):
        super().__init__(f"another browser is already waiting for a button press; try again in {retry_after} s")
        self.retry_after = retry_after
