"""``masterbox presets export-all``: a backup that is really one, or a clear refusal.

Runs the real console command in a subprocess against the per-test MASTERBOX_HOME and reads the
zip it writes with Python's zipfile, not with the preset store that wrote it.
"""

from __future__ import annotations

import json
import os
import subprocess
import zipfile


def _presets(cmd, *args):
    return subprocess.run([*cmd, "presets", *map(str, args)], capture_output=True, text=True, timeout=120)


def test_export_all_without_user_presets_refuses_and_writes_nothing(masterbox_cmd, tmp_path):
    out = tmp_path / "backup.zip"
    proc = _presets(masterbox_cmd, "export-all", out)
    assert proc.returncode != 0
    assert "no user presets" in proc.stderr and "--factory" in proc.stderr
    assert not out.exists()


def test_export_all_writes_every_user_preset_and_says_how_many(masterbox_cmd, tmp_path):
    one = json.loads(_presets(masterbox_cmd, "show", "streaming").stdout)
    for name in ("Club A", "Club B"):
        src = tmp_path / f"{name}.json"
        src.write_text(json.dumps({**one, "name": name}))
        assert _presets(masterbox_cmd, "import", src).returncode == 0
    out = tmp_path / "backup.zip"
    proc = _presets(masterbox_cmd, "export-all", out)
    assert proc.returncode == 0, proc.stderr
    assert "exported 2 presets" in proc.stdout
    names = sorted(json.loads(zipfile.ZipFile(out).read(n))["name"] for n in zipfile.ZipFile(out).namelist())
    assert names == ["Club A", "Club B"]
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_export_all_into_a_missing_folder_is_refused(masterbox_cmd, tmp_path):
    proc = _presets(masterbox_cmd, "export-all", tmp_path / "no" / "such" / "backup.zip", "--factory")
    assert proc.returncode != 0
    assert "does not exist" in proc.stderr
    assert not (tmp_path / "no").exists()


def test_import_refuses_names_the_web_cannot_address_and_writes_nothing(masterbox_cmd, tmp_path, _isolated_home):
    """``masterbox presets import`` takes the same names the web does: a zip holding '../stuck' or
    '.hidden' (which the web could then neither recall, rename, export nor delete) is refused whole."""
    one = json.loads(_presets(masterbox_cmd, "show", "streaming").stdout)
    src = tmp_path / "set.zip"
    with zipfile.ZipFile(src, "w") as z:
        z.writestr("fine.json", json.dumps({**one, "name": "Fine one"}))
        z.writestr("x.json", json.dumps({**one, "name": "../stuck"}))
        z.writestr("y.json", json.dumps({**one, "name": ".also stuck"}))
    proc = _presets(masterbox_cmd, "import", src)
    assert proc.returncode != 0
    assert "x.json" in proc.stderr and "look like a path" in proc.stderr and "y.json" in proc.stderr, proc.stderr
    single = tmp_path / "one.json"
    single.write_text(json.dumps({**one, "name": "Fine"}))
    proc = _presets(masterbox_cmd, "import", single, "--name", ".hidden")
    assert proc.returncode != 0 and "start with '.'" in proc.stderr, proc.stderr
    listed = json.loads(_presets(masterbox_cmd, "list", "--json").stdout)
    assert [r["name"] for r in listed if not r["factory"]] == []


def test_listing_into_a_closed_pipe_exits_0_without_a_message(masterbox_cmd, tmp_path, _isolated_home):
    """``masterbox presets list | head -1``: the reader went away, which is no error of the command
    (exit 0, nothing on stderr, as for every command: docs/chain.md). The listing commands turned the
    broken pipe into "masterbox presets: : Broken pipe", exit 2. The pipe's reading end is closed
    before the command starts, so its first write fails whatever the output's size."""
    import numpy as np
    import soundfile as sf

    captures = _isolated_home / "captures"
    captures.mkdir(exist_ok=True)
    sf.write(str(captures / "take.wav"), np.zeros((4800, 2)), 48000, subtype="PCM_24")
    for args in (("presets", "list"), ("presets", "list", "--json"), ("presets", "show", "streaming"),
                 ("captures", "list"), ("captures", "list", "--json")):
        r, w = os.pipe()
        os.close(r)
        try:
            proc = subprocess.run([*masterbox_cmd, *args], stdout=w, stderr=subprocess.PIPE, text=True, timeout=120)
        finally:
            os.close(w)
        assert (proc.returncode, proc.stderr) == (0, ""), args


def test_another_users_commands_on_the_boxs_data_say_what_to_do(masterbox_cmd, tmp_path, _isolated_home):
    """On the box, /usr/local/bin/masterbox points every user at the data root, which only the service
    user may read. Another user can still master and analyse with a factory preset (the preset store
    used to fail on its start-up sweep of the user folder: a traceback); listing the box's presets or
    captures, or using a user preset, is one line that says how to get in, exit 2, no traceback.
    The kernel's own permission check does the refusing: the folders are mode 000, and as root the
    command runs without the capabilities that bypass file modes (setpriv)."""
    import numpy as np
    import soundfile as sf

    mix, out = tmp_path / "mix.wav", tmp_path / "out.wav"
    sf.write(str(mix), np.random.default_rng(1).normal(0, 0.1, (48000, 2)), 48000, subtype="PCM_24")
    locked = [_isolated_home / "presets", _isolated_home / "captures"]
    for d in locked:
        d.mkdir(exist_ok=True)
        d.chmod(0)
    as_user = ["setpriv", "--bounding-set=-dac_override,-dac_read_search"] if os.geteuid() == 0 else []
    try:
        def run(*args):
            return subprocess.run([*as_user, *masterbox_cmd, *map(str, args)], capture_output=True, text=True,
                                  timeout=300)

        ok = run("master", mix, out, "--preset", "streaming")
        assert ok.returncode == 0 and out.is_file(), ok.stderr
        for args in (("presets", "list"), ("captures", "list"),
                     ("master", mix, tmp_path / "o2.wav", "--preset", "mine")):
            r = run(*args)
            assert r.returncode == 2 and "Traceback" not in r.stderr, (args, r.stderr)
            assert "Permission denied" in r.stderr and "sudo masterbox" in r.stderr, (args, r.stderr)
            assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    finally:
        for d in locked:
            d.chmod(0o755)


def test_the_listing_says_which_presets_keep_the_level(masterbox_cmd):
    """`transparent` carries a target (-14 LUFS) that `master` does not apply (``level_to_target: false``):
    the listing says "keeps level" for it instead of a loudness it will not reach, and the JSON says
    so; the others list their targets."""
    text = _presets(masterbox_cmd, "list").stdout.splitlines()
    rows = {r["name"]: r for r in json.loads(_presets(masterbox_cmd, "list", "--json").stdout)}
    line = next(t for t in text if " transparent " in t)
    assert "keeps level" in line and "LUFS" not in line.split("dBTP")[0], line
    assert rows["transparent"]["level_to_target"] is False and rows["streaming"]["level_to_target"] is True
    assert "-14.0 LUFS" in next(t for t in text if " streaming " in t)
