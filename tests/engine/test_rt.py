"""Real-time footing: refused privileges are warnings that say how to allow them, never errors."""

from __future__ import annotations

import gc
import os

from firmware import rt


def test_refused_scheduling_and_memory_locking_are_explained(monkeypatch):
    def refuse(*a, **kw):
        raise PermissionError(1, "Operation not permitted")

    class NoLock:
        def mlockall(self, flags):
            return -1

    monkeypatch.setattr(os, "sched_setscheduler", refuse)
    monkeypatch.setattr(rt.ctypes, "CDLL", lambda *a, **kw: NoLock())
    out = rt.enter_realtime()
    assert out["sched_fifo"] is False and out["mlockall"] is False
    assert any("LimitRTPRIO" in w for w in out["warnings"])
    assert any("LimitMEMLOCK" in w for w in out["warnings"])
    assert rt.boost_helper_thread() is False
    assert rt.lift_threads([os.getpid()]) == 0


def test_quiet_gc_disables_collection_inside_and_restores_after():
    assert gc.isenabled()
    with rt.quiet_gc():
        assert not gc.isenabled()
        assert gc.get_freeze_count() > 0
    assert gc.isenabled() and gc.get_freeze_count() == 0
