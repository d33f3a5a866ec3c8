"""Mixes brought into the captures folder from a browser: a WAV, AIFF or FLAC file received in pieces, resumably.

Why pieces. The web server refuses a request body over ``[web] max_body_bytes`` (8 MB) before
it reads it, on every route and before the login is checked; that is what keeps a stranger on
the LAN from filling the disk with one request. So a mix of a gigabyte arrives as a series of
pieces of at most :data:`CHUNK_BYTES`, each written at the offset the box says it has reached.
A link that drops (Wi-Fi, a laptop lid closed) costs at most one piece: the page asks how far
the box got (:meth:`Uploads.status`) and goes on from there.

Where it goes. The file grows hidden, as ``.upload-ID.tmp`` in the captures folder: on the
captures' own disk, so the end is a rename, and swept at control start like every temporary
file a power cut leaves there. It becomes a capture only when it is whole and reads as audio
the box can master (an AIFF or FLAC is first copied into a WAV of the same word length); then
it takes a free name (``mix.wav``, ``mix-2.wav``, ...: never an existing capture's) and is
analysed like a recording.

The recordings come first. An upload must leave the disk's free-space floor
(``[storage] free_space_floor_mb``, where a recording stops) free, and while a capture is being
recorded :data:`RECORDING_RESERVE_BYTES` more. That is checked when it begins and before every
piece; a piece that meets a full disk anyway ends the upload and removes its file, so the
space goes back to the recordings.
"""

from __future__ import annotations

import datetime as _dt
import errno
import os
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware import bwf, names
from firmware.analysis import MIN_DURATION_S
from firmware.atomic import fsync_dir, ordinary_mode
from firmware.capture_writer import _free_bytes
from firmware.render import RF64_BYTES

CHUNK_BYTES = 4 << 20                 # under the web server's 8 MB body limit, with room to spare
RECORDING_RESERVE_BYTES = 2 << 30     # ~2 h of 48 kHz 24-bit stereo, kept for a running recording
MAX_ACTIVE = 4                        # uploads receiving at once
IDLE_S = 3600.0                       # an upload nobody added to for this long is dropped
FINISHED_KEPT_S = 3600.0              # how long a finished upload still answers (a retried last piece)
PART_PREFIX = ".upload-"
UPLOAD_DESCRIPTION = "masterbox upload"   # how the bext description of a converted upload starts
MAX_STEM = 100
STEM_MAX_BYTES = names.NAME_MAX_BYTES - len("-99999")    # UTF-8 bytes, with room for _link_free's "-N"
MAX_FILE_BYTES = (1 << 63) - 1        # the largest file offset (off_t): a size beyond it is no file's
_UNSAFE = re.compile(r'[/\\:*?"<>|]')    # and control characters (firmware.names.is_control)
_SURROGATE = re.compile("[\ud800-\udfff]")
KINDS = {"wav": "wav", "aif": "aiff", "aiff": "aiff", "flac": "flac"}       # extension -> kind
KIND_NAMES = {"wav": "WAV", "aiff": "AIFF", "flac": "FLAC"}
_LIBSNDFILE_FORMATS = {"wav": ("WAV", "WAVEX", "RF64"), "aiff": ("AIFF",), "flac": ("FLAC",)}
# what a file of each kind starts with (bytes 0-3, and 8-11 where given)
_MAGIC = {"wav": ((b"RIFF", b"RF64"), (b"WAVE",)), "aiff": ((b"FORM",), (b"AIFF", b"AIFC")), "flac": ((b"fLaC",), None)}
# a converted file keeps its words: libsndfile subtype -> (WAV subtype, the dtype that copies it exactly)
_SAME_WORDS = {"PCM_S8": ("PCM_16", "int16"), "PCM_U8": ("PCM_16", "int16"), "PCM_16": ("PCM_16", "int16"),
               "PCM_24": ("PCM_24", "int32"), "PCM_32": ("PCM_32", "int32"), "FLOAT": ("FLOAT", "float32"),
               "DOUBLE": ("DOUBLE", "float64")}
_WORD_BYTES = {"PCM_16": 2, "PCM_24": 3, "PCM_32": 4, "FLOAT": 4, "DOUBLE": 8}


class UploadError(Exception):
    """An upload refused or ended; ``status`` is the HTTP answer, ``extra`` more JSON fields."""

    def __init__(self, status: int, message: str, **extra: Any):
        super().__init__(message)
        self.status = status
        self.extra = extra


