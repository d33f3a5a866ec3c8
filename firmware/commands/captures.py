"""``masterbox captures list [--json] | show NAME | export NAME FILE | delete NAME``.

Works on the captures folder in the data root (``$MASTERBOX_HOME/captures``). NAME is a
capture's file name without ``.wav``, as ``list`` prints it. A capture still being recorded
cannot be deleted.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("captures", help="list, export and delete recordings", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = ps.add_parser("list", help="list captures, newest first")
    a.add_argument("--json", action="store_true", help="print one JSON array")
    a = ps.add_parser("show", help="print a capture's details and analysis as JSON")
    a.add_argument("name")
    a = ps.add_parser("export", help="copy a capture's WAV to FILE (or into a folder)")
    a.add_argument("name")
    a.add_argument("file")
    a = ps.add_parser("delete", help="delete a capture and its analysis")
    a.add_argument("name")
    p.set_defaults(func=run)


def _fmt(v, spec: str, unit: str) -> str:
    return "--" if v is None else f"{v:{spec}}{unit}"


def run(args: argparse.Namespace) -> int:
    from firmware.captures import CaptureError, CaptureIndex
    from firmware.cli import UserError
    from firmware.errors import os_error_text

    index = CaptureIndex()
    try:
        if args.action == "list":
            rows = index.list()
            if args.json:
                json.dump(rows, sys.stdout, indent=1, ensure_ascii=False)
                print()
                return 0
            for r in rows:
                s = r["summary"] or {}
                state = "recording" if r["recording"] else ""
                loud = _fmt(s.get("integrated_lufs"), "6.1f", " LUFS")
                peak = _fmt(s.get("true_peak_dbtp"), "5.1f", " dBTP")
                print(f"{r['name']:<48} {_fmt(r['duration_s'], '8.1f', ' s')} {loud} {peak}"
                      f"  {r['size_bytes'] / 1e6:.1f} MB {state}")
            return 0
        if args.action == "show":
            json.dump(index.get(args.name), sys.stdout, indent=1, ensure_ascii=False)
            print()
            return 0
        if args.action == "export":
            print(index.export(args.name, args.file))
            return 0
        if args.action == "delete":
            index.delete(args.name)
            return 0
    except CaptureError as e:
        raise UserError(str(e)) from None
    except BrokenPipeError:
        raise       # `| head`: the reader had enough (firmware.cli: exit 0), not a file's error
    except OSError as e:
        raise UserError(os_error_text(e)) from None
    return 2
