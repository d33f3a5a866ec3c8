"""The control process's one entry point: everything a person can make the box do.

The front panel and the web UI drive the box only through :class:`Control`. It ties together
the state (:class:`firmware.state.StateStore`, the single source of truth), the preset library,
the capture index, the engine (control channel client) and its shared-memory meters, and the
loudness learner.

Why it is built this way:

* Every change goes into the state first; a subscription then pushes exactly what changed to
  the engine. If the engine is down the push is skipped: a watcher thread notices when the
  engine (re)starts - its start id or pid (``status()``, else the meters' writer pid) changes,
  or its ``uptime_s`` goes back - and pushes the
  whole state, bypass included. So the engine never runs with stale parameters for longer
  than one watcher period (:data:`WATCH_S`) and control may restart without touching audio.
* This module never imports numba (it is the control process); engine-side modules are
  imported lazily and their absence only makes engine actions report "engine unavailable".
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

from dsp import schema
from firmware import paths, streaming
from firmware.atomic import remove_stale_temporaries
from firmware.capture_master import MasterJobs
from firmware.capture_upload import Uploads
from firmware.captures import CaptureIndex, run_analysis
from firmware.learn import Learner
from firmware.presets import Preset, PresetError, PresetStore
from firmware.reference_track import ReferenceTrack
from firmware.state import StateStore

log = logging.getLogger("masterbox.control")
WATCH_S = 0.5
ANALYZE_DELAY_S = 20.0
ANALYZE_EVERY_S = 60.0  # then a look for WAVs without a sidecar (copied in by hand, a writer that died)


class EngineUnavailableFallback(RuntimeError):
    """Stands in for ``firmware.control_client.EngineUnavailable`` before that module exists."""


def _engine_error_types() -> tuple[type[Exception], type[Exception]]:
    """(engine not running, engine refused the request) from the client, if it is installed."""
    try:
        from firmware.control_client import EngineError, EngineUnavailable
        return EngineUnavailable, EngineError
    except ImportError:
        return EngineUnavailableFallback, EngineUnavailableFallback


class _NoEngine:
    """The engine client when the engine package is not installed: every call says so."""

    def __getattr__(self, name: str) -> Callable[..., Any]:
        def unavailable(*a, **kw):
            raise EngineUnavailableFallback("the engine client is not available in this build")
        return unavailable


def engine_identity(status: Mapping[str, Any] | None, meters: Mapping[str, Any] | None = None) -> Any:
    """What changes when the engine process restarts: its start id, else its pid (from
    ``status()``, else from the shared meters' writer pid). None if neither says."""
    for source in (status or {}, meters or {}):
        for key in ("start_id", "engine_id", "boot_id", "pid"):
            if source.get(key) is not None:
                return (key, source[key], source.get("started"))
    return None


class Control:
    """Ties state, presets, captures, engine and meters; the actions the panel and web call."""

    def __init__(self, state: StateStore | None = None, presets: PresetStore | None = None,
                 captures: CaptureIndex | None = None, engine: Any = None, meters: Any = None,
                 config: Mapping[str, Any] | None = None, safe_mode: bool = False, watch: bool = True,
                 engine_supervised: bool | None = None):
        self.config = dict(config) if config is not None else {}
        self.engine_supervised = engine_supervised  # None: ask the environment (firmware.audio_settings)
        self.presets = presets if presets is not None else PresetStore()
        self.state = state if state is not None else StateStore(presets=self.presets, safe_mode=safe_mode)
        self.captures = captures if captures is not None else CaptureIndex(paths.captures_dir())
        self.mastering = MasterJobs(self.captures)   # "Master" on the Captures page (firmware/capture_master.py)
        floor_mb = float(self.config.get("storage", {}).get("free_space_floor_mb", 500))
        self.uploads = Uploads(self.captures, int(floor_mb * 1024 * 1024), analyse=self._analyse_upload)
        self.engine = engine if engine is not None else self._make_engine()
        self.meters = meters if meters is not None else self._make_meters()
        self._unavailable, self._refused = _engine_error_types()
        self.reference = ReferenceTrack(self.captures, self.engine, self._engine_call)   # the Live page's REF
        self.bypassed = False
        self.monitor_mode = "stereo"   # the listening mode; like bypass, not saved: the box starts in stereo
        self.preview = "off"           # As streamed (firmware.streaming.PREVIEWS); not saved either
        self._slot_heard = self.state.slot   # a change of it is a switch of settings 1 / 2 (_push_changes)
        self._comparing = False              # the engine's equal-loudness compare is on
        self.learner = Learner(self.read_meters, self._reset_meters, self.state.get,
                               lambda db: self.state.set({"out.drive_db": db}, source="learn"),
                               on_done=lambda status: self._engine_learning(False))
        self._engine_id: Any = None
        self._engine_uptime: float | None = None
        self._engine_epoch = 0
        self._lock = threading.RLock()
        self._repair_lock = threading.Lock()   # the watcher and the housekeeping thread both repair
        self._closed = threading.Event()
        self._unsubscribe = self.state.subscribe(self._push_changes)
        self._presets_seen = self.presets.version   # see follow_presets
        self._watcher = None
        if watch:
            self._watcher = threading.Thread(target=self._watch_engine, name="engine-watch", daemon=True)
            self._watcher.start()
            threading.Thread(target=self._analyze_leftovers, name="capture-analysis", daemon=True).start()

    @staticmethod
    def _make_engine() -> Any:
        try:
            from firmware.control_client import EngineClient
            return EngineClient()
        except ImportError:
            return _NoEngine()

    @staticmethod
    def _make_meters() -> Any:
        try:
            from firmware.meters_shm import MeterReader
            return MeterReader()
        except ImportError:
            return None

    # -- engine plumbing ----------------------------------------------------------------
    def _engine_call(self, fn: Callable[..., Any], *a, **kw) -> dict:
        """Call the engine; an engine that is down or refuses becomes {"ok": False, "error": ...}."""
        try:
            reply = fn(*a, **kw)
        except (self._unavailable, EngineUnavailableFallback, OSError) as e:
            return {"ok": False, "error": f"engine unavailable: {e}"}
        except self._refused as e:
            return {"ok": False, "error": str(e)}
        if isinstance(reply, dict):
            return reply if "ok" in reply else {"ok": True, **reply}
        return {"ok": True, "reply": reply}

    def _capture_reply(self, reply: dict) -> dict:
        """The client returns the session's status on success: answer {"ok": True, "capture": status}."""
        if reply.get("ok") and "capture" not in reply:
            return {"ok": True, "capture": {k: v for k, v in reply.items() if k != "ok"}}
        return reply

    def _push_changes(self, changes: dict[str, Any], source: str) -> None:
        # Settings 1 / 2 are compared at equal loudness (dsp.chain.Chain.match_compare): the engine
        # hears of a switch before the other settings arrive, and of the first edit after it
        slot = self.state.slot
        if slot != self._slot_heard:
            self._slot_heard = slot
            self._comparing = True
            self._engine_call(self.engine.compare, True)
        elif any(schema.BY_ID[k].group != "monitor" for k in changes):
            self._end_compare()
        if changes:
            self._engine_call(self.engine.set_params, dict(changes))

    def _end_compare(self) -> None:
        """The settings heard are heard (and recorded, and learned from) as they are from now on."""
        if self._comparing:
            self._comparing = False
            self._engine_call(self.engine.compare, False)

    def push_all(self) -> dict:
        """Send the whole state (bypass, listening mode, reference) to the engine, e.g. after it restarted."""
        reply = self._engine_call(self.engine.set_params, self.state.values)
        if reply.get("ok", True):
            self._engine_call(self.engine.bypass, self.bypassed, level_match=self.state.get("ab.level_match"))
            self._engine_call(self.engine.monitor, self.monitor_mode)
            self._engine_call(self.engine.preview, self.preview)
            self.reference.push()
        return reply

    def _analyze_leftovers(self) -> None:
        """Finalise captures a crash left unfinished and remove the temporary files of masters cut off
        mid-way, then write the captures' sidecars, off the boot path;
        then keep looking every :data:`ANALYZE_EVERY_S` for captures that still have none (a WAV
        copied into the folder, an analysis worker that was killed), so none stays "analysing", and
        drop uploads abandoned for an hour (their files go with them).

        The repair only touches files whose recording process is gone (marker pid), so it is
        safe while a new engine records. A file the worker could not analyse is not tried again
        until it changes.
        """
        self.repair_captures()
        try:
            for name, size in self.captures.remove_stale_temporaries():
                log.warning("removed %s (%.1f MB), the temporary file of a master or an upload cut off "
                            "before it was finished", name, size / 1e6)
            for folder in (self.presets.user_dir, self.state.path.parent):   # write_atomic's, a power cut's
                for name, _size in remove_stale_temporaries(folder):
                    log.warning("removed %s in %s, a write cut off before it was finished", name, folder)
        except OSError:
            log.exception("removing temporary files failed")
        failed: set[tuple[str, float]] = set()
        wait = ANALYZE_DELAY_S
        while not self._closed.wait(wait):
            wait = ANALYZE_EVERY_S
            self.repair_captures()
            self.uploads.expire()
            try:
                done, tried = self.captures.analyze_pending(older_than_s=60.0, skip=failed)
                failed |= {t for t in tried if t[0] not in done}
                if done:
                    log.info("analysed %d capture(s) left without a sidecar", len(done))
            except Exception:
                log.exception("analysing leftover captures failed")

    def repair_captures(self) -> None:
        """Finalise the captures of recording processes that are gone: at start (a crash or power cut),
        when a new engine appears (the old one was killed mid-capture) and on each housekeeping tick.
        Until then the capture would stay "recording", and deleting, mastering or downloading it
        refused, for as long as this process runs."""
        from firmware.capture_writer import repair_unfinished

        with self._repair_lock:
            try:
                for r in repair_unfinished(self.captures.directory):
                    log.warning("capture %s finalised after its recording process ended: %s", r.get("file"), r)
            except OSError:
                log.exception("repairing unfinished captures failed")

    def _analyse_upload(self, wav, facts: dict) -> None:
        """Write an uploaded capture's sidecar now, in the background (the page shows "analysing")."""
        def work():
            try:
                r = run_analysis([[str(wav), facts]], timeout=24 * 3600)
                if r.returncode != 0:
                    log.warning("analysing the upload %s failed: %s", wav, r.stderr.strip()[-300:])
            except Exception:
                log.exception("analysing the upload %s failed", wav)

        threading.Thread(target=work, name="upload-analysis", daemon=True).start()

    def _watch_engine(self) -> None:
        while not self._closed.wait(WATCH_S):
            self.check_engine()
            self.follow_presets()

    def follow_presets(self) -> None:
        """When the presets changed (their ``version``), check the presets the settings slots came from.
        A ``masterbox presets import --overwrite`` or ``delete`` run from a shell is another process:
        without this look, a slot from the preset it replaced would still read "not modified" while
        the box plays other values than the stored preset, and a Save would silently overwrite the
        import. Such a slot is marked modified, as after an import or a delete through the web."""
        version = self.presets.version
        if version == self._presets_seen:
            return
        self._presets_seen = version
        for name in self.state.slot_presets():
            try:
                p = self.presets.get(name)
            except PresetError:
                self.state.preset_deleted(name)   # gone or damaged: the slot keeps its values
                continue
            self.state.preset_replaced(p.name, p.params)

    def check_engine(self) -> bool:
        """Push everything if the engine is new since the last look; True if it pushed."""
        try:
            status = self.engine.status()
        except Exception:
            self._engine_id, self._engine_uptime = None, None
            return False
        status = status if isinstance(status, dict) else {}
        uptime = status.get("uptime_s")
        if isinstance(uptime, (int, float)):
            if self._engine_uptime is not None and uptime < self._engine_uptime:
                self._engine_epoch += 1  # uptime went back: a new engine, whatever else it says
            self._engine_uptime = uptime
        ident = (engine_identity(status, self.read_meters()), self._engine_epoch)
        if ident == self._engine_id:
            return False
        self.repair_captures()   # a capture the engine before this one was making when it died
        if self.push_all().get("ok", True):
            self._engine_id = ident
            who = ident[0]
            log.info("engine %s: state pushed", f"{who[0]} {who[1]}" if who else "(no id yet)")
            return True
        return False

    def read_meters(self) -> dict | None:
        if self.meters is None:
            return None
        try:
            return self.meters.read()
        except Exception:
            return None

    def _reset_meters(self) -> None:
        self._engine_call(self.engine.meters_reset)

    # -- parameters and presets ---------------------------------------------------------
    def set(self, values: Mapping[str, Any], source: str = "api") -> dict[str, Any]:
        """Change parameters (validated; raises dsp.schema.SchemaErrors naming each bad field)."""
        return self.state.set(values, source)

    def recall(self, name: str, source: str = "recall") -> dict[str, Any]:
        """Make a preset active (the chain glides to it: click-free)."""
        changes = self.state.recall(name, source)
        if self.state.safe_mode:
            self.state.leave_safe_mode()
        return changes

    def save_preset(self, name: str | None = None, description: str | None = None) -> Preset:
        """Save the current values over the active user preset, or under ``name``."""
        name = name or self.state.active_preset
        if not name:
            raise PresetError("no active preset to save over; give a name", [("name", "missing")])
        p = self.presets.save(name, self.state.values, description)
        self.state.mark_saved(p.name)
        return p

    def save_preset_as(self, name: str, description: str | None = None) -> Preset:
        p = self.presets.save_as(name, self.state.values, description)
        self.state.mark_saved(p.name)
        return p

    def rename_preset(self, old: str, new: str) -> Preset:
        p = self.presets.rename(old, new)
        self.state.preset_renamed(old, p.name)
        return p

    def delete_preset(self, name: str) -> None:
        self.presets.delete(name)
        self.state.preset_deleted(name)     # a slot from it keeps its values

    def import_presets(self, data: bytes, *, zipped: bool, overwrite: bool = False) -> list[Preset]:
        """Import one preset (JSON) or a zip of them (all or nothing, :class:`PresetStore`). One that
        replaces the preset a settings slot came from leaves that slot modified (its values are not
        the stored preset's any more)."""
        if zipped:
            done = self.presets.import_zip(data, overwrite=overwrite)
        else:
            done = [self.presets.import_json(data, overwrite=overwrite)]
        for p in done:
            self.state.preset_replaced(p.name, p.params)
        return done

    # -- monitoring ---------------------------------------------------------------------
    def bypass(self, on: bool, level_match: bool | None = None) -> dict:
        """Bypass (A/B). ``level_match`` None = the state's ``ab.level_match``."""
        if level_match is not None:
            self.state.set({"ab.level_match": bool(level_match)}, source="bypass")
        self.bypassed = bool(on)
        return self._engine_call(self.engine.bypass, self.bypassed, level_match=self.state.get("ab.level_match"))

    def monitor(self, mode: str) -> dict:
        """Listen to the output in ``mode`` (:data:`dsp.schema.MONITOR_MODES`); kept for a restarted engine."""
        schema.monitor_mode_index(mode)     # ValueError for a name it does not know
        self.monitor_mode = mode
        return self._engine_call(self.engine.monitor, mode)

    def set_preview(self, service: str) -> dict:
        """Hear the output as ``service`` would play it (:data:`firmware.streaming.PREVIEWS`, ``off`` for as
        it is): its normalisation gain for the master's integrated loudness since the meters were reset.
        Kept for a restarted engine, not saved (the box starts as it is)."""
        streaming.preview_index(service)    # ValueError for a name it does not know
        self.preview = service
        return self._engine_call(self.engine.preview, service)

    def meters_reset(self) -> dict:
        return self._engine_call(self.engine.meters_reset)

    # -- captures -----------------------------------------------------------------------
    def capture_start(self, tap: str | None = None, fmt: str | None = None, max_seconds: float | None = None) -> dict:
        """Start recording (tap: input, output or both); defaults come from the config's [storage]."""
        storage = self.config.get("storage", {})
        fmt = fmt or storage.get("capture_format", "PCM_24")
        if max_seconds is None and storage.get("capture_max_minutes"):
            max_seconds = float(storage["capture_max_minutes"]) * 60
        self._end_compare()   # a recording is of the master as it is, never of a level-matched one

        def start() -> dict:
            return self._capture_reply(self._engine_call(self.engine.capture_start, tap=tap or "output", fmt=fmt,
                                                         max_seconds=max_seconds,
                                                         preset=self.state.active_preset or "",
                                                         modified=bool(self.state.active_preset
                                                                       and self.state.modified)))

        reply = start()
        if not reply.get("ok") and self._capture_ended_by_itself():
            self._engine_call(self.engine.capture_stop)  # collect the ended session, then start afresh
            reply = start()
        return reply

    def _capture_ended_by_itself(self) -> bool:
        """The engine still holds a session that stopped on its own (max length, disk floor)."""
        status = self._engine_call(self.engine.status)
        cap = status.get("capture") if status.get("ok") else None
        return isinstance(cap, dict) and cap.get("state") == "stopped"

    def capture_stop(self) -> dict:
        """Stop recording; the reply's ``capture`` is the finished session's status (files, reason)."""
        return self._capture_reply(self._engine_call(self.engine.capture_stop))

    # -- audio settings (the System page) ----------------------------------------------------
    def _audio_applier(self):
        from pathlib import Path

        from firmware.audio_settings import AudioApplier
        from firmware.start_failure import failed_since

        def capturing() -> bool:
            status = self._engine_call(self.engine.status)
            return bool(status.get("ok") and status.get("capturing"))

        def start_failure(since: float):
            # the engine behind our socket records a start that could not open its device
            socket = getattr(self.engine, "path", None)
            return failed_since(socket, since) if socket is not None else None

        path = Path(self.config.get("_path") or paths.config_path())
        return AudioApplier(path, status=self.engine.status, stop=self.engine.stop_engine,
                            on_new_engine=self.check_engine, capturing=capturing, supervised=self.engine_supervised,
                            start_failure=start_failure)

    @property
    def can_apply_audio(self) -> bool:
        """True when an engine restart comes back by itself (systemd or ``masterbox run``)."""
        from firmware.audio_settings import engine_is_supervised

        return engine_is_supervised() if self.engine_supervised is None else bool(self.engine_supervised)

    def audio_settings(self) -> dict:
        """The ``[audio]`` values the engine starts with (the config file, read now)."""
        return self._audio_applier().current()

    def apply_audio_settings(self, changes: Mapping[str, Any]) -> dict:
        """Write ``changes`` (device/rate/period/periods) into ``[audio]`` of the config file and
        restart the engine with them; rolled back if the engine cannot run them. Blocks until the
        engine is back (a few seconds): see :class:`firmware.audio_settings.AudioApplier`."""
        with self._lock:
            if getattr(self, "_applier", None) is None:
                self._applier = self._audio_applier()
            applier = self._applier
        result = applier.apply(changes)
        self.config.setdefault("audio", {}).update(result.get("audio") or {})
        return result

    # -- learning -----------------------------------------------------------------------
    def _engine_learning(self, on: bool) -> None:
        """Tell the engine (its meters show a "learning" flag), if its client knows the command."""
        fn = getattr(self.engine, "learn_start" if on else "learn_stop", None)
        if fn is not None:
            self._engine_call(fn)

    def learn_start(self, seconds: float | None = None) -> dict:
        """Learn the output drive for the active target (until learn_stop, or ``seconds``)."""
        if not self.learner.running:
            self._end_compare()   # learning measures the output: not a level-matched one
            self._engine_learning(True)
        return self.learner.start(seconds)

    def learn_stop(self) -> dict:
        return self.learner.stop()

    # -- overview -----------------------------------------------------------------------
    def engine_status(self) -> dict:
        """The engine's status; when it does not answer and its last start failed (a device that is
        not there, a rate it cannot do: the record it leaves next to its socket), why, under
        ``start_failure``: otherwise the only reason is in the supervisor's log or the journal."""
        reply = self._engine_call(self.engine.status)
        socket = getattr(self.engine, "path", None)
        if reply.get("ok") is False and socket is not None:
            from firmware.start_failure import failed_since

            failed = failed_since(socket, 0.0)
            if failed:
                reply["start_failure"] = {"error": failed.get("error"), "device": failed.get("device") or {},
                                          "age_s": round(max(0.0, time.monotonic() - failed["monotonic"]), 1)}
        return reply

    def status(self) -> dict:
        return {"state": self.state.snapshot(), "bypass": self.bypassed, "monitor": self.monitor_mode,
                "preview": self.preview, "engine": self.engine_status(),
                "meters": self.read_meters(), "learn": self.learner.status()}

    def close(self) -> None:
        self._closed.set()
        self.learner.stop()
        self.mastering.cancel()      # its child runs in a session of its own: it would outlive us
        self.uploads.close()
        self._unsubscribe()
        if self._watcher is not None:
            self._watcher.join(2.0)
        self.state.close()