def capture_name(filename: str) -> tuple[str, str]:
    """The capture name a file called ``filename`` on the user's computer gets (before ``-2``...),
    and its kind ("wav", "aiff" or "flac", from its extension: :data:`KINDS`).

    Only the last path component counts; characters no file name should hold become ``_``,
    leading dots and spaces go (a hidden file would not be listed), and it is cut to
    :data:`MAX_STEM` characters and to :data:`firmware.names.NAME_MAX_BYTES` of UTF-8 less room for
    the ``-2``... a name already taken gets (a file name holds 255 bytes: 100 Japanese characters
    are 300), so the name is known to fit before the upload begins.
    """
    if not isinstance(filename, str):
        raise UploadError(400, "file name must be a string")
    if _SURROGATE.search(filename):     # "\ud800" written in the JSON: no file name can hold it
        raise UploadError(400, "file name is not valid Unicode text")
    base = re.split(r"[/\\]", filename.strip())[-1]
    stem, dot, ext = base.rpartition(".")
    if not dot or not stem or ext.lower() not in KINDS:
        raise UploadError(415, f"{base or filename!r} is not a WAV, AIFF or FLAC file (by its name): export "
                               "the mix as one of those")
    stem = "".join("_" if names.is_control(c) else c for c in stem)
    stem = _UNSAFE.sub("_", stem).replace("..", "_").lstrip(". ").rstrip()
    return names.fit(stem[:MAX_STEM].rstrip(), STEM_MAX_BYTES) or "upload", KINDS[ext.lower()]


def audio_facts(path: Path, kind: str = "wav") -> dict[str, Any]:
    """Rate, channels and length of a file of ``kind`` the box can master (a WAV as is, an AIFF or FLAC
    once converted), or :class:`UploadError` saying why not."""
    from firmware.wav_reader import open_wav

    reader = open_wav(path) if kind == "wav" else None
    subtype = None
    if reader is not None:
        with reader:
            rate, channels, frames = reader.samplerate, reader.channels, reader.frames
    else:   # what our reader leaves to libsndfile (8-bit, 20 bits in 24, AIFF, FLAC), as `master` does
        import soundfile as sf

        name = KIND_NAMES[kind]
        try:
            info = sf.info(str(path))
        except Exception as e:  # libsndfile's words for a damaged or foreign file
            raise UploadError(415, f"not a {name} file the box can read: {e}") from None
        if info.format not in _LIBSNDFILE_FORMATS[kind]:
            raise UploadError(415, f"a {info.format_info or info.format} file, not a {name}")
        rate, channels, frames = info.samplerate, info.channels, info.frames
        subtype = info.subtype
    if channels not in (1, 2):
        raise UploadError(415, f"{channels} channels: the box masters mono or stereo")
    if frames < MIN_DURATION_S * rate:   # one BS.1770 gating block: less has no loudness to measure
        raise UploadError(415, f"{frames / rate * 1000:.0f} ms of audio: too short to measure "
                               f"(the box needs at least {MIN_DURATION_S * 1000:.0f} ms)")
    facts = {"sample_rate": int(rate), "channels": int(channels), "frames": int(frames)}
    return facts if subtype is None else {**facts, "subtype": subtype}


def conversion_bext(filename: str, kind: str, rate: int, channels: int, subtype: str) -> bwf.Bext:
    """The Broadcast Wave chunk of a WAV the box made from an uploaded AIFF or FLAC ``filename``.

    The box wrote that WAV, so it says so as every WAV the box writes does: what it was made from
    (the description and an EBU R 98 coding-history line), when (the arrival: an AIFF or FLAC has
    no origination time a DAW wrote), and, once analysed, how loud it is
    (:func:`firmware.captures.stamp_capture_loudness`, which looks for :data:`UPLOAD_DESCRIPTION`).
    A mix uploaded as a WAV is the user's file byte for byte and is never given one.
    """
    bits = "32" if subtype == "FLOAT" else "64" if subtype == "DOUBLE" else subtype.removeprefix("PCM_")
    b = bwf.Bext(description=f"{UPLOAD_DESCRIPTION}: {KIND_NAMES[kind]} {filename}",
                 coding_history=bwf.coding_line(rate, bits, channels, f"{KIND_NAMES[kind]} {filename}, samples "
                                                                      f"copied exactly by masterbox"))
    b.stamp_time(_dt.datetime.now())
    return b


