"""The settings a master made from the web UI names in its Broadcast Wave chunk (firmware/capture_master.py,
``master --preset-label``): the preset they came from, never the ``transparent`` the job passes its ``--set``
values over. The chunk is read from the file's bytes here (the fixed part of EBU Tech 3285, not firmware.bwf)
and by ffprobe; the sound must be exactly what ``masterbox master --preset NAME`` (or ``album``) makes of the
same capture, sample for sample, bytes beside the chunk included.

The box's own factory presets are used (``factory_dir`` below), so the web's ``streaming`` is the command
line's ``streaming``."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from urllib.parse import quote

import pytest
import soundfile as sf

from dsp.programme import render_programme
from firmware.presets import FACTORY_DIR
from tests.wav_chunks import chunks, without_bext

RATE = 48000
DESCRIPTION_BYTES, FIXED_BYTES = 256, 602       # EBU Tech 3285 v2: Description[256] ... Reserved[180]


@pytest.fixture
def factory_dir():
    """The presets the box ships: the child's ``masterbox master`` reads these too."""
    return FACTORY_DIR


def _capture(home, name, seconds=3.0, seed=5, peak_dbfs=-12.0):
    path = home / "captures" / f"{name}.wav"
    sf.write(str(path), render_programme(seconds, RATE, seed=seed, peak_dbfs=peak_dbfs), RATE, subtype="PCM_24")
    return path


def _bext(path) -> tuple[str, str]:
    """(description, coding history) straight from the WAV's bytes, and checked against ffprobe's reading."""
    raw = Path(path).read_bytes()
    bodies = [raw[at:at + size] for cid, at, size in chunks(raw) if cid == b"bext"]
    assert len(bodies) == 1, path
    description = bodies[0][:DESCRIPTION_BYTES].split(b"\0", 1)[0].decode("ascii")
    history = bodies[0][FIXED_BYTES:].split(b"\0", 1)[0].decode("ascii")
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-of", "json", str(path)],
                         capture_output=True, text=True, check=True).stdout
    tags = json.loads(out)["format"]["tags"]
    assert (tags["comment"], tags["coding_history"]) == (description, history)
    return description, history


def _assert_named(path, phrase: str) -> None:
    """``path``'s description and its own (last) coding-history line both name the settings ``phrase`` (what
    follows "masterbox 0.1.0: " and "masterbox 0.1.0 (") and no transparent."""
    description, history = _bext(path)
    ours = history.rstrip("\r\n").split("\r\n")[-1]
    assert description.startswith(f"Mastered by masterbox 0.1.0: {phrase}"), description
    assert ours.startswith(f"A=PCM,F=48000,W=24,M=stereo,T=masterbox 0.1.0 ({phrase}"), ours
    assert "transparent" not in description + history


def _master_job(api, control, path: str, body: dict) -> dict:
    r = api.req("POST", path, json=body)
    assert r.status_code == 202, r.get_json()
    job = control.mastering.wait(300)
    assert job["state"] == "done", job
    return job


