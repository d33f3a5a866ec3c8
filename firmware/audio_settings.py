"""Change the box's audio settings: edit ``[audio]`` in the config file, restart the engine, roll back.

The engine reads device, rate, period and periods from the config file's ``[audio]`` section
when it starts (``masterbox engine``), so a change is applied by writing the file and having
the engine start again. Why it is done this way:

* **The config file itself, not a separate overrides file.** The person who edits
  ``/etc/masterbox/config.toml`` by hand must find in it what the box really uses; a second
  file quietly winning over the first would make that file lie. So only the value part of the
  ``key = value`` lines that change is rewritten (:func:`edit_audio_section`): comments, blank
  lines, key order and every other section stay byte for byte. The result is parsed back and
  must equal the old file with exactly the asked keys changed, and must pass the config's own
  checks (:data:`firmware.config.RULES`), before it replaces the file atomically
  (:func:`firmware.atomic.write_atomic`: a power cut leaves the old or the new file, never a mix).
  A layout this editor cannot change safely (an inline ``audio = {...}`` table, dotted keys) is
  refused with a message, never rewritten wholesale.
* **The engine is restarted by whatever supervises it.** Control asks the engine to stop
  (control channel ``stop``); its supervisor starts it again: :mod:`firmware.supervisor` under
  ``masterbox run``/``demo`` (a clean exit is restarted at once), systemd on the box
  (``Restart=always``, ``RestartSec=1s``). Nothing here needs root or systemctl rights. An engine
  nobody restarts must not be stopped (the box would go silent), so :class:`AudioApplier` refuses
  unless it is told the engine is supervised (:func:`engine_is_supervised`).
* **The file must be writable by the service, and say so when it is not.** On the box control
  runs as the ``masterbox`` user with ``ProtectSystem=strict``: the installer makes
  ``/etc/masterbox`` ``root:masterbox 2770`` and ``config.toml`` ``0660``, and the control unit
  lists the folder in ``ReadWritePaths=`` (the rename needs the folder, not just the file). The
  replaced file keeps its mode (never world-readable). Where that is missing (an old install, a
  file or folder changed by hand) the apply stops before anything changed, with
  :class:`AudioConfigFileError` naming the file, the reason and the remedy.
* **Never leave the box silent.** Success means a *new* engine (started after the stop request)
  moves audio with exactly the new rate/period/periods/device. If a new engine cannot open its
  device (a card that does not exist, a rate it cannot do), it says so in its start-failure record
  (:mod:`firmware.start_failure`) and exits; the old file is put back at once and the answer
  names the engine's error. If no new engine moves audio within :data:`APPLY_TIMEOUT_S` (it
  starts but never processes), the same rollback happens after that wait. Either way the next
  restart (the supervisor keeps trying) brings the old settings back; the answer says so. The
  state (parameters, preset, bypass) is pushed to the new engine by
  :meth:`firmware.control.Control.check_engine`, as after any engine restart.
"""

from __future__ import annotations

import errno
import logging
import os
import re
import threading
import time
import tomllib
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from firmware.atomic import ordinary_mode, write_atomic
from firmware.names import has_control

log = logging.getLogger("masterbox.audio_settings")

KEYS = ("device", "rate", "period", "periods")
APPLY_TIMEOUT_S = 15.0  # stop request -> a new engine moving audio with the new settings
ROLLBACK_TIMEOUT_S = 20.0  # after restoring the old file: the supervisor's back-off is at most 5 s
PROCESSED_WAIT_S = 5.0  # after audio is back: wait this long for the chain to take over from dry audio
POLL_S = 0.05
SUPERVISED_ENV = "MASTERBOX_SUPERVISED"  # set by firmware.supervisor for its children


class AudioSettingsError(ValueError):
    """A change that cannot be made (bad value, a config file this editor cannot change safely)."""


class AudioApplyConflict(RuntimeError):
    """A change that cannot be made right now (another apply, a capture running, no supervisor)."""


