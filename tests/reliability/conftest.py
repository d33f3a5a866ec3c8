"""Fixtures for the reliability tests (issue 9): whole-box stress, faults and hostile input.

Long versions run on demand: the durations come from environment variables (defaults keep the
suite fast), e.g. ``MB_SOAK_SECONDS=3600``, ``MB_LOAD_SECONDS=600``; see docs/reliability.md.
"""

from __future__ import annotations

import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
for p in (HERE, HERE.parent / "webui"):  # soakcheck / loadrig here; mbweb_helpers of the web tests
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from tests.engine.conftest import alsa_rig, jack_server  # noqa: E402,F401  (the JACK-paced ALSA rig, as fixtures here)
