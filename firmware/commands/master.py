"""``masterbox master IN OUT [--preset P] [--target-lufs X] [--ceiling-dbtp Y] [--set id=v ...]
[--bit-depth 16|24|32f] [--rate HZ] [--preset-label TEXT] [--json] [--progress]``

Masters a file through the box's own chain (same kernel, same sound). Parameters come from
the preset (factory or user, default ``streaming``), then ``--ceiling-dbtp`` and each
``--set id=value``. The loudness target is the preset's (its ``target.lufs``), or
``--target-lufs``; the output drive is set so the integrated loudness lands within +-0.5 LU
of it when the ceiling allows, otherwise the command says by how much it missed. The
``transparent`` preset keeps the level unless ``--target-lufs`` is given.

The output has the input's length and sample rate (``--rate`` converts the input first, so the
ceiling holds at the new rate: a 96 kHz mix to 44.1 kHz for CD), 24-bit unless told otherwise, dithered
when the word length is reduced (as the preset's ``dither.mode`` says; never for 32-bit
float). It is written to a temporary file and renamed at the end; the input is never
overwritten. Prints the input and output analysis (``--json``: one object).

A WAV output names the settings in its Broadcast Wave chunk (description and coding history):
the preset's name, or ``--preset-label`` when the ``--set`` values came from elsewhere (the web
UI's jobs: ``streaming (modified)``; empty: no preset). The label changes no sound.
"""

from __future__ import annotations

import argparse
import json
import sys

