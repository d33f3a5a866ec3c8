"""Undo and redo for the box's settings.

Every editor a mastering engineer uses can take the last move back; a box driven from a web page,
a front panel and preset recalls should too. :class:`UndoHistory` keeps what the state was before
each change (all values, the active preset, the modified flag, the settings slots);
:class:`firmware.state.StateStore` records into it and restores from it, so an undo is an ordinary
change that every subscriber (the engine, the panel, every open page) follows.

What counts as one step: a preset recall is one, so is a switch or a copy of the settings slots; a
run of changes from the same place to the same parameters, each within :data:`COALESCE_S` of the
last (a slider dragged, a knob turned), is one.
Any new change after an undo drops what could have been redone. The history lives in memory only
(a restart starts a new one) and keeps the last :data:`DEPTH` steps.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from firmware.settings_slots import Settings, Slots

COALESCE_S = 1.0
DEPTH = 100


@dataclass(frozen=True)
class Step:
    """What the state was: the settings played (every value, the active preset, whether it was
    modified) and the two settings slots (firmware/settings_slots.py)."""

    settings: Settings
    slots: Slots


class UndoHistory:
    def __init__(self, depth: int = DEPTH, coalesce_s: float = COALESCE_S,
                 clock: Callable[[], float] = time.monotonic):
        self.depth = depth
        self.coalesce_s = coalesce_s
        self.clock = clock
        self._undo: list[Step] = []
        self._redo: list[Step] = []
        self._last: tuple[str, frozenset | None, float] | None = None   # (source, keys, when) of the last change

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    def record(self, before: Step, source: str, keys: frozenset | None) -> None:
        """A change is about to be applied to the state ``before``; ``keys`` are the parameters it
        changes (None: a whole new set, e.g. a recall, which is always a step of its own)."""
        now = self.clock()
        last = self._last
        self._last = (source, keys, now)
        self._redo.clear()
        if (keys is not None and last is not None and self._undo and last[0] == source and last[1] == keys
                and now - last[2] <= self.coalesce_s):
            return                  # the same move going on: its step is already recorded
        self._undo.append(before)
        del self._undo[:-self.depth]

    def undo(self, current: Step) -> Step | None:
        """The state to go back to (``current`` becomes redoable), or None if there is none."""
        if not self._undo:
            return None
        self._redo.append(current)
        self._last = None
        return self._undo.pop()

    def redo(self, current: Step) -> Step | None:
        """The state an undo left (``current`` becomes undoable again), or None if there is none."""
        if not self._redo:
            return None
        self._undo.append(current)
        self._last = None
        return self._redo.pop()
