"""dsp/kernel_cache.py: ``skip_blas_probe`` keeps scipy.linalg out of ``masterbox master``.

It is only sound while no kernel needs BLAS: the sources are checked for every numpy call numba
implements with BLAS, and a real process renders a file with the probe skipped.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import numpy as np
import soundfile as sf

import dsp

BLAS_CALLS = {"dot", "vdot", "inner", "matmul", "linalg", "convolve", "correlate"}


def test_no_kernel_source_uses_blas():
    for path in sorted(Path(dsp.__file__).parent.glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            where = f"{path.name}:{getattr(node, 'lineno', '?')} uses BLAS through numba"
            assert not (isinstance(node, ast.Attribute) and node.attr in BLAS_CALLS
                        and isinstance(node.value, ast.Name) and node.value.id in ("np", "numpy")), where
            assert not (isinstance(node, ast.BinOp | ast.AugAssign) and isinstance(node.op, ast.MatMult)), where
            assert not (isinstance(node, ast.ImportFrom) and (node.module or "").startswith("numpy.linalg")), where


def test_master_renders_without_scipy_linalg_and_leaves_it_importable(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, 0.1 * np.sin(np.arange(48000) * 0.05)[:, None] * [1.0, 0.5], 48000, subtype="PCM_24")
    script = f"""
import sys
from dsp.kernel_cache import skip_blas_probe
skip_blas_probe()
from dsp import schema
from firmware.render import master_file
r = master_file({str(src)!r}, {str(tmp_path / "out.wav")!r}, schema.defaults(), target_lufs=-20.0)
assert r.target_reached, r
print("linalg loaded:", "scipy.linalg" in sys.modules)
import numba.np.arraymath
print("blas recorded:", numba.np.arraymath._HAVE_BLAS)
import scipy.linalg.cython_blas  # still importable for whoever needs it
print("ok")
"""
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                          cwd=Path(dsp.__file__).parents[1])
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.split("\n")[:3] == ["linalg loaded: False", "blas recorded: False", "ok"]


def test_cli_skips_the_probe_for_master_and_analyze(tmp_path):
    src = tmp_path / "in.wav"
    sf.write(src, 0.1 * np.sin(np.arange(48000) * 0.05)[:, None] * [1.0, 0.5], 48000, subtype="PCM_24")
    for argv in (["analyze", str(src), "--json"], ["master", str(src), str(tmp_path / "o.wav"), "--json"]):
        script = f"""
import sys
from firmware.cli import main
assert main({argv!r}) == 0
print("linalg loaded:", "scipy.linalg" in sys.modules, file=sys.stderr)
"""
        proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=600,
                              cwd=Path(dsp.__file__).parents[1])
        assert proc.returncode == 0, proc.stderr
        assert "linalg loaded: False" in proc.stderr, (argv, proc.stderr)