DEFAULT_PRESET = "streaming"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("master", help="master a file through the chain", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("input", metavar="IN", help="audio file to master (WAV, FLAC, AIFF; mono or stereo)")
    p.add_argument("output", metavar="OUT", help="file to write (.wav, .flac or .aiff)")
    add_chain_options(p)
    p.add_argument("--rate", type=int, default=None, metavar="HZ",
                   help="output sample rate, e.g. 44100 (default: the input's); the input is converted "
                        "before the chain, so the ceiling holds at this rate")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.add_argument("--progress", action="store_true",
                   help="report each pass as it goes on stderr: 'progress: STAGE N%%' lines (the web UI "
                        "reads them)")
    p.set_defaults(func=run)


def add_chain_options(p: argparse.ArgumentParser) -> None:
    """--preset, --target-lufs, --ceiling-dbtp, --set, --bit-depth and --preset-label (``master`` and ``album``;
    :func:`_resolve`)."""
    p.add_argument("--preset", default=DEFAULT_PRESET, help=f"factory or user preset (default {DEFAULT_PRESET})")
    p.add_argument("--target-lufs", type=float, default=None, metavar="X",
                   help="integrated loudness to reach (overrides the preset's target)")
    p.add_argument("--ceiling-dbtp", type=float, default=None, metavar="Y", help="true-peak ceiling, -12..0 dBTP")
    p.add_argument("--set", action="append", default=[], metavar="ID=VALUE",
                   help="set one parameter, e.g. --set eq3.gain_db=1.5 (repeatable)")
    p.add_argument("--bit-depth", choices=("16", "24", "32f"), default="24", help="output word length (default 24)")
    p.add_argument("--preset-label", default=None, metavar="TEXT",
                   help="what the output's Broadcast Wave chunk and the printed preset call the settings "
                        "(default: the preset's name), e.g. --preset-label='streaming (modified)' when the --set "
                        "values are a changed copy of a preset; empty: they came from no preset (--json preset: "
                        "null). Only the label: the sound is --preset's and --set's")


def target_message(target: float | None, reached: bool | None, got: float | None, ceiling: float,
                   notes: list[str], what: str) -> str | None:
    """What to say when a target was not reached (None when it was, or there was none); ``what``
    names the measured thing ("output", "the album")."""
    if target is None or reached is not False:
        return None
    if got is None:
        return f"target {target:.1f} LUFS not applied: {'; '.join(notes)}"
    short = got < target     # over: the drive's floor, not the ceiling, stopped it
    return (f"target {target:.1f} LUFS not reached{f' at a {ceiling:.1f} dBTP ceiling' if short else ''}: "
            f"{what} is {got:.1f} LUFS, {abs(target - got):.1f} LU {'short' if short else 'over'}"
            + (f" ({'; '.join(notes)})" if notes else ""))


def faults_message(faults: int) -> str | None:
    """What to say about input samples the chain replaced by silence (None when there were none)."""
    if not faults:
        return None
    return (f"the input has {faults} sample{'s' if faults != 1 else ''} that "
            f"{'are' if faults != 1 else 'is'} NaN, infinite or beyond +80 dBFS: mastered as silence")


def _resolve(args) -> tuple[dict, float | None, str | None]:
    """(values, target or None, preset name: :func:`_label`) from the preset and the flags; UserError when wrong."""
    from dsp import schema
    from firmware.cli import UserError
    from firmware.presets import PresetError, PresetStore

    store = PresetStore()
    try:
        preset = store.get(args.preset)
    except PresetError as e:
        names = ", ".join(store.names())
        raise UserError(f"preset {args.preset!r}: {e} (available: {names})") from None
    values = dict(schema.defaults())
    values.update(preset.params)
    if args.ceiling_dbtp is not None:
        try:
            values["lim.ceiling_dbtp"] = schema.BY_ID["lim.ceiling_dbtp"].check(args.ceiling_dbtp)
        except schema.ParamError as e:
            raise UserError(f"--ceiling-dbtp: {e.reason}") from None
    for text in args.set:
        try:
            k, v = schema.parse_assignment(text)
        except schema.ParamError as e:
            raise UserError(f"--set {text}: {e}") from None
        values[k] = v
    target = None
    if args.target_lufs is not None:
        try:
            target = schema.BY_ID["target.lufs"].check(args.target_lufs)
        except schema.ParamError as e:
            raise UserError(f"--target-lufs: {e.reason}") from None
        values["target.lufs"] = target
    elif preset.extra.get("level_to_target", True):
        target = float(values["target.lufs"])
    return values, target, _label(args, preset.name)


def _label(args, name: str) -> str | None:
    """The name the output and ``--json`` give the settings: ``--preset-label`` when given (a job of the
    web UI passes every value with ``--set`` over ``transparent``, whose name would then be a lie; the
    preset they came from may since have been renamed or deleted, so it is named, not looked up), else
    the preset's; None for an empty label (no preset). UserError for a line break or other control
    character: the label is one line of the coding history."""
    from firmware.cli import UserError
    from firmware.names import has_control

    text = getattr(args, "preset_label", None)
    if text is None:
        return name
    if has_control(text):
        raise UserError("--preset-label: a label cannot contain line breaks or other control characters")
    return text.strip() or None


ROWS = (
    ("integrated_lufs", "integrated loudness", "LUFS"),
    ("loudness_range_lu", "loudness range", "LU"),
    ("true_peak_dbtp", "true peak", "dBTP"),
    ("sample_peak_dbfs", "sample peak", "dBFS"),
    ("max_short_term_lufs", "max short-term", "LUFS"),
    ("plr_db", "peak to loudness", "dB"),
)


def _fmt(v, unit):
    return "undefined" if v is None else f"{v:.1f} {unit}"


PROGRESS_PREFIX = "progress: "


def progress_printer(stream=None):
    """``fraction(stage, done)`` that prints ``progress: STAGE N%`` when the whole percent or the stage changes."""
    last: list = [None]

    def fraction(stage: str, done: float) -> None:
        now = (stage, int(done * 100))
        if now != last[0]:
            last[0] = now
            print(f"{PROGRESS_PREFIX}{stage} {now[1]}%", file=stream or sys.stderr, flush=True)

    return fraction


def parse_progress(line: str) -> dict | None:
    """``{"stage", "percent"}`` from a line :func:`progress_printer` wrote, else None."""
    if not line.startswith(PROGRESS_PREFIX):
        return None
    stage, _, pct = line[len(PROGRESS_PREFIX):].rstrip().rpartition(" ")
    if not stage or not pct.endswith("%") or not pct[:-1].isdigit():
        return None
    return {"stage": stage, "percent": int(pct[:-1])}


def run(args: argparse.Namespace) -> int:
    from firmware.analysis import AnalysisError, analyze_file
    from firmware.cli import UserError
    from firmware.render import RenderError, master_file, settings_phrase
    from firmware.wav_reader import unfinished_note

    values, target, preset_name = _resolve(args)
    say = (lambda m: print(m, file=sys.stderr)) if not args.json else None
    try:
        res = master_file(args.input, args.output, values, bit_depth=args.bit_depth, target_lufs=target,
                          progress=say, rate=args.rate, fraction=progress_printer() if args.progress else None,
                          preset=preset_name)
    except RenderError as e:
        raise UserError(str(e)) from None
    except OSError as e:
        raise UserError(f"{args.output}: cannot write: {e.strerror or e}") from None
    try:
        # stereo (and mono under 400 ms): the chain's own input and output meters measured the render;
        # longer mono files are analysed as files (render.metered_by_the_chain says why)
        before = res.input_analysis or analyze_file(args.input)
        after = res.output_analysis or analyze_file(args.output)
    except AnalysisError as e:
        raise UserError(str(e)) from None
    for a in (before, after):
        a.pop("nonfinite_samples", None)    # the same keys for mono and stereo: input_faults says it
    faults = faults_message(res.input_faults)
    unfinished = unfinished_note(args.input)
    message = target_message(target, res.target_reached, after["integrated_lufs"], values["lim.ceiling_dbtp"],
                             res.notes, "output")
    if args.json:
        json.dump({"input": before, "output": after, "latency_samples": res.latency_samples,
                   "preset": preset_name, "target_lufs": target, "drive_db": round(res.drive_db, 3),
                   "passes": res.passes, "passes_before_drive": res.passes_before_drive,
                   "target_reached": res.target_reached, "message": message,
                   "input_faults": res.input_faults, "converted_from_rate": res.converted_from}, sys.stdout)
        print()
    else:
        print(f"{'':<22}{'input':>16}{'output':>16}")
        for key, label, unit in ROWS:
            print(f"{label:<22}{_fmt(before.get(key), unit):>16}{_fmt(after.get(key), unit):>16}")
        before = " (+1 before the drive)" if res.passes_before_drive else ""
        print(f"{settings_phrase(preset_name)}, drive {res.drive_db:+.2f} dB, {res.passes} pass"
              f"{'es' if res.passes != 1 else ''}{before}, latency {res.latency_samples} samples compensated, "
              f"{args.bit_depth}{'' if args.bit_depth == '32f' else '-bit'}"
              + (f" at {after['sample_rate']} Hz (from {res.converted_from} Hz)" if res.converted_from else "")
              + f" -> {args.output}")
        if target is not None and after["channels"] == 1:
            print("mono file: the target is its loudness as a mono file (BS.1770); played on two speakers "
                  "it sounds 3 dB louder (mono podcast delivery: --target-lufs -19)")
        for line in (message, faults, unfinished):
            if line:
                print(line)
    for line in (message, faults, unfinished) if args.json else ():
        if line:
            print(f"masterbox master: {line}", file=sys.stderr)
    return 0
