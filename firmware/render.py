"""Offline rendering: a file through the very chain the box runs, block by block.

``master_file`` is what ``masterbox master`` does: resolve the parameters, render the file
through :class:`dsp.chain.Chain` (the same per-block kernel as the real-time engine, so a
file sounds exactly like the box), and, when there is a loudness target, set the output
drive so the integrated loudness lands on it.

The drive search: the drive acts only on the limiter and what follows it, so the chain before
it (input, EQ, multiband, stereo) runs once and its float64 output is kept in memory (up to
:data:`PRE_BUDGET_BYTES`, ~10 minutes at 48 kHz); each drive tried then runs only drive ..
dither from there, sample-identical to a whole-chain pass (``Chain.set_split``). The first
part's loudness gives the first guess (target minus it), which is written straight away: at
sane targets the limiter costs little loudness and it lands. If not, the chain's own output
meter says by how much; the next drive follows from a model of the limiter's loss anchored
where the limiter is idle (the first part's true peak says where), then from the secant of
the last two passes, until within 0.2 LU. A longer file runs the first part once to measure
it and then whole-chain passes with the same search (same drives, same output).

Output: same length and rate as the input, or the rate asked for (the input is converted
first, :mod:`firmware.rate_convert`, so the ceiling holds at that rate). The chain's latency
is compensated by feeding ``latency`` frames of silence at the end and dropping as many at the
start. It is written to a
temporary file next to the destination and renamed over it only when complete, so a crash
or Ctrl-C never leaves a half-written master. Mono files are processed as dual mono and
written back as mono; their target is the loudness of the mono file (BS.1770 measures its one
channel: 3.01 dB under the dual mono the chain's meters hear).
"""

from __future__ import annotations

import math
import mmap
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dsp.schema import BY_ID  # plain Python, no numba
from firmware.names import settings_phrase  # the one phrase of masters and captures (commands import it here)

BLOCK = 65536            # frames per chain call: fewer Python round trips (the output does not depend on it)
TOLERANCE_LU = 0.2       # stop iterating when this close (the promise is +-0.5 LU)
MAX_PASSES = 6
# the output drive the search may set: the parameter's whole range (-36 dB reaches a -36 LUFS target
# from a 0 LUFS mix; the floor was -12 dB, and a -30 LUFS target from a -9 LUFS mix stopped at -21)
DRIVE_MIN_DB, DRIVE_MAX_DB = BY_ID["out.drive_db"].min, BY_ID["out.drive_db"].max
MIN_SLOPE = 0.25         # LU per dB of drive below which more drive only crushes the material
LOSS_EXPONENT = 2.5      # limiter loss ~ (drive above where it is idle)^k: 2.4-2.7 measured on the test programmes
FREE_GUARD_DB = 0.5      # the secant's unlimited anchor sits this far below the limiter's threshold
PRE_BUDGET_BYTES = 480 * 1024 ** 2   # the split search's in-memory first part: ~10.9 min at 48 kHz stereo
SUBTYPES = {"16": "PCM_16", "24": "PCM_24", "32f": "FLOAT"}
FORMATS = {".wav": "WAV", ".flac": "FLAC", ".aif": "AIFF", ".aiff": "AIFF"}
RF64_BYTES = 4 * 1024 ** 3 - 1024 * 1024   # past this a WAV header cannot hold the size
DUAL_MONO_DB = 10.0 * math.log10(2.0)      # a mono file fed to both channels reads this much louder
MIN_RATE, MAX_RATE = 8000, 384000          # sample rates the chain is built for


class RenderError(Exception):
    """Something about the request or the files that a person has to fix; the message says what."""


@dataclass
class RenderResult:
    latency_samples: int
    drive_db: float
    passes: int
    target_lufs: float | None
    measured_lufs: float | None
    target_reached: bool | None
    shortfall_lu: float | None
    notes: list[str] = field(default_factory=list)
    passes_before_drive: int = 0           # runs of the chain before the drive (the split search: 1)
    input_faults: int = 0                  # input samples replaced by silence: NaN, infinite or beyond +80 dBFS
    input_analysis: dict | None = None     # the chain's meters (metered_by_the_chain), the conversion's, or None
    output_analysis: dict | None = None
    converted_from: int | None = None      # the input's sample rate, when --rate converted it


