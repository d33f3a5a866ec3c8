"""``masterbox run [--sim]``: the whole box in the foreground (engine + control with panel and web UI).

This is what the systemd units do on the box, for a machine without them: the two processes are
started and supervised by :mod:`firmware.supervisor` (an engine that dies is back within 3 s; one
whose audio loop stalls is killed and restarted after 5 s without a heartbeat), and Ctrl-C stops
both. ``--sim`` runs on the simulated audio backend and panel.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("run", help="the whole box (engine + control + panel + web)", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--sim", action="store_true", help="simulated audio backend and front panel (no hardware)")
    p.add_argument("--host", help="web UI address (default: the config's [web] host)")
    p.add_argument("--port", type=int, help="web UI port (default: the config's [web] port)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from firmware.supervisor import Supervisor, box_children

    return Supervisor(box_children(sim=args.sim, host=args.host, port=args.port)).run()
