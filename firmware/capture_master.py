"""Master a capture offline, from the web UI: a mix recorded through the box becomes a finished master.

A live pass through the box can only approach the loudness target (the drive is set by ear, or by
LEARN, before the song is over); ``masterbox master`` measures the whole file first and lands within
+-0.5 LU of it, with the same chain. So the Captures page offers "Master": the capture (typically
the *input* tap, the mix as the desk sent it) goes through ``masterbox master`` with the box's
current settings (every parameter as it is now, whatever preset they came from), and the result is
a new capture ``<name>-master.wav`` with its own analysis sidecar (``tap`` = ``"master"``,
``mastered_from`` = the source), listed, downloadable and deletable like any other. While it runs,
the job's ``progress`` says which pass it is in and how far (``master --progress``): a long
capture takes minutes on the box.

It runs in a child process (``python -m firmware.capture_master``, which calls the ``master``
command and then writes the sidecar): the control process never imports numba, and a child at
the lowest CPU priority there is (nice 19 and ``SCHED_IDLE``) only gets the CPU the engine
(``SCHED_FIFO``), the capture writer and the web server leave over. One job at a time; a cancel
kills the child and removes its temporary file (``master`` writes beside its output and renames
at the end, so a cancelled or failed job leaves no half-written capture).
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from firmware.commands.master import parse_progress

BIT_DEPTHS = ("16", "24", "32f")
SUFFIX = "-master"


class MasterJobError(ValueError):
    """A job that cannot start (the message says why; "busy" and "being recorded" map to 409)."""


def set_arguments(values: Mapping[str, Any]) -> list[str]:
    """``--set id=value`` for every parameter, spelled as ``dsp.schema.parse_assignment`` reads it."""
    out = []
    for k, v in values.items():
        text = ("true" if v else "false") if isinstance(v, bool) else repr(v) if isinstance(v, float) else str(v)
        out += ["--set", f"{k}={text}"]
    return out


class MasterJobs:
    """The one mastering job the box runs at a time, and the last one's outcome.

    ``captures``: the :class:`firmware.captures.CaptureIndex` whose files are mastered and
    where the masters are written. ``python``: the interpreter for the child (tests may pass
    another command prefix).
    """

    def __init__(self, captures, python: list[str] | None = None):
        self.captures = captures
        self.python = python or [sys.executable]
        self._lock = threading.Lock()
        self._job: dict[str, Any] | None = None
        self._proc: subprocess.Popen | None = None
        self._thread: threading.Thread | None = None

    def _output_name(self, name: str) -> str:
        directory = Path(self.captures.directory)
        base = f"{name}{SUFFIX}"
        stem, k = base, 2
        while (directory / f"{stem}.wav").exists() or any(directory.glob(f".{stem}.wav.*.tmp")):
            stem, k = f"{base}-{k}", k + 1
        return stem

    def start(self, name: str, values: Mapping[str, Any], *, target_lufs: float | None, bit_depth: str = "24",
              preset: str | None = None) -> dict[str, Any]:
        """Master capture ``name`` with ``values`` (every parameter) towards ``target_lufs`` (None: keep
        the level the chain gives); returns the job's status. Raises CaptureError (unknown name) or
        MasterJobError (busy, being recorded, bad bit depth)."""
        if bit_depth not in BIT_DEPTHS:
            raise MasterJobError(f"bit depth must be one of {', '.join(BIT_DEPTHS)}, got {bit_depth!r}")
        src = self.captures.path(name)            # CaptureError when there is no such capture
        if self.captures.get(name).get("recording"):
            raise MasterJobError(f"{name!r} is being recorded; stop the capture first")
        with self._lock:
            if self._job is not None and self._job["state"] == "running":
                raise MasterJobError(f"busy: {self._job['capture']!r} is being mastered; wait or cancel it")
            out_name = self._output_name(name)
            dst = Path(self.captures.directory) / f"{out_name}.wav"
            meta = {"preset": preset, "tap": "master", "mastered_from": name,
                    "started": _dt.datetime.now().astimezone().isoformat(timespec="seconds"),
                    "target_lufs": target_lufs, "bit_depth": bit_depth}
            args = [str(src), str(dst), "--preset", "transparent", *set_arguments(values),
                    "--bit-depth", bit_depth, "--json", "--progress"]
            if target_lufs is not None:
                args += ["--target-lufs", repr(float(target_lufs))]
            cmd = [*self.python, "-m", "firmware.capture_master", json.dumps(meta), *args]
            self._job = {"capture": name, "output": out_name, "state": "running", "target_lufs": target_lufs,
                         "bit_depth": bit_depth, "preset": preset, "started": time.time(), "finished": None,
                         "progress": None, "result": None, "error": None}
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          start_new_session=True)
            self._thread = threading.Thread(target=self._follow, args=(self._proc, self._job, dst),
                                            name="capture-master", daemon=True)
            self._thread.start()
            return dict(self._job)

    def _follow(self, proc: subprocess.Popen, job: dict, dst: Path) -> None:
        # stderr line by line as it comes: the progress of each pass; the rest is kept for the
        # error message. stdout is one JSON line at the end (far below a pipe's buffer).
        other = []
        for line in proc.stderr:
            step = parse_progress(line)
            if step is not None:
                with self._lock:
                    job["progress"] = step
            else:
                other.append(line)
        out = proc.stdout.read()
        proc.wait()
        err = "".join(other)
        with self._lock:
            job["finished"] = time.time()
            if proc.returncode == 0:        # done, even if a cancel came too late to stop it
                try:
                    job["result"] = json.loads(out.strip().splitlines()[0])
                    job["state"] = "done"
                except (ValueError, IndexError):
                    job["state"], job["error"] = "failed", "the mastering process gave no result"
            elif job["state"] == "cancelled":
                pass
            else:
                lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                job["state"] = "failed"
                job["error"] = lines[-1].removeprefix("masterbox master: ") if lines else \
                    f"the mastering process ended with code {proc.returncode}"
            if job["state"] != "done":
                self._remove_leftovers(dst)

    def _remove_leftovers(self, dst: Path) -> None:
        for tmp in dst.parent.glob(f".{dst.name}.*.tmp"):
            tmp.unlink(missing_ok=True)

    def status(self) -> dict[str, Any] | None:
        """The running job, or the last one (None before the first)."""
        with self._lock:
            return dict(self._job) if self._job is not None else None

    def cancel(self) -> dict[str, Any] | None:
        """Stop the running job (nothing is written); returns its status."""
        with self._lock:
            job, proc = self._job, self._proc
            if job is None or job["state"] != "running":
                return dict(job) if job is not None else None
            job["state"] = "cancelled"
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.wait(30)
        return self.status()

    def wait(self, timeout: float | None = None) -> dict[str, Any] | None:
        """Until the current job ends (tests; the web UI polls :meth:`status`)."""
        t = self._thread
        if t is not None:
            t.join(timeout)
        return self.status()


def _lowest_priority() -> None:
    try:
        os.nice(19)
    except OSError:
        pass
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        pass


def main(argv: list[str]) -> int:
    """The child: ``python -m firmware.capture_master META_JSON IN OUT [master options...]``."""
    _lowest_priority()
    meta = json.loads(argv[0])
    from firmware.cli import main as cli_main

    code = cli_main(["master", *argv[1:]])
    if code == 0:
        from firmware.captures import write_sidecar

        write_sidecar(argv[2], meta)
    return code


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)          # numba is loaded: skip the interpreter's teardown (firmware/cli.py, _leave)
