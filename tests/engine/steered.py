"""Running the engine in-process on the unpaced simulated device with requests at named blocks.

Every block is kept, so a run's output can be compared sample by sample with a run without the
request (the reference track, the listening modes).
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import numpy as np
import soundfile as sf

from firmware.control_channel import ControlServer
from firmware.engine import Engine
from hw.audio import StreamConfig
from hw.audio.sim import SimBackend
from tests.engine.conftest import wait_for

RATE = 48000
PERIOD = 128


def write_noise(path: Path, seconds: float, seed: int, rate: int = RATE, level: float = 0.1) -> None:
    rng = np.random.default_rng(seed)
    sf.write(str(path), level * rng.standard_normal((int(seconds * rate), 2)), rate, subtype="FLOAT")


class Steered(SimBackend):
    """The unpaced simulated device, calling ``steps[k]()`` just before its k-th read: requests land
    at exactly the blocks the test names, however fast the loop runs."""

    def __init__(self, *a, steps=None, **kw):
        super().__init__(*a, **kw)
        self.steps = steps or {}
        self.reads = 0

    def read(self, x):
        step = self.steps.get(self.reads)
        self.reads += 1
        if step is not None:
            step()
        return super().read(x)


def run_steered(src: Path, sink: Path, blocks: int, steps=None) -> tuple[Engine, ControlServer]:
    """Run the engine unpaced for ``blocks`` blocks; ``steps(engine, server)`` gives {block: action}."""
    backend = Steered(StreamConfig(rate=RATE, period=PERIOD, format="FLOAT_LE"), source=src, sink=sink,
                       paced=False)
    engine = Engine(backend, {"out.drive_db": 3.0}, wait_ready=True, realtime=False)
    server = ControlServer(engine, sink.with_suffix(".sock"), capture_dir=sink.parent / "captures")
    if steps is not None:
        backend.steps = steps(engine, server)
    th = threading.Thread(target=lambda: engine.run(), daemon=True)
    th.start()
    try:
        wait_for(lambda: engine.blocks >= blocks, 120, what=f"{blocks} blocks")
    finally:
        engine.request_stop()
        th.join(20)
    return engine, server


def ok(server: ControlServer, **req) -> dict:
    reply = server.handle_line(json.dumps(req).encode())
    assert reply["ok"], reply
    return reply