class AudioConfigFileError(RuntimeError):
    """The config file cannot be read or replaced by this process: the box's set-up, not the request.

    On the box control runs as the service user behind ``ProtectSystem=strict``; replacing the
    file needs write access to its folder (a temporary file beside it, then a rename), which the
    installer and the control unit's ``ReadWritePaths=`` give. Where that is missing the answer
    must say which file and why, and that nothing was changed, not be a bare 500: it is raised
    before the file or the engine is touched. ``path`` and ``errno`` let the web UI pick its status.
    """

    def __init__(self, path: Path, action: str, error: OSError):
        self.path, self.errno = Path(path), error.errno
        reason = os.strerror(error.errno).lower() if error.errno else str(error)
        super().__init__(f"cannot {action} {path}: {reason}; nothing was changed and the engine keeps running. "
                         f"{config_file_hint(self.path, error.errno)}")


def config_file_hint(path: Path, code: int | None) -> str:
    """What a person can do about an ``OSError`` ``code`` on the config file ``path``."""
    by_hand = "edit [audio] in the file by hand and restart the engine"
    if code in (errno.EACCES, errno.EPERM):
        return (f"The service's group needs read and write access to {path.parent} and {path.name} (the installer "
                f"sets them: run `sudo systemd/install.sh` again), or {by_hand}")
    if code == errno.EROFS:
        return (f"{path.parent} is read-only for this process (on the box the control unit's ReadWritePaths= "
                f"must list it: run `sudo systemd/install.sh` again), or {by_hand}")
    if code == errno.ENOSPC:
        return f"The disk is full: free some space, or {by_hand}"
    return f"Or {by_hand}"


def engine_is_supervised(env: Mapping[str, str] | None = None) -> bool:
    """True when something restarts the engine after it stops: systemd (``INVOCATION_ID`` is set
    for every service it runs) or :mod:`firmware.supervisor` (:data:`SUPERVISED_ENV`)."""
    env = os.environ if env is None else env
    return bool(env.get(SUPERVISED_ENV) or env.get("INVOCATION_ID"))


# -- the file -------------------------------------------------------------------------------
_HEADER = re.compile(r"^\s*\[\s*([^\[\]#]+?)\s*\]\s*(#.*)?$")