def _check_paths(src: Path, dst: Path, bit_depth: str) -> str:
    if not src.exists():
        raise RenderError(f"{src}: no such file")
    if src.is_dir():
        raise RenderError(f"{src}: is a directory, not an audio file")
    if not os.access(src, os.R_OK):
        raise RenderError(f"{src}: permission denied (the file is not readable)")
    _check_name(dst)
    if dst.exists() and (dst.resolve() == src.resolve() or os.path.samefile(dst, src)):
        raise RenderError(f"refusing to overwrite the input {src}: choose another output file")
    if dst.is_dir():
        raise RenderError(f"{dst}: is a directory; give an output file name such as {dst / src.name}")
    fmt = FORMATS.get(dst.suffix.lower())
    if fmt is None:
        raise RenderError(f"{dst}: unsupported output type {dst.suffix or '(none)'!r}; use .wav, .flac or .aiff")
    if fmt == "FLAC" and bit_depth == "32f":
        raise RenderError("FLAC cannot hold 32-bit float; use --bit-depth 16 or 24, or a .wav output")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise RenderError(f"{parent}: output folder does not exist")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise RenderError(f"{parent}: output folder is not writable (permission denied)")
    if dst.exists() and not os.access(dst, os.W_OK):
        raise RenderError(f"{dst}: output file exists and is not writable")
    return fmt


def _check_name(dst: Path) -> None:
    """RenderError when ``dst``'s name is longer than its filesystem takes (said now, not after the render)."""
    from firmware.atomic import name_max

    parent = dst.parent if str(dst.parent) else Path(".")
    size = len(os.fsencode(dst.name))
    if parent.is_dir() and size > name_max(parent):
        raise RenderError(f"{dst}: the file name is {size} bytes long; a file name holds at most {name_max(parent)}")


def _open_input(src: Path):
    """The input, read by numpy when it is a plain WAV (firmware/wav_reader.py), else by soundfile."""
    from firmware.wav_reader import open_wav

    snd = open_wav(src)
    if snd is None:
        import soundfile as sf

        try:
            snd = sf.SoundFile(str(src))
        except (sf.LibsndfileError, RuntimeError, ValueError) as e:
            detail = str(e).split(":")[-1].strip() or "unknown format"
            raise RenderError(f"{src}: not an audio file that can be read (WAV, FLAC, AIFF, ...): {detail}") from None
    if snd.frames == 0:
        snd.close()
        raise RenderError(f"{src}: contains no audio (0 frames)")
    if snd.channels not in (1, 2):
        snd.close()
        raise RenderError(f"{src}: has {snd.channels} channels; the mastering chain is stereo (1 or 2 channels)")
    return snd


def _open_output(path: Path, rate: int, channels: int, fmt: str, bit_depth: str, bext=None, name=None):
    """The output file, open for ``write(y)``: 16/24-bit WAV by firmware/wav_writer.py (libsndfile's
    bytes at a fraction of its CPU, and no soundfile import), the rest (RF64, FLAC, AIFF, float) by soundfile
    (:class:`firmware.sndfile_output.SoundFileOutput`: a failed write is an ``OSError`` naming ``name``,
    default ``path``, as the WAV writer's is).

    ``bext`` (a :class:`firmware.bwf.Bext`, WAV and RF64 only) gives the file a Broadcast Wave chunk;
    assigning the output's ``bext`` again before it is closed stamps the values known at the end."""
    if fmt == "WAV" and bit_depth in ("16", "24"):
        from firmware.wav_writer import WavWriter

        return WavWriter(path, rate, channels, int(bit_depth), bext=bext)
    from firmware.sndfile_output import SoundFileOutput

    out = SoundFileOutput(path, rate, channels, fmt, SUBTYPES[bit_depth], name=name)
    if bext is None:
        return out
    try:
        return _BextSoundFile(out, bext)
    except BaseException:
        out.abandon()
        raise


class _BextSoundFile:
    """A soundfile output with a ``bext`` chunk that can be stamped again until it is closed."""

    def __init__(self, out, bext):
        self._out = out
        self.bext = bext

    @property
    def bext(self):
        return self._bext

    @bext.setter
    def bext(self, value) -> None:
        from firmware.bwf import set_with_libsndfile

        set_with_libsndfile(self._out.snd, value)
        self._bext = value

    def write(self, y) -> None:
        self._out.write(y)

    def close(self) -> None:
        self._out.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self._out.__exit__(*exc)


