"""``masterbox presets export-all``: a backup that is really one, or a clear refusal.

Runs the real console command in a subprocess against the per-test MASTERBOX_HOME and reads the
zip it writes with Python's zipfile, not with the preset store that wrote it.
"""

from __future__ import annotations

import json
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
