"""Config-file fuzzing (issue 9, hostile input). The promise (ARCHITECTURE.md): errors go to stderr with
a non-zero exit and a message a person can act on; `firmware.config.ConfigError` names the file and
line. So whatever the config file holds:

* in process, ``load_config`` and ``panel_spec`` return or raise ``ConfigError`` -- nothing else;
* the engine and the control process, started on a config with a wrong value, either run or exit
  non-zero naming the key -- never a Python traceback.

Found 2026-11-22: wrong types or values in ``[audio]`` and ``[web]`` ended both processes with a
traceback (``ValueError: invalid literal for int()``, waitress's ``Invalid host/port``); fixed the
same evening when ``firmware.config`` began checking every section (4847a99).
"""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware.config import ConfigError, load_config, panel_spec

SECTIONS = {
    "audio": ["backend", "device", "capture_device", "playback_device", "rate", "period", "periods", "format"],
    "web": ["host", "port", "threads", "sse_max_clients", "sse_hz", "sse_backlog", "max_body_bytes",
            "session_days", "secure_cookies"],
    "storage": ["free_space_floor_mb", "capture_format", "capture_max_minutes"],
    "system": ["shutdown_command"],
    "panel": ["enabled", "type"],
}
toml_value = st.one_of(st.integers(-2**40, 2**40), st.floats(allow_nan=False, allow_infinity=False), st.booleans(),
                       st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), max_size=20),
                       st.lists(st.integers(-5, 5), max_size=3))


def toml_literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return "[" + ", ".join(toml_literal(x) for x in v) + "]"


@st.composite
def config_text(draw):
    if draw(st.integers(0, 4)) == 0:
        return draw(st.text(max_size=300))
    lines = []
    for sec in draw(st.lists(st.sampled_from(sorted(SECTIONS)), unique=True, max_size=4)):
        lines.append(f"[{sec}]")
        for key in draw(st.lists(st.sampled_from(SECTIONS[sec]), unique=True, max_size=4)):
            lines.append(f"{key} = {toml_literal(draw(toml_value))}")
    return "\n".join(lines) + "\n"


@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
@given(text=config_text())
def test_load_config_and_panel_spec_raise_only_config_error(tmp_path_factory, text):
    path = tmp_path_factory.mktemp("cfg") / "masterbox.toml"
    path.write_text(text, encoding="utf-8")
    try:
        cfg = load_config(path)
        panel_spec(cfg)
    except ConfigError as e:
        assert str(path) in str(e) or "line" in str(e) or "[" in str(e), str(e)


def _run(argv, cfg_text, tmp_path, timeout=10.0):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(cfg_text)
    env = {**os.environ, "MASTERBOX_CONFIG": str(cfg)}
    p = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    try:
        out, _ = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        os.killpg(p.pid, 9)
        out, _ = p.communicate()
        return None, out  # it ran: accepted
    return p.returncode, out


# one case per process (the same gap: also `periods = "two"` in [audio], `port = -5` in [web])
BAD = [
    ("engine", "[audio]\nbackend = \"sim\"\nrate = \"fast\"\n", "rate"),
    ("control", "[web]\nthreads = \"many\"\n", "threads"),
]


@pytest.mark.parametrize("who,text,key", BAD, ids=[f"{w}-{k}" for w, _, k in BAD])
def test_a_wrong_value_is_refused_with_its_name_not_a_traceback(who, text, key, tmp_path, masterbox_cmd):
    if who == "engine":
        argv = [*masterbox_cmd, "engine", "--duration", "1", "--quiet"]
    else:
        argv = [sys.executable, "-m", "firmware.control_main", "--no-panel", "--host", "127.0.0.1"]
    rc, out = _run(argv, text, tmp_path)
    assert "Traceback" not in out, out[-1500:]
    assert rc not in (None, 0) and key in out, (rc, out[-1500:])
