"""Album mastering: every track through the same chain, one shared output drive.

``master_album`` is what ``masterbox album`` does. Each track runs through a fresh chain (every
state reset between tracks: nothing of one song bleeds into the next) with the same parameter
values and one ``out.drive_db`` for all of them, searched so that the *album's* integrated
loudness lands on the target; the songs keep their relative levels (a ballad stays quieter than
the single) wherever the limiter leaves them alone.

The album's loudness is BS.1770 gating over all tracks' 400 ms blocks pooled: what a meter
reads over the tracks played back to back (less the few blocks that would straddle a join).
The chain's meters keep their gating blocks as histograms (count and exact energy sum per
0.01 LU bin, :mod:`dsp.meter`), so each track's histogram is copied after it is rendered and
the album's loudness is computed from their bin-by-bin sums (:func:`pooled_integrated`): no
audio is kept or concatenated. A mono track is metered by the chain as dual mono; its energies
are halved so it counts as the mono file measures (BS.1770: its one channel).

The search is ``masterbox master``'s (:func:`firmware.render.first_guess`,
:func:`firmware.render.search_drive`): the first part of the chain (input .. stereo) runs once
per track and the pooled loudness before the drive gives the first guess; each drive tried is
one pass over the whole album. A track's first part is kept in memory while the album's kept
parts fit in :func:`firmware.render.pre_budget_bytes` (~10 minutes at 48 kHz); later tracks run
whole-chain passes (same samples). Every pass writes each track to its temporary file in OUTDIR;
after the last pass they are renamed into place. Anything refused is refused before anything is
written; a failure during the passes leaves no temporary file behind.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from firmware.atomic import make_temporary
from firmware.render import (
    BLOCK,
    DUAL_MONO_DB,
    FORMATS,
    MAX_RATE,
    MIN_RATE,
    SUBTYPES,
    RenderError,
    _check_name,
    _check_paths,
    _open_input,
    _open_output,
    _SplitPasses,
    _Ticker,
    container,
    first_guess,
    master_bext,
    meter_analysis,
    metered_by_the_chain,
    pre_budget_bytes,
    render_pass,
    search_drive,
    source_bext,
    stamp_bext,
)

__all__ = ["AlbumResult", "AlbumTrack", "master_album", "pooled_integrated"]


@dataclass
class AlbumTrack:
    src: Path
    dst: Path
    frames: int
    channels: int
    fmt: str
    input_faults: int = 0                  # input samples replaced by silence (NaN, infinite, beyond +80 dBFS)
    input_analysis: dict | None = None     # the chain's meters (metered_by_the_chain), the conversion's, or None
    output_analysis: dict | None = None
    measured_lufs: float | None = None     # the track's own output loudness at the final drive
    rate: int = 0                          # the input's sample rate
    converted: Path | None = None          # the input converted to the album's rate (--rate), or None
    tmp: Path | None = None
    split: Any = None                      # its first part kept in memory (_SplitPasses), or None
    input_hist: Any = None                 # (energy sums, counts) of its gating blocks, as the file measures
    output_hist: Any = None
    bext: Any = None                       # its Broadcast Wave chunk (firmware.bwf.Bext; WAV and RF64)

    @property
    def source(self) -> Path:
        """The file the chain reads: the input, or its conversion to the album's rate."""
        return self.converted or self.src


@dataclass
class AlbumResult:
    tracks: list[AlbumTrack]
    sample_rate: int
    latency_samples: int
    drive_db: float
    passes: int
    target_lufs: float | None
    input_lufs: float | None = None        # the album's integrated loudness, pooled gating
    measured_lufs: float | None = None
    target_reached: bool | None = None
    shortfall_lu: float | None = None
    notes: list[str] = field(default_factory=list)
    passes_before_drive: int = 0
    kept_in_memory: int = 0                # tracks whose first part the search kept in memory


