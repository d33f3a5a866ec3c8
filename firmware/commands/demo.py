"""``masterbox demo [--input FILE] [--port 8080]``: the whole box on simulated hardware.

The engine runs on the ``sim`` backend in real time (the built-in demo programme, or FILE
looped, converted to the box's sample rate), the control process runs the simulated front panel and the web UI on
http://127.0.0.1:PORT. A fresh password is generated at each start and stored through the web
UI's password store, so the demo prints a login that works once you open the page. The web UI
listens on this machine only (127.0.0.1). Ctrl-C stops every process.
"""

from __future__ import annotations

import argparse
import socket
import threading
import time
from pathlib import Path

READY_TIMEOUT = 300.0  # a first start compiles the numba kernels when the cache is cold


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("demo", help="the whole box on simulated hardware, web UI on 127.0.0.1:8080",
                       description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--input", metavar="FILE",
                   help="play FILE (looped, at the box's sample rate) instead of the built-in programme")
    p.add_argument("--port", type=int, default=8080, help="web UI port (default 8080)")
    p.set_defaults(func=run)


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


def set_demo_password() -> str:
    """A new random password for this demo run, through the web UI's password store."""
    import secrets

    from firmware.passwords import PasswordFile

    password = secrets.token_urlsafe(9)
    PasswordFile().set(password)
    return password


def wait_for_web(url: str, timeout: float, stop: threading.Event) -> bool:
    from urllib.error import URLError
    from urllib.request import urlopen

    end = time.monotonic() + timeout
    while time.monotonic() < end and not stop.is_set():
        try:
            with urlopen(url + "/api/v1/auth/session", timeout=1.0):
                return True
        except (URLError, OSError):
            time.sleep(0.2)
    return False


def check_source(source: Path, error: type[Exception]) -> None:
    """Refuse, before anything starts, a file the demo cannot play: otherwise the page says the demo
    is running while the engine fails on it again at every restart. (At any sample rate: the
    simulated engine converts it to the box's rate as it loads it.)"""
    import soundfile as sf

    try:
        info = sf.info(str(source))
    except (OSError, RuntimeError) as e:
        raise error(f"--input {source}: cannot read it as audio ({e})") from None
    if info.frames == 0:
        raise error(f"--input {source}: the file holds no audio")


def run(args: argparse.Namespace) -> int:
    from firmware import paths
    from firmware.cli import UserError
    from firmware.supervisor import Supervisor, box_children

    if not 1 <= args.port <= 65535:
        raise UserError(f"--port {args.port} is not a TCP port (1-65535)")
    if not port_is_free(args.port):
        raise UserError(f"port {args.port} on 127.0.0.1 is in use (another demo, or the box itself?); "
                        f"stop it or pick another with --port")
    engine_args: list[str] = []
    if args.input:
        source = Path(args.input)
        if not source.is_file():
            raise UserError(f"--input {args.input}: no such file")
        check_source(source, UserError)
        engine_args = ["--input", str(source.resolve())]

    paths.ensure(paths.data_root())
    password = set_demo_password()
    url = f"http://127.0.0.1:{args.port}"
    supervisor = Supervisor(box_children(sim=True, host="127.0.0.1", port=args.port, engine_args=engine_args))
    stopped = threading.Event()

    def announce() -> None:
        if wait_for_web(url, READY_TIMEOUT, stopped):
            supervisor.announce(
                "\n"
                f"  masterbox demo is running: {url}\n"
                f"  log in with the password: {password}   (new at every demo start)\n"
                f"  data: {paths.data_root()}    Ctrl-C stops everything\n"
            )

    threading.Thread(target=announce, name="demo-announce", daemon=True).start()
    try:
        return supervisor.run()
    finally:
        stopped.set()
