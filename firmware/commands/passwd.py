"""``masterbox passwd``: set the web UI's password on the box's console.

This is the way to claim a box that has no password yet (there is no default one), and the
way back in when the password is forgotten. It reads the new password twice from the
terminal without echo (or once from standard input with ``--stdin``, for scripts) and
logs every browser out.
"""

from __future__ import annotations

import argparse
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("passwd", help="set the web UI password", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--stdin", action="store_true", help="read the password from standard input (one line)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.cli import UserError
    from firmware.passwords import PasswordError, PasswordFile, check_new_password

    if args.stdin:
        password = sys.stdin.readline().rstrip("\r\n")
    else:
        import getpass

        if not sys.stdin.isatty():
            raise UserError("no terminal to ask for the password on; use --stdin to read it from standard input")
        password = getpass.getpass("New web UI password: ")
        try:
            check_new_password(password)
        except PasswordError as e:
            raise UserError(str(e)) from None
        if getpass.getpass("Repeat it: ") != password:
            raise UserError("the two passwords differ; nothing changed")
    store = PasswordFile()
    try:
        store.set(password)
    except PasswordError as e:
        raise UserError(f"{e}; nothing changed") from None
    except OSError as e:
        raise UserError(f"cannot write {store.path}: {e.strerror}") from None
    print(f"Web UI password set ({store.path}); every browser must log in again.")
    return 0