def histogram(meter, dual_mono: bool):
    """(energy sums, counts) of ``meter``'s integrated-loudness gating blocks, copied.

    ``dual_mono``: the meter heard a mono track on both channels (the chain's meters), which reads
    3.01 dB louder than the mono file (exactly twice the energy): its sums are halved, so they are
    what the file measures.
    """
    from dsp.meter import HIST_BINS, I_O_COUNT_INT, I_O_HIST_INT

    f, i = meter.f, meter.i
    sums = f[i[I_O_HIST_INT]:i[I_O_HIST_INT] + HIST_BINS].copy()
    counts = i[i[I_O_COUNT_INT]:i[I_O_COUNT_INT] + HIST_BINS].copy()
    if dual_mono:
        sums *= 0.5
    return sums, counts


def pooled_integrated(hists: Sequence) -> float | None:
    """BS.1770 integrated loudness (LUFS) of the gating blocks of several tracks together; None if none passes.

    ``hists``: one (energy sums, counts) pair per track, :func:`histogram`'s. The pairs are summed
    bin by bin (the blocks of all tracks pooled), then gated as :func:`dsp.meter._integrated`
    gates one track (absolute gate, relative gate 10 LU under the mean of what passed it, decided
    per bin by its mean), in the same order of operations: for one stereo track it is that
    function's result. A bin whose mean is under the absolute gate (a halved mono block) is dropped.
    """
    import numpy as np

    from dsp.meter import ABSOLUTE_GATE_LUFS, LUFS_OFFSET, RELATIVE_GATE_LU

    if not hists:
        return None
    sums = np.zeros_like(hists[0][0])
    counts = np.zeros_like(hists[0][1])
    for s, n in hists:
        sums += s
        counts += n
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = sums / counts
    live = (counts > 0) & (mean > 10.0 ** ((ABSOLUTE_GATE_LUFS - LUFS_OFFSET) / 10.0))
    count = int(counts[live].sum())
    if count == 0:
        return None
    total = float(np.cumsum(np.where(live, sums, 0.0))[-1])     # summed in bin order, as the kernel does
    gate = total / count * 10.0 ** (RELATIVE_GATE_LU / 10.0)
    keep = live & (mean > gate)
    count = int(counts[keep].sum())
    if count == 0:
        return None
    total = float(np.cumsum(np.where(keep, sums, 0.0))[-1])
    ms = total / count
    return LUFS_OFFSET + 10.0 * math.log10(ms) if ms > 0.0 else None


def master_name(src: Path, suffix: str = "") -> str:
    """The file name of ``src``'s master: its own, with ``suffix`` before the extension; ``.wav`` for an
    input whose type a master cannot be (MP3, Ogg, W64, CAF, ...: the masters are WAV, FLAC or AIFF, as
    the inputs' own extensions say; until 2026-11-24 such an album was refused with "unsupported output
    type '.mp3'", which ``album`` gave no way to change)."""
    return f"{src.stem}{suffix}{src.suffix if src.suffix.lower() in FORMATS else '.wav'}"


