"""Run the box's processes without systemd: ``masterbox run`` and ``masterbox demo``.

On the box, systemd supervises the engine and control units. On a laptop, in the demo and in
tests, this module does the same job in one foreground command:

- each process (engine, control) is a child started from its own command line, so a crash in
  one never takes the other down, and the engine never shares an interpreter with Flask;
- a child that exits is started again at once (then with a growing delay if it keeps dying
  within seconds), so a killed engine is back well within 3 s; a clean exit (status 0, e.g. the
  engine's ``stop`` request when the System page applies new audio settings) is restarted at
  once, every time. Children see ``MASTERBOX_SUPERVISED=1`` so they know a stop is not the end;
- the engine's heartbeat (the meter sequence the audio loop advances, the same signal the
  systemd watchdog uses) is watched: an engine that is alive but stalled is killed and
  restarted, as ``WatchdogSec=`` would do;
- Ctrl-C or SIGTERM stops everything: control first, then the engine, SIGTERM and then
  SIGKILL after a grace period. Each child runs in its own process group, so the terminal's
  Ctrl-C reaches only the supervisor (one orderly stop instead of three racing ones), and a
  child gets SIGTERM if the supervisor itself is killed outright (``PR_SET_PDEATHSIG``).

Children's output is passed through line by line with a name prefix, so one terminal shows
what both processes say.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from firmware.audio_settings import SUPERVISED_ENV
from firmware.watchdog import Heartbeat, HeartbeatMonitor

PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
_prctl = _libc.prctl


def _child_setup() -> None:
    """Runs in the child between fork and exec: its own process group, so the terminal's Ctrl-C
    reaches only the supervisor (which stops the children in order), and death with the supervisor."""
    os.setpgid(0, 0)
    _prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class ChildSpec:
    """How to start one supervised process."""

    name: str
    argv: list[str]
    env: dict[str, str] | None = None
    heartbeat: Heartbeat | None = None  # when given: restart if it stops advancing
    stall_seconds: float = 5.0
    stop_signal: int = signal.SIGTERM
    stop_timeout: float = 5.0


@dataclass
class Child:
    spec: ChildSpec
    proc: subprocess.Popen | None = None
    starts: int = 0
    started_at: float = 0.0
    quick_failures: int = 0  # consecutive exits within MIN_UPTIME of starting
    next_start: float = 0.0
    monitor: HeartbeatMonitor | None = None
    reader: threading.Thread | None = None
    history: list[tuple[float, int | None, str]] = field(default_factory=list)  # (time, code, why)


class Supervisor:
    """Starts the children, keeps them running, stops them in order."""

    MIN_UPTIME = 10.0  # a child that lived this long resets the back-off
    MAX_DELAY = 5.0

    def __init__(self, specs: list[ChildSpec], out: TextIO | None = None, poll: float = 0.1,
                 on_event: Callable[[str, str], None] | None = None):
        self.children = [Child(spec) for spec in specs]
        self.out = out if out is not None else sys.stdout
        self.poll = poll
        self.on_event = on_event
        self._stop = threading.Event()
        self._out_lock = threading.Lock()

    # -- output ----------------------------------------------------------------------------
    def say(self, name: str, text: str) -> None:
        with self._out_lock:
            self.out.write(f"{name:>10} | {text.rstrip()}\n")
            self.out.flush()
        if self.on_event is not None:
            self.on_event(name, text)

    def announce(self, text: str) -> None:
        """A block of text for the person at the terminal, unprefixed and kept together."""
        with self._out_lock:
            self.out.write(text.rstrip() + "\n")
            self.out.flush()

    def _pump(self, child: Child, stream) -> None:
        for raw in iter(stream.readline, b""):
            self.say(child.spec.name, raw.decode("utf-8", "replace"))
        stream.close()

    # -- one child -------------------------------------------------------------------------
    def start(self, child: Child) -> None:
        spec = child.spec
        env = dict(os.environ if spec.env is None else spec.env)
        env.setdefault("PYTHONUNBUFFERED", "1")
        env[SUPERVISED_ENV] = "1"  # the child may stop itself on purpose: it will be started again
        child.proc = subprocess.Popen(
            spec.argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
            preexec_fn=_child_setup, close_fds=True,
        )
        child.starts += 1
        child.started_at = time.monotonic()
        child.monitor = HeartbeatMonitor(spec.heartbeat) if spec.heartbeat else None
        child.reader = threading.Thread(target=self._pump, args=(child, child.proc.stdout),
                                        name=f"out-{spec.name}", daemon=True)
        child.reader.start()
        verb = "started" if child.starts == 1 else "restarted"
        self.say("supervisor", f"{spec.name} {verb} (pid {child.proc.pid})")

    def stop_child(self, child: Child) -> int | None:
        proc = child.proc
        if proc is None:
            return None
        if proc.poll() is None:
            try:
                proc.send_signal(child.spec.stop_signal)
                proc.wait(timeout=child.spec.stop_timeout)
            except subprocess.TimeoutExpired:
                self.say("supervisor", f"{child.spec.name} did not stop in {child.spec.stop_timeout:.0f} s: killing")
                proc.kill()
                proc.wait()
            except ProcessLookupError:
                pass
        if child.reader is not None:
            child.reader.join(timeout=2.0)
        return proc.returncode

    def _delay_after_exit(self, child: Child, now: float, code: int | None = None) -> float:
        if code == 0:  # a clean exit was asked for (the engine's `stop`, e.g. to apply new audio settings)
            return 0.0
        if now - child.started_at >= self.MIN_UPTIME:
            child.quick_failures = 0
            return 0.0
        child.quick_failures += 1
        if child.quick_failures <= 1:
            return 0.0
        return min(self.MAX_DELAY, 0.5 * 2 ** (child.quick_failures - 2))

    def check(self, child: Child, now: float) -> None:
        """One look at a child: restart it if it exited or its heartbeat stalled."""
        proc = child.proc
        if proc is None:
            if now >= child.next_start:
                self.start(child)
            return
        code = proc.poll()
        if code is None and child.monitor is not None:
            child.monitor.poll()
            stalled = child.monitor.stalled_for()
            if stalled is not None and stalled >= child.spec.stall_seconds:
                self.say("supervisor", f"{child.spec.name}: heartbeat stalled for {stalled:.1f} s; killing it")
                proc.kill()
                proc.wait()
                code = proc.returncode
                child.history.append((now, code, "stalled"))
        elif code is not None:
            child.history.append((now, code, "exited"))
        if code is None or self._stop.is_set():
            return
        if child.reader is not None:
            child.reader.join(timeout=1.0)
        delay = self._delay_after_exit(child, now, code)
        how = f"signal {-code}" if code < 0 else f"status {code}"
        self.say("supervisor", f"{child.spec.name} exited ({how}); restarting"
                 + (f" in {delay:.1f} s" if delay else ""))
        child.proc = None
        child.next_start = now + delay
        if delay == 0:
            self.start(child)

    # -- the whole set ---------------------------------------------------------------------
    def request_stop(self, *_args) -> None:
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def run(self, install_signals: bool = True) -> int:
        """Start every child in order and supervise until Ctrl-C / SIGTERM / :meth:`request_stop`."""
        previous = {}
        if install_signals:
            for sig in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
                previous[sig] = signal.signal(sig, self.request_stop)
        try:
            for child in self.children:
                self.start(child)
            while not self._stop.wait(self.poll):
                now = time.monotonic()
                for child in self.children:
                    self.check(child, now)
        finally:
            self.shutdown()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0

    def shutdown(self) -> None:
        """Stop the children in reverse start order (control before the engine)."""
        self._stop.set()
        for child in reversed(self.children):
            if child.proc is not None and child.proc.poll() is None:
                self.say("supervisor", f"stopping {child.spec.name}")
            code = self.stop_child(child)
            if code is not None:
                self.say("supervisor", f"{child.spec.name} stopped (status {code})")


def python_module(module: str, *args: str) -> list[str]:
    """The command line that runs ``python -m module args`` with this interpreter."""
    return [sys.executable, "-m", module, *args]


def masterbox_command(*args: str) -> list[str]:
    """The command line that runs ``masterbox args`` with this interpreter.

    Not ``python -m firmware.cli``: that would load the CLI twice (as ``__main__`` and as
    ``firmware.cli``), and a command's ``UserError`` would then escape as a traceback.
    """
    script = Path(sys.executable).with_name("masterbox")
    if script.is_file():
        return [str(script), *args]
    return [sys.executable, "-c", "import sys; from firmware.cli import main; sys.exit(main(sys.argv[1:]))", *args]


def box_children(sim: bool = False, host: str | None = None, port: int | None = None,
                 engine_args: list[str] | None = None) -> list[ChildSpec]:
    """The box's two processes: the engine, then the control process (panel + web UI).

    ``sim``: the simulated audio backend (real-time paced) and the panel on mock pins.
    The engine is watched through its meter heartbeat like the systemd watchdog does.
    """
    from firmware.watchdog import meters_heartbeat

    engine = ["engine", *(["--backend", "sim"] if sim else []), *(engine_args or [])]
    control = []
    if sim:
        control.append("--sim-panel")
    if host:
        control += ["--host", host]
    if port:
        control += ["--port", str(port)]
    return [
        ChildSpec("engine", masterbox_command(*engine), heartbeat=meters_heartbeat()),
        ChildSpec("control", python_module("firmware.control_main", *control)),
    ]
