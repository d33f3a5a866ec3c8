"""Fixtures for the web UI tests (helpers and stand-ins live in ``mbweb_helpers``)."""

from __future__ import annotations

import json

import pytest
from mbweb_helpers import Api, StubEngine, StubMeters, preset_doc, set_password

from firmware.captures import CaptureIndex
from firmware.control import Control
from firmware.presets import PresetStore
from firmware.state import StateStore


@pytest.fixture
def factory_dir(tmp_path):
    d = tmp_path / "factory"
    d.mkdir()
    for name, over in (("transparent", {}), ("streaming", {"target.lufs": -14.0, "mb.on": True}),
                       ("loud", {"target.lufs": -9.0, "out.drive_db": 6.0})):
        (d / f"{name}.json").write_text(json.dumps(preset_doc(name, **over)))
    return d


@pytest.fixture
def control(_isolated_home, factory_dir):
    home = _isolated_home
    presets = PresetStore(home / "presets", factory_dir=factory_dir)
    state = StateStore(home / "state.json", presets=presets, autosave=False)
    captures = CaptureIndex(home / "captures")
    (home / "captures").mkdir(exist_ok=True)
    engine = StubEngine(home / "captures")
    c = Control(state=state, presets=presets, captures=captures, engine=engine, meters=StubMeters(engine),
                watch=False)
    yield c
    c.close()


@pytest.fixture
def app(control, _isolated_home):
    from webui import create_app

    app = create_app(control, {"testing": True, "web": {"sse_max_seconds": 2.0}})
    yield app
    app.extensions["masterbox"].broadcaster.stop()


@pytest.fixture
def api(app):
    set_password(app)
    a = Api(app.test_client())
    r = a.login()
    assert r.status_code == 200, r.get_json()
    return a


@pytest.fixture
def anon(app):
    return Api(app.test_client())

