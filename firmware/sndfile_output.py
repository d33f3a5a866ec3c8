"""Audio files written by libsndfile (through soundfile): FLAC, AIFF, 32-bit float WAV, RF64, and the
``--rate`` conversion's temporary file. The 16/24-bit WAV masters are written by
:mod:`firmware.wav_writer`, whose failed writes are ordinary ``OSError``s.

A failed write loses its cause: soundfile raises ``LibsndfileError("System error.")``, while
libsndfile kept the cause (``sf_strerror``: "System error : No space left on device."), but only
until the file is closed. :class:`SoundFileOutput` turns it into an ``OSError`` with the errno
(``ENOSPC`` for a full disk), which the commands report in one line, as they report a 16/24-bit
WAV's (before 2026-11-24: a traceback and exit 1).

A FLAC whose end could not be written was closed without any error: the FLAC encoder writes its
last frames and the STREAMINFO header from ``sf_close``, and ``sf_close`` does not report those
writes failing, so a disk that filled within the last few kilobytes left a truncated FLAC (no
length in its header, "lost sync" at the end), renamed into place with exit 0. So every file
written here is opened again once closed: it must hold every frame written and its last block
must decode; if not, :meth:`SoundFileOutput.close` raises ``OSError`` (``ENOSPC`` when
libsndfile's errno or the filesystem says the disk is full, else ``EIO``), and the caller's
clean-up removes the temporary file instead of renaming it. The check reads one block (a seek
and 4096 frames): a few ms, not a decode of the whole file.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

LAST_BLOCK = 4096           # frames decoded at the end of a written file to check it is whole
FULL_BYTES = 1 << 20        # a filesystem with less free than this after a failed write is full


def _errno_of(message: str) -> int | None:
    """The errno whose ``strerror`` libsndfile wrote into ``message`` ("System error : TEXT."), or None."""
    text = message.partition(":")[2].strip().rstrip(".") if ":" in message else ""
    if not text:
        return None
    for code in sorted(errno.errorcode):
        if os.strerror(code) == text:
            return code
    return None


def _full(path: Path) -> bool:
    """Whether the filesystem holding ``path`` has (next to) nothing left."""
    try:
        st = os.statvfs(path.parent if str(path.parent) else Path("."))
    except OSError:
        return False
    return st.f_bavail * st.f_frsize < FULL_BYTES


def write_error(path: Path, name, code: int | None, detail: str = "") -> OSError:
    """The ``OSError`` for a write into ``path`` that failed (``name``: the file the message names).

    ``code``: the errno libsndfile saw, if known; without it a full filesystem means ENOSPC,
    anything else EIO with ``detail``."""
    if code is None or code == 0:
        code = errno.ENOSPC if _full(path) else None
    if code is None:
        return OSError(errno.EIO, f"{os.strerror(errno.EIO)} ({detail or 'libsndfile reported a failed write'})",
                       str(name))
    return OSError(code, os.strerror(code), str(name))


def _from_libsndfile(e, handle, path: Path, name) -> OSError:
    """``e`` (a LibsndfileError) as an OSError; ``handle``: the SoundFile it came from, while still open."""
    import soundfile as sf

    code = None
    try:
        if handle is not None and not handle.closed:
            code = _errno_of(sf._ffi.string(sf._snd.sf_strerror(handle._file)).decode("utf-8", "replace"))
        if code is None and getattr(e, "code", None) == 2:     # SFE_SYSTEM: the C library's errno
            code = sf._ffi.errno or None
    except (AttributeError, TypeError):          # soundfile without these internals: guess from the disk
        code = None
    return write_error(path, name, code, str(e))


class SoundFileOutput:
    """``write(y)`` blocks of (frames, channels) samples into ``path`` through soundfile; ``close()`` (or
    ``with``) closes it and checks it is whole. Failures are ``OSError`` naming ``name`` (default ``path``).

    ``snd`` is the soundfile object (for :func:`firmware.bwf.set_with_libsndfile`)."""

    def __init__(self, path, rate: int, channels: int, fmt: str, subtype: str, name=None):
        import soundfile as sf

        self.path = Path(path)
        self.name = name if name is not None else self.path
        self.frames = 0
        try:
            self.snd = sf.SoundFile(str(self.path), "w", samplerate=rate, channels=channels, format=fmt,
                                    subtype=subtype)
        except sf.LibsndfileError as e:
            raise _from_libsndfile(e, None, self.path, self.name) from None
        self._closed = False

    def write(self, y) -> None:
        import soundfile as sf

        try:
            self.snd.write(y)
        except sf.LibsndfileError as e:
            raise _from_libsndfile(e, self.snd, self.path, self.name) from None
        self.frames += len(y)

    def close(self) -> None:
        """Close the file and check it holds every frame written, its last block decoding."""
        if self._closed:
            return
        self._closed = True
        import soundfile as sf

        try:
            sf._ffi.errno = 0
        except AttributeError:
            pass
        try:
            self.snd.close()
        except sf.LibsndfileError as e:
            raise _from_libsndfile(e, None, self.path, self.name) from None
        try:
            after = sf._ffi.errno       # what a failed write inside sf_close left (FLAC's last frames)
        except AttributeError:
            after = 0
        problem = self._check()
        if problem:
            raise write_error(self.path, self.name, after or None, problem)

    def _check(self) -> str | None:
        """What is wrong with the closed file (None: it holds every frame and its end decodes)."""
        import soundfile as sf

        try:
            with sf.SoundFile(str(self.path)) as snd:
                if snd.frames != self.frames:
                    return f"the file holds {snd.frames} of the {self.frames} frames written"
                n = min(self.frames, LAST_BLOCK)
                if n:
                    snd.seek(self.frames - n)
                    got = len(snd.read(n, dtype="float32", always_2d=True))
                    if got != n:
                        return f"its last {n} frames read back as {got}"
        except (sf.LibsndfileError, RuntimeError, ValueError, OSError) as e:
            return f"it does not read back: {e}"
        return None

    def abandon(self) -> None:
        """Close without the check or any error (the write already failed; the file will be removed)."""
        if self._closed:
            return
        self._closed = True
        try:
            self.snd.close()
        except Exception:
            pass

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abandon()
