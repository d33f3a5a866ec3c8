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

Every master names the settings it was made with in its Broadcast Wave chunk (``master
--preset-label``, :func:`preset_label`): the preset the job took, or the one the box's settings
came from (``streaming (modified)`` when they were changed since), or "no preset"; never the
``transparent`` the values are passed over.

Several captures (the songs of an EP recorded through the box) can be mastered as an album:
``masterbox album`` with the same settings, one shared drive so the *album's* loudness lands on the
target and the songs keep their relative levels; each becomes ``<name>-album.wav`` with a sidecar
that also names the album's captures (``album``). Or one by one in one job ("each"): ``master`` on
each in turn, every one to the target on its own. Any job may take a preset's settings instead of
the box's, and convert to a delivery sample rate first.

It runs in a child process (``python -m firmware.capture_master``, which calls the ``master`` or
``album`` command and then writes the sidecars): the control process never imports numba, and a child at
the lowest CPU priority there is (nice 19 and ``SCHED_IDLE``) only gets the CPU the engine
(``SCHED_FIFO``), the capture writer and the web server leave over. One job at a time; a cancel
kills the child and removes its temporary files (both commands write beside their outputs and
rename at the end, so a cancelled or failed job leaves no half-written capture).
"""

from __future__ import annotations

import datetime as _dt
import glob
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

from firmware.commands.master import PROGRESS_PREFIX, parse_progress
from firmware.names import FILE_NAME_BYTES, NAME_MAX_BYTES, NAME_MAX_CHARS, fit, fits, preset_label

BIT_DEPTHS = ("16", "24", "32f")
SUFFIX = "-master"
ALBUM_SUFFIX = "-album"


def output_name(name: str, suffix: str) -> str:
    """The master of capture ``name``: ``name`` + ``suffix``, the name cut (in UTF-8 bytes, at a character)
    so the whole stays within :data:`firmware.names.NAME_MAX_BYTES` (and ``NAME_MAX_CHARS``): the master
    of a master of a long name still fits in a file name, and the web can still address it."""
    return fit(name, NAME_MAX_BYTES - len(suffix.encode("utf-8")), NAME_MAX_CHARS - len(suffix)) + suffix


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

    def _free_suffix(self, names: list[str], base: str, cut: bool = True) -> str:
        """``base``, or ``base-2``, ``base-3``, ...: the first under which no capture of ``names`` has a
        master yet (nor a temporary file of one being written). ``cut``: the masters' names are
        :func:`output_name` (an album's are the captures' own with the suffix: ``masterbox album``)."""
        directory = Path(self.captures.directory)
        suffix, k = base, 2
        while any((directory / f"{o}.wav").exists() or any(directory.glob(f".{glob.escape(o)}.wav.*.tmp"))
                  for o in (output_name(n, suffix) if cut else f"{n}{suffix}" for n in names)):
            suffix, k = f"{base}-{k}", k + 1
        return suffix

    def start(self, name: str, values: Mapping[str, Any], *, target_lufs: float | None, bit_depth: str = "24",
              preset: str | None = None, rate: int | None = None, modified: bool = False) -> dict[str, Any]:
        """Master capture ``name`` with ``values`` (every parameter) towards ``target_lufs`` (None: keep
        the level the chain gives), converted to ``rate`` first if given (``master --rate``: a 44.1 kHz
        CD master of a 48 kHz capture); returns the job's status. ``preset``: where ``values`` came
        from (None: no preset), ``modified``: changed since (:func:`preset_label`). Raises CaptureError
        (unknown name) or MasterJobError (busy, being recorded, bad bit depth)."""
        return self._start("master", [name], values, target_lufs, bit_depth, preset, rate, modified)

    def start_album(self, names: list[str], values: Mapping[str, Any], *, target_lufs: float | None,
                    bit_depth: str = "24", preset: str | None = None, rate: int | None = None,
                    modified: bool = False) -> dict[str, Any]:
        """Master captures ``names`` as one album (``masterbox album``: the same chain and ONE drive,
        so the album's loudness lands on ``target_lufs`` and the songs keep their relative levels) at
        ``rate`` (default: the captures' own); each becomes ``<name>-album.wav``. Raises as
        :meth:`start` does, and MasterJobError for fewer than two captures, one named twice, or
        captures of different sample rates without a ``rate``."""
        names = list(names)
        if len(names) < 2:
            raise MasterJobError("an album needs at least two captures")
        if len(set(names)) != len(names):
            raise MasterJobError("a capture is named twice in the album")
        return self._start("album", names, values, target_lufs, bit_depth, preset, rate, modified)

    def start_each(self, names: list[str], values: Mapping[str, Any], *, target_lufs: float | None,
                   bit_depth: str = "24", preset: str | None = None, rate: int | None = None,
                   modified: bool = False) -> dict[str, Any]:
        """Master captures ``names`` one after the other, each on its own (``masterbox master``: each
        lands on ``target_lufs``), as one job; each becomes ``<name>-master.wav``. A failure stops the
        job there (the masters finished before it are kept); a cancel keeps them too. Raises as
        :meth:`start` does, and MasterJobError for no capture or one named twice."""
        names = list(names)
        if not names:
            raise MasterJobError("name at least one capture")
        if len(set(names)) != len(names):
            raise MasterJobError("a capture is named twice")
        return self._start("each", names, values, target_lufs, bit_depth, preset, rate, modified)

    def _start(self, kind: str, names: list[str], values: Mapping[str, Any], target_lufs: float | None,
               bit_depth: str, preset: str | None, rate: int | None = None, modified: bool = False) -> dict[str, Any]:
        if bit_depth not in BIT_DEPTHS:
            raise MasterJobError(f"bit depth must be one of {', '.join(BIT_DEPTHS)}, got {bit_depth!r}")
        srcs = [self.captures.path(n) for n in names]       # CaptureError when there is no such capture
        rows = [self.captures.get(n) for n in names]
        for n, row in zip(names, rows, strict=True):
            if row.get("recording"):
                raise MasterJobError(f"{n!r} is being recorded; stop the capture first")
        if kind == "album" and rate is None:
            rates = [row.get("sample_rate") for row in rows]
            if len({r for r in rates if r}) > 1:
                listed = ", ".join(f"{n} {r} Hz" for n, r in zip(names, rates, strict=True) if r)
                raise MasterJobError(f"the captures of an album must share one sample rate ({listed}); "
                                     "choose a sample rate for the album")
        with self._lock:
            if self._job is not None and self._job["state"] == "running":
                what = {"master": repr(self._job["capture"]), "album": "an album"}.get(
                    self._job["kind"], f"{len(self._job['captures'])} captures")
                raise MasterJobError(f"busy: {what} {'is' if self._job['kind'] != 'each' else 'are'} being "
                                     "mastered; wait or cancel it")
            if kind == "album":
                suffix = self._free_suffix(names, ALBUM_SUFFIX, cut=False)
                outs = [f"{n}{suffix}" for n in names]
                long = [n for n, o in zip(names, outs, strict=True) if not fits(o)]
                if long:    # masterbox album names its outputs itself: refused here, not failed at the end
                    raise MasterJobError(f"{long[0]!r}: too long a name for its album master {suffix!r} (a file "
                                         f"name holds {FILE_NAME_BYTES} bytes, a capture's {NAME_MAX_CHARS} "
                                         "characters); master it on its own")
            else:                   # each its own first free "-master", "-master-2", ...
                outs = [output_name(n, self._free_suffix([n], SUFFIX)) for n in names]
            dsts = [Path(self.captures.directory) / f"{o}.wav" for o in outs]
            started = _dt.datetime.now().astimezone().isoformat(timespec="seconds")
            sidecars = {str(d): {"preset": preset, "tap": "master", "mastered_from": n, "started": started,
                                 "target_lufs": target_lufs, "bit_depth": bit_depth}
                        | ({"album": names} if kind == "album" else {})
                        for n, d in zip(names, dsts, strict=True)}
            if kind == "master":
                args = [str(srcs[0]), str(dsts[0])]
            elif kind == "each":
                args = [json.dumps([[str(a), str(b)] for a, b in zip(srcs, dsts, strict=True)])]
            else:
                args = [str(self.captures.directory), *map(str, srcs), f"--suffix={suffix}"]
            if rate:
                args += ["--rate", str(rate)]
            # "--preset-label=...": one argument, even for a name that starts with "-"
            args += ["--preset", "transparent", *set_arguments(values), "--bit-depth", bit_depth, "--json",
                     "--progress", f"--preset-label={preset_label(preset, modified)}"]
            if target_lufs is not None:
                args += ["--target-lufs", repr(float(target_lufs))]
            cmd = [*self.python, "-m", "firmware.capture_master", json.dumps(sidecars), kind, *args]
            single = kind == "master"
            self._job = {"kind": kind, "captures": names, "outputs": outs,
                         "capture": names[0] if single else None, "output": outs[0] if single else None,
                         "state": "running", "target_lufs": target_lufs, "rate": rate,
                         "bit_depth": bit_depth, "preset": preset, "started": time.time(), "finished": None,
                         "progress": None, "result": None, "error": None}
            self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                          start_new_session=True)
            self._thread = threading.Thread(target=self._follow, args=(self._proc, self._job, dsts),
                                            name="capture-master", daemon=True)
            self._thread.start()
            return dict(self._job)

    def _follow(self, proc: subprocess.Popen, job: dict, dsts: list[Path]) -> None:
        # stderr line by line as it comes: the progress of each pass; the rest is kept for the
        # error message. stdout (a JSON line per finished command) is read beside it, so a
        # long "each" job cannot fill its pipe and stall.
        results: list[dict] = []

        def read_stdout() -> None:
            for line in proc.stdout:
                try:
                    results.append(json.loads(line))
                except ValueError:
                    pass

        reader = threading.Thread(target=read_stdout, name="capture-master-out", daemon=True)
        reader.start()
        other = []
        for line in proc.stderr:
            step = parse_progress(line)
            if step is not None:
                with self._lock:
                    job["progress"] = step
            else:
                other.append(line)
        reader.join()
        proc.wait()
        err = "".join(other)
        with self._lock:
            job["finished"] = time.time()
            if job["kind"] == "each":
                job["result"] = {"masters": results}        # those finished, also when it stopped
            if proc.returncode == 0:        # done, even if a cancel came too late to stop it
                if results:
                    if job["kind"] != "each":
                        job["result"] = results[0]
                    job["state"] = "done"
                else:
                    job["state"], job["error"] = "failed", "the mastering process gave no result"
            elif job["state"] == "cancelled":
                pass
            else:
                lines = [ln for ln in err.strip().splitlines() if ln.strip()]
                job["state"] = "failed"
                job["error"] = lines[-1].removeprefix("masterbox master: ").removeprefix("masterbox album: ") \
                    if lines else f"the mastering process ended with code {proc.returncode}"
            if job["state"] != "done":     # the output's temporary file, and a rate conversion's
                for dst in dsts:
                    for pattern in (f".{dst.name}.*.tmp", f".{dst.name}.*.tmp.wav"):
                        for tmp in dst.parent.glob(pattern):
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


def lowest_priority() -> None:
    """Nice 19 and SCHED_IDLE for this process: it only gets the CPU nothing else wants."""
    try:
        os.nice(19)
    except OSError:
        pass
    try:
        os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    except (OSError, AttributeError):
        pass


class _Numbered:
    """stderr for one master of an "each" job: its progress lines say which one it is (``2/5 pass 1``)."""

    def __init__(self, stream, prefix: str):
        self.stream, self.prefix = stream, prefix

    def write(self, text: str) -> int:
        if text.startswith(PROGRESS_PREFIX):
            text = PROGRESS_PREFIX + self.prefix + text[len(PROGRESS_PREFIX):]
        return self.stream.write(text)

    def flush(self) -> None:
        self.stream.flush()


def main(argv: list[str]) -> int:
    """The child: ``python -m firmware.capture_master SIDECARS_JSON master|album ARGS...``, or
    ``... SIDECARS_JSON each PAIRS_JSON OPTIONS...`` (``masterbox master IN OUT OPTIONS`` for each
    ``[IN, OUT]`` in turn, stopping at the first that fails).

    Writes each output's analysis sidecar, with its entry of SIDECARS_JSON (``{output path: extra
    keys}``), as soon as that output is finished.
    """
    lowest_priority()
    sidecars = json.loads(argv[0])
    from firmware.captures import write_sidecar
    from firmware.cli import main as cli_main

    if argv[1] != "each":
        code = cli_main(argv[1:])
        if code == 0:
            for path, meta in sidecars.items():
                write_sidecar(path, meta)
        return code
    pairs, options = json.loads(argv[2]), argv[3:]
    for k, (src, dst) in enumerate(pairs, 1):
        stderr = sys.stderr
        sys.stderr = _Numbered(stderr, f"{k}/{len(pairs)} ")
        try:
            code = cli_main(["master", src, dst, *options])
        finally:
            sys.stderr = stderr
        if code != 0:
            return code
        sys.stdout.flush()
        write_sidecar(dst, sidecars[dst])
    return 0


if __name__ == "__main__":
    code = main(sys.argv[1:])
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)          # numba is loaded: skip the interpreter's teardown (firmware/cli.py, _leave)
