"""The web UI: a Flask application served by waitress inside the control process.

``create_app(control, config=None)`` builds the application around a ``firmware.control.Control``
(the only way the web UI touches the box). ``config`` is the box's configuration dict
(:func:`firmware.config.load_config`); its ``[web]`` section tunes the server and the live
stream. Tests may pass ``config={"web": {...}, "testing": True}``.
"""

from __future__ import annotations

import datetime
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask

from firmware.config import DEFAULTS

# The [web] section: defaults and their checks live with the rest of the config.
WEB_DEFAULTS: dict[str, Any] = DEFAULTS["web"]


@dataclass
class WebContext:
    """Everything the blueprints share, kept in ``app.extensions["masterbox"]``."""

    control: Any
    config: dict
    settings: dict
    passwords: Any
    claim: Any
    throttle: Any
    hub: Any
    broadcaster: Any
    logbuffer: Any
    curves: Any = None
    history: Any = None
    spectrum: Any = None
    vectorscope: Any = None

    def read_meters(self) -> dict | None:
        """The engine's latest meter frame (None when no engine runs); never blocks on audio."""
        return self.control.read_meters()


def web_settings(config: dict | None) -> dict:
    s = dict(WEB_DEFAULTS)
    s.update((config or {}).get("web", {}) or {})
    s["sse_max_clients"] = max(1, min(int(s["sse_max_clients"]), int(s["threads"]) - 4))
    s["sse_hz"] = min(max(float(s["sse_hz"]), 1.0), 30.0)
    return s


def create_app(control, config: dict | None = None, *, data_dir: Path | None = None) -> Flask:
    from firmware.passwords import PasswordFile, secret_key, web_dir
    from firmware.scope_shm import ScopeReader
    from firmware.spectrum import SpectrumAnalyser
    from firmware.vectorscope import Vectorscope
    from webui import auth, errors, logbuffer, pages, security, sse
    from webui.api import bp as api_bp
    from webui.claim import ClaimWindow
    from webui.curves import CurveCache
    from webui.history import LoudnessHistory

    config = dict(config or {})
    settings = web_settings(config)
    directory = web_dir(data_dir)

    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key(directory),
        SESSION_COOKIE_NAME="masterbox_session",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=bool(settings.get("secure_cookies", False)),
        PERMANENT_SESSION_LIFETIME=datetime.timedelta(days=int(settings["session_days"])),
        MAX_CONTENT_LENGTH=int(settings["max_body_bytes"]),
        MAX_FORM_MEMORY_SIZE=64 * 1024,
        JSON_SORT_KEYS=False,
        TESTING=bool(config.get("testing", False)),
    )

    # "//etc" must reach the views (and be refused there), not be merged and redirected
    app.url_map.merge_slashes = False

    claim = getattr(control, "claim", None)
    if claim is None:
        claim = ClaimWindow(seconds=float(settings["claim_seconds"]))
        try:
            control.claim = claim  # the panel controller's hook (see webui.claim)
        except AttributeError:
            pass

    hub = sse.Hub(max_clients=int(settings["sse_max_clients"]))
    ctx = WebContext(
        control=control,
        config=config,
        settings=settings,
        passwords=PasswordFile(directory),
        claim=claim,
        throttle=security.LoginThrottle(int(settings["login_attempts"]), float(settings["login_window_s"])),
        hub=hub,
        broadcaster=None,
        logbuffer=logbuffer.install(),
    )
    app.extensions["masterbox"] = ctx
    ctx.curves = CurveCache(directory / "curves")

    def _state():
        with app.app_context():
            from webui.api.live import state_snapshot

            return state_snapshot()

    def _panel():
        with app.app_context():
            from webui.api.panel import snapshot

            return snapshot()

    # the engine's audio tap sits beside its meters file (firmware/scope_shm.py)
    meters_path = getattr(getattr(control, "meters", None), "path", None)
    scope_path = Path(meters_path).with_name("scope.shm") if meters_path else None
    ctx.spectrum = SpectrumAnalyser(ScopeReader(scope_path))
    ctx.vectorscope = Vectorscope(ScopeReader(scope_path))
    sources = {"meters": ctx.read_meters, "state": _state}
    if getattr(control, "panel", None) is not None:
        sources["panel"] = _panel
    ctx.broadcaster = sse.Broadcaster(hub, sources, hz=settings["sse_hz"])
    ctx.history = LoudnessHistory(ctx.read_meters)
    if not app.config["TESTING"]:       # tests take its points one by one (LoudnessHistory.sample)
        ctx.history.start()

    errors.register(app)
    security.register(app)
    app.register_blueprint(auth.bp)
    app.register_blueprint(api_bp)
    app.register_blueprint(sse.bp)
    app.register_blueprint(pages.bp)

    @app.context_processor
    def _globals():
        from firmware.streaming import SERVICES
        from webui.security import csrf_token, logged_in

        return {"csrf_token": csrf_token, "logged_in": logged_in, "version": _version(),
                "streaming_services": SERVICES, "streaming_names": {key: label for key, label, *_ in SERVICES},
                "max_body_bytes": app.config["MAX_CONTENT_LENGTH"]}

    return app


def _version() -> str:
    import firmware

    return firmware.__version__