def source_bext(src: Path):
    """The input's Broadcast Wave chunk (its coding history and time reference carry over), or None."""
    from firmware.bwf import BextError, read

    try:
        return read(src)
    except (BextError, OSError):
        return None     # metadata that cannot be read is not worth refusing the audio for


def master_bext(source, rate: int, rate_in: int, channels: int, bit_depth: str, values: Mapping[str, Any],
                target_lufs: float | None, preset: str | None, track: tuple[int, int] | None = None):
    """The chunk a master starts with: what made it (``preset``: :func:`settings_phrase`; ``track``: its
    place in an album, ``(n, of)``), the source's history and time reference (at the output's rate);
    the loudness and the time are stamped by :func:`stamp_bext` once known."""
    from firmware import __version__
    from firmware.bwf import Bext, coding_line, history_after

    album = f" (album, track {track[0]} of {track[1]})" if track else ""
    parts = [settings_phrase(preset) + album]
    if target_lufs is not None:
        parts.append(f"target {target_lufs:.1f} LUFS")
    parts.append(f"ceiling {float(values['lim.ceiling_dbtp']):.1f} dBTP")
    what = ", ".join(parts)
    bits = "32" if bit_depth == "32f" else bit_depth
    ref = 0 if source is None else int(round(source.time_reference * rate / rate_in))
    return Bext(description=f"Mastered by masterbox {__version__}: {what}", time_reference=ref,
                coding_history=history_after(source, coding_line(rate, bits, channels,
                                                                 f"masterbox {__version__} ({what})")))


def stamp_bext(out, chain, channels: int) -> None:
    """Stamp ``out``'s chunk with the time and the loudness of what the chain just wrote into it.

    The chain's output meter heard the master (a mono file as dual mono: its loudness readings
    come down by 3.01 dB, as :func:`_master`'s ``file_lufs`` explains; range and peaks stay)."""
    import datetime as dt

    bext = getattr(out, "bext", None)
    if bext is None:
        return
    r = dict(chain.output_meter.readings())
    if channels == 1:
        for k in ("integrated_lufs", "max_momentary_lufs", "max_short_term_lufs"):
            if r.get(k) is not None:
                r[k] -= DUAL_MONO_DB
    bext.stamp_time(dt.datetime.now())
    bext.stamp_loudness(r)
    out.bext = bext


def read_block(snd, frames: int, buf):
    """``snd.read`` of up to ``frames`` float64 frames into ``buf``; a file libsndfile cannot decode on
    (a FLAC that lost sync, a cut MP3) is a RenderError naming it, not a LibsndfileError traceback."""
    try:
        return snd.read(frames, dtype="float64", always_2d=True, out=buf)
    except RuntimeError as e:
        import soundfile as sf

        if not isinstance(e, sf.LibsndfileError):
            raise
        where = snd.tell() if hasattr(snd, "tell") else "?"
        raise RenderError(f"{snd.name}: reading failed after {where} frames (the file is damaged?): "
                          f"{str(e).strip().removeprefix('Error : ')}") from None


def _input_blocks(snd, latency: int):
    """Yield the blocks of the open file ``snd`` as (n, 2) float64, then ``latency`` frames of silence.

    Each block is a view of one reused buffer: use it before asking for the next.
    """
    import numpy as np

    mono = snd.channels == 1
    inbuf = np.empty((BLOCK, snd.channels))
    x = np.zeros((BLOCK, 2))
    tail = latency
    while True:
        got = read_block(snd, BLOCK, inbuf)
        n = len(got)
        if n == 0:
            if tail == 0:
                break
            n = min(tail, BLOCK)
            tail -= n
            x[:n] = 0.0
        elif mono:
            x[:n, 0] = got[:, 0]
            x[:n, 1] = got[:, 0]
        else:
            x[:n] = got
        yield x[:n]