def toml_value(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise AudioSettingsError(f"cannot write {value!r} to the config file")
    if isinstance(value, int):
        return str(value)
    out = value.replace("\\", "\\\\").replace('"', '\\"')
    if has_control(out):
        raise AudioSettingsError("a device name cannot hold control characters")
    return f'"{out}"'


def _split_value_comment(rest: str) -> tuple[str, str]:
    """``rest`` is what follows ``=``: (the value, the trailing comment with its spacing)."""
    for m in re.finditer("#", rest):
        candidate = rest[:m.start()]
        try:
            tomllib.loads("v = " + candidate.strip())
        except tomllib.TOMLDecodeError:
            continue
        spaces = len(candidate) - len(candidate.rstrip())
        return candidate.rstrip(), rest[m.start() - spaces:]
    return rest.rstrip("\r\n").rstrip(), ""


def edit_audio_section(text: str, changes: Mapping[str, Any]) -> str:
    """``text`` with ``changes`` set in its ``[audio]`` section; everything else kept as it was."""
    lines = text.splitlines(keepends=True)
    start = end = None
    for i, line in enumerate(lines):
        m = _HEADER.match(line)
        if m:
            if start is not None and end is None:
                end = i
            if m.group(1).strip().strip('"') == "audio":
                if start is not None:
                    raise AudioSettingsError("the config file has two [audio] sections")
                start = i
    newline = "\r\n" if text.endswith("\r\n") else "\n"
    pending = dict(changes)
    if start is not None:
        end = len(lines) if end is None else end
        for i in range(start + 1, end):
            m = re.match(r"^(\s*)(\"?)([A-Za-z0-9_-]+)\2(\s*=)(.*?)(\r?\n)?$", lines[i], re.S)
            if not m or m.group(3) not in pending:
                continue
            key = m.group(3)
            _, comment = _split_value_comment(m.group(5))
            lines[i] = (f"{m.group(1)}{m.group(2)}{key}{m.group(2)}{m.group(4)} {toml_value(pending.pop(key))}"
                        f"{comment}{m.group(6) or ''}")
        for key in list(pending):  # next to its commented-out example (`# rate = 48000  # ...`), if any
            for i in range(start + 1, end):
                if re.match(rf"^\s*#\s*{re.escape(key)}\s*=", lines[i]):
                    if not lines[i].endswith("\n"):
                        lines[i] += newline
                    lines[i] += f"{key} = {toml_value(pending.pop(key))}{newline}"
                    break
        if pending:
            last = start  # after the section's last key line (not after its trailing blank lines)
            for i in range(start + 1, end):
                if lines[i].strip() and not lines[i].lstrip().startswith("#"):
                    last = i
            if not lines[last].endswith("\n"):
                lines[last] += newline
            added = [f"{k} = {toml_value(v)}{newline}" for k, v in pending.items()]
            lines[last + 1:last + 1] = added
    else:
        if lines and not lines[-1].endswith("\n"):
            lines[-1] += newline
        block = [newline] if lines and lines[-1].strip() else []
        block += [f"[audio]{newline}"] + [f"{k} = {toml_value(v)}{newline}" for k, v in pending.items()]
        lines += block
    return "".join(lines)


def checked_edit(text: str, changes: Mapping[str, Any], path: Path) -> str:
    """:func:`edit_audio_section`, proven: the new text parses to the old data with exactly
    ``changes`` in ``[audio]``, and every ``[audio]`` value passes the config's rules."""
    from firmware.config import RULES

    rules = RULES["audio"]
    for k, v in changes.items():
        if k not in rules:
            raise AudioSettingsError(f"[audio] has no key {k!r}")
        problem = rules[k](v)
        if problem:
            raise AudioSettingsError(f"[audio] {k}: {problem}")
    try:
        before = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise AudioSettingsError(f"{path} is not valid TOML ({e}); fix it by hand first") from None
    audio = before.get("audio", {})
    if not isinstance(audio, dict):
        raise AudioSettingsError(f"{path}: audio is not a [audio] table; fix it by hand first")
    new = edit_audio_section(text, changes)
    try:
        after = tomllib.loads(new)
    except tomllib.TOMLDecodeError as e:
        raise AudioSettingsError(f"{path}: the [audio] section is laid out in a way this page cannot edit safely "
                                 f"({e}); edit it by hand") from None
    expected = dict(before)
    expected["audio"] = {**audio, **changes}
    if after != expected:
        raise AudioSettingsError(f"{path}: the [audio] section is laid out in a way this page cannot edit safely "
                                 "(inline table or dotted keys?); edit it by hand")
    return new


# -- applying -------------------------------------------------------------------------------
def expected_device(audio: Mapping[str, Any]) -> dict:
    """What the engine's status (``device``) reports when it runs with the ``[audio]`` values."""
    dev = str(audio.get("device") or "default")
    return {"rate": int(audio.get("rate", 48000)), "period": int(audio.get("period", 128)),
            "periods": int(audio.get("periods", 2)),
            "capture_device": audio.get("capture_device") or dev,
            "playback_device": audio.get("playback_device") or dev}


def differences(device: Mapping[str, Any], want: Mapping[str, Any]) -> dict:
    return {k: device.get(k) for k, v in want.items() if device.get(k) != v}


class AudioApplier:
    """Writes ``[audio]``, restarts the engine and waits for it, rolling back on failure.

    ``status()``: the engine's status (raises when it is down); ``stop()``: ask it to stop;
    ``on_new_engine()``: push the state to the new engine; ``capturing()``: a recording runs;
    ``start_failure(t)``: the engine's record of a start that failed at or after monotonic time
    ``t`` (:func:`firmware.start_failure.failed_since`), or None. With it, a new engine that
    cannot open its device ends the wait at once, and the answer says why; without it (or for
    an engine that starts but never moves audio) the wait lasts ``timeout``.
    """

    def __init__(self, config_path: Path, status: Callable[[], dict], stop: Callable[[], Any],
                 on_new_engine: Callable[[], Any] = lambda: None, capturing: Callable[[], bool] = lambda: False,
                 supervised: bool | None = None, timeout: float = APPLY_TIMEOUT_S,
                 rollback_timeout: float = ROLLBACK_TIMEOUT_S,
                 start_failure: Callable[[float], Mapping[str, Any] | None] = lambda t: None):
        self.path = Path(config_path)
        self.status, self.stop, self.on_new_engine, self.capturing = status, stop, on_new_engine, capturing
        self.start_failure = start_failure
        self.supervised = engine_is_supervised() if supervised is None else supervised
        self.timeout, self.rollback_timeout = timeout, rollback_timeout
        self._busy = threading.Lock()

    def current(self) -> dict:
        """The ``[audio]`` values the engine starts with (defaults merged with the file)."""
        from firmware.config import load_config

        return {k: v for k, v in load_config(self.path).get("audio", {}).items()}

    def apply(self, changes: Mapping[str, Any]) -> dict:
        if not self.supervised:
            raise AudioApplyConflict("nothing restarts the engine here (neither systemd nor `masterbox run`), so "
                                     "stopping it would leave the box silent; edit [audio] in the config file and "
                                     "restart the engine yourself")
        changes = {k: v for k, v in changes.items()}
        unknown = set(changes) - set(KEYS)
        if unknown:
            raise AudioSettingsError(f"unknown audio setting(s): {', '.join(sorted(unknown))}")
        if not self._busy.acquire(blocking=False):
            raise AudioApplyConflict("audio settings are being applied already; wait for that to finish")
        try:
            if self.capturing():
                raise AudioApplyConflict("a capture is running: stop it first (restarting the engine would end it)")
            return self._apply(changes)
        finally:
            self._busy.release()

    def _apply(self, changes: dict) -> dict:
        from firmware.config import ConfigError, load_config

        existed, old_text = self._read()
        try:
            old_audio = self.current()
        except ConfigError as e:
            raise AudioSettingsError(f"the config file is broken, fix it by hand first: {e}") from None
        new_text = checked_edit(old_text, changes, self.path)
        new_audio = {**old_audio, **changes}
        self._write(new_text)
        try:
            load_config(self.path)
        except ConfigError as e:
            self._restore(existed, old_text)
            raise AudioSettingsError(f"the new config would not load: {e}") from None
        log.warning("audio settings changed in %s: %s; restarting the engine", self.path, changes)

        t0 = time.monotonic()
        try:
            self.stop()
        except Exception as e:  # an engine that is down already: its supervisor starts it with the new file
            log.info("engine stop request: %s", e)
        result = self._wait_for_engine(expected_device(new_audio), t0, self.timeout, watch_failures=True)
        if result["ok"]:
            self.on_new_engine()
            log.warning("engine back with the new audio settings in %.2f s", result["audio_back_s"])
            return {"ok": True, "audio": new_audio, **result}

        # Roll back: the old file, and an engine running it again.
        self._restore(existed, old_text)
        t1 = time.monotonic()
        running = result.get("engine")
        if running and not differences(running.get("device") or {}, expected_device(old_audio)):
            back = {"ok": True, "audio_back_s": 0.0, "engine": running}  # it came back as before (overridden)
        else:
            if running:  # a new engine runs, with settings that are neither old nor new: start it again
                try:
                    self.stop()
                except Exception:
                    pass
            back = self._wait_for_engine(expected_device(old_audio), t1, self.rollback_timeout)
        if back["ok"]:
            self.on_new_engine()
        error = (f"{result['why']}; the previous settings were restored"
                 + ("" if back["ok"] else f" but the engine is not back yet ({back['why']})"))
        log.error("audio settings %s not applied: %s", changes, error)
        return {"ok": False, "error": error, "rolled_back": True, "audio": old_audio, "engine_back": back["ok"],
                "engine": back.get("engine"), "tried": new_audio, "waited_s": round(t1 - t0, 3),
                "rollback_s": round(time.monotonic() - t1, 3),
                "start_failure": (result.get("start_failure") or {}).get("error")}

    def _read(self) -> tuple[bool, str]:
        """(whether the file exists, its text); a folder or file this process may not read is the
        box's set-up, said as such (``Path.exists`` raises too when the folder is closed to us)."""
        try:
            existed = self.path.exists()
            return existed, self.path.read_text(encoding="utf-8") if existed else ""
        except OSError as e:
            raise AudioConfigFileError(self.path, "read", e) from None

    def _write(self, text: str) -> None:
        """Replace the file, keeping its mode (0660 from the installer: the engine, the service
        group and root read it, nobody else; ``write_atomic``'s own default would make it
        world-readable). Before anything else changed, so a failure leaves file and engine alone."""
        try:
            write_atomic(self.path, text, mode=ordinary_mode(self.path))
        except OSError as e:
            raise AudioConfigFileError(self.path, "write", e) from None

    def _restore(self, existed: bool, old_text: str) -> None:
        if existed:
            write_atomic(self.path, old_text, mode=ordinary_mode(self.path))
        else:
            self.path.unlink(missing_ok=True)

    def _wait_for_engine(self, want: dict, t0: float, timeout: float, watch_failures: bool = False) -> dict:
        """Wait for an engine started after ``t0`` that moves audio with ``want``; with
        ``watch_failures``, give up as soon as an engine start after ``t0`` is known to have failed
        (the file was written before ``t0``, so such a start ran the new settings)."""
        last_status: dict | None = None
        seen_other = None
        while True:
            now = time.monotonic()
            failed = self._failed_start(t0) if watch_failures else None
            if failed:
                why = f"the engine could not start with the new settings: {failed['error']}"
                # no engine runs the new settings (the one seen, if any, is the failing start)
                return {"ok": False, "why": why, "engine": None, "start_failure": failed}
            try:
                s = self.status()
            except Exception:
                s = None
            if isinstance(s, dict) and s.get("ok", True) is not False:
                up = s.get("uptime_s")
                fresh = isinstance(up, (int, float)) and up <= now - t0 + 0.05
                if fresh:
                    last_status = s
                    diff = differences(s.get("device") or {}, want)
                    if diff:
                        seen_other = diff
                    elif s.get("blocks", 0) > 0 and s.get("state") in ("loading", "running"):
                        audio_back = now - t0
                        s = self._wait_processed(s)
                        return {"ok": True, "audio_back_s": round(audio_back, 3),
                                "processed_s": round(time.monotonic() - t0, 3) if s.get("state") == "running" else None,
                                "engine": s}
            if now - t0 > timeout:
                if seen_other:
                    why = (f"the engine came back with {seen_other} instead of the new settings "
                           "(its command line overrides the config file?)")
                else:
                    why = (f"the engine did not come back with {want['capture_device']!r} at {want['rate']} Hz, "
                           f"{want['periods']} x {want['period']} frames within {timeout:g} s (a device that "
                           "does not exist or cannot do that; the engine log says why)")
                return {"ok": False, "why": why, "engine": last_status}
            time.sleep(POLL_S)

    def _failed_start(self, t0: float) -> dict | None:
        try:
            failed = self.start_failure(t0)
        except Exception as e:  # an unreadable record must not break the apply: the timeout still holds
            log.info("engine start-failure record: %s", e)
            return None
        return dict(failed) if failed and failed.get("error") else None

    def _wait_processed(self, s: dict) -> dict:
        end = time.monotonic() + PROCESSED_WAIT_S
        while s.get("state") != "running" and time.monotonic() < end:
            time.sleep(POLL_S)
            try:
                s = self.status()
            except Exception:
                break
        return s
