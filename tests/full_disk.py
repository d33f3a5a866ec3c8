"""A small filesystem of its own for the tests that fill a disk: a tmpfs mounted on a folder of
the test's (root only, as CI runs; without root the test is skipped and says why)."""

from __future__ import annotations

import contextlib
import os
import subprocess
from pathlib import Path

import pytest


@contextlib.contextmanager
def tmpfs(path: Path, size: str):
    """``path`` (created) with a tmpfs of ``size`` ("1m", "8m") mounted on it for the ``with`` block."""
    if os.geteuid() != 0:
        pytest.skip("a full disk is made with a tmpfs mount, which needs root (CI runs as root)")
    path.mkdir(parents=True, exist_ok=True)
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                       capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"mounting a tmpfs on {path} failed as root: {r.stderr.strip()}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], check=False)


def free_bytes(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def leave_free(path: Path, n: int, name: str = "fill") -> Path:
    """Fill the filesystem of ``path`` with a file ``name`` so that ``n`` bytes stay free (tmpfs counts
    whole 4 KiB pages: ``n`` is rounded to them)."""
    fill = path / name
    with open(fill, "wb") as f:
        f.write(bytes(max(free_bytes(path) - n, 0)))
    return fill