def _run(blocks, chain, write: Callable | None, mono: bool, tick: Callable[[int], None] | None = None) -> None:
    """Each block of ``blocks`` through ``chain``; ``write(y)`` gets the latency-compensated output.

    ``tick(frames)`` is told after each block how many frames it held (progress).
    """
    import numpy as np

    y = np.zeros((BLOCK, 2))
    skip = chain.latency_samples
    for xv in blocks:
        n = len(xv)
        yv = y[:n]
        chain.process(xv, yv)
        start = min(skip, n)
        skip -= start
        if write is not None and start < n:
            out = yv[start:]
            write(out[:, :1] if mono else out)
        if tick is not None:
            tick(n)


def render_pass(src: Path, chain, write: Callable | None = None, tick: Callable[[int], None] | None = None) -> None:
    """Stream ``src`` through ``chain`` once; ``write(y)`` receives latency-compensated output blocks."""
    with _open_input(src) as snd:
        _run(_input_blocks(snd, chain.latency_samples), chain, write, snd.channels == 1, tick)


def container(fmt: str, frames: int, channels: int, bit_depth: str) -> str:
    """``fmt``, or RF64 for a WAV whose samples would pass what a RIFF header can hold."""
    if fmt == "WAV" and frames * channels * {"16": 2, "24": 3, "32f": 4}[bit_depth] > RF64_BYTES:
        return "RF64"
    return fmt


class _Ticker:
    """Turns blocks done into ``fraction(stage, 0..1)`` calls for one pass over ``total`` frames."""

    def __init__(self, fraction: Callable[[str, float], None] | None, total: int):
        self.fraction = fraction
        self.total = max(int(total), 1)
        self.stage = ""
        self.done = 0

    def start(self, stage: str) -> Callable[[int], None] | None:
        """A new pass called ``stage``; returns the ``tick`` for :func:`_run` (None without a listener)."""
        if self.fraction is None:
            return None
        self.stage, self.done = stage, 0
        self.fraction(stage, 0.0)
        return self.tick

    def tick(self, frames: int) -> None:
        self.done += frames
        self.fraction(self.stage, min(self.done / self.total, 1.0))


