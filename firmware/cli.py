"""``masterbox``: the command line. A stable contract that tests and scripts rely on.

Errors go to stderr as one sentence a person can act on, with a non-zero exit status.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import re
import signal
import sys
import threading

from firmware import __version__
from firmware.commands import COMMANDS
from firmware.errors import Terminated, UserError, os_error_text

__all__ = ["UserError", "build_parser", "main"]

# Commands whose only numba code is our kernels: they use the ahead-of-time build of the kernels
# when a fresh one exists (numba's JIT start-up, ~0.3-0.5 s, skipped; dsp.aot says why), and then
# never import numba or llvmlite at all (~0.25 s more; dsp.jit says how), else the JIT kernels,
# which use no BLAS: numba's BLAS probe would import scipy.linalg for nothing (~0.2 s of their
# start-up; dsp.kernel_cache.skip_blas_probe says why). aot.enable() must run before anything
# imports a kernel module: the command modules import dsp only inside their functions.
KERNEL_ONLY_COMMANDS = ("analyze", "master", "album")
# Commands that write files beside their outputs and rename them at the end: SIGTERM runs their
# clean-up (:func:`_terminated_raises`); ``analyze`` writes nothing, so the default (die) is right.
WRITING_COMMANDS = ("master", "album")
TERMINATED_EXIT = 128 + signal.SIGTERM


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="masterbox", description="Inline stereo mastering box.")
    parser.add_argument("--version", action="version", version=f"masterbox {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"firmware.commands.{name}")
        except ModuleNotFoundError as e:
            if e.name != f"firmware.commands.{name}":
                raise
            continue  # command not built yet
        module.register(sub)
    for command in sub.choices.values():      # a command's description is its module's docstring
        command.description = as_help_text(command.description)
    return parser


def as_help_text(docstring: str | None) -> str | None:
    """A docstring as ``--help`` shows it: without reST's markup (````literal```` quotes, ``:mod:`x```
    roles), which reads as noise in a terminal."""
    if docstring is None:
        return None
    return re.sub(r":\w+:`([^`]*)`", r"\1", docstring).replace("``", "")


def main(argv: list[str] | None = None) -> int:
    """Run one command. ``argv=None`` means this process is ``masterbox`` itself (see :func:`_leave`)."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return 2
    kernel_only = args.command in KERNEL_ONLY_COMMANDS
    compiled = False
    if kernel_only:
        from dsp import aot

        compiled = aot.enable()
        if not compiled:
            from dsp.kernel_cache import skip_blas_probe

            skip_blas_probe()
    try:
        with _terminated_raises(args.command in WRITING_COMMANDS):
            code = _run(args)
    finally:
        if compiled:
            aot.disable()   # a caller's own later chains and meters (main(argv) in-process) keep the JIT
    if kernel_only and argv is None:
        _leave(code)
    return code


class _OutputError(Exception):
    """Standard output could not be written (not a closed pipe): ``args[0]`` is the OSError."""


class _Stdout:
    """``sys.stdout`` while a command runs: a write or flush that fails other than by a closed pipe
    (stdout on a full disk, ``> /dev/full``, EIO) raises :class:`_OutputError`, so it is told apart
    from the command's own OSErrors and said in one line (until 2026-11-24: a traceback, exit 1)."""

    def __init__(self, stream):
        self._stream = stream

    def write(self, text):
        try:
            return self._stream.write(text)
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _OutputError(e) from None

    def flush(self) -> None:
        try:
            self._stream.flush()
        except BrokenPipeError:
            raise
        except OSError as e:
            raise _OutputError(e) from None

    def __getattr__(self, name):
        return getattr(self._stream, name)


def _drop_stdout() -> None:
    """What is still buffered for a stdout that cannot be written goes nowhere: fd 1 becomes /dev/null,
    so the flushes at exit neither fail again nor print "Exception ignored" (Python's advice for EPIPE)."""
    try:
        fd = os.open(os.devnull, os.O_WRONLY)
        os.dup2(fd, sys.__stdout__.fileno())
        os.close(fd)
    except (OSError, AttributeError, ValueError):
        pass


def _run(args) -> int:
    stdout = sys.stdout
    sys.stdout = _Stdout(stdout)
    try:
        code = int(args.func(args) or 0)
        sys.stdout.flush()          # a short report is still buffered: its write error comes here
        return code
    except _OutputError as e:
        _drop_stdout()
        err = e.args[0]
        print(f"masterbox {args.command}: cannot write to standard output: {err.strerror or err}", file=sys.stderr)
        return 1
    except UserError as e:
        print(f"masterbox {args.command}: {e}", file=sys.stderr)
        return 2
    except PermissionError as e:   # one the command did not expect: a file of the box's, read by another user
        print(f"masterbox {args.command}: {os_error_text(e)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except Terminated:
        return TERMINATED_EXIT
    except BrokenPipeError:
        return 0
    finally:
        sys.stdout = stdout


@contextlib.contextmanager
def _terminated_raises(wanted: bool):
    """While the command runs, SIGTERM raises :class:`firmware.errors.Terminated` instead of killing the
    process, so the clean-up that Ctrl-C already gets runs (the temporary master, a ``--rate``
    conversion's file); :func:`_run` then returns 143. Before 2026-11-24 ``timeout``, ``systemctl
    stop`` or a CI cancel left those hidden files (hundreds of MB for a long file) beside the output.
    A second SIGTERM during that clean-up is ignored (it takes milliseconds; SIGKILL still ends it).
    Only in the main thread (where Python runs signal handlers); the handler before is put back.
    The web UI's cancel is SIGKILL to the job's process group (firmware/capture_master.py), which
    removes the job's temporary files itself: unchanged."""
    if not wanted or threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum, frame):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)      # once: let the clean-up finish
        raise Terminated()

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, before)


def _leave(code: int) -> None:
    """End the process now, without the interpreter's teardown.

    Why: once numba and llvmlite are loaded, finalising the interpreter (LLVM's and numba's
    objects, thousands of module globals) costs ~0.2 s of CPU: a third of a short
    ``masterbox master`` and as much as reading a 5-minute file. A kernel-only command has
    nothing left to do by then: its files are complete (``master`` fsyncs and renames its
    output before returning), it registers no exit handlers, and stdout/stderr are flushed
    here. Only when :func:`main` runs as the program (``argv`` None): a caller that passes
    ``argv`` in its own process gets the code back as usual.
    """
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):
            pass            # a closed pipe: nothing more can be said
    os._exit(code)


if __name__ == "__main__":
    sys.exit(main())
