"""The last few hundred log lines of the control process, for the System page.

A bounded in-memory ring attached to the root logger: the box's journal stays the real
record, this only lets someone holding a phone see what just happened.
"""

from __future__ import annotations

import logging
import threading
from collections import deque


class RingHandler(logging.Handler):
    def __init__(self, capacity: int = 300):
        super().__init__(level=logging.INFO)
        self._lines: deque[str] = deque(maxlen=capacity)
        self._lock2 = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%H:%M:%S"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except Exception:
            return
        with self._lock2:
            self._lines.append(line[:500])

    def lines(self, n: int = 100) -> list[str]:
        with self._lock2:
            return list(self._lines)[-n:]


def install(capacity: int = 300) -> RingHandler:
    """One handler per process (several apps in one test process share it)."""
    root = logging.getLogger()
    for h in root.handlers:
        if isinstance(h, RingHandler):
            return h
    h = RingHandler(capacity)
    root.addHandler(h)
    if root.level > logging.INFO or root.level == logging.NOTSET:
        logging.getLogger("masterbox").setLevel(logging.INFO)
    return h