def pre_budget_bytes() -> int:
    """Memory the split drive search may hold (the first part's output, float64 stereo).

    PRE_BUDGET_BYTES (~10 minutes at 48 kHz), or a third of the memory the kernel says is
    available if that is less: a longer file is searched with full passes instead.
    """
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return min(PRE_BUDGET_BYTES, int(line.split()[1]) * 1024 // 3)
    except (OSError, ValueError, IndexError):
        pass
    return PRE_BUDGET_BYTES


class _SplitPasses:
    """The drive search's passes when the first part of the chain fits in memory.

    The output drive acts only on the limiter and what follows it, so the chain before it
    (input, EQ, multiband, stereo) runs once (``SPLIT_PRE``) into ``self.pre``, and each drive
    the search tries runs only drive .. dither from there (``SPLIT_POST``): the same kernel,
    the same arithmetic, so every pass equals a whole-chain pass sample for sample
    (:meth:`dsp.chain.Chain.set_split`).
    """

    def __init__(self, src: Path, chain, frames: int, values: Mapping[str, Any],
                 tick: Callable[[int], None] | None = None):
        import numpy as np

        from dsp.chain import SPLIT_PRE

        self.chain = chain
        latency = chain.latency_samples
        # anonymous pages of its own rather than np.empty: numpy asks for transparent huge pages
        # on big arrays, and the kernel's compaction to make them cost 0.02-0.5 s of system time
        # for 5 minutes here; 4 kB pages populated in one go cost ~0.08 s (faulted one by one 0.13)
        flags = mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | getattr(mmap, "MAP_POPULATE", 0)
        self._pages = mmap.mmap(-1, (frames + latency) * 2 * 8, flags=flags)
        self.pre = np.frombuffer(self._pages, dtype=np.float64).reshape(frames + latency, 2)
        chain.set_split(SPLIT_PRE)
        chain.reset()
        chain.set_values(values)
        o = 0
        with _open_input(src) as snd:
            self.mono = snd.channels == 1
            for x in _input_blocks(snd, latency):
                n = len(x)
                chain.process(x, self.pre[o:o + n])
                o += n
                if tick is not None:
                    tick(n)
        if o != len(self.pre):
            raise RenderError(f"{src}: the file changed while it was read ({o - latency} of {frames} frames)")

    def run(self, values: Mapping[str, Any], write: Callable | None, tick: Callable[[int], None] | None = None) -> bool:
        """One pass at ``values`` (only the drive may differ); False if it cannot stand for a whole-chain pass."""
        from dsp.chain import SPLIT_POST

        chain = self.chain
        chain.set_split(SPLIT_POST)
        chain.reset()
        chain.set_values(values)
        pre = self.pre
        _run((pre[o:o + BLOCK] for o in range(0, len(pre), BLOCK)), chain, write, self.mono, tick)
        # a fault reset (never seen with sane input) would also have cleared the first part
        return chain.resets == 0


def _drive_step(history: list[tuple[float, float]], err: float, anchor: tuple[float, float] | None):
    """(step, None): how far to move the drive after the last pass; (None, why) when more drive only crushes.

    Two passes or more: the secant of the last two. After one pass, with ``anchor`` (a drive at
    which the limiter does nothing yet, and the loudness there): the limiter's loss is modelled
    as growing with the drive above the anchor to the power :data:`LOSS_EXPONENT` (no loss and
    no slope at the onset), whose slope at the last drive is ``1 - k loss / (drive - anchor)``;
    the plain secant through the anchor would overestimate it (loudness against drive is
    concave) and stop short. Without an anchor: a step of the error.
    """
    if len(history) >= 2:
        (d0, m0), (d1, m1) = history[-2:]
        slope = (m1 - m0) / (d1 - d0) if d1 != d0 else 1.0
        if err > 0 and slope < MIN_SLOPE and d1 > d0:
            return None, f"more drive only crushes the material ({slope:.2f} LU per dB)"
        return err / max(slope, MIN_SLOPE), None
    d1, m1 = history[-1]
    if anchor is not None and anchor[0] < d1:
        da, ma = anchor
        loss = (ma - da + d1) - m1
        slope = 1.0 - LOSS_EXPONENT * loss / (d1 - da)
        return err / min(max(slope, MIN_SLOPE), 1.0), None
    return err, None


def first_guess(target_lufs: float, pre_lufs: float, pre_true_peak: float,
                values: Mapping[str, Any]) -> tuple[float, tuple[float, float]]:
    """(first drive, anchor) from the loudness and true peak before the drive (the first part of the chain).

    The first drive is the target minus that loudness; the anchor is a drive at which the
    limiter does nothing yet (its threshold, less :data:`FREE_GUARD_DB`, below the true peak)
    and the loudness there, for :func:`_drive_step`.
    """
    from dsp.limiter import MARGIN_DB

    drive = min(max(target_lufs - pre_lufs, DRIVE_MIN_DB), DRIVE_MAX_DB)
    ceiling = float(values.get("lim.ceiling_dbtp", -1.0))
    idle = ceiling - MARGIN_DB - FREE_GUARD_DB - pre_true_peak
    return drive, (idle, pre_lufs + idle)


def search_drive(drive: float, target_lufs: float | None, anchor: tuple[float, float] | None,
                 run_pass: Callable[[float], float | None], notes: list[str],
                 no_loudness: Callable[[], str]) -> None:
    """The drive search: ``run_pass(drive)`` renders at that drive and returns the loudness it measured.

    From ``drive`` (the first guess) until within :data:`TOLERANCE_LU` of ``target_lufs``, at
    most :data:`MAX_PASSES` passes, the next drive from :func:`_drive_step`; one pass without a
    target. Why it stopped short goes to ``notes`` (``no_loudness()`` when a pass measured none).
    The last pass is the one kept.
    """
    history: list[tuple[float, float]] = []
    passes = 0
    while True:
        measured = run_pass(drive)
        passes += 1
        if target_lufs is None:
            break
        if measured is None:
            notes.append(no_loudness())
            break
        err = target_lufs - measured
        history.append((drive, measured))
        if abs(err) <= TOLERANCE_LU or passes >= MAX_PASSES:
            break
        step, why = _drive_step(history, err, anchor)
        if why:
            notes.append(why)
            break
        new = min(max(drive + step, DRIVE_MIN_DB), DRIVE_MAX_DB)
        if new == drive:
            notes.append(f"output drive is at its {'maximum' if new == DRIVE_MAX_DB else 'minimum'} ({new:+.0f} dB)")
            break
        drive = new


def master_file(src, dst, values: Mapping[str, Any], *, bit_depth: str = "24", target_lufs: float | None = None,
                progress: Callable[[str], None] | None = None, budget_bytes: int | None = None,
                rate: int | None = None, fraction: Callable[[str, float], None] | None = None,
                preset: str | None = None) -> RenderResult:
    """Render ``src`` to ``dst`` through the chain with ``values`` (a full set of user values).

    With ``target_lufs`` the output drive is searched so the integrated loudness lands on it.
    ``budget_bytes`` caps the memory of the split search (default :func:`pre_budget_bytes`).
    ``rate`` converts the input to that sample rate first (:mod:`firmware.rate_convert`); the
    chain runs at it and the output has it. ``fraction(stage, done)`` follows each pass as it goes
    (``stage``: "converting", "measuring", "pass N"; ``done``: 0..1 of that pass; the number of
    passes is not known in advance).

    A WAV output carries a Broadcast Wave ``bext`` chunk (:mod:`firmware.bwf`): the ``preset``
    name (None: "no preset"), target and ceiling, when, the source's coding history and time reference, and the
    master's own loudness, true peak and loudness range.
    """
    src, dst = Path(src), Path(dst)
    source = source_bext(src) if src.is_file() else None
    if rate is not None and bit_depth in SUBTYPES:     # (a bad bit depth: _master says so)
        if not MIN_RATE <= rate <= MAX_RATE:
            raise RenderError(f"sample rate {rate} Hz: the chain runs at {MIN_RATE}..{MAX_RATE} Hz")
        _check_paths(src, dst, bit_depth)               # before a conversion that takes a while
        with _open_input(src) as snd:
            rate_in, frames_in = snd.samplerate, snd.frames
        if rate != rate_in:
            return _master_converted(src, dst, values, rate, rate_in, frames_in, bit_depth=bit_depth,
                                     target_lufs=target_lufs, progress=progress, budget_bytes=budget_bytes,
                                     fraction=fraction, preset=preset, source=(source, rate_in))
    return _master(src, dst, values, bit_depth=bit_depth, target_lufs=target_lufs, progress=progress,
                   budget_bytes=budget_bytes, fraction=fraction, preset=preset, source=(source, None))


def _master_converted(src: Path, dst: Path, values, rate: int, rate_in: int, frames_in: int, **kw) -> RenderResult:
    """:func:`master_file` with a rate conversion first, into a temporary file next to ``dst``."""
    from firmware.rate_convert import convert_file

    progress = kw.get("progress")
    from firmware.atomic import make_temporary

    converted = make_temporary(dst.parent, dst.name, str(rate), ".tmp.wav")
    try:
        if progress:
            progress(f"converting {rate_in} Hz -> {rate} Hz before the chain")
        tick = _Ticker(kw.get("fraction"), frames_in).start("converting")
        faults, meter = convert_file(src, converted, rate, _open_input, tick)
        result = _master(converted, dst, values, **kw)
    finally:
        converted.unlink(missing_ok=True)
    result.converted_from = rate_in
    result.input_faults = max(result.input_faults, faults)
    # the input is the file, measured as it was read for the conversion (the chain's input meter heard
    # the converted audio: another rate, length and true peak; until 2026-11-24 that was reported)
    result.input_analysis = meter_analysis(meter, meter.frames, rate_in, meter.channels)
    return result


def _master(src: Path, dst: Path, values: Mapping[str, Any], *, bit_depth: str, target_lufs: float | None,
            progress: Callable[[str], None] | None, budget_bytes: int | None,
            fraction: Callable[[str, float], None] | None = None, preset: str | None = None,
            source: tuple = (None, None)) -> RenderResult:
    """:func:`master_file` at the input's own rate (``source``: the original input's bext and rate)."""
    from dsp.chain import SPLIT_ALL, SPLIT_PRE, Chain

    if bit_depth not in SUBTYPES:
        raise RenderError(f"bit depth must be one of {', '.join(SUBTYPES)}, got {bit_depth!r}")
    fmt = _check_paths(src, dst, bit_depth)
    with _open_input(src) as snd:
        rate, channels, frames = snd.samplerate, snd.channels, snd.frames
    if rate < MIN_RATE or rate > MAX_RATE:
        raise RenderError(f"{src}: unsupported sample rate {rate} Hz")
    chain = Chain(rate, 2, max_block=BLOCK)
    chain.set_output_bits(None if bit_depth == "32f" else int(bit_depth))
    vals = dict(values)
    drive = float(vals.get("out.drive_db", 0.0))
    fmt = container(fmt, frames, channels, bit_depth)
    budget = pre_budget_bytes() if budget_bytes is None else budget_bytes
    bext = None
    if fmt in ("WAV", "RF64"):
        bext = master_bext(source[0], rate, source[1] or rate, channels, bit_depth, vals, target_lufs, preset)

    from firmware.atomic import make_temporary

    result = RenderResult(chain.latency_samples, drive, 0, target_lufs, None, None, None)
    split: list[_SplitPasses] = []
    ticker = _Ticker(fraction, frames + chain.latency_samples)
    by_chain = metered_by_the_chain(channels, frames, rate)

    def file_lufs(chain_lufs: float | None) -> float | None:
        """The file's loudness from the chain's meter, which hears a mono file as dual mono.

        Two equal channels read 10 log10(2) = 3.01 dB above the one channel that BS.1770 (and
        ffmpeg, pyloudnorm, ``masterbox analyze``) measures in a mono file, block by block (the
        relative gate moves with it; only blocks within 3 dB of the -70 LUFS absolute gate can
        differ); the target is the loudness the file will measure.
        """
        if chain_lufs is None or channels == 2:
            return chain_lufs
        return chain_lufs - DUAL_MONO_DB

    def count_faults() -> None:
        """After a pass that read the input: the samples the chain replaced (a mono file is fed twice)."""
        result.input_faults = max(result.input_faults, chain.faults // (2 if channels == 1 else 1))

    def one_pass() -> None:
        """Render at ``drive`` into the temporary file (each pass overwrites it)."""
        vals["out.drive_db"] = drive
        result.passes += 1
        tick = ticker.start(f"pass {result.passes}")
        if split:
            with _open_output(tmp, rate, channels, fmt, bit_depth, bext, dst) as out:
                if split[0].run(vals, out.write, tick):
                    stamp_bext(out, chain, channels)
                    return
            tick = ticker.start(f"pass {result.passes}")
            split.clear()       # a fault reset: this input needs whole-chain passes
            result.notes.append("the chain reset itself on this input: searched with whole-chain passes")
        chain.set_split(SPLIT_ALL)
        chain.reset()
        chain.set_values(vals)
        # opened afresh: what a split pass that could not stand wrote is thrown away, not appended to
        with _open_output(tmp, rate, channels, fmt, bit_depth, bext, dst) as out:
            render_pass(src, chain, out.write, tick)
            stamp_bext(out, chain, channels)
        count_faults()

    tmp = make_temporary(dst.parent, dst.name)      # (just before the try that removes it: SIGTERM, Ctrl-C)
    try:
        anchor = None         # (a drive where the limiter is idle, the loudness there): costs no pass
        if target_lufs is not None:
            # the first part of the chain, once: its loudness and true peak give the first guess
            vals["out.drive_db"] = drive
            result.passes_before_drive = 1
            tick = ticker.start("measuring")
            if (frames + chain.latency_samples) * 16 <= budget:
                split.append(_SplitPasses(src, chain, frames, vals, tick))
                if by_chain:
                    result.input_analysis = meter_analysis(chain.input_meter, frames, rate, channels, channels == 1)
            else:
                chain.set_split(SPLIT_PRE)     # too long to keep: measure only, then whole-chain passes
                chain.reset()
                chain.set_values(vals)
                render_pass(src, chain, None, tick)
            count_faults()
            pre = chain.output_meter.readings()
            pre_lufs = file_lufs(pre["integrated_lufs"])
            if pre_lufs is not None:
                drive, anchor = first_guess(target_lufs, pre_lufs, pre["true_peak_dbtp"], vals)
                if progress:
                    progress(f"before the drive: {pre_lufs:.2f} LUFS, "
                             f"true peak {pre['true_peak_dbtp']:.2f} dBTP"
                             + (" (kept in memory for the search)" if split else ""))

        def measured_pass(d: float) -> float | None:
            # every pass writes: from the first part's loudness the first guess usually lands
            # (the limiter costs little loudness at sane targets); if not, the next overwrites it
            nonlocal drive
            drive = d
            one_pass()
            measured = file_lufs(chain.output_meter.readings()["integrated_lufs"])
            result.measured_lufs = measured
            result.drive_db = drive
            if progress:
                progress(f"pass {result.passes}: drive {drive:+.2f} dB -> "
                         f"{'no integrated loudness' if measured is None else f'{measured:.2f} LUFS'}")
            return measured

        search_drive(drive, target_lufs, anchor, measured_pass, result.notes, lambda: no_loudness_reason(frames, rate))
        if by_chain:
            if result.input_analysis is None:
                result.input_analysis = meter_analysis(chain.input_meter, frames, rate, channels, channels == 1)
            result.output_analysis = meter_analysis(chain.output_meter, frames, rate, channels, channels == 1)
        if target_lufs is not None and result.measured_lufs is None:
            result.target_reached = False        # nothing to measure: the notes say why
        elif target_lufs is not None:
            miss = target_lufs - result.measured_lufs
            result.target_reached = abs(miss) <= 0.5
            result.shortfall_lu = None if result.target_reached else round(miss, 2)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        from firmware.atomic import fsync_dir, ordinary_mode

        os.chmod(tmp, ordinary_mode(dst))
        os.replace(tmp, dst)

        fsync_dir(dst.parent if str(dst.parent) else Path("."))
    except BaseException:
        try:
            tmp.unlink()
        except FileNotFoundError:
            pass
        raise
    return result


def no_loudness_reason(frames: int, rate: int) -> str:
    """Why a file has no integrated loudness (BS.1770 needs one 400 ms block above -70 LUFS)."""
    from firmware.analysis import MIN_DURATION_S

    if frames < MIN_DURATION_S * rate:      # the bound under which ``analyze`` refuses a file
        return (f"the input is {frames / rate * 1000:.0f} ms long, shorter than the 400 ms block a loudness "
                "measurement needs: mastered at the drive as set")
    return "the input is silent (no 400 ms block above -70 LUFS): mastered at the drive as set"


def meter_analysis(meter, frames: int, rate: int, channels: int, dual_mono: bool = False) -> dict:
    """The ``analyze --json`` dict from one of the chain's meters (same meter as analyze_file).

    The chain's meters ran inside the render, so this costs nothing; they saw the file plus
    ``latency`` frames of silence (the delay line's), which the gating ignores. ``dual_mono``: the
    meter heard a mono file on both channels, so its loudness figures are brought down by 3.01 dB
    (PLR up by as much) to what the mono file measures; range and peaks are the same.
    """
    from firmware.analysis import METER_KEYS, ROUND_DIGITS

    r = dict(meter.readings())
    if dual_mono:
        for k in ("integrated_lufs", "max_momentary_lufs", "max_short_term_lufs", "lra_low_lufs", "lra_high_lufs"):
            if r.get(k) is not None:
                r[k] -= DUAL_MONO_DB
        if r.get("plr_db") is not None:
            r["plr_db"] += DUAL_MONO_DB
    out = {k: (None if r.get(k) is None else round(r[k], ROUND_DIGITS)) for k in METER_KEYS}
    out.update(duration_s=round(frames / rate, 6), sample_rate=int(rate), channels=int(channels), frames=int(frames))
    return out


def metered_by_the_chain(channels: int, frames: int, rate: int) -> bool:
    """Whether a file's input and output analysis come from the chain's own meters during the render.

    Stereo files: yes (the same meter as ``analyze``, at no cost). Mono files are analysed as files
    (``analyze_file``: BS.1770 on the one channel, where the chain's meters hear dual mono), except
    when shorter than the 400 ms ``analyze`` needs: it would refuse them after the master was written
    (until 2026-11-24: exit 2, no JSON). Their loudness is undefined either way and their peaks are the
    dual mono's, so the chain's meters say what a stereo file of that length gets.
    """
    from firmware.analysis import MIN_DURATION_S

    return channels == 2 or frames < MIN_DURATION_S * rate
