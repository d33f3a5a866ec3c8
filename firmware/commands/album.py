"""``masterbox album OUTDIR IN1 IN2 ... [--preset P] [--target-lufs X] [--ceiling-dbtp Y]
[--set id=v ...] [--bit-depth 16|24|32f] [--rate HZ] [--suffix S] [--preset-label TEXT] [--json] [--progress]``

Masters an album: every track through the same chain as ``masterbox master`` (a fresh chain
per track: nothing of one song bleeds into the next) with the same parameters and ONE output
drive for all of them, set so that the album's integrated loudness (BS.1770 gating over all
tracks' 400 ms blocks pooled: what a meter reads over the tracks played back to back) lands
within +-0.5 LU of the target when the ceiling allows. The songs keep their relative levels (a
ballad stays quieter than the single) wherever the limiter leaves them alone. Parameters and
target come from the preset and the flags exactly as for ``masterbox master`` (and so does the
name ``--preset-label`` gives the settings in each master's Broadcast Wave chunk).

Each master is written to OUTDIR under its input's file name, with ``--suffix`` before the
extension if given (same container, length and sample rate as the input, latency compensated,
dithered when the word length is reduced), through a temporary file renamed at the end. An input
that is not WAV, FLAC or AIFF (MP3, Ogg, W64, CAF, ...) gets a WAV master: ``song.mp3`` -> ``song.wav``.
Nothing is written when OUTDIR is missing or not writable, an output would overwrite an input,
two inputs share a file name, an input cannot be read, or the tracks do not share one sample
rate and no ``--rate`` gives the album one (each track not at it is converted first, as
``master --rate`` does, so the ceiling holds at the delivered rate: a 44.1 kHz CD from 48 kHz
recordings). ``--progress`` prints ``progress: STAGE N%`` lines on stderr for each pass over the
whole album ("converting", "measuring", "pass N"), as ``master --progress`` does.
Prints each track's input and output analysis and the album's loudness (``--json``: one object).
"""

from __future__ import annotations

import argparse
import json
import sys

from firmware.commands.master import add_chain_options

