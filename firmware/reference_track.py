"""The control process's side of the reference track (the Live page's REF button).

Which capture is the reference, getting it prepared at the engine's rate (a worker process,
:mod:`firmware.reference`), handing it to the engine, switching it, and handing it again to an
engine that restarted (at a new rate, after preparing it again). The control process imports no
numba, so the preparation runs as ``python -m firmware.reference`` at the lowest CPU priority, as
the master jobs do: a reference is prepared in a few seconds and never costs the audio a block.
"""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from firmware import paths
from firmware.capture_master import lowest_priority
from firmware.reference import ReferenceError, read_info

log = logging.getLogger("masterbox.control")
PREPARE_TIMEOUT_S = 600.0


class ReferenceTrack:
    """``load(capture)``, ``switch(on)``, ``clear()``, ``status()``; ``push()`` after an engine restart.

    ``engine_call(fn, *args)`` is the control's call into the engine (a dict with ``ok``);
    ``engine`` its client; ``captures`` the capture index.
    """

    def __init__(self, captures, engine, engine_call: Callable[..., dict], path: Path | None = None,
                 python: list[str] | None = None):
        self.captures = captures
        self.engine = engine
        self._call = engine_call
        self.path = Path(path) if path is not None else paths.reference_file()
        self.python = python or [sys.executable]
        self.info: dict | None = self._kept()   # the prepared reference's facts (+ "capture")
        self.preparing: str | None = None   # the capture being prepared now
        self.error: str | None = None       # why the last load failed
        self._cleared = 0                   # clears so far: a load prepared across one is dropped
        self._lock = threading.Lock()

    def _kept(self) -> dict | None:
        """The reference prepared before this process started (a restart, a reboot): it stays the reference."""
        if not self.path.exists():
            return None
        try:
            info = read_info(self.path)
        except ReferenceError as e:
            log.warning("the prepared reference is not usable (%s); choose the reference again", e)
            return None
        return {**info, "capture": Path(str(info.get("name", ""))).stem or None}

    # -- preparing --------------------------------------------------------------------------
    def _engine_rate(self) -> int | None:
        st = self._call(self.engine.status)
        rate = (st.get("device") or {}).get("rate") if st.get("ok") else None
        return int(rate) if isinstance(rate, int) else None

    def _prepare(self, src: Path, rate: int) -> dict:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            r = subprocess.run([*self.python, "-m", "firmware.reference", str(src), str(self.path), str(rate)],
                               capture_output=True, text=True, timeout=PREPARE_TIMEOUT_S,
                               preexec_fn=lowest_priority)
        except subprocess.TimeoutExpired:
            raise ReferenceError(f"preparing {src.name} took more than {PREPARE_TIMEOUT_S:.0f} s") from None
        if r.returncode != 0:
            lines = r.stderr.strip().splitlines()
            # the worker names the file by its path; the pages know captures by name
            why = lines[-1].replace(f"{src.parent}{os.sep}", "") if lines else f"failed (exit {r.returncode})"
            raise ReferenceError(why if src.name in why else f"preparing {src.name}: {why}")
        return json.loads(r.stdout)

    def load(self, capture: str) -> dict:
        """Make ``capture`` the reference: prepare it, map it in the engine (switched off).

        Raises CaptureError (no such capture, or one still being recorded: it would be a cut-off
        copy), ReferenceError (not usable audio) or a "busy:" error while another one is being
        prepared; an engine that is down answers ``ok: False``. A :meth:`clear` while it is being
        prepared wins: the result is dropped.
        """
        from firmware.captures import CaptureError

        src = self.captures.path(capture)
        if self.captures.get(capture).get("recording"):
            raise CaptureError(f"{capture!r} is being recorded; stop the capture first")
        with self._lock:
            if self.preparing is not None:
                raise ReferenceError(f"busy: {self.preparing} is being prepared as the reference")
            self.preparing = capture
            cleared = self._cleared
        try:
            rate = self._engine_rate()
            if rate is None:
                return {"ok": False, "error": "engine unavailable: its rate is not known"}
            try:
                info = self._prepare(src, rate)
            except ReferenceError as e:
                self.error = str(e)
                raise
            info["capture"] = capture
            with self._lock:
                if self._cleared != cleared:
                    self.path.unlink(missing_ok=True)
                    return self._answer({"ok": True})
                self.info, self.error = info, None
        finally:
            self.preparing = None
        return self._hand_over()

    def _answer(self, reply: dict) -> dict:
        """The engine's refusal as it came, or ``ok`` with the whole status (what the page shows)."""
        return {"ok": True, "reference": self.status()} if reply.get("ok") else reply

    def _hand_over(self) -> dict:
        return self._answer(self._call(self.engine.reference_load, str(self.path)))

    # -- switching --------------------------------------------------------------------------
    def switch(self, on: bool, gain_db: float | None = None) -> dict:
        """REF on (level-matched to the master unless ``gain_db``) or off."""
        return self._answer(self._call(self.engine.reference, on, gain_db))

    def clear(self) -> dict:
        """No reference any more, here and in the engine, and not after a restart either (the
        prepared file goes). An engine that is down has none to drop: that is no failure."""
        with self._lock:
            self._cleared += 1
            self.info, self.error = None, None
            self.path.unlink(missing_ok=True)
        reply = self._call(self.engine.reference_clear)
        return self._answer({"ok": True} if "unavailable" in str(reply.get("error", "")) else reply)

    def status(self) -> dict[str, Any]:
        """What the page shows: the capture, its facts, and the engine's side (on, gain, position)."""
        engine_side = None
        st = self._call(self.engine.status)
        if st.get("ok"):
            engine_side = st.get("reference")
        return {"capture": (self.info or {}).get("capture"), "preparing": self.preparing, "error": self.error,
                "prepared": self.info, "engine": engine_side}

    def push(self) -> None:
        """Give a (re)started engine the reference again, prepared anew if its rate changed; it starts off."""
        info = self.info
        if info is None:
            return
        rate = self._engine_rate()
        if rate is None:
            return
        if rate != info.get("rate") or "spectrum" not in info:   # (prepared before spectra were kept)
            threading.Thread(target=self._reprepare, args=(info["capture"],), name="reference-prepare",
                             daemon=True).start()
            return
        reply = self._hand_over()
        if not reply.get("ok"):
            log.warning("the reference could not be given to the engine again: %s", reply.get("error"))

    def _reprepare(self, capture: str) -> None:
        try:
            self.load(capture)
        except Exception as e:  # noqa: BLE001 - logged; the page shows the error
            self.error = f"preparing {capture} again failed: {e}"
            log.warning("%s", self.error)