def check_album(outdir, inputs: Sequence, bit_depth: str, suffix: str = "",
                rate: int | None = None) -> tuple[Path, list[AlbumTrack], int]:
    """(OUTDIR, the tracks, the album's sample rate); RenderError for anything that must be fixed first.

    Each master is OUTDIR/:func:`master_name`. Without ``rate`` the tracks must share one sample
    rate; with it, any rate will do (each is converted). Reads only the inputs' headers; writes nothing.
    """
    if rate is not None and not MIN_RATE <= rate <= MAX_RATE:
        raise RenderError(f"sample rate {rate} Hz: the chain runs at {MIN_RATE}..{MAX_RATE} Hz")
    if any(c in suffix for c in ("/", "\\", "\x00")) or suffix in (".", ".."):
        raise RenderError(f"the suffix {suffix!r} would not be part of a file name")
    if bit_depth not in SUBTYPES:
        raise RenderError(f"bit depth must be one of {', '.join(SUBTYPES)}, got {bit_depth!r}")
    if not inputs:
        raise RenderError("no input files")
    outdir = Path(outdir)
    if not outdir.exists():
        raise RenderError(f"{outdir}: output folder does not exist")
    if not outdir.is_dir():
        raise RenderError(f"{outdir}: is not a folder (the album's masters go into a folder, one per input)")
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise RenderError(f"{outdir}: output folder is not writable (permission denied)")
    srcs = [Path(p) for p in inputs]
    seen: dict[str, Path] = {}
    for src in srcs:
        name = master_name(src, suffix)
        _check_name(outdir / name)
        if name in seen:
            raise RenderError(f"two inputs share the file name {src.name!r} ({seen[name]} and {src}): "
                              f"both masters would be {outdir / name}; rename one")
        seen[name] = src
    for src in srcs:
        dst = outdir / master_name(src, suffix)
        for other in srcs:
            if dst.exists() and other.exists() and os.path.samefile(dst, other):
                raise RenderError(f"refusing to overwrite the input {other}: the master of {src} would be "
                                  f"{dst}; choose another output folder")
    tracks = []
    rates = {}
    for src in srcs:
        dst = outdir / master_name(src, suffix)
        fmt = _check_paths(src, dst, bit_depth)
        with _open_input(src) as snd:
            rate_in, channels, frames = snd.samplerate, snd.channels, snd.frames
        if rate_in < MIN_RATE or rate_in > MAX_RATE:
            raise RenderError(f"{src}: unsupported sample rate {rate_in} Hz")
        tracks.append(AlbumTrack(src, dst, frames, channels, fmt, rate=rate_in))
        rates.setdefault(rate_in, []).append(src.name)
    if rate is None and len(rates) > 1:
        listed = "; ".join(f"{r} Hz: {', '.join(names)}" for r, names in sorted(rates.items()))
        raise RenderError(f"the tracks do not share one sample rate ({listed}); give the album one with "
                          "--rate HZ (each track is converted first)")
    album_rate = rate or next(iter(rates))
    for t in tracks:        # a converted track's length at the album's rate, rounded up
        frames = t.frames if t.rate == album_rate else t.frames * album_rate // t.rate + 1
        t.fmt = container(t.fmt, frames, t.channels, bit_depth)
    return outdir, tracks, album_rate


def _convert(tracks: list[AlbumTrack], rate: int, outdir: Path, fraction: Callable[[str, float], None] | None,
             progress: Callable[[str], None] | None) -> None:
    """Each track not at ``rate`` converted into a temporary file in OUTDIR (``t.converted``; the
    caller deletes them), as ``master --rate`` converts: the ceiling then holds at ``rate``."""
    from firmware.rate_convert import convert_file

    todo = [t for t in tracks if t.rate != rate]
    if not todo:
        return
    tick = _Ticker(fraction, sum(t.frames for t in todo)).start("converting")
    for t in todo:
        if progress:
            progress(f"converting {t.src.name}: {t.rate} Hz -> {rate} Hz before the chain")
        t.converted = make_temporary(outdir, t.dst.name, str(rate), ".tmp.wav")
        t.input_faults, meter = convert_file(t.src, t.converted, rate, _open_input, tick, name=t.dst)
        # the track's input is the file, measured as it was read (not the converted audio the chain hears)
        t.input_analysis = meter_analysis(meter, meter.frames, t.rate, t.channels)
        t.input_hist = histogram(meter, dual_mono=False)
        with _open_input(t.converted) as snd:
            t.frames = snd.frames


