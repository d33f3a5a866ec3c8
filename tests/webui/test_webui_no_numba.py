"""The web UI runs in the control process, which must never load numba (or the DSP kernels)."""

from __future__ import annotations

import subprocess
import sys

SCRIPT = r"""
import sys
from firmware.control import Control
from webui import create_app
from firmware.passwords import PasswordFile

c = Control(watch=False)
app = create_app(c, {})
PasswordFile().set("numba free password")
cl = app.test_client()
tok = cl.get("/api/v1/auth/session").get_json()["csrf_token"]
tok = cl.post("/api/v1/auth/login", json={"password": "numba free password"},
              headers={"X-CSRF-Token": tok}).get_json()["csrf_token"]
for path in ("/live", "/chain", "/presets", "/captures", "/system", "/api/v1/schema", "/api/v1/state",
             "/api/v1/presets", "/api/v1/captures", "/api/v1/system", "/api/v1/meters", "/api/v1/panel",
             "/api/v1/eq/response", "/api/v1/multiband/response"):
    assert cl.get(path).status_code == 200, path
cl.patch("/api/v1/state", json={"values": {"st.width": 120.0}}, headers={"X-CSRF-Token": tok})
c.close()
loaded = [m for m in ("numba", "llvmlite", "dsp.meter", "dsp.chain", "dsp.svf", "dsp.rbj", "dsp.compressor",
                      "dsp.crossover") if m in sys.modules]
print(" ".join(loaded))
sys.exit(1 if loaded else 0)
"""


def test_web_ui_never_imports_numba():
    r = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, f"loaded: {r.stdout} {r.stderr[-2000:]}"
