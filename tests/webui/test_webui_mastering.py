"""Mastering a capture from the web UI (firmware/capture_master.py): the real ``masterbox master`` in a
child process, with the box's current settings; loudness and true peak measured by pyloudnorm and ffmpeg,
the settings' effect by the mid/side balance of the files."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf

from dsp.programme import render_programme
from firmware.capture_master import set_arguments
from firmware.capture_writer import MARKER_SUFFIX
from tests.signals import ffmpeg_ebur128
from tests.waiting import wait_for

RATE = 48000


def _capture(home, name, seconds, peak_dbfs=-12.0):
    x = render_programme(seconds, RATE, seed=5, peak_dbfs=peak_dbfs)
    path = home / "captures" / f"{name}.wav"
    sf.write(str(path), x, RATE, subtype="PCM_24")
    return path


def _side_to_mid_db(x):
    m, s = (x[:, 0] + x[:, 1]) / 2, (x[:, 0] - x[:, 1]) / 2
    return 10 * np.log10(np.mean(s ** 2) / np.mean(m ** 2))


def test_every_parameter_survives_the_command_line():
    from dsp import schema

    values = schema.defaults() | {"st.width": 37.5, "mb.on": True, "dither.mode": "tpdf", "eq.tone_db": -1.25}
    args = set_arguments(values)
    parsed = dict(schema.parse_assignment(a) for a in args[1::2])
    assert args[0::2] == ["--set"] * len(values) and parsed == values


def test_a_capture_is_mastered_with_the_box_settings(api, control, _isolated_home, tmp_path):
    src = _capture(_isolated_home, "mix-input", 12.0)
    control.state.set({"st.width": 50.0, "target.lufs": -14.0, "lim.ceiling_dbtp": -1.0}, "test")
    r = api.req("POST", "/api/v1/captures/mix-input/master", json={"bit_depth": "24"})
    assert r.status_code == 202, r.get_json()
    assert r.get_json()["job"]["state"] == "running" and r.get_json()["job"]["output"] == "mix-input-master"
    job = control.mastering.wait(300)
    assert job["state"] == "done", job
    out = _isolated_home / "captures" / "mix-input-master.wav"
    y, rate = sf.read(str(out))
    x, _ = sf.read(str(src))
    assert rate == RATE and y.shape == x.shape and sf.info(str(out)).subtype == "PCM_24"
    # the target, as two independent meters measure it, and the ceiling
    assert pyloudnorm.Meter(RATE).integrated_loudness(y) == pytest.approx(-14.0, abs=0.5)
    ff = ffmpeg_ebur128(out, tmp_path)
    assert ff["integrated_lufs"] == pytest.approx(-14.0, abs=0.5) and ff["true_peak_dbtp"] <= -1.0 + 0.1
    # the box's width (50 %) was used: the side falls 6 dB against the mid (the limiter is linked)
    assert _side_to_mid_db(y) - _side_to_mid_db(x) == pytest.approx(20 * np.log10(0.5), abs=0.3)
    # it is a capture like any other: listed with its analysis, and says where it came from
    rows = {c["name"]: c for c in api.get("/api/v1/captures").get_json()["captures"]}
    assert rows["mix-input-master"]["summary"]["tap"] == "master"
    assert rows["mix-input-master"]["summary"]["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)
    side = json.loads(out.with_suffix(".json").read_text())
    assert side["mastered_from"] == "mix-input" and side["target_lufs"] == -14.0
    status = api.get("/api/v1/mastering").get_json()["job"]
    assert status["state"] == "done" and status["result"]["target_reached"] is True
    assert status["progress"] == {"stage": f"pass {status['result']['passes']}", "percent": 100}
    # again: a new name, the first master is kept
    assert api.req("POST", "/api/v1/captures/mix-input/master", json={"level": False}).status_code == 202
    job = control.mastering.wait(300)
    assert job["state"] == "done" and job["output"] == "mix-input-master-2" and job["target_lufs"] is None
    assert out.exists()
    leftovers = [p.name for p in (_isolated_home / "captures").iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_refusals_busy_and_cancel_leave_nothing_behind(api, control, _isolated_home):
    _capture(_isolated_home, "long-mix", 240.0)
    assert api.req("POST", "/api/v1/captures/nope/master", json={}).status_code == 404
    assert api.req("POST", "/api/v1/captures/long-mix/master", json={"bit_depth": "12"}).status_code == 400
    assert api.req("POST", "/api/v1/captures/long-mix/master", json={"target_lufs": "loud"}).status_code == 400
    assert api.req("POST", "/api/v1/captures/long-mix/master", json={"level": "no"}).status_code == 400
    assert api.req("POST", "/api/v1/captures/long-mix/master", json={"target_lufs": -90}).status_code in (400, 422)
    assert api.get("/api/v1/mastering").get_json() == {"job": None}
    # a capture being recorded is not mastered
    _capture(_isolated_home, "live-now", 1.0)
    marker = _isolated_home / "captures" / f".x{MARKER_SUFFIX}"
    marker.write_text(json.dumps({"pid": os.getpid(), "files": ["live-now.wav"]}))
    assert api.req("POST", "/api/v1/captures/live-now/master", json={}).status_code == 409
    marker.unlink()
    # one job at a time; a cancel stops it and writes nothing
    assert api.req("POST", "/api/v1/captures/long-mix/master", json={}).status_code == 202
    r = api.req("POST", "/api/v1/captures/live-now/master", json={})
    assert r.status_code == 409 and "busy" in r.get_json()["error"]
    pid = control.mastering._proc.pid
    # while it runs, the job says how far it is (240 s of audio: the measuring pass alone takes a while)
    seen = wait_for(lambda: (api.get("/api/v1/mastering").get_json()["job"]["progress"] or {}).get("percent"),
                    120, step=0.05, what="the job's progress")
    step = api.get("/api/v1/mastering").get_json()["job"]["progress"]
    assert step["stage"] in ("measuring", "pass 1") and 0 < seen <= 100, step
    job = api.req("DELETE", "/api/v1/mastering").get_json()["job"]
    assert job["state"] == "cancelled"
    with pytest.raises(ProcessLookupError):
        os.kill(pid, 0)
    names = sorted(p.name for p in (_isolated_home / "captures").iterdir())
    assert names == ["live-now.wav", "long-mix.wav"], names
    # and the box can master again at once
    assert api.req("POST", "/api/v1/captures/live-now/master", json={}).status_code == 202
    assert control.mastering.wait(300)["state"] == "done"


def test_a_damaged_capture_fails_with_the_reason_and_writes_nothing(api, control, _isolated_home):
    bad = _isolated_home / "captures" / "torn.wav"
    bad.write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))     # a header, then noise
    assert api.req("POST", "/api/v1/captures/torn/master", json={}).status_code == 202
    job = control.mastering.wait(300)
    assert job["state"] == "failed" and "torn.wav" in job["error"], job
    assert api.get("/api/v1/mastering").get_json()["job"]["error"] == job["error"]
    assert sorted(p.name for p in (_isolated_home / "captures").iterdir()) == ["torn.wav"]


def test_captures_are_mastered_as_an_album(api, control, _isolated_home, tmp_path):
    """Two songs of an EP through ``masterbox album``: the album (played back to back, measured by
    ffmpeg) lands on the target, the quiet song stays quieter by what it was, each new capture
    says which album it belongs to. Names as people type them (spaces, accents, a dash)."""
    loud = _capture(_isolated_home, "Süße Lied – laut", 8.0, peak_dbfs=-3.0)
    quiet = _capture(_isolated_home, "song quiet", 8.0, peak_dbfs=-21.0)
    control.state.set({"target.lufs": -14.0, "lim.ceiling_dbtp": -1.0}, "test")
    r = api.req("POST", "/api/v1/mastering/album", json={"captures": ["Süße Lied – laut", "song quiet"]})
    assert r.status_code == 202, r.get_json()
    job = r.get_json()["job"]
    assert (job["kind"], job["captures"], job["outputs"]) == \
        ("album", ["Süße Lied – laut", "song quiet"], ["Süße Lied – laut-album", "song quiet-album"])
    job = control.mastering.wait(300)
    assert job["state"] == "done", job
    outs = [_isolated_home / "captures" / f"{n}.wav" for n in job["outputs"]]
    ys = [sf.read(str(p))[0] for p in outs]
    both = tmp_path / "album.wav"
    sf.write(str(both), np.concatenate(ys), RATE, subtype="FLOAT")
    assert ffmpeg_ebur128(both, tmp_path)["integrated_lufs"] == pytest.approx(-14.0, abs=0.5)
    for p in outs:
        assert ffmpeg_ebur128(p, tmp_path)["true_peak_dbtp"] <= -1.0 + 0.1
    meter = pyloudnorm.Meter(RATE)
    gap_in = meter.integrated_loudness(sf.read(str(loud))[0]) - meter.integrated_loudness(sf.read(str(quiet))[0])
    gap_out = meter.integrated_loudness(ys[0]) - meter.integrated_loudness(ys[1])
    assert gap_in > 10 and 0 < gap_out <= gap_in + 0.5, (gap_in, gap_out)   # the limiter may only narrow it
    for n, p in zip(["Süße Lied – laut", "song quiet"], outs, strict=True):
        side = json.loads(p.with_suffix(".json").read_text())
        assert side["mastered_from"] == n and side["tap"] == "master"
        assert side["album"] == ["Süße Lied – laut", "song quiet"]
    status = api.get("/api/v1/mastering").get_json()["job"]
    assert status["result"]["album"]["target_reached"] is True and len(status["result"]["tracks"]) == 2
    assert status["progress"] == {"stage": f"pass {status['result']['album']['passes']}", "percent": 100}
    # again: new names, the first masters are kept
    assert api.req("POST", "/api/v1/mastering/album", json={"captures": ["song quiet", "Süße Lied – laut"],
                                                             "level": False}).status_code == 202
    job = control.mastering.wait(300)
    assert job["state"] == "done" and job["outputs"] == ["song quiet-album-2", "Süße Lied – laut-album-2"], job
    assert all(p.exists() for p in outs)
    assert [p.name for p in (_isolated_home / "captures").iterdir() if p.name.startswith(".")] == []


def test_album_refusals_write_nothing(api, control, _isolated_home):
    for name in ("a", "b"):
        _capture(_isolated_home, name, 2.0)
    path = _isolated_home / "captures" / "c44.wav"
    sf.write(str(path), render_programme(2.0, 44100, seed=6, peak_dbfs=-12.0), 44100, subtype="PCM_24")
    before = sorted(p.name for p in (_isolated_home / "captures").iterdir())

    def refused(body, status, words):
        r = api.req("POST", "/api/v1/mastering/album", json=body)
        assert r.status_code == status and words in r.get_json()["error"], (body, r.status_code, r.get_json())

    refused({"captures": ["a"]}, 400, "at least two")
    refused({"captures": ["a", "a"]}, 400, "twice")
    refused({"captures": ["a", "nope"]}, 404, "nope")
    refused({"captures": ["a", "c44"]}, 400, "one sample rate")
    refused({"captures": ["a", "c44"], "rate": 22050}, 400, "rate")
    refused({"captures": "a,b"}, 400, "captures")
    refused({"captures": ["a", 3]}, 400, "captures")
    refused({"captures": ["a", "../b"]}, 400, "capture name")
    refused({"captures": ["a", "b"], "bit_depth": "12"}, 400, "bit_depth")
    refused({"captures": ["a", "b"], "tracks": 2}, 400, "unknown field")
    refused({}, 400, "captures")
    marker = _isolated_home / "captures" / f".x{MARKER_SUFFIX}"
    marker.write_text(json.dumps({"pid": os.getpid(), "files": ["b.wav"]}))
    refused({"captures": ["a", "b"]}, 409, "being recorded")
    marker.unlink()
    assert api.get("/api/v1/mastering").get_json() == {"job": None}
    # one job at a time, whichever kind
    assert api.req("POST", "/api/v1/captures/c44/master", json={}).status_code == 202
    refused({"captures": ["a", "b"]}, 409, "busy")
    assert control.mastering.wait(300)["state"] == "done"
    assert sorted(p.name for p in (_isolated_home / "captures").iterdir()) == \
        sorted(before + ["c44-master.wav", "c44-master.json"])


def test_a_capture_is_mastered_with_a_preset_at_another_rate(api, control, _isolated_home, tmp_path):
    """A CD master of a 48 kHz capture: a preset's settings and target (``loud``: -9 LUFS), not the
    box's, and 44.1 kHz 16-bit; the box's own settings are not touched."""
    _capture(_isolated_home, "desk", 10.0)
    before = control.state.snapshot()
    r = api.req("POST", "/api/v1/captures/desk/master", json={"preset": "loud", "rate": 44100, "bit_depth": "16"})
    assert r.status_code == 202, r.get_json()
    assert (r.get_json()["job"]["preset"], r.get_json()["job"]["target_lufs"], r.get_json()["job"]["rate"]) == \
        ("loud", -9.0, 44100)
    job = control.mastering.wait(300)
    assert job["state"] == "done", job
    out = _isolated_home / "captures" / "desk-master.wav"
    info = sf.info(str(out))
    assert (info.samplerate, info.subtype, info.channels) == (44100, "PCM_16", 2)
    assert abs(info.frames - 10.0 * 44100) <= 1
    ff = ffmpeg_ebur128(out, tmp_path)
    assert ff["integrated_lufs"] == pytest.approx(-9.0, abs=0.5) and ff["true_peak_dbtp"] <= -1.0 + 0.1
    assert json.loads(out.with_suffix(".json").read_text())["preset"] == "loud"
    assert control.state.snapshot() == before
    # refused before anything runs
    for body, status in (({"preset": "no-such"}, 404), ({"preset": "../loud"}, 400), ({"rate": 22050}, 400),
                         ({"rate": "44100"}, 400), ({"speed": 2}, 400)):
        assert api.req("POST", "/api/v1/captures/desk/master", json=body).status_code == status, body
    # the 48 kHz capture and its 44.1 kHz master: an album only at one rate, given for it
    r = api.req("POST", "/api/v1/mastering/album", json={"captures": ["desk", "desk-master"]})
    assert r.status_code == 400 and "sample rate" in r.get_json()["error"]
    r = api.req("POST", "/api/v1/mastering/album", json={"captures": ["desk", "desk-master"], "rate": 48000})
    assert r.status_code == 202, r.get_json()
    job = control.mastering.wait(300)
    assert job["state"] == "done", job
    assert [sf.info(str(_isolated_home / "captures" / f"{n}.wav")).samplerate for n in job["outputs"]] == [48000] * 2
    assert [t["converted_from_rate"] for t in job["result"]["tracks"]] == [None, 44100]


def test_a_cancel_while_converting_leaves_nothing_behind(api, control, _isolated_home):
    """A master at another rate converts the capture first, into a file of its own beside the
    output; a cancel then removes that too."""
    _capture(_isolated_home, "long-take", 240.0)
    assert api.req("POST", "/api/v1/captures/long-take/master", json={"rate": 44100}).status_code == 202
    wait_for(lambda: (api.get("/api/v1/mastering").get_json()["job"]["progress"] or {}).get("stage") == "converting"
             and any(p.name.endswith(".tmp.wav") for p in (_isolated_home / "captures").iterdir()),
             120, step=0.02, what="the conversion to start")
    assert api.req("DELETE", "/api/v1/mastering").get_json()["job"]["state"] == "cancelled"
    assert sorted(p.name for p in (_isolated_home / "captures").iterdir()) == ["long-take.wav"]


def test_captures_are_mastered_one_by_one_in_one_job(api, control, _isolated_home, tmp_path):
    """"Master each": every capture lands on the target on its own (ffmpeg), unlike an album; the
    progress says which one is being done; a damaged capture stops the job there, with the reason,
    and the masters finished before it are kept and listed."""
    _capture(_isolated_home, "take a", 6.0, peak_dbfs=-3.0)
    _capture(_isolated_home, "take b", 6.0, peak_dbfs=-21.0)
    control.state.set({"target.lufs": -14.0, "lim.ceiling_dbtp": -1.0}, "test")
    r = api.req("POST", "/api/v1/mastering/each", json={"captures": ["take a", "take b"]})
    assert r.status_code == 202, r.get_json()
    assert (r.get_json()["job"]["kind"], r.get_json()["job"]["outputs"]) == ("each", ["take a-master", "take b-master"])
    stages = set()
    while (job := api.get("/api/v1/mastering").get_json()["job"])["state"] == "running":
        if job["progress"]:
            stages.add(job["progress"]["stage"].split(" ")[0])
        time.sleep(0.02)
    assert job["state"] == "done", job
    # the finished job keeps its last step: the second master's (polling alone can miss a short one)
    stages.add(job["progress"]["stage"].split(" ")[0])
    assert stages <= {"1/2", "2/2"} and job["progress"]["stage"].startswith("2/2 "), (stages, job["progress"])
    for name in ("take a-master", "take b-master"):
        out = _isolated_home / "captures" / f"{name}.wav"
        ff = ffmpeg_ebur128(out, tmp_path)
        assert ff["integrated_lufs"] == pytest.approx(-14.0, abs=0.5) and ff["true_peak_dbtp"] <= -1.0 + 0.1, name
        assert json.loads(out.with_suffix(".json").read_text())["mastered_from"] == name.removesuffix("-master")
    assert [m["target_reached"] for m in job["result"]["masters"]] == [True, True]
    # a damaged capture in the middle: the first is mastered, the job stops at the second
    (_isolated_home / "captures" / "torn.wav").write_bytes(b"RIFF\x24\x00\x00\x00WAVEfmt " + os.urandom(200))
    r = api.req("POST", "/api/v1/mastering/each", json={"captures": ["take a", "torn", "take b"], "level": False})
    assert r.status_code == 202, r.get_json()
    job = control.mastering.wait(300)
    assert job["state"] == "failed" and "torn.wav" in job["error"], job
    assert job["outputs"] == ["take a-master-2", "torn-master", "take b-master-2"]
    assert len(job["result"]["masters"]) == 1
    names = sorted(p.name for p in (_isolated_home / "captures").iterdir())
    assert "take a-master-2.wav" in names and "take a-master-2.json" in names
    assert not any(n.startswith(("torn-master", "take b-master-2", ".")) for n in names), names
    for body, status in (({"captures": []}, 400), ({"captures": ["take a", "take a"]}, 400),
                         ({"captures": ["nope"]}, 404), ({"captures": ["take a"], "album": True}, 400)):
        assert api.req("POST", "/api/v1/mastering/each", json=body).status_code == status, body


def test_a_capture_named_long_in_utf8_bytes_is_mastered_under_a_name_that_fits(api, control, _isolated_home):
    """A capture called with 80 Japanese characters (240 bytes, a file name holds 255): its master used
    to be "NAME-master.wav" whose temporary file's name no filesystem takes. The master's name is now the
    capture's cut by bytes at a character, "-master" kept; an album, named by ``masterbox album`` itself,
    is refused before it starts instead of failing at the end."""
    from urllib.parse import quote

    long_name = "日本語のタイトル" * 10
    _capture(_isolated_home, long_name, 2.0)
    _capture(_isolated_home, "short", 2.0)
    before = sorted(p.name for p in (_isolated_home / "captures").iterdir())
    r = api.req("POST", "/api/v1/mastering/album", json={"captures": [long_name, "short"]})
    assert r.status_code == 400 and "too long a name for its album master" in r.get_json()["error"], r.get_json()
    assert sorted(p.name for p in (_isolated_home / "captures").iterdir()) == before
    r = api.req("POST", f"/api/v1/captures/{quote(long_name)}/master", json={})
    assert r.status_code == 202, r.get_json()
    job = control.mastering.wait(300)
    assert job["state"] == "done", job
    out = job["output"]
    assert out.endswith("-master") and long_name.startswith(out.removesuffix("-master"))
    assert len(out.encode("utf-8")) <= 200 and len(out) > 40
    assert (_isolated_home / "captures" / f"{out}.wav").is_file()
    assert json.loads((_isolated_home / "captures" / f"{out}.json").read_text())["mastered_from"] == long_name
    # its master in turn: cut again, never longer
    r = api.req("POST", f"/api/v1/captures/{quote(out)}/master", json={"level": False})
    assert r.status_code == 202, r.get_json()
    job = control.mastering.wait(300)
    assert job["state"] == "done" and job["output"].endswith("-master") and len(job["output"].encode()) <= 200, job
    assert [p.name for p in (_isolated_home / "captures").iterdir() if p.name.startswith(".")] == []