def master_album(outdir, inputs: Sequence, values: Mapping[str, Any], *, bit_depth: str = "24",
                 target_lufs: float | None = None, progress: Callable[[str], None] | None = None,
                 budget_bytes: int | None = None, suffix: str = "", rate: int | None = None,
                 fraction: Callable[[str, float], None] | None = None, preset: str | None = None) -> AlbumResult:
    """Master ``inputs`` into ``outdir`` through the chain with ``values``, one shared drive.

    Each master is named :func:`master_name` (the input's file name, ``suffix`` before its
    extension). With ``target_lufs`` the drive is searched so the album's pooled integrated
    loudness lands on it. ``budget_bytes`` caps the memory the search keeps (default
    :func:`firmware.render.pre_budget_bytes`). ``rate`` converts every track not at it first
    (the album is mastered and delivered at it: a 44.1 kHz CD from 48 kHz recordings); without it
    the tracks must share one rate. ``fraction(stage, 0..1)`` hears how far each pass over the
    whole album is ("converting", "measuring", "pass 1", ...), as ``master_file``'s does. Each WAV
    master carries a Broadcast Wave chunk as ``master_file``'s does (``preset`` names the preset).
    """
    outdir, tracks, rate = check_album(outdir, inputs, bit_depth, suffix, rate)
    for n, t in enumerate(tracks, 1):
        if t.fmt in ("WAV", "RF64"):
            t.bext = master_bext(source_bext(t.src), rate, t.rate, t.channels, bit_depth, values, target_lufs,
                                 preset, track=(n, len(tracks)))
    try:
        _convert(tracks, rate, outdir, fraction, progress)
        return _master_album(outdir, tracks, rate, values, bit_depth, target_lufs, progress, budget_bytes,
                             fraction)
    finally:
        for t in tracks:
            if t.converted is not None:
                t.converted.unlink(missing_ok=True)


