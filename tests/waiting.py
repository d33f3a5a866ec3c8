"""One poll-until-true for the tests that wait on other processes (engines, supervisors, pins)."""

from __future__ import annotations

import time


def wait_for(predicate, timeout: float, step: float = 0.05, what: str = "condition"):
    """Return ``predicate()``'s first true value; fail after ``timeout`` seconds, naming ``what``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = predicate()
        if v:
            return v
        time.sleep(step)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")