def _direct(masterbox_cmd, *args) -> dict:
    proc = subprocess.run([*masterbox_cmd, *map(str, args), "--json"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def _same_sound(a, b) -> None:
    """The same samples, and the same bytes once each file's bext chunk is taken out."""
    assert (sf.read(str(a), dtype="int32")[0] == sf.read(str(b), dtype="int32")[0]).all()
    assert without_bext(a) == without_bext(b)


def test_a_master_names_the_recalled_preset_or_the_one_asked_for(api, control, _isolated_home, tmp_path,
                                                                  masterbox_cmd):
    """``streaming`` recalled, then "Master…" with the box's settings and with ``loud``: each file and
    the job's result name that preset, and sound as the command line's master with it."""
    src = _capture(_isolated_home, "Desk Mix")
    assert api.post("/api/v1/presets/streaming/recall", json={}).status_code == 200
    job = _master_job(api, control, "/api/v1/captures/Desk%20Mix/master", {})
    out = _isolated_home / "captures" / "Desk Mix-master.wav"
    _assert_named(out, "preset streaming, target -14.0 LUFS, ceiling -1.0 dBTP")
    assert (job["preset"], job["result"]["preset"]) == ("streaming", "streaming")
    assert json.loads(out.with_suffix(".json").read_text())["preset"] == "streaming"
    _direct(masterbox_cmd, "master", src, tmp_path / "streaming.wav", "--preset", "streaming")
    _same_sound(out, tmp_path / "streaming.wav")

    job = _master_job(api, control, "/api/v1/captures/Desk%20Mix/master", {"preset": "loud"})
    out = _isolated_home / "captures" / "Desk Mix-master-2.wav"
    _assert_named(out, "preset loud, target -9.0 LUFS")
    assert (job["preset"], job["result"]["preset"]) == ("loud", "loud")
    _direct(masterbox_cmd, "master", src, tmp_path / "loud.wav", "--preset", "loud")
    _same_sound(out, tmp_path / "loud.wav")


def test_modified_settings_and_settings_of_no_preset_say_so(api, control, _isolated_home, tmp_path, masterbox_cmd):
    """Settings changed since ``streaming`` was recalled are "streaming (modified)", and sound as
    ``--preset streaming --set`` of the change; a user preset deleted since (its name starting with
    "-", accents) is still named; values that came from no preset claim none."""
    src = _capture(_isolated_home, "take")
    api.post("/api/v1/presets/streaming/recall", json={})
    assert api.req("PATCH", "/api/v1/state", json={"values": {"st.width": 50.0}}).status_code == 200
    job = _master_job(api, control, "/api/v1/captures/take/master", {})
    out = _isolated_home / "captures" / "take-master.wav"
    _assert_named(out, "preset streaming (modified), target -14.0 LUFS")
    assert (job["preset"], job["result"]["preset"]) == ("streaming", "streaming (modified)")
    _direct(masterbox_cmd, "master", src, tmp_path / "wide.wav", "--preset", "streaming", "--set", "st.width=50")
    _same_sound(out, tmp_path / "wide.wav")

    night = "-Nuit d'été"
    assert api.post("/api/v1/presets", json={"name": night}).status_code == 201
    assert api.req("DELETE", f"/api/v1/presets/{quote(night)}").status_code == 200
    job = _master_job(api, control, "/api/v1/captures/take/master", {})
    _assert_named(_isolated_home / "captures" / "take-master-2.wav", "preset -Nuit d'ete (modified), target")
    assert job["result"]["preset"] == f"{night} (modified)"

    control.state.load(control.state.snapshot()["values"], None, "test")
    job = _master_job(api, control, "/api/v1/captures/take/master", {})
    _assert_named(_isolated_home / "captures" / "take-master-3.wav", "no preset, target")
    assert job["preset"] is None and job["result"]["preset"] is None


def test_album_and_each_jobs_name_the_preset(api, control, _isolated_home, tmp_path, masterbox_cmd):
    """An album of two captures with ``streaming`` recalled: each track says it, with its place in the
    album, and the album sounds as ``masterbox album --preset streaming`` makes it; "Master each…" too."""
    srcs = [_capture(_isolated_home, "song a", seed=5, peak_dbfs=-6.0),
            _capture(_isolated_home, "song b", seed=6, peak_dbfs=-18.0)]
    api.post("/api/v1/presets/streaming/recall", json={})
    job = _master_job(api, control, "/api/v1/mastering/album", {"captures": ["song a", "song b"]})
    assert job["result"]["album"]["preset"] == "streaming"
    (tmp_path / "direct").mkdir()
    _direct(masterbox_cmd, "album", tmp_path / "direct", *srcs, "--preset", "streaming", "--suffix=-album")
    for n, name in enumerate(["song a-album", "song b-album"], 1):
        out = _isolated_home / "captures" / f"{name}.wav"
        _assert_named(out, f"preset streaming (album, track {n} of 2), target -14.0 LUFS")
        _same_sound(out, tmp_path / "direct" / f"{name}.wav")

    job = _master_job(api, control, "/api/v1/mastering/each", {"captures": ["song a", "song b"], "preset": "loud"})
    assert [m["preset"] for m in job["result"]["masters"]] == ["loud", "loud"]
    for name in ("song a-master", "song b-master"):
        _assert_named(_isolated_home / "captures" / f"{name}.wav", "preset loud, target -9.0 LUFS")
