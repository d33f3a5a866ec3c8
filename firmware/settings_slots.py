"""Two settings slots, 1 and 2: "is this better than what I had?" answered by ear.

A mastering engineer asks that question all day. The hardware answer is TC Finalizer's COMPARE
button, the plug-in answer FabFilter's A/B or Ozone's snapshots: keep one version of the settings
aside, try another, and switch between the two while the music plays. (On this box "A/B" is the
bypass of issue 5, so the two versions are *settings 1* and *settings 2*.)

How the slots behave (:class:`firmware.state.StateStore` keeps them; this module is their data):

* The box always plays one slot. Every change (a knob, a web slider, a preset recall, an undo)
  goes to the slot being played; the other keeps what was left there: its values, its preset's
  name and whether it was modified.
* Switching puts the played settings into the other slot and the other slot's into play. The
  chain glides to them as it does for a preset recall (smoothed parameters, 10 ms crossfades for
  switches), so a switch in the middle of a song is click-free.
* The other slot starts empty; the first switch fills it with a copy of the played settings
  (slot 2 starts as slot 1, as FabFilter's B starts as A). "Copy" puts a copy of the played
  settings over the other slot, to branch from what is heard now.
* Monitoring parameters (schema group ``monitor``: level-matched bypass) are how one listens, not
  part of a version: a switch leaves them as they are.
* The slots are saved in ``state.json`` with the rest of the state (a power cut keeps both
  versions), and a switch or a copy is one undo step like a recall.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from dsp import schema
from firmware.presets import PresetError, migrate

SLOTS = (1, 2)
KEPT_BY_SWITCH = frozenset(p.id for p in schema.PARAMS if p.group == "monitor")


class SlotsError(ValueError):
    """A ``slots`` section of a state file that cannot be used (the message says why)."""


@dataclass(frozen=True)
class Settings:
    """One version of the settings: every value, the preset it came from, whether it was changed since."""

    values: dict[str, Any]
    active_preset: str | None
    modified: bool


@dataclass(frozen=True)
class Slots:
    """Which slot is played (``current``) and what the other one holds (None: still empty)."""

    current: int = 1
    other: Settings | None = None

    def switched(self, played: Settings) -> tuple[Slots, Settings]:
        """After a switch: the new slots and the settings to play (the monitoring values kept)."""
        incoming = self.other if self.other is not None else played
        values = {**incoming.values, **{k: played.values[k] for k in KEPT_BY_SWITCH}}
        return Slots(3 - self.current, played), Settings(values, incoming.active_preset, incoming.modified)

    def copied(self, played: Settings) -> Slots:
        """After a copy: the other slot holds what is played now."""
        return Slots(self.current, played)

    def differing(self, values: Mapping[str, Any]) -> list[str]:
        """The parameters (schema order) a switch would change; empty while the other slot is empty."""
        if self.other is None:
            return []
        return [p.id for p in schema.PARAMS
                if p.id not in KEPT_BY_SWITCH and self.other.values.get(p.id) != values.get(p.id)]

    def to_json(self) -> dict[str, Any]:
        other = None if self.other is None else {
            "active_preset": self.other.active_preset, "modified": self.other.modified, "values": self.other.values}
        return {"current": self.current, "other": other}

    @classmethod
    def from_json(cls, doc: Any, schema_version: int = schema.SCHEMA_VERSION) -> Slots:
        """Read a state file's ``slots`` section (written under ``schema_version``); :class:`SlotsError`
        says what is wrong with it.

        The other slot's values are migrated like a preset's and validated against the schema;
        parameters of a newer schema are dropped and missing ones take their defaults."""
        if not isinstance(doc, dict):
            raise SlotsError("not an object")
        current = doc.get("current")
        if current not in SLOTS or isinstance(current, bool):
            raise SlotsError(f"current slot {current!r} is not 1 or 2")
        other = doc.get("other")
        if other is None:
            return cls(current, None)
        if not isinstance(other, dict) or not isinstance(other.get("values"), dict):
            raise SlotsError("the other slot has no values")
        preset = other.get("active_preset")
        if preset is not None and not isinstance(preset, str):
            raise SlotsError("the other slot's preset name is not text")
        try:
            migrated = migrate({"schema_version": schema_version, "params": dict(other["values"])})["params"]
            known = {k: v for k, v in migrated.items() if k in schema.BY_ID}
            values = schema.validate({**schema.defaults(), **known})
        except PresetError as e:
            raise SlotsError(f"the other slot's values: {e}") from None
        except schema.SchemaErrors as e:
            raise SlotsError(f"the other slot's values are invalid: {e}") from None
        return cls(current, Settings(values, preset, bool(other.get("modified", False))))
