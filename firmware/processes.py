"""Small facts about other processes, shared by the engine and control sides."""

from __future__ import annotations

import os


def pid_alive(pid: int) -> bool:
    """True when a process with this id exists (signal 0 delivers nothing, it only checks).

    Ids <= 0 are never alive: ``kill(0, 0)`` would ask about our own process group instead.
    A process we may not signal (PermissionError) exists all the same.
    """
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
