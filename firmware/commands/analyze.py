"""``masterbox analyze FILE [--json]``: loudness and peaks of an audio file.

Integrated loudness (BS.1770-4 gated), loudness range (EBU Tech 3342), true peak, sample
peak, the largest momentary and short-term loudness, and PLR. A table for people by default;
``--json`` prints one object whose keys scripts and tests rely on (``null`` where a value is
undefined, e.g. the loudness of digital silence).

A Broadcast Wave file's ``bext`` chunk (EBU Tech 3285 v2, :mod:`firmware.bwf`) is shown too: who
made it, when, and the loudness it says it has, checked against what the file measures (a
delivery whose metadata lies is caught here). ``--json`` has it under ``bext`` (``null`` when the
file has none), with ``mismatched``: the loudness fields more than 0.1 LU or dB off the measurement.
"""

from __future__ import annotations

import argparse
import json
import sys

# (key, label, unit) rows of the human table.
ROWS = (
    ("integrated_lufs", "integrated loudness", "LUFS"),
    ("loudness_range_lu", "loudness range", "LU"),
    ("true_peak_dbtp", "true peak", "dBTP"),
    ("sample_peak_dbfs", "sample peak", "dBFS"),
    ("max_momentary_lufs", "max momentary", "LUFS"),
    ("max_short_term_lufs", "max short-term", "LUFS"),
    ("plr_db", "peak to loudness (PLR)", "dB"),
)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("analyze", help="loudness + peaks of a file", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("file", metavar="FILE", help="WAV, FLAC, AIFF, ... (anything libsndfile reads)")
    p.add_argument("--json", action="store_true", help="print one JSON object")
    p.set_defaults(func=run)


def _duration(seconds: float) -> str:
    minutes, s = divmod(seconds, 60.0)
    hours, minutes = divmod(int(minutes), 60)
    return f"{hours}:{minutes:02d}:{s:06.3f}"


_BEXT_ROWS = {"loudness_value": ("integrated", "LUFS"), "loudness_range": ("range", "LU"),
              "max_true_peak_level": ("true peak", "dBTP"), "max_momentary_loudness": ("max momentary", "LUFS"),
              "max_short_term_loudness": ("max short-term", "LUFS")}


def bext_lines(b: dict) -> list[str]:
    """The table's lines for the file's bext chunk (``analyze --json``'s ``bext``)."""
    lines = [f"{'BWF (bext)':<24}{b['originator'] or '(no originator)'}, "
             f"{b['origination_date'] or '?'} {b['origination_time']}".rstrip()]
    if b["description"]:
        lines.append(f"{'':<24}{b['description']}")
    stamped = [f"{label} {b[k]:.2f} {unit}" for k, (label, unit) in _BEXT_ROWS.items() if b[k] is not None]
    if stamped:
        lines.append(f"{'':<24}stamped: {', '.join(stamped)}")
        if b["mismatched"]:
            wrong = ", ".join(_BEXT_ROWS[k][0] for k in b["mismatched"])
            lines.append(f"{'':<24}DOES NOT MATCH what the file measures: {wrong}")
        else:
            lines.append(f"{'':<24}matches what the file measures (within 0.1)")
    else:
        lines.append(f"{'':<24}no loudness stamped (version {b['version']} chunk)")
    return lines


def format_table(path: str, a: dict) -> str:
    lines = [
        f"{'file':<24}{path}",
        f"{'format':<24}{a['sample_rate']} Hz, {a['channels']} channel{'s' if a['channels'] != 1 else ''}, "
        f"{_duration(a['duration_s'])}",
    ]
    for key, label, unit in ROWS:
        v = a.get(key)
        lines.append(f"{label:<24}{'undefined' if v is None else f'{v:.1f} {unit}'}")
    if a.get("sample_peak_dbfs") is None:
        lines.append(f"{'':<24}digital silence: every sample is zero, so there is nothing to measure")
    if a.get("nonfinite_samples"):
        lines.append(f"{'non-finite samples':<24}{a['nonfinite_samples']} "
                     "(NaN, infinite or beyond +80 dBFS: measured as silence)")
    if a.get("bext"):
        lines += bext_lines(a["bext"])
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from firmware import bwf
    from firmware.analysis import AnalysisError, analyze_file
    from firmware.cli import UserError

    try:
        result = analyze_file(args.file)
    except AnalysisError as e:
        raise UserError(str(e)) from None
    try:
        chunk = bwf.read(args.file)
    except bwf.BextError as e:
        print(f"warning: {e}: its metadata is not shown", file=sys.stderr)
        chunk = None
    from firmware.wav_reader import unfinished_note

    note = unfinished_note(args.file)
    if note:
        print(f"note: {note}", file=sys.stderr)
    result["bext"] = None
    if chunk is not None:
        result["bext"] = chunk.as_dict()
        result["bext"]["mismatched"] = bwf.mismatches(chunk, result) if chunk.version >= 2 else []
    if args.json:
        json.dump(result, sys.stdout)
        print()
    else:
        print(format_table(args.file, result))
    return 0