def _master_album(outdir: Path, tracks: list[AlbumTrack], rate: int, values: Mapping[str, Any], bit_depth: str,
                  target_lufs: float | None, progress: Callable[[str], None] | None, budget_bytes: int | None,
                  fraction: Callable[[str, float], None] | None) -> AlbumResult:
    """:func:`master_album` once the tracks are checked (and converted): the drive search and the writes."""
    from dsp.chain import SPLIT_ALL, SPLIT_PRE, Chain

    chain = Chain(rate, 2, max_block=BLOCK)
    ticker = _Ticker(fraction, sum(t.frames for t in tracks) + len(tracks) * chain.latency_samples)
    chain.set_output_bits(None if bit_depth == "32f" else int(bit_depth))
    vals = dict(values)
    drive = float(vals.get("out.drive_db", 0.0))
    budget = pre_budget_bytes() if budget_bytes is None else budget_bytes
    result = AlbumResult(tracks, rate, chain.latency_samples, drive, 0, target_lufs)

    def count_faults(t: AlbumTrack) -> None:
        t.input_faults = max(t.input_faults, chain.faults // (2 if t.channels == 1 else 1))

    def took_input(t: AlbumTrack) -> None:
        """After the chain's input meter heard all of ``t`` (a first-part or whole-chain run)."""
        count_faults(t)
        if t.converted is not None:
            return              # its input was measured as the file, as it was converted (_convert)
        t.input_hist = histogram(chain.input_meter, t.channels == 1)
        if metered_by_the_chain(t.channels, t.frames, rate):
            t.input_analysis = meter_analysis(chain.input_meter, t.frames, rate, t.channels, t.channels == 1)

    def render_track(t: AlbumTrack, tick) -> None:
        """``t`` at ``vals`` into its temporary file (overwritten), from a fresh chain."""
        if t.split is not None:
            with _open_output(t.tmp, rate, t.channels, t.fmt, bit_depth, t.bext, t.dst) as out:
                ok = t.split.run(vals, out.write, tick)
                if ok:
                    stamp_bext(out, chain, t.channels)
            if ok:
                return
            t.split = None          # a fault reset: this track needs whole-chain passes (and is rewritten)
            result.notes.append(f"the chain reset itself on {t.src.name}: searched with whole-chain passes")
        chain.set_split(SPLIT_ALL)
        chain.reset()
        chain.set_values(vals)
        with _open_output(t.tmp, rate, t.channels, t.fmt, bit_depth, t.bext, t.dst) as out:
            render_pass(t.source, chain, out.write, tick)
            stamp_bext(out, chain, t.channels)
        took_input(t)

    def album_pass(d: float) -> float | None:
        """Every track at drive ``d``; the album's loudness."""
        nonlocal drive
        drive = d
        vals["out.drive_db"] = drive
        tick = ticker.start(f"pass {result.passes + 1}")
        for t in tracks:
            render_track(t, tick)
            t.output_hist = histogram(chain.output_meter, t.channels == 1)
            lufs = chain.output_meter.readings()["integrated_lufs"]
            t.measured_lufs = lufs if lufs is None or t.channels == 2 else lufs - DUAL_MONO_DB
            if metered_by_the_chain(t.channels, t.frames, rate):
                t.output_analysis = meter_analysis(chain.output_meter, t.frames, rate, t.channels, t.channels == 1)
        result.passes += 1
        measured = pooled_integrated([t.output_hist for t in tracks])
        result.measured_lufs = measured
        result.drive_db = drive
        if progress:
            progress(f"pass {result.passes}: drive {drive:+.2f} dB -> album "
                     f"{'has no integrated loudness' if measured is None else f'{measured:.2f} LUFS'}")
        return measured

    anchor = None
    try:
        if target_lufs is not None:
            # the first part of the chain, once per track: the album's loudness and true peak
            # before the drive give the first guess, as for one file
            vals["out.drive_db"] = drive
            result.passes_before_drive = 1
            kept = 0
            pre_hists = []
            pre_peak = -math.inf
            tick = ticker.start("measuring")
            for t in tracks:
                need = (t.frames + chain.latency_samples) * 16
                if kept + need <= budget:
                    t.split = _SplitPasses(t.source, chain, t.frames, vals, tick)
                    kept += need
                    result.kept_in_memory += 1
                else:
                    chain.set_split(SPLIT_PRE)          # too much to keep: measure only, whole-chain passes
                    chain.reset()
                    chain.set_values(vals)
                    render_pass(t.source, chain, None, tick)
                took_input(t)
                pre_hists.append(histogram(chain.output_meter, t.channels == 1))
                peak = chain.output_meter.readings()["true_peak_dbtp"]
                if peak is not None:
                    pre_peak = max(pre_peak, peak)
            result.input_lufs = pooled_integrated([t.input_hist for t in tracks])
            pre_lufs = pooled_integrated(pre_hists)
            if pre_lufs is not None:
                drive, anchor = first_guess(target_lufs, pre_lufs, pre_peak, vals)
                if progress:
                    progress(f"before the drive: album {pre_lufs:.2f} LUFS, true peak {pre_peak:.2f} dBTP "
                             f"({result.kept_in_memory} of {len(tracks)} tracks kept in memory for the search)")
        for t in tracks:
            t.tmp = make_temporary(outdir, t.dst.name)
        search_drive(drive, target_lufs, anchor, album_pass, result.notes,
                     lambda: "the album is silent (no 400 ms block above -70 LUFS in any track): "
                             "mastered at the drive as set")
        for t in tracks:
            t.split = None          # the kept first parts are not needed any more
        if result.input_lufs is None:
            result.input_lufs = pooled_integrated([t.input_hist for t in tracks if t.input_hist is not None])
        if target_lufs is not None and result.measured_lufs is None:
            result.target_reached = False
        elif target_lufs is not None:
            miss = target_lufs - result.measured_lufs
            result.target_reached = abs(miss) <= 0.5
            result.shortfall_lu = None if result.target_reached else round(miss, 2)
        from firmware.atomic import fsync_dir, ordinary_mode

        for t in tracks:
            with open(t.tmp, "rb+") as f:
                os.fsync(f.fileno())
            os.chmod(t.tmp, ordinary_mode(t.dst))
        for t in tracks:
            os.replace(t.tmp, t.dst)
            t.tmp = None
        fsync_dir(outdir)
    except BaseException:
        for t in tracks:
            t.split = None
            if t.tmp is not None:
                t.tmp.unlink(missing_ok=True)
        raise
    return result
