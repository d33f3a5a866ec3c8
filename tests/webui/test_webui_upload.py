"""Uploading a mix into the captures folder (webui/api/uploads.py, firmware/capture_upload.py).

The file arrives in pieces; what lands must be the user's bytes exactly, appear as a capture
and be analysed (loudness checked against pyloudnorm); every refusal and every failure (not a
WAV, a damaged WAV, a full disk, a recording that needs the space) leaves the folder as it was.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import os
import resource
import subprocess
import time
import urllib.request

import numpy as np
import pyloudnorm
import pytest
import soundfile as sf
from mbweb_helpers import PASSWORD, set_password, wait_until

from firmware import capture_upload
from firmware.capture_upload import CHUNK_BYTES, PART_PREFIX
from tests.signals import ffmpeg_ebur128
from tests.wav_chunks import libsndfile_bext
from webui import create_app
from webui.server import ServerThread

RATE = 44100


def _mix(path, seconds=25.0, rate=RATE, subtype="PCM_24"):
    """A mix-like stereo file: a chord with a slow level swell and a little noise (not the box's header)."""
    rng = np.random.default_rng(7)
    t = np.arange(int(seconds * rate)) / rate
    env = 0.35 + 0.25 * np.sin(2 * np.pi * 0.1 * t)
    x = env * (np.sin(2 * np.pi * 220 * t) + 0.5 * np.sin(2 * np.pi * 330 * t + 0.3)) / 1.5
    y = np.stack([x + 0.01 * rng.standard_normal(len(t)), 0.9 * x + 0.01 * rng.standard_normal(len(t))], axis=1)
    sf.write(path, y, rate, subtype=subtype)
    return path


def _folder(control):
    return sorted(p.name for p in control.captures.directory.iterdir())


def _send(api, path, name=None, chunk=CHUNK_BYTES):
    """Upload ``path`` piece by piece as the page does; the last answer."""
    data = path.read_bytes()
    r = api.post("/api/v1/uploads", json={"file": name or path.name, "size": len(data)})
    assert r.status_code == 201, r.get_json()
    st = r.get_json()
    while st["state"] == "receiving":
        off = st["offset"]
        r = api.req("PUT", f"/api/v1/uploads/{st['id']}?offset={off}", data=data[off:off + chunk],
                    headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 200, r.get_json()
        st = r.get_json()
    return st


def test_a_mix_arrives_in_pieces_byte_for_byte_and_is_analysed(api, control, tmp_path):
    src = _mix(tmp_path / "Final Mix (v3).wav")
    assert src.stat().st_size > CHUNK_BYTES        # two pieces at least
    done = _send(api, src)
    assert done["state"] == "done" and done["capture"] == "Final Mix (v3)"
    assert (done["sample_rate"], done["channels"]) == (RATE, 2)
    landed = control.captures.directory / "Final Mix (v3).wav"
    assert hashlib.sha256(landed.read_bytes()).digest() == hashlib.sha256(src.read_bytes()).digest()
    assert _folder(control) in (["Final Mix (v3).wav"], ["Final Mix (v3).json", "Final Mix (v3).wav"])

    # listed at once with its length and rate (read from its header), then analysed in the background
    row = next(c for c in api.get("/api/v1/captures").get_json()["captures"] if c["name"] == "Final Mix (v3)")
    assert row["sample_rate"] == RATE and row["duration_s"] == pytest.approx(25.0, abs=1e-3)
    side = wait_until(lambda: api.get("/api/v1/captures/Final%20Mix%20(v3)").get_json()["sidecar"], timeout=60)
    y, rate = sf.read(src)
    assert side["integrated_lufs"] == pytest.approx(pyloudnorm.Meter(rate).integrated_loudness(y), abs=0.1)
    assert side["source"] == "upload" and side["uploaded_from"] == "Final Mix (v3).wav"
    assert landed.read_bytes() == src.read_bytes()          # analysed, still the user's bytes: no bext stamped
    summary = api.get("/api/v1/captures").get_json()["captures"][0]["summary"]
    assert summary["source"] == "upload"


def test_a_dropped_link_resumes_where_the_box_got_to(api, control, tmp_path):
    data = _mix(tmp_path / "take.wav", seconds=12.0).read_bytes()
    st = api.post("/api/v1/uploads", json={"file": "take.wav", "size": len(data)}).get_json()
    uid, piece = st["id"], 1 << 20
    r = api.req("PUT", f"/api/v1/uploads/{uid}?offset=0", data=data[:piece],
                headers={"Content-Type": "application/octet-stream"})
    assert r.get_json()["offset"] == piece
    # the client lost the answer and sends the same piece again: refused, and told where the box is
    r = api.req("PUT", f"/api/v1/uploads/{uid}?offset=0", data=data[:piece],
                headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 409 and r.get_json()["offset"] == piece
    assert api.get(f"/api/v1/uploads/{uid}").get_json()["offset"] == piece
    r = api.req("PUT", f"/api/v1/uploads/{uid}?offset={piece}", data=data[piece:],
                headers={"Content-Type": "application/octet-stream"})
    assert r.get_json()["state"] == "done"
    # the last piece's answer lost too: sending it again answers the same outcome, and writes nothing
    again = api.req("PUT", f"/api/v1/uploads/{uid}?offset={piece}", data=data[piece:],
                    headers={"Content-Type": "application/octet-stream"})
    assert again.status_code == 200 and again.get_json()["capture"] == "take"
    assert api.get(f"/api/v1/uploads/{uid}").get_json()["state"] == "done"
    gone = api.req("DELETE", f"/api/v1/uploads/{uid}")              # a cancel too late keeps the capture
    assert gone.status_code == 200 and gone.get_json()["state"] == "done"
    assert (control.captures.directory / "take.wav").read_bytes() == data
    assert not [n for n in _folder(control) if n.startswith(".")]


def test_a_name_in_use_or_hostile_never_replaces_or_escapes(api, control, tmp_path):
    mine = _mix(tmp_path / "song.wav", seconds=3.0)
    theirs = _mix(tmp_path / "other.wav", seconds=2.0)
    (control.captures.directory / "song.wav").write_bytes(theirs.read_bytes())
    (control.captures.directory / "song-2.json").write_text("{}")   # an analysis whose WAV is gone
    assert _send(api, mine)["capture"] == "song-3"
    assert (control.captures.directory / "song.wav").read_bytes() == theirs.read_bytes()
    assert (control.captures.directory / "song-3.wav").read_bytes() == mine.read_bytes()
    got = _send(api, mine, name="../../etc/..\\.hidden:mix?.WAV")["capture"]
    assert got == "hidden_mix_" and (control.captures.directory / "hidden_mix_.wav").is_file()
    assert not list(tmp_path.glob("etc*"))



def test_a_name_long_in_utf8_bytes_is_cut_when_the_upload_begins_and_the_mix_lands(api, control, tmp_path):
    """96 Japanese characters are 288 bytes of UTF-8 and a file name holds 255: the name used to be cut
    to 100 characters only, and the whole mix arrived before the box failed with 500 "File name too
    long". It is cut by bytes, at a character, with room for "-2" and the sidecar's temporary file."""
    title = "日本語のタイトル" * 12
    mix = _mix(tmp_path / "mix.wav", seconds=2.0)
    r = api.post("/api/v1/uploads", json={"file": title + ".wav", "size": mix.stat().st_size})
    assert r.status_code == 201, r.get_json()
    api.req("DELETE", f"/api/v1/uploads/{r.get_json()['id']}")
    for expect_suffix in ("", "-2"):
        done = _send(api, mix, name=title + ".wav")
        assert done["state"] == "done", done
        name = done["capture"]
        stem = name.removesuffix(expect_suffix)
        assert name.endswith(expect_suffix) and title.startswith(stem) and len(stem) >= 60, name
        assert len(name.encode("utf-8")) <= 200
        wav = control.captures.directory / f"{name}.wav"
        assert wav.read_bytes() == mix.read_bytes()
        wait_until(lambda n=name: (control.captures.directory / f"{n}.json").exists(), timeout=60)
        row = api.get(f"/api/v1/captures/{urllib.request.quote(name)}").get_json()
        assert row["name"] == name, row
    assert not [n for n in _folder(control) if n.startswith(".")]

@pytest.mark.parametrize("fmt, subtype, wav_subtype, ext", [("AIFF", "PCM_24", "PCM_24", "aiff"),
                                                            ("AIFF", "FLOAT", "FLOAT", "aif"),
                                                            ("FLAC", "PCM_16", "PCM_16", "flac"),
                                                            ("FLAC", "PCM_24", "PCM_24", "flac")])
def test_an_aiff_or_flac_mix_becomes_a_wav_of_the_same_words(api, control, tmp_path, fmt, subtype, wav_subtype, ext):
    """Logic's AIFF and a FLAC arrive as WAV captures holding exactly the same samples (read back by
    libsndfile from both files), their word length kept, the sidecar saying what they were. The box
    wrote that WAV, so it is a Broadcast Wave file as every WAV the box writes: its bext chunk (read
    by libsndfile) says what it was made from and when, and, once analysed, how loud it is, as
    ffmpeg's ebur128 measures it."""
    rng = np.random.default_rng(3)
    y = np.clip(0.3 * rng.standard_normal((RATE * 3, 2)), -1, 1)
    src = tmp_path / f"Bounce 1.{ext}"
    sf.write(src, y, RATE, subtype=subtype, format=fmt)
    sent = _dt.datetime.now()
    done = _send(api, src)
    assert done["capture"] == "Bounce 1" and done["converted_from"] == fmt
    wav = control.captures.directory / "Bounce 1.wav"
    info = sf.info(str(wav))
    assert (info.format, info.subtype, info.samplerate, info.frames) == ("WAV", wav_subtype, RATE, RATE * 3)
    assert np.array_equal(sf.read(str(wav))[0], sf.read(str(src))[0])
    assert not [n for n in _folder(control) if n.startswith(".")]
    side = wait_until(lambda: api.get("/api/v1/captures/Bounce%201").get_json()["sidecar"], timeout=60)
    assert side["converted_from"] == fmt and side["uploaded_from"] == src.name
    bext, ff = libsndfile_bext(wav), ffmpeg_ebur128(wav, tmp_path)
    assert bext["description"] == f"masterbox upload: {fmt} {src.name}" and bext["version"] == 2
    when = _dt.datetime.strptime(f"{bext['origination_date']} {bext['origination_time']}", "%Y-%m-%d %H:%M:%S")
    assert sent - _dt.timedelta(seconds=1) <= when <= _dt.datetime.now()            # when it arrived, local time
    bits = {"PCM_16": "16", "PCM_24": "24", "FLOAT": "32"}[subtype]
    assert bext["coding_history"].startswith(f"A=PCM,F={RATE},W={bits},M=stereo,T={fmt} {src.name}")
    assert bext["loudness_value"] / 100 == pytest.approx(ff["integrated_lufs"], abs=0.1)
    assert bext["max_true_peak_level"] / 100 == pytest.approx(ff["true_peak_dbtp"], abs=0.2)


def test_a_flac_that_will_not_fit_once_a_wav_is_refused(api, control, tmp_path):
    """A FLAC grows when it becomes a WAV: the room for the WAV is checked before the copy."""
    src = tmp_path / "quiet.flac"
    sf.write(src, np.zeros((RATE * 60, 2)), RATE, subtype="PCM_24", format="FLAC")     # silence packs small
    data = src.read_bytes()
    st = api.post("/api/v1/uploads", json={"file": src.name, "size": len(data)}).get_json()
    free = os.statvfs(control.captures.directory)
    control.uploads.floor_bytes = free.f_bavail * free.f_frsize - len(data) - (RATE * 60 * 2 * 3) // 2
    r = api.req("PUT", f"/api/v1/uploads/{st['id']}?offset=0", data=data,
                headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 507 and "not enough disk space" in r.get_json()["error"], r.get_json()
    assert "nothing was kept" in r.get_json()["error"]
    assert _folder(control) == []


@pytest.mark.parametrize("case", ["mp3", "damaged", "too_short", "six_channels", "mp3_as_flac", "wav_as_aiff"])
def test_what_is_not_a_usable_wav_is_refused_and_nothing_is_kept(api, control, tmp_path, case):
    before = _folder(control)
    if case == "mp3":
        data = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(5000)
    elif case == "damaged":         # a RIFF/WAVE start, then no fmt chunk libsndfile can use
        data = b"RIFF" + (5000).to_bytes(4, "little") + b"WAVEjunk" + bytes(5000)
    elif case == "too_short":
        data = _mix(tmp_path / "x.wav", seconds=0.2).read_bytes()
    elif case == "six_channels":
        sf.write(tmp_path / "x.wav", np.zeros((RATE, 6)), RATE, subtype="PCM_16")
        data = (tmp_path / "x.wav").read_bytes()
    elif case == "mp3_as_flac":
        data = b"ID3\x04\x00\x00\x00\x00\x00\x00" + bytes(5000)
    else:                           # a WAV given an .aiff name: the name says what the box expects
        data = _mix(tmp_path / "x.wav", seconds=1.0).read_bytes()
    name = {"mp3_as_flac": "mix.flac", "wav_as_aiff": "mix.aiff"}.get(case, "mix.wav")
    st = api.post("/api/v1/uploads", json={"file": name, "size": len(data)}).get_json()
    r = api.req("PUT", f"/api/v1/uploads/{st['id']}?offset=0", data=data,
                headers={"Content-Type": "application/octet-stream"})
    assert r.status_code == 415, r.get_json()
    msg = r.get_json()["error"]
    assert {"mp3": "named as WAV but does not start like one", "damaged": "not a WAV file the box can read",
            "too_short": "too short", "six_channels": "6 channels",
            "mp3_as_flac": "named as FLAC but does not start like one",
            "wav_as_aiff": "named as AIFF but does not start like one"}[case] in msg
    assert "nothing was kept" in msg
    assert _folder(control) == before
    assert api.get(f"/api/v1/uploads/{st['id']}").status_code == 404


def test_requests_that_do_not_fit_are_refused_before_anything_is_written(api, control, tmp_path):
    before = _folder(control)
    r = api.post("/api/v1/uploads", json={"file": "mix.mp3", "size": 1000})
    assert r.status_code == 415 and "is not a WAV, AIFF or FLAC file" in r.get_json()["error"]
    for body in ({"file": "mix.wav"}, {"file": "mix.wav", "size": "big"}, {"file": "mix.wav", "size": 10},
                 {"file": "mix.wav", "size": 1000, "path": "/"}):
        assert api.post("/api/v1/uploads", json=body).status_code == 400, body
    free = os.statvfs(control.captures.directory)
    r = api.post("/api/v1/uploads", json={"file": "mix.wav", "size": free.f_bavail * free.f_frsize + 1})
    assert r.status_code == 507 and "not enough disk space" in r.get_json()["error"]
    assert _folder(control) == before

    uid = api.post("/api/v1/uploads", json={"file": "mix.wav", "size": 1000}).get_json()["id"]
    octet = {"Content-Type": "application/octet-stream"}
    assert api.req("PUT", f"/api/v1/uploads/{uid}", data=b"x", headers=octet).status_code == 400
    assert api.req("PUT", f"/api/v1/uploads/{uid}?offset=-1", data=b"x", headers=octet).status_code == 400
    assert api.req("PUT", f"/api/v1/uploads/{uid}?offset=0", data=b"RIFF").status_code == 415
    assert api.req("PUT", f"/api/v1/uploads/{uid}?offset=0", data=bytes(1001), headers=octet).status_code == 413
    assert api.req("PUT", "/api/v1/uploads/nosuch?offset=0", data=b"x", headers=octet).status_code == 404
    ids = [uid] + [api.post("/api/v1/uploads", json={"file": f"m{k}.wav", "size": 1000}).get_json()["id"]
                   for k in range(capture_upload.MAX_ACTIVE - 1)]
    assert api.post("/api/v1/uploads", json={"file": "one-more.wav", "size": 1000}).status_code == 409
    assert len(api.get("/api/v1/uploads").get_json()["uploads"]) == capture_upload.MAX_ACTIVE
    assert len([n for n in _folder(control) if n.startswith(PART_PREFIX)]) == capture_upload.MAX_ACTIVE
    for u in ids:
        assert api.req("DELETE", f"/api/v1/uploads/{u}").get_json()["state"] == "cancelled"
    assert _folder(control) == before


def test_an_idle_upload_is_dropped_and_its_file_removed(api, control):
    now = [1000.0]
    control.uploads.clock = lambda: now[0]
    uid = api.post("/api/v1/uploads", json={"file": "mix.wav", "size": 1000}).get_json()["id"]
    assert any(n.startswith(PART_PREFIX) for n in _folder(control))
    now[0] += capture_upload.IDLE_S + 1
    assert api.get(f"/api/v1/uploads/{uid}").status_code == 404
    assert not any(n.startswith(PART_PREFIX) for n in _folder(control))
    # with no request coming, the control's minute timer drops it all the same
    api.post("/api/v1/uploads", json={"file": "mix.wav", "size": 1000})
    now[0] += capture_upload.IDLE_S - 1
    control.uploads.expire()
    assert len(control.uploads.active()) == 1
    now[0] += 2
    control.uploads.expire()
    assert control.uploads.active() == [] and not any(n.startswith(PART_PREFIX) for n in _folder(control))


def test_a_part_left_by_a_power_cut_is_swept_at_start(control):
    part = control.captures.directory / f"{PART_PREFIX}0123456789abcdef.tmp"
    part.write_bytes(bytes(1000))
    old = time.time() - 120
    os.utime(part, (old, old))
    assert control.captures.remove_stale_temporaries() == [(part.name, 1000)]


def _tiny_captures(control, tmp_path, size="3m"):
    mnt = tmp_path / "tiny"
    mnt.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mnt)]).returncode != 0:
        pytest.fail("mounting a tmpfs needs root (CI runs as root)")
    control.captures.directory = mnt
    return mnt


@pytest.mark.parametrize("floor", ["kept", "off"])
def test_a_disk_that_fills_mid_upload_ends_it_and_gives_the_space_back(api, control, tmp_path, floor):
    """A 3 MB tmpfs: the upload begins with room, then another file takes it (a recording would).

    With the floor (1 MB) the box stops before the disk is full; with the floor off the write
    itself meets ENOSPC. Either way the upload's file is removed and the other file is intact."""
    mnt = _tiny_captures(control, tmp_path)
    try:
        control.uploads.floor_bytes = (1 << 20) if floor == "kept" else -(1 << 40)
        data = _mix(tmp_path / "mix.wav", seconds=20.0, rate=22050, subtype="PCM_16").read_bytes()[:1_500_000]
        st = api.post("/api/v1/uploads", json={"file": "mix.wav", "size": 1_500_000}).get_json()
        keeper = mnt / "recording.bin"
        keeper.write_bytes(b"\x01" * 2_000_000)
        r = api.req("PUT", f"/api/v1/uploads/{st['id']}?offset=0", data=data,
                    headers={"Content-Type": "application/octet-stream"})
        assert r.status_code == 507, r.get_json()
        assert ("not enough disk space" if floor == "kept" else "the disk is full") in r.get_json()["error"]
        assert "removed" in r.get_json()["error"]
        assert sorted(p.name for p in mnt.iterdir()) == ["recording.bin"]
        assert keeper.read_bytes() == b"\x01" * 2_000_000
    finally:
        control.uploads.close()
        subprocess.run(["umount", str(mnt)], check=False)


def test_while_a_capture_records_an_upload_leaves_it_the_reserve(api, control, tmp_path):
    from firmware.capture_writer import CaptureSession

    free = os.statvfs(control.captures.directory)
    free = free.f_bavail * free.f_frsize
    size = free - control.uploads.floor_bytes - capture_upload.RECORDING_RESERVE_BYTES // 2
    if size < 1 << 20:
        pytest.fail(f"this test needs {capture_upload.RECORDING_RESERVE_BYTES >> 30} GB free; {free >> 20} MB are")
    s = CaptureSession(control.captures.directory, 48000, 2, fmt="PCM_24", ring_seconds=5, analyze=False)
    try:
        s.push(np.zeros((4800, 2)), np.zeros((4800, 2)))
        assert control.captures.is_recording()
        r = api.post("/api/v1/uploads", json={"file": "mix.wav", "size": size})
        assert r.status_code == 507 and "while a capture is being recorded" in r.get_json()["error"]
    finally:
        s.stop()
    assert not control.captures.is_recording()
    r = api.post("/api/v1/uploads", json={"file": "mix.wav", "size": size})
    assert r.status_code == 201
    api.req("DELETE", f"/api/v1/uploads/{r.get_json()['id']}")


def test_a_big_upload_under_waitress_keeps_the_servers_memory_flat(control, _isolated_home, tmp_path):
    """96 MB through the real server in 4 MB pieces: memory stays bounded, the bytes arrive whole."""
    src = tmp_path / "long.wav"
    sf.write(src, np.zeros((10, 2)), 48000, subtype="PCM_24")
    head = bytearray(src.read_bytes()[:44])
    size = 96 << 20
    frames = (size - 44) // 6
    head[4:8] = (36 + frames * 6).to_bytes(4, "little")
    head[40:44] = (frames * 6).to_bytes(4, "little")
    with open(src, "wb") as f:
        f.write(head)
        f.truncate(44 + frames * 6)
    app = create_app(control, {"web": {"threads": 6, "sse_max_clients": 2}})
    set_password(app)
    server = ServerThread(app, host="127.0.0.1", port=0).start()
    try:
        opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())

        def call(method, path, body=None, ctype="application/json", csrf=None):
            req = urllib.request.Request(f"{server.url}{path}", data=body, method=method,
                                         headers={"Content-Type": ctype, **({"X-CSRF-Token": csrf} if csrf else {})})
            with opener.open(req, timeout=60) as r:
                return json.loads(r.read())

        csrf = call("GET", "/api/v1/auth/session")["csrf_token"]
        csrf = call("POST", "/api/v1/auth/login", json.dumps({"password": PASSWORD}).encode(), csrf=csrf)["csrf_token"]
        rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        st = call("POST", "/api/v1/uploads", json.dumps({"file": "long.wav", "size": src.stat().st_size}).encode(),
                  csrf=csrf)
        with open(src, "rb") as f:
            while st["state"] == "receiving":
                f.seek(st["offset"])
                st = call("PUT", f"/api/v1/uploads/{st['id']}?offset={st['offset']}", f.read(st["chunk_bytes"]),
                          "application/octet-stream", csrf)
        grown_mb = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
        assert st["capture"] == "long" and st["frames"] == frames
        landed = control.captures.directory / "long.wav"
        assert landed.stat().st_size == src.stat().st_size
        with open(landed, "rb") as a, open(src, "rb") as b:
            while (x := a.read(8 << 20)):
                assert x == b.read(8 << 20)
        assert grown_mb < 48, f"peak memory grew {grown_mb:.0f} MB receiving {size >> 20} MB"
    finally:
        server.stop()


def test_a_piece_without_the_sessions_token_is_refused(api, anon):
    """The CSRF token guards PUT like POST; a logged-out client gets nothing."""
    uid = api.post("/api/v1/uploads", json={"file": "mix.wav", "size": 1000}).get_json()["id"]
    octet = {"Content-Type": "application/octet-stream"}
    r = api.req("PUT", f"/api/v1/uploads/{uid}?offset=0", data=b"RIFF" + bytes(60), csrf=False, headers=octet)
    assert r.status_code == 403 and "CSRF" in r.get_json()["error"]
    assert anon.req("PUT", f"/api/v1/uploads/{uid}?offset=0", data=b"RIFF", headers=octet).status_code in (401, 403)
    assert anon.get("/api/v1/uploads").status_code == 401
    assert api.get(f"/api/v1/uploads/{uid}").get_json()["offset"] == 0
