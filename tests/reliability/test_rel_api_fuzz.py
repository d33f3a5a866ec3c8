"""API fuzzing (issue 9, hostile input): every operation of ``webui/openapi.yaml``, with requests
schemathesis generates from the document (valid and deliberately invalid ones), sent to the real
app (real Control, state, preset store, captures index, a simulated front panel; the engine stand-in
of the web tests) by a logged-in client with a valid CSRF token, so the requests get past the door.

For every request:
* never a 5xx (the engine stand-in is up, so 503 "engine down" is not an excuse either);
* a refused request (4xx) changes nothing: state values, active preset, bypass, listening mode, the user preset
  files (bytes), the captures folder, the password file, and the engine saw no call;
* a GET changes nothing, whatever its status.

``MB_FUZZ_EXAMPLES`` sets the examples per operation (default 12).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mbweb_helpers import Api, StubEngine, StubMeters, preset_doc, set_password, write_wav
from schemathesis.core import NotSet
from schemathesis.generation import GenerationMode

OPENAPI = Path(__file__).resolve().parents[2] / "webui" / "openapi.yaml"
EXAMPLES = int(os.environ.get("MB_FUZZ_EXAMPLES", "12"))
SCHEMA = schemathesis.openapi.from_path(OPENAPI)
OPS = {op.label: op for op in (r.ok() for r in SCHEMA.get_all_operations())}
# /events is an endless stream (covered by the SSE tests); login/logout/password/claim would end or
# rate-limit the fuzzing client's own session: fuzzed separately below, anonymously.
SESSION_OPS = {"POST /auth/login", "POST /auth/logout", "POST /auth/password", "POST /auth/claim",
               "POST /auth/claim/password", "GET /auth/claim"}
SKIP = {"GET /events"} | SESSION_OPS


def make_box(home: Path):
    from firmware.captures import CaptureIndex
    from firmware.config import load_config, panel_spec
    from firmware.control import Control
    from firmware.presets import PresetStore
    from firmware.state import StateStore
    from hw.panel.simulated import SimulatedPanel
    from webui import create_app

    factory = home / "factory"
    factory.mkdir(exist_ok=True)
    for name, over in (("transparent", {}), ("streaming", {"target.lufs": -14.0, "mb.on": True}),
                       ("loud", {"target.lufs": -9.0, "out.drive_db": 6.0})):
        (factory / f"{name}.json").write_text(json.dumps(preset_doc(name, **over)))
    presets = PresetStore(home / "presets", factory_dir=factory)
    state = StateStore(home / "state.json", presets=presets, autosave=False)
    (home / "captures").mkdir(exist_ok=True)
    engine = StubEngine(home / "captures")
    control = Control(state=state, presets=presets, captures=CaptureIndex(home / "captures"), engine=engine,
                      meters=StubMeters(engine), watch=False)
    control.panel = SimulatedPanel(panel_spec(load_config()))
    app = create_app(control, {"testing": True, "web": {"sse_max_seconds": 1.0}})
    set_password(app)
    restock(home, control)
    return app, control, engine


CAPTURE = "2026-11-22_2100_mine_output"


def restock(home: Path, control) -> None:
    """Something for the fuzzer to find: a user preset, a finished capture (again after a delete) and
    a reference track to switch (that capture, prepared by the real worker; again after a clear)."""
    if not control.presets.exists("mine"):
        control.presets.save("mine", {**control.state.values, "out.drive_db": 2.0})
    if not (home / "captures" / f"{CAPTURE}.wav").exists():
        write_wav(home / "captures" / f"{CAPTURE}.wav", seconds=1.0)
    if control.reference.info is None:
        assert control.reference.load(CAPTURE)["ok"]


def known_names(control) -> list[str]:
    return ["mine", "streaming", "transparent", CAPTURE, *control.panel.knobs, *control.panel.buttons]


def snapshot(home: Path, control, engine) -> dict:
    def files(d: Path) -> dict:  # the preset store's listing cache (.index.json) is not a change
        if not d.exists():
            return {}
        return {p.name: hashlib.sha1(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())
                if p.is_file() and p.name != ".index.json"}

    st_ = control.state
    return {"values": dict(st_.values), "active": st_.active_preset, "slots": st_.snapshot()["slots"],
            "bypass": control.bypassed,
            "monitor": control.monitor_mode, "preview": control.preview,
            "presets": files(home / "presets"), "captures": files(home / "captures"),
            "web": files(home / "web"), "engine_calls": len(engine.calls),
            "reference": (control.reference.info or {}).get("capture"), "ref": engine.reference_status()}


def send(api: Api, case):
    headers = {k: v for k, v in (case.headers or {}).items() if k.lower() not in ("cookie", "x-csrf-token")}
    body = case.body
    kw: dict = {"query_string": case.query or None}
    if not isinstance(body, NotSet):
        mt = case.media_type or "application/json"
        if "json" in mt:
            kw["data"] = json.dumps(body) if not isinstance(body, bytes | str) else body
        elif isinstance(body, bytes | str):
            kw["data"] = body
        else:
            kw["data"] = json.dumps(body)
        headers.setdefault("Content-Type", mt)
    return api.req(case.method.upper(), "/api/v1" + case.formatted_path, headers=headers, **kw)


def strategy(op):
    parts = []
    for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
        try:
            parts.append(op.as_strategy(generation_mode=mode))
        except Exception:  # an operation without inputs has no negative cases
            pass
    return st.one_of(parts)


def fuzz_operation(op, home, app, control, engine, api) -> dict:
    seen: dict[int, int] = {}
    restock(home, control)
    names = st.sampled_from([None, None, *known_names(control)])

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=strategy(op), name=names)
    def one(case, name):
        if name is not None and "name" in (case.path_parameters or {}):
            case.path_parameters["name"] = name  # half the time a name that exists
        if name is not None and isinstance(case.body, dict) and "capture" in case.body:
            case.body["capture"] = CAPTURE      # ... also where the body names a capture (PUT /reference)
        engine.capturing = None  # each example starts from an idle engine
        control.mastering.wait(120)  # ... and no mastering job started earlier still writing its files
        before = snapshot(home, control, engine)
        r = send(api, case)
        seen[r.status_code] = seen.get(r.status_code, 0) + 1
        what = f"{case.method} {case.formatted_path} q={case.query} body={case.body!r:.300} -> {r.status_code} " \
               f"{r.get_data()[:300]!r}"
        assert r.status_code < 500, what
        if 400 <= r.status_code < 500 or case.method.upper() == "GET":
            after = snapshot(home, control, engine)
            assert after == before, what + f"\nchanged: {[k for k in before if before[k] != after[k]]}"
        if 400 <= r.status_code < 500 and r.mimetype == "application/json":
            assert "error" in r.get_json(), what

    one()
    return seen


def test_fuzz_every_operation_no_5xx_and_refusals_change_nothing(_isolated_home, capsys):
    home = _isolated_home
    app, control, engine = make_box(home)
    api = Api(app.test_client())
    assert api.login().status_code == 200
    statuses: dict[str, dict] = {}
    try:
        for label in sorted(set(OPS) - SKIP):
            statuses[label] = fuzz_operation(OPS[label], home, app, control, engine, api)
            assert api.get("/api/v1/auth/session").get_json().get("authenticated", True), label
    finally:
        app.extensions["masterbox"].broadcaster.stop()
        control.panel.close()
        control.close()
    assert len(statuses) >= 30
    # the fuzzing got past the door: most operations saw a success, and refusals were exercised
    ok = [k for k, v in statuses.items() if any(200 <= c < 300 for c in v)]
    refused = [k for k, v in statuses.items() if any(400 <= c < 500 for c in v)]
    assert len(ok) >= len(statuses) * 0.6, statuses
    assert len(refused) >= len(statuses) * 0.5, statuses
    with capsys.disabled():
        n = sum(sum(v.values()) for v in statuses.values())
        print(f"\n    API fuzz: {n} requests over {len(statuses)} operations; {len(ok)} saw a 2xx, "
              f"{len(refused)} a 4xx")


def test_fuzz_session_operations_anonymously(_isolated_home):
    """Login, logout, password and claim fuzzed by clients without a session: no 5xx, and the
    password file never changes (nothing fuzzed can set or change a password)."""
    home = _isolated_home
    app, control, engine = make_box(home)
    pw = (home / "web" / "auth.json").read_bytes()

    def fuzz(op):
        @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
        @given(case=strategy(op))
        def one(case):
            api = Api(app.test_client())
            api.token()
            r = send(api, case)
            assert r.status_code < 500, f"{case.method} {case.formatted_path} {case.body!r:.200} -> {r.status_code}"
            assert (home / "web" / "auth.json").read_bytes() == pw

        one()

    try:
        for label in sorted(SESSION_OPS):
            fuzz(OPS[label])
    finally:
        app.extensions["masterbox"].broadcaster.stop()
        control.panel.close()
        control.close()
