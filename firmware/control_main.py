"""The control process: state, presets, captures index, front panel and web UI in one process.

``python -m firmware.control_main [--sim-panel | --no-panel] [--host H] [--port P]`` is what
``masterbox-control.service`` runs and what :mod:`firmware.supervisor` starts for ``masterbox run``
and ``masterbox demo``.

Why one process and why it is separate from the engine: everything here is slow, allocating,
lock-taking Python (Flask, gpiozero callbacks, JSON files), and none of it may ever delay an
audio block. So it lives in its own process that talks to the engine only through the control
socket and reads meters from shared memory; it never imports numba. Audio never depends on it:
if this process dies, the engine keeps the last parameters; when the engine restarts,
:class:`firmware.control.Control` pushes the state back.

A panel that cannot be built (no GPIO on a laptop, a pin map with a mistake) is reported and
left out: the web UI must stay reachable, since it is how a person finds out what is wrong.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading

from firmware.sdnotify import Notifier

log = logging.getLogger("masterbox.control_main")


def build_panel(cfg: dict, simulated: bool):
    """The front panel from the config's pin map (on mock pins when ``simulated``), or None."""
    from firmware.config import ConfigError, panel_spec

    try:
        spec = panel_spec(cfg)
    except ConfigError as e:
        log.error("front panel disabled: %s", e)
        return None
    if not getattr(spec, "enabled", True):
        log.info("front panel disabled in the config ([panel] enabled = false)")
        return None
    try:
        if simulated:
            # The simulated panel brings its own mock pins, but gpiozero's SPI layer (the MCP3008)
            # still asks for the default factory; on a machine without GPIO that must be the mock one.
            os.environ.setdefault("GPIOZERO_PIN_FACTORY", "mock")
            from hw.panel.simulated import SimulatedPanel

            return SimulatedPanel(spec, resting_shafts=True)   # its pots start where the settings are
        from hw.panel.panel import Panel

        return Panel(spec)
    except Exception as e:  # gpiozero raises various errors when there are no GPIO pins
        log.warning("front panel not available (%s: %s); running without it", type(e).__name__, e)
        return None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    ap = argparse.ArgumentParser(prog="python -m firmware.control_main", description=__doc__.split("\n\n")[0])
    mode = ap.add_mutually_exclusive_group()
    mode.add_argument("--sim-panel", action="store_true", help="the front panel on simulated (mock) pins")
    mode.add_argument("--no-panel", action="store_true", help="run without a front panel")
    ap.add_argument("--host", help="web server address (default: the config's [web] host)")
    ap.add_argument("--port", type=int, help="web server port (default: the config's [web] port)")
    return ap.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s", stream=sys.stdout)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(sig, lambda *_: stop.set())

    from firmware.config import ConfigError, load_config

    notifier = Notifier()
    try:
        cfg = load_config()
    except ConfigError as e:
        print(f"masterbox control: {e}", file=sys.stderr)
        return 2

    from firmware.control import Control
    from firmware.panel_controller import PanelController, safe_mode_held
    from webui import create_app
    from webui.server import ServerThread

    panel = None if args.no_panel else build_panel(cfg, simulated=args.sim_panel)
    control = Control(config=cfg, safe_mode=safe_mode_held(panel) if panel is not None else False)
    control.panel = panel  # the web UI's virtual panel drives and shows this one
    controller = PanelController(control, panel=panel, config=cfg).start() if panel is not None else None
    server = None
    try:
        app = create_app(control, cfg)
        try:
            server = ServerThread(app, host=args.host, port=args.port).start()
        except OSError as e:
            port = args.port or cfg.get("web", {}).get("port")
            print(f"masterbox control: cannot serve the web UI on port {port}: {e.strerror or e}", file=sys.stderr)
            return 1
        print(f"web UI on {server.url}", flush=True)
        notifier.ready(f"web UI on {server.url}" + ("" if panel is not None else "; no front panel"))
        stop.wait()
        notifier.stopping("control stopping")
        return 0
    finally:
        if server is not None:
            server.stop()
        if controller is not None:
            controller.close()
        if panel is not None:
            panel.close()
        control.close()


if __name__ == "__main__":
    sys.exit(main())