def convert_to_wav(src: Path, dest: Path, filename: str | None = None, kind: str | None = None) -> str:
    """Copy the samples of an AIFF or FLAC file into a WAV (RF64 past 4 GB) of the same word length,
    exactly (integers as integers, floats as floats; 8-bit becomes 16); the WAV's subtype.

    The captures folder, the analysis and the mastering jobs deal in WAV files, so a mix exported
    as AIFF (Logic's long-time default) or FLAC becomes one on arrival instead of every reader
    learning the others. With ``filename`` and ``kind`` (what the user sent) the WAV carries a
    ``bext`` chunk saying so (:func:`conversion_bext`).
    """
    import soundfile as sf

    with sf.SoundFile(str(src)) as f:
        subtype, dtype = _SAME_WORDS.get(f.subtype, ("PCM_24", "int32"))
        big = f.frames * f.channels * _WORD_BYTES[subtype] > RF64_BYTES
        with sf.SoundFile(str(dest), "w", f.samplerate, f.channels, subtype, format="RF64" if big else "WAV") as out:
            if filename is not None and kind is not None:
                bwf.set_with_libsndfile(out, conversion_bext(filename, kind, f.samplerate, f.channels, subtype))
            for block in f.blocks(65536, dtype=dtype, always_2d=True):
                out.write(block)
    fd = os.open(dest, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    return subtype


@dataclass
class _Upload:
    id: str
    filename: str
    stem: str
    kind: str
    size: int
    part: Path
    fd: int
    touched: float
    offset: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def status(self) -> dict[str, Any]:
        return {"id": self.id, "file": self.filename, "size": self.size, "offset": self.offset,
                "chunk_bytes": CHUNK_BYTES, "state": "receiving", "capture": None}


def _starts_like(kind: str, data: bytes) -> bool:
    first, then = _MAGIC[kind]
    return data[:4] in first and (then is None or data[8:12] in then)


class Uploads:
    """The uploads the box is receiving into ``captures`` (a :class:`firmware.captures.CaptureIndex`).

    ``floor_bytes``: free space every upload leaves (the recordings' floor). ``analyse(path,
    facts)`` is called with each finished capture (the control runs its analysis worker).
    Every method is safe from any web worker thread; a piece is written outside the registry's
    lock, so a slow disk holds up only its own upload.
    """

    def __init__(self, captures, floor_bytes: int, analyse: Callable[[Path, dict], None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.captures = captures
        self.floor_bytes = int(floor_bytes)
        self.analyse = analyse
        self.clock = clock
        self._lock = threading.Lock()
        self._active: dict[str, _Upload] = {}
        self._finished: dict[str, tuple[float, dict[str, Any]]] = {}

    # -- the three requests of an upload ---------------------------------------------------
    def begin(self, filename: str, size: int) -> dict[str, Any]:
        """Make room for a WAV of ``size`` bytes called ``filename``; its status (offset 0)."""
        stem, kind = capture_name(filename)
        if isinstance(size, bool) or not isinstance(size, int) or size < 44:
            raise UploadError(400, "size must be the file's length in bytes (a WAV has at least 44)")
        if size > MAX_FILE_BYTES:
            raise UploadError(400, f"size must be the file's length in bytes: more than {MAX_FILE_BYTES} is "
                                   "no file's")
        directory = Path(self.captures.directory)
        directory.mkdir(parents=True, exist_ok=True)
        with self._lock:
            self._expire()
            if len(self._active) >= MAX_ACTIVE:
                raise UploadError(409, f"busy: {MAX_ACTIVE} uploads are already running; wait for one to finish")
            self._room(size)
            uid = secrets.token_hex(8)
            part = directory / f"{PART_PREFIX}{uid}.tmp"
            fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, ordinary_mode(part))
            up = _Upload(uid, filename, stem, kind, size, part, fd, self.clock())
            self._active[uid] = up
        return up.status()

    def append(self, uid: str, offset: int, data: bytes) -> dict[str, Any]:
        """Write the piece ``data`` at ``offset``, which must be where the upload stands; the status.

        The piece that completes the file makes it a capture (``state`` "done", ``capture`` its
        name). A piece for an upload already finished, at its end, answers the same "done" again,
        so a client whose last answer was lost can simply send it once more.
        """
        up = self._get(uid)
        if up is None:
            done = self._done(uid)
            if done is not None and offset + len(data) == done["size"]:
                return done
            raise UploadError(404, f"no upload {uid!r} (finished long ago, cancelled, or the box restarted)")
        if not up.lock.acquire(blocking=False):
            raise UploadError(409, "another piece of this upload is being written", offset=up.offset)
        try:
            if offset != up.offset:
                raise UploadError(409, f"the box has {up.offset} bytes of this upload, not {offset}",
                                  offset=up.offset)
            if len(data) > CHUNK_BYTES or up.offset + len(data) > up.size:
                raise UploadError(413, f"a piece of {len(data)} bytes at {offset} runs past the file's "
                                       f"{up.size} bytes (pieces are at most {CHUNK_BYTES})", offset=up.offset)
            if up.offset == 0 and not _starts_like(up.kind, data):
                self._end(up)
                raise UploadError(415, f"{up.filename!r} is named as {KIND_NAMES[up.kind]} but does not start "
                                       "like one; nothing was kept")
            self._write(up, data)
            up.touched = self.clock()
            if up.offset < up.size:
                return up.status()
            return self._finish(up)
        finally:
            up.lock.release()

    def status(self, uid: str) -> dict[str, Any]:
        """How far upload ``uid`` got (where the next piece goes), or its outcome once finished."""
        up = self._get(uid)
        if up is not None:
            return up.status()
        done = self._done(uid)
        if done is None:
            raise UploadError(404, f"no upload {uid!r} (finished long ago, cancelled, or the box restarted)")
        return done

    def cancel(self, uid: str) -> dict[str, Any]:
        """Stop upload ``uid`` and remove what arrived of it; once finished, too late: its outcome."""
        up = self._get(uid)
        if up is None:
            return self.status(uid)     # finished (its outcome), else 404
        with up.lock:                   # a piece being written finishes first
            done = self._done(uid)
            if done is not None:        # ... and it was the last one: too late to cancel
                return done
            self._end(up)
        return {**up.status(), "state": "cancelled"}

    def active(self) -> list[dict[str, Any]]:
        with self._lock:
            return [u.status() for u in self._active.values()]

    def expire(self) -> None:
        """Drop uploads nobody added to for :data:`IDLE_S` (the control's minute timer calls this, so an
        abandoned upload gives its disk space back even when no further request comes)."""
        with self._lock:
            self._expire()

    def close(self) -> None:
        """Drop every unfinished upload (the control process is stopping)."""
        with self._lock:
            ups = list(self._active.values())
        for up in ups:
            self._end(up)

    # -- inside ------------------------------------------------------------------------------
    def _get(self, uid: str) -> _Upload | None:
        with self._lock:
            self._expire()
            return self._active.get(uid) if isinstance(uid, str) else None

    def _done(self, uid: str) -> dict[str, Any] | None:
        with self._lock:
            hit = self._finished.get(uid)
            return hit[1] if hit else None

    def _room(self, more: int) -> None:
        """:class:`UploadError` 507 unless ``more`` bytes leave the floor (and the reserve) free."""
        recording = self.captures.is_recording()
        keep = self.floor_bytes + (RECORDING_RESERVE_BYTES if recording else 0)
        free = _free_bytes(Path(self.captures.directory))
        if free - more < keep:
            why = (f"the {self.floor_bytes / 1e6:.0f} MB kept free for recordings"
                   + (f" and {RECORDING_RESERVE_BYTES / 1e9:.1f} GB more while a capture is being recorded"
                      if recording else ""))
            raise UploadError(507, f"not enough disk space: {more / 1e6:.1f} MB more would leave "
                                   f"{max(free - more, 0) / 1e6:.0f} MB free, less than {why}")

    def _write(self, up: _Upload, data: bytes) -> None:
        try:
            self._room(len(data))
            view = memoryview(data)
            at = up.offset
            while view:
                n = os.pwrite(up.fd, view, at)
                view, at = view[n:], at + n
        except OSError as e:
            self._end(up)
            if e.errno in (errno.ENOSPC, errno.EDQUOT):
                raise UploadError(507, f"the disk is full: the upload of {up.filename!r} stopped at "
                                       f"{up.offset / 1e6:.1f} MB and its file was removed") from None
            raise UploadError(500, f"writing the upload failed: {e}") from None
        except UploadError as e:
            self._end(up)
            raise UploadError(e.status, f"{e}; the upload stopped and its file was removed") from None
        up.offset += len(data)

    def _finish(self, up: _Upload) -> dict[str, Any]:
        """The whole file is here: check it is one the box can master, make an AIFF or FLAC a WAV, give
        it a free capture name, have it analysed."""
        converted = up.part.with_name(up.part.name + ".wav")      # .upload-ID.tmp.wav: swept like the part
        try:
            os.fsync(up.fd)
            facts = audio_facts(up.part, up.kind)
            subtype = facts.pop("subtype", None)
            if up.kind != "wav":            # room for the WAV beside it first (a FLAC's grows ~1.5-2x)
                words = _SAME_WORDS.get(subtype, ("PCM_24", ""))[0]
                self._room(facts["frames"] * facts["channels"] * _WORD_BYTES[words])
                facts["converted_from"] = KIND_NAMES[up.kind]
                facts["sample_format"] = convert_to_wav(up.part, converted, up.filename, up.kind)
                os.replace(converted, up.part)          # the part is the WAV now, its fd the old file's
        except UploadError as e:
            converted.unlink(missing_ok=True)
            self._end(up)
            raise UploadError(e.status, f"{up.filename!r}: {e}; nothing was kept") from None
        except (OSError, RuntimeError) as e:    # soundfile's write errors are RuntimeErrors
            converted.unlink(missing_ok=True)
            self._end(up)
            full = isinstance(e, OSError) and e.errno == errno.ENOSPC or "No space" in str(e)
            raise UploadError(507 if full else 500, f"finishing the upload failed: {e}") from None
        directory = Path(self.captures.directory)
        try:
            name = self._link_free(up, directory)
            fsync_dir(directory)
        except OSError as e:
            self._end(up)
            raise UploadError(500, f"finishing the upload failed: {e}") from None
        self._discard(up)
        with self._lock:
            self._active.pop(up.id, None)
            result = {**up.status(), "state": "done", "capture": name, **facts,
                      "uploaded": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")}
            self._finished[up.id] = (self.clock(), result)
        if self.analyse is not None:
            self.analyse(directory / f"{name}.wav", {"source": "upload", "uploaded_from": up.filename,
                                                     "uploaded": result["uploaded"],
                                                     "converted_from": facts.get("converted_from")})
        return result

    @staticmethod
    def _link_free(up: _Upload, directory: Path) -> str:
        """Link the finished part to the first free name (``stem``, ``stem-2``, ...); that name.

        ``os.link`` fails rather than replace, so a capture that appears meanwhile (a master
        finishing, another upload) is never overwritten; a name with a sidecar but no WAV is
        skipped too, so an old analysis is not taken for this file's.
        """
        k = 1
        while True:
            name = up.stem if k == 1 else f"{names.fit(up.stem, names.NAME_MAX_BYTES - len(f'-{k}'))}-{k}"
            k += 1
            if (directory / f"{name}.json").exists():
                continue
            dest = directory / f"{name}.wav"
            try:
                os.link(up.part, dest)
            except FileExistsError:
                continue
            except OSError as e:    # a filesystem without hard links (a FAT stick): check, then rename
                if e.errno not in (errno.EPERM, errno.EOPNOTSUPP) or dest.exists():
                    raise
                os.rename(up.part, dest)
            return name

    def _end(self, up: _Upload) -> None:
        """Forget ``up`` and remove its file (cancelled, refused, expired, or a full disk)."""
        with self._lock:
            self._active.pop(up.id, None)
        self._discard(up)

    @staticmethod
    def _discard(up: _Upload) -> None:
        if up.fd >= 0:
            os.close(up.fd)
            up.fd = -1
        up.part.unlink(missing_ok=True)

    def _expire(self) -> None:
        """Under the registry lock: drop uploads idle for :data:`IDLE_S`, forget old outcomes."""
        now = self.clock()
        for uid, up in list(self._active.items()):
            if now - up.touched > IDLE_S and up.lock.acquire(blocking=False):
                try:
                    del self._active[uid]
                    self._discard(up)
                finally:
                    up.lock.release()
        for uid, (when, _) in list(self._finished.items()):
            if now - when > FINISHED_KEPT_S:
                del self._finished[uid]
