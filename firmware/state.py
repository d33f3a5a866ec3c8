"""The box's current state: the single source of truth the panel, the web UI and the engine follow.

State = every parameter's user value, the active preset's name, whether the values were changed
since it was recalled or saved, and the two settings slots (``firmware/settings_slots.py``: the
version of the settings kept aside for comparing). Only :class:`StateStore` changes it; everything else
subscribes (``subscribe(callback(changes, source))``) and is told what changed and who did it.

Why it is built this way:

* **Persisted within a second, atomically.** A change marks the store dirty and wakes a writer
  thread that waits :data:`DEBOUNCE_S` (so a knob turned fast is one write, not a hundred) and
  writes ``state.json`` through :func:`firmware.atomic.write_atomic` (temp file, fsync, rename,
  fsync directory), then the same bytes to ``state.json.bak``: a last good copy for when the
  main file is later damaged.
* **Boots on something sensible, never silently on defaults.** ``state.json`` is read and
  validated against the parameter schema. A corrupt or invalid file is *moved aside*
  (``state.json.corrupt-<time>``, kept for the user) with the reason logged, and the box boots
  on ``state.json.bak``; if that is unusable too, it boots in **safe mode** on the
  ``transparent`` factory preset. Safe mode can also be forced (a panel button held at boot);
  then the saved state is left on disk untouched until the user changes something, and even
  then it is first copied to ``state.json.before-safe-mode``.
* The engine is not this module's business: :class:`firmware.control.Control` subscribes and
  pushes changes (and the whole state when the engine restarts).
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import os
import shutil
import threading
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from dsp import schema
from firmware import paths
from firmware.atomic import write_atomic
from firmware.presets import PresetError, PresetStore, migrate
from firmware.settings_slots import Settings, Slots, SlotsError
from firmware.undo import Step, UndoHistory

log = logging.getLogger("masterbox.state")

FORMAT = "masterbox-state"
SAFE_PRESET = "transparent"
DEBOUNCE_S = 0.25
MAX_STATE_BYTES = 1024 * 1024

Callback = Callable[[dict[str, Any], str], None]


class StateError(ValueError):
    """A state file that cannot be used (the message says why)."""


def parse_state(data: bytes) -> dict[str, Any]:
    """Decode and validate a state file; returns {values, active_preset, modified, extra_values,
    version, slots, slots_error}.

    ``extra_values``: parameters of a newer firmware's schema, kept so a downgrade and upgrade
    does not lose them. A ``slots`` section that cannot be used does not make the file unusable:
    ``slots`` is then empty and ``slots_error`` says why."""
    if len(data) > MAX_STATE_BYTES:
        raise StateError(f"too large ({len(data)} bytes)")
    if not data.strip():
        raise StateError("empty file")
    try:
        doc = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise StateError("not UTF-8 text") from None
    except (ValueError, RecursionError) as e:
        raise StateError(f"not valid JSON ({e})") from None
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise StateError("not a masterbox state file")
    values = doc.get("values")
    if not isinstance(values, dict):
        raise StateError("values missing")
    try:
        migrated = migrate({"schema_version": doc.get("schema_version", 0), "params": values})
    except PresetError as e:
        raise StateError(str(e)) from None
    values = migrated["params"]
    extra: dict[str, Any] = {}
    if migrated["schema_version"] > schema.SCHEMA_VERSION:
        extra = {k: v for k, v in values.items() if k not in schema.BY_ID}
        values = {**schema.defaults(), **{k: v for k, v in values.items() if k in schema.BY_ID}}
    try:
        values = schema.validate(values)
    except schema.SchemaErrors as e:
        raise StateError(f"invalid values: {e}") from None
    active = doc.get("active_preset")
    if active is not None and not isinstance(active, str):
        raise StateError("active_preset is not text")
    if not isinstance(doc.get("modified", False), bool):      # bool("no") would read as modified
        raise StateError("modified is not true or false")
    slots, slots_error = Slots(), None
    if doc.get("slots") is not None:
        try:
            slots = Slots.from_json(doc["slots"], doc.get("schema_version", 0))
        except SlotsError as e:
            slots_error = str(e)
    return {"values": values, "active_preset": active, "modified": doc.get("modified", False),
            "extra_values": extra, "version": migrated["schema_version"], "slots": slots, "slots_error": slots_error}


class StateStore:
    """Current values + active preset + modified flag, persisted and restored.

    ``presets`` is used by :meth:`recall` and for safe mode (the ``transparent`` preset);
    ``safe_mode=True`` forces safe mode at boot.
    """

    def __init__(self, path: Path | str | None = None, presets: PresetStore | None = None,
                 safe_mode: bool = False, autosave: bool = True):
        self.path = Path(path) if path is not None else paths.state_file()
        self.bak = self.path.with_name(self.path.name + ".bak")
        self.presets = presets if presets is not None else PresetStore()
        self._lock = threading.RLock()
        self._subs: list[Callback] = []
        self._values: dict[str, Any] = schema.defaults()
        self._extra_values: dict[str, Any] = {}  # a newer firmware's parameters, written back untouched
        self._extra_version = schema.SCHEMA_VERSION
        self.active_preset: str | None = None
        self.modified = False
        self._slots = Slots()          # settings slot 1 or 2 played, and what the other holds
        self.safe_mode = False
        self.boot_report: list[str] = []  # what happened at boot, for the UI and the log
        self._preserve_before_write = False
        self._dirty = threading.Event()
        self._closed = False
        self._closing = threading.Event()  # interrupts the debounce wait on close()
        self._version = 0
        self._written_version = 0
        self.history = UndoHistory()   # undo / redo (firmware/undo.py); in memory only
        self._boot(force_safe=safe_mode)
        if self._version != self._written_version:
            self._dirty.set()  # first boot or restored from the backup: write state.json soon
        self._writer = None
        if autosave:
            self._writer = threading.Thread(target=self._write_loop, name="state-writer", daemon=True)
            self._writer.start()

    # -- boot ---------------------------------------------------------------------------
    def _boot(self, force_safe: bool) -> None:
        if force_safe:
            self._enter_safe_mode("forced at boot")
            self._preserve_before_write = self.path.exists()
            return
        if not self.path.exists() and not self.bak.exists():
            self._load_safe_preset()
            self.boot_report.append("first boot: started on the transparent preset")
            self._version = 1  # write it, so the next boot finds a state file
            return
        for candidate in (self.path, self.bak):
            if not candidate.exists():
                continue
            try:
                with open(candidate, "rb") as f:
                    st = parse_state(f.read(MAX_STATE_BYTES + 1))
            except (OSError, StateError) as e:
                self._move_aside(candidate, str(e))
                continue
            self._values, self.active_preset, self.modified = st["values"], st["active_preset"], st["modified"]
            self._slots = st["slots"]
            if st["slots_error"]:
                msg = f"{candidate.name}: the other settings slot could not be read ({st['slots_error']}); it is empty"
                log.error(msg)
                self.boot_report.append(msg)
            if st["extra_values"]:
                self._extra_values, self._extra_version = st["extra_values"], st["version"]
            if candidate is self.bak:
                self.boot_report.append(f"restored from {self.bak.name}")
                self._version = 1  # rewrite state.json from the good copy
            return
        self._enter_safe_mode("no usable state file")

    def _move_aside(self, path: Path, reason: str) -> None:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        dest = path.with_name(f"{path.name}.corrupt-{stamp}")
        n = 1
        while dest.exists():
            n += 1
            dest = path.with_name(f"{path.name}.corrupt-{stamp}-{n}")
        try:
            os.replace(path, dest)
            msg = f"{path.name} unusable ({reason}); moved aside to {dest.name}"
        except OSError as e:
            msg = f"{path.name} unusable ({reason}); could not move it aside: {e}"
        log.error(msg)
        self.boot_report.append(msg)

    def _load_safe_preset(self) -> None:
        try:
            p = self.presets.get(SAFE_PRESET)
            self._values, self.active_preset = dict(p.params), p.name
        except PresetError:
            self._values, self.active_preset = schema.defaults(), None
        self.modified = False

    def _enter_safe_mode(self, why: str) -> None:
        self._load_safe_preset()
        self.safe_mode = True
        msg = f"safe mode ({why}): running the {SAFE_PRESET} preset"
        log.warning(msg)
        self.boot_report.append(msg)

    # -- reading ------------------------------------------------------------------------
    @property
    def values(self) -> dict[str, Any]:
        with self._lock:
            return dict(self._values)

    @property
    def slot(self) -> int:
        """The settings slot played (1 or 2; firmware/settings_slots.py)."""
        return self._slots.current

    def get(self, pid: str) -> Any:
        return self._values[pid]

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"values": dict(self._values), "active_preset": self.active_preset, "modified": self.modified,
                    "safe_mode": self.safe_mode, "boot_report": list(self.boot_report),
                    "can_undo": self.history.can_undo, "can_redo": self.history.can_redo,
                    "slots": self._slots_snapshot()}

    def _slots_snapshot(self) -> dict[str, Any]:
        other, differs = self._slots.other, self._slots.differing(self._values)
        return {"current": self._slots.current, "other_empty": other is None,
                "other_preset": other.active_preset if other else None,
                "other_modified": other.modified if other else False,
                "differs": differs, "other_values": {k: other.values[k] for k in differs} if other else {}}

    # -- changing -----------------------------------------------------------------------
    def subscribe(self, callback: Callback) -> Callable[[], None]:
        """Call ``callback(changes, source)`` after every change; returns an unsubscribe function."""
        with self._lock:
            self._subs.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subs:
                    self._subs.remove(callback)

        return unsubscribe

    def set(self, values: Mapping[str, Any], source: str = "api") -> dict[str, Any]:
        """Validate and apply a partial set of values; returns what actually changed.

        Raises :class:`dsp.schema.SchemaErrors` (naming each field and why) and changes nothing
        if any value is refused.
        """
        clean = schema.validate(values, partial=True)
        with self._lock:
            changes = {k: v for k, v in clean.items() if self._values.get(k) != v}
            if not changes:
                return {}
            self.history.record(self._step(), source, frozenset(changes))
            self._values.update(changes)
            self.modified = True
            self._changed()
            subs = list(self._subs)
        self._notify(subs, changes, source)
        return changes

    def recall(self, name: str, source: str = "recall") -> dict[str, Any]:
        """Make a preset the active one (all its values); returns what changed."""
        p = self.presets.get(name)
        return self.load(p.params, p.name, source=source)

    def load(self, values: Mapping[str, Any], active_preset: str | None, source: str = "recall") -> dict[str, Any]:
        """Replace every value (a complete set) and the active preset; modified becomes False."""
        clean = schema.validate(values)
        with self._lock:
            changes = {k: v for k, v in clean.items() if self._values.get(k) != v}
            if changes or active_preset != self.active_preset or self.modified:
                self.history.record(self._step(), source, None)
            self._values = dict(clean)
            self._extra_values = {}  # a whole new set: a newer firmware's leftovers no longer apply
            self.active_preset = active_preset
            self.modified = False
            self._changed()
            subs = list(self._subs)
        self._notify(subs, changes, source)
        return changes

    def select_slot(self, slot: int, source: str = "slots") -> dict[str, Any]:
        """Play settings slot ``slot`` (1 or 2): the settings played now go to the other slot and
        that slot's come into play (firmware/settings_slots.py). Returns what changed; nothing
        happens if ``slot`` is already played. ValueError for a slot that is not 1 or 2."""
        if slot not in (1, 2) or isinstance(slot, bool):
            raise ValueError(f"settings slot {slot!r}: choose 1 or 2")
        with self._lock:
            if slot == self._slots.current:
                return {}
            self.history.record(self._step(), source, None)
            self._slots, incoming = self._slots.switched(self._played())
            changes = self._play(incoming)
            self._extra_values = {}  # a newer firmware's leftovers belonged to the settings played until now
            self._changed()
            subs = list(self._subs)
        self._notify(subs, changes, source)
        return changes

    def copy_to_other_slot(self, source: str = "slots") -> None:
        """Put a copy of the settings played now over the other settings slot."""
        with self._lock:
            self.history.record(self._step(), source, None)
            self._slots = self._slots.copied(self._played())
            self._changed()
            subs = list(self._subs)
        self._notify(subs, {}, source)

    def _played(self) -> Settings:
        return Settings(dict(self._values), self.active_preset, self.modified)

    def _play(self, settings: Settings) -> dict[str, Any]:
        """Make ``settings`` the played ones (lock held); returns the values that changed."""
        changes = {k: v for k, v in settings.values.items() if self._values.get(k) != v}
        self._values = dict(settings.values)
        self.active_preset, self.modified = settings.active_preset, settings.modified
        if self.active_preset is not None and not self.presets.exists(self.active_preset):
            self.active_preset, self.modified = None, True     # deleted since: the values stay
        return changes

    def _step(self) -> Step:
        return Step(self._played(), self._slots)

    def undo(self) -> dict[str, Any] | None:
        """Take the last change back (a recall, a run of moves of one control: firmware/undo.py);
        returns what changed, or None if there is nothing to undo."""
        return self._restore(self.history.undo)

    def redo(self) -> dict[str, Any] | None:
        """Apply again what the last undo took back; None if there is nothing to redo."""
        return self._restore(self.history.redo)

    def _restore(self, pick: Callable[[Step], Step | None]) -> dict[str, Any] | None:
        with self._lock:
            step = pick(self._step())
            if step is None:
                return None
            changes = self._play(step.settings)
            self._slots = step.slots
            self._changed()
            subs = list(self._subs)
        self._notify(subs, changes, "undo")
        return changes

    def mark_saved(self, name: str) -> None:
        """The current values were just saved as preset ``name``."""
        with self._lock:
            self.active_preset, self.modified = name, False
            self._changed()
            subs = list(self._subs)
        self._notify(subs, {}, "save")

    def preset_renamed(self, old: str, new: str) -> None:
        """Preset ``old`` is now called ``new``: the slot played and the other one follow."""
        self._preset_gone(old, lambda s: Settings(s.values, new, s.modified))

    def preset_deleted(self, name: str) -> None:
        """Preset ``name`` was deleted: a slot that came from it keeps its values and the name (so a
        save puts it back), marked modified."""
        self._preset_gone(name, lambda s: Settings(s.values, s.active_preset, True))

    def preset_replaced(self, name: str, values: Mapping[str, Any]) -> None:
        """Preset ``name`` was overwritten (an import) with ``values``: a slot that came from it now
        holds other values than the stored preset, so it is marked modified as after a deletion (the
        page says so, and a Save is the user's choice, not a silent overwrite of the import); the
        slot takes the name's new spelling."""
        def after(s: Settings) -> Settings:
            differs = any(s.values.get(k) != v for k, v in values.items())
            return Settings(s.values, name, s.modified or differs)

        self._preset_gone(name, after)

    def slot_presets(self) -> set[str]:
        """The presets the two settings slots came from (for :meth:`Control.follow_presets`)."""
        with self._lock:
            return {s.active_preset for s in (self._played(), self._slots.other)
                    if s is not None and s.active_preset is not None}

    def _preset_gone(self, name: str, after: Callable[[Settings], Settings]) -> None:
        def names(s: Settings | None) -> bool:
            return s is not None and s.active_preset is not None and s.active_preset.casefold() == name.casefold()

        with self._lock:
            played, other = self._played(), self._slots.other
            new_played = after(played) if names(played) else played
            new_other = after(other) if names(other) else other
            if new_played == played and new_other == other:
                return   # nothing to say (e.g. a replacement with the values the slot holds)
            self.active_preset, self.modified = new_played.active_preset, new_played.modified
            self._slots = Slots(self._slots.current, new_other)
            self._changed()
            subs = list(self._subs)
        self._notify(subs, {}, "preset")

    def leave_safe_mode(self) -> None:
        with self._lock:
            self.safe_mode = False
            self._changed()

    def _changed(self) -> None:
        self._version += 1
        self._dirty.set()

    @staticmethod
    def _notify(subs: list[Callback], changes: dict[str, Any], source: str) -> None:
        for cb in subs:
            try:
                cb(changes, source)
            except Exception:
                log.exception("state subscriber %r failed", cb)

    # -- persisting ---------------------------------------------------------------------
    def _document(self) -> bytes:
        version = self._extra_version if self._extra_values else schema.SCHEMA_VERSION
        doc = {"format": FORMAT, "schema_version": version, "active_preset": self.active_preset,
               "modified": self.modified, "saved_at": _dt.datetime.now().isoformat(timespec="seconds"),
               "values": {**self._values, **self._extra_values}, "slots": self._slots.to_json()}
        return (json.dumps(doc, indent=1, ensure_ascii=False) + "\n").encode("utf-8")

    def flush(self) -> bool:
        """Write now if anything changed since the last write; True if a write happened."""
        with self._lock:
            if self._version == self._written_version:
                return False
            version, data = self._version, self._document()
            if self._preserve_before_write:
                keep = self.path.with_name(self.path.name + ".before-safe-mode")
                if self.path.exists() and not keep.exists():
                    shutil.copyfile(self.path, keep)
                self._preserve_before_write = False
            write_atomic(self.path, data)
            write_atomic(self.bak, data)
            self._written_version = version
            return True

    def _write_loop(self) -> None:
        while not self._closed:
            self._dirty.wait()
            if self._closed:
                break
            self._dirty.clear()
            self._closing.wait(DEBOUNCE_S)  # gather a burst of changes into one write
            try:
                self.flush()
            except OSError:
                log.exception("could not write %s; will retry", self.path)
                self._dirty.set()
                self._closing.wait(1.0)

    def close(self) -> None:
        """Write what is pending and stop the writer thread."""
        self._closed = True
        self._closing.set()
        self._dirty.set()
        if self._writer is not None:
            self._writer.join(2.0)
        self.flush()