TEXT_COLUMNS = (
    ("integrated_lufs", "LUFS"),
    ("true_peak_dbtp", "dBTP"),
    ("loudness_range_lu", "LRA"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("album", help="master an album: the same chain and one shared drive for every track",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("outdir", metavar="OUTDIR", help="existing folder the masters are written to (input file names)")
    p.add_argument("inputs", metavar="IN", nargs="+",
                   help="the tracks, in album order (WAV, FLAC, AIFF; MP3, Ogg, W64, CAF, ... get WAV masters; "
                        "mono or stereo; one sample rate)")
    add_chain_options(p)
    p.add_argument("--rate", type=int, default=None, metavar="HZ",
                   help="the album's sample rate, e.g. 44100 (default: the tracks' own, which must then be one); "
                        "tracks at another rate are converted before the chain")
    p.add_argument("--suffix", default="", metavar="S",
                   help="added to each master's file name before its extension, e.g. --suffix=-master "
                        "(then OUTDIR may be the inputs' own folder)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true",
                   help="report each pass over the album as it goes on stderr: 'progress: STAGE N%%' lines")
    p.set_defaults(func=run)


def _num(v, width=8):
    return f"{'-':>{width}}" if v is None else f"{v:>{width}.1f}"


def run(args: argparse.Namespace) -> int:
    from firmware.album import master_album
    from firmware.analysis import ROUND_DIGITS, AnalysisError, analyze_file
    from firmware.cli import UserError
    from firmware.commands.master import _resolve, faults_message, progress_printer, target_message
    from firmware.render import RenderError, settings_phrase

    values, target, preset_name = _resolve(args)
    say = (lambda m: print(m, file=sys.stderr)) if not args.json else None
    try:
        res = master_album(args.outdir, args.inputs, values, bit_depth=args.bit_depth, target_lufs=target,
                           progress=say, suffix=args.suffix, rate=args.rate,
                           fraction=progress_printer() if args.progress else None, preset=preset_name)
    except RenderError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"{e.filename or args.outdir}: {e.strerror or e}") from None
    tracks = []
    try:
        for t in res.tracks:
            # stereo (and mono under 400 ms): the chain's own meters measured the render; longer mono
            # files are analysed as files (render.metered_by_the_chain says why)
            before = t.input_analysis or analyze_file(t.src)
            after = t.output_analysis or analyze_file(t.dst)
            for a in (before, after):
                a.pop("nonfinite_samples", None)    # the same keys for mono and stereo (as master)
            tracks.append({"input": str(t.src), "output": str(t.dst), "input_analysis": before,
                           "output_analysis": after, "input_faults": t.input_faults,
                           "converted_from_rate": t.rate if t.rate != res.sample_rate else None})
    except AnalysisError as e:
        raise UserError(str(e)) from None

    def album_side(key: str, lufs) -> dict:
        peaks = [tr[key]["true_peak_dbtp"] for tr in tracks if tr[key]["true_peak_dbtp"] is not None]
        return {"integrated_lufs": None if lufs is None else round(lufs, ROUND_DIGITS),
                "true_peak_dbtp": max(peaks) if peaks else None,
                "duration_s": round(sum(t.frames for t in res.tracks) / res.sample_rate, 6)}

    album_in = album_side("input_analysis", res.input_lufs)
    album_out = album_side("output_analysis", res.measured_lufs)
    message = target_message(target, res.target_reached, res.measured_lufs, values["lim.ceiling_dbtp"], res.notes,
                             "the album")
    faults = [f"{t.src.name}: {faults_message(t.input_faults)}" for t in res.tracks if t.input_faults]
    if args.json:
        album = {"input": album_in, "output": album_out, "latency_samples": res.latency_samples,
                 "preset": preset_name, "target_lufs": target, "drive_db": round(res.drive_db, 3),
                 "passes": res.passes, "passes_before_drive": res.passes_before_drive,
                 "target_reached": res.target_reached, "shortfall_lu": res.shortfall_lu, "message": message,
                 "input_faults": sum(t.input_faults for t in res.tracks), "sample_rate": res.sample_rate,
                 "output_dir": str(args.outdir)}
        json.dump({"album": album, "tracks": tracks}, sys.stdout)
        print()
        for line in ([message] if message else []) + faults:
            print(f"masterbox album: {line}", file=sys.stderr)
        return 0
    converted = sum(1 for t in res.tracks if t.rate != res.sample_rate)
    width = max([len("album")] + [len(t.src.name) for t in res.tracks]) + 2
    head = "".join(f"{f'{unit} in':>8}{f'{unit} out':>9}" for _, unit in TEXT_COLUMNS)
    print(f"{'track':<{width}}{head}")
    for t, tr in zip(res.tracks, tracks, strict=True):
        a, b = tr["input_analysis"], tr["output_analysis"]
        print(f"{t.src.name:<{width}}" + "".join(f"{_num(a.get(k))}{_num(b.get(k), 9)}" for k, _ in TEXT_COLUMNS))
    print(f"{'album':<{width}}{_num(album_in['integrated_lufs'])}{_num(album_out['integrated_lufs'], 9)}"
          f"{_num(album_in['true_peak_dbtp'])}{_num(album_out['true_peak_dbtp'], 9)}")
    before = " (+1 before the drive)" if res.passes_before_drive else ""
    print(f"{settings_phrase(preset_name)}, shared drive {res.drive_db:+.2f} dB, {res.passes} pass"
          f"{'es' if res.passes != 1 else ''}{before}, latency {res.latency_samples} samples compensated, "
          f"{args.bit_depth}{'' if args.bit_depth == '32f' else '-bit'} at {res.sample_rate} Hz"
          + (f" ({converted} converted)" if converted else "") + ", "
          f"{len(res.tracks)} track{'s' if len(res.tracks) != 1 else ''} -> {args.outdir}")
    as_wav = [f"{t.src.name} -> {t.dst.name}" for t in res.tracks if t.src.suffix.lower() != t.dst.suffix.lower()]
    if as_wav:
        print(f"mastered as WAV (a master is WAV, FLAC or AIFF): {', '.join(as_wav)}")
    if target is not None and any(t.channels == 1 for t in res.tracks):
        print("mono tracks count as the mono files measure (BS.1770); played on two speakers they sound 3 dB louder")
    for line in [message] + faults:
        if line:
            print(line)
    return 0
