"""``masterbox presets list [--json] | show NAME | export NAME FILE | export-all FILE | import FILE | delete NAME``.

Works on the preset library in the data root (``$MASTERBOX_HOME/presets``) directly; the running
box notices changed files on its next listing (the store's index is invalidated by file stat).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("presets", help="list, show, import, export and delete presets", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    ps = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    a = ps.add_parser("list", help="list factory and user presets")
    a.add_argument("--json", action="store_true", help="print one JSON array")
    a = ps.add_parser("show", help="print one preset as JSON")
    a.add_argument("name")
    a = ps.add_parser("export", help="write one preset to a JSON file ('-' = stdout)")
    a.add_argument("name")
    a.add_argument("file")
    a = ps.add_parser("export-all", help="write every user preset into one zip file")
    a.add_argument("file")
    a.add_argument("--factory", action="store_true", help="include the factory presets")
    a = ps.add_parser("import", help="import a preset JSON file, or a zip of them (all or nothing)")
    a.add_argument("file")
    a.add_argument("--name", help="store under this name instead of the one in the file")
    a.add_argument("--overwrite", action="store_true", help="replace user presets of the same name")
    a = ps.add_parser("delete", help="delete a user preset")
    a.add_argument("name")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.cli import UserError
    from firmware.errors import os_error_text
    from firmware.presets import PresetError, PresetStore

    store = PresetStore()
    try:
        if args.action == "list":
            rows = store.list()
            if args.json:
                json.dump(rows, sys.stdout, indent=1, ensure_ascii=False)
                print()
                return 0
            for r in rows:
                if r["error"]:
                    print(f"  !  {r['file']}: {r['error']}")
                    continue
                kind = "factory" if r["factory"] else "user"
                target = f"{r['target_lufs']:>6.1f} LUFS" if r.get("level_to_target", True) else "keeps level"
                print(f"{kind:8} {r['name']:<32} {target:>11} {r['ceiling_dbtp']:>5.1f} dBTP  {r['description']}")
            return 0
        if args.action == "show":
            sys.stdout.write(store.export_json(args.name))
            return 0
        if args.action == "export":
            text = store.export_json(args.name)
            if args.file == "-":
                sys.stdout.write(text)
            else:
                Path(args.file).write_text(text, encoding="utf-8")
            return 0
        if args.action == "export-all":
            return _export_all(store, args.file, args.factory)
        if args.action == "import":
            path = Path(args.file)
            try:
                data = path.read_bytes() if args.file != "-" else sys.stdin.buffer.read()
            except OSError as e:
                raise UserError(f"cannot read {args.file}: {e.strerror}") from None
            if data[:2] == b"PK":
                done = store.import_zip(data, overwrite=args.overwrite)
                print(f"imported {len(done)} presets: {', '.join(p.name for p in done)}")
            else:
                p = store.import_json(data, name=args.name, overwrite=args.overwrite)
                print(f"imported {p.name!r}")
            return 0
        if args.action == "delete":
            store.delete(args.name)
            return 0
    except PresetError as e:
        raise UserError(str(e)) from None
    except BrokenPipeError:
        raise       # `| head`: the reader had enough (firmware.cli: exit 0), not a file's error
    except OSError as e:
        raise UserError(os_error_text(e)) from None
    return 2


def _export_all(store, file: str, include_factory: bool) -> int:
    """Write the zip atomically and say how many presets it holds.

    With no user presets (and no ``--factory``) there is nothing to back up: an empty zip
    written silently would look like a backup that is not one, so that is an error instead.
    """
    import io
    import zipfile

    from firmware.atomic import write_atomic
    from firmware.cli import UserError

    data = store.export_zip(include_factory=include_factory)
    n = len(zipfile.ZipFile(io.BytesIO(data)).namelist())
    if n == 0:
        raise UserError("there are no user presets to export (add --factory to export the factory presets too)")
    parent = Path(file).parent
    if not parent.is_dir():
        raise UserError(f"{parent}: output folder does not exist")
    try:
        write_atomic(Path(file), data)
    except OSError as e:
        raise UserError(f"cannot write {file}: {e.strerror}") from None
    print(f"exported {n} preset{'s' if n != 1 else ''} to {file}")
    return 0
