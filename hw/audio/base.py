"""The one small interface every audio backend offers the engine.

A backend moves whole periods of stereo float64 frames: :meth:`AudioBackend.read` blocks until
one period of input is there and fills the caller's array, :meth:`AudioBackend.write` queues one
period of output. Both return a status instead of raising, because nothing that happens to a
device may stop the box: ``OK``; ``XRUN`` (the stream broke and was recovered in place; the
period is lost and the backend counted it); ``LOST`` (the device is gone; the engine calls
:meth:`AudioBackend.reopen` once a second until it answers ``True``).

Counters (``xruns``, ``device_errors``) are plain ints that only the audio thread writes.
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from dataclasses import dataclass

import numpy as np

OK, XRUN, LOST = 0, 1, 2
XRUN_LOG_SIZE = 1024   # in the stats file: enough to place every xrun of a test run in time (tests/host_witness.py)
STATUS_NAMES = {OK: "ok", XRUN: "xrun", LOST: "lost"}


class DeviceError(RuntimeError):
    """A device that cannot be opened or configured as asked (the message says which and why)."""


@dataclass
class StreamConfig:
    """What the engine asks of a backend; ``device`` names are backend-specific."""

    rate: int = 48000
    period: int = 128
    periods: int = 2
    format: str = "S32_LE"
    channels: int = 2
    capture_device: str = "default"
    playback_device: str = "default"


class AudioBackend(ABC):
    """Base class: the stream's shape and counters; subclasses implement open/read/write/close."""

    name = "base"

    def __init__(self, config: StreamConfig):
        self.config = config
        self.rate = int(config.rate)
        self.period = int(config.period)
        self.periods = int(config.periods)
        self.channels = int(config.channels)
        self.xruns = 0
        self.device_errors = 0
        self.last_error = ""
        self.xrun_log: list[tuple[float, str]] = []  # (monotonic time, what): the last XRUN_LOG_SIZE

    def note_xrun(self, what: str) -> None:
        """Count an xrun and remember when and where (the rare path: allocation is fine here)."""
        self.xruns += 1
        self.xrun_log.append((time.monotonic(), what))
        del self.xrun_log[:-XRUN_LOG_SIZE]

    @property
    def io_latency_samples(self) -> int:
        """Input-to-output delay the buffers add: one capture period plus the playback queue."""
        return self.period * self.periods

    @property
    def output_bits(self) -> int | None:
        """Word length of the output (16/24) the chain should dither to, None for float/32-bit."""
        return None

    @abstractmethod
    def open(self) -> None:
        """Open and start the stream (raises DeviceError when the device cannot be used)."""

    @abstractmethod
    def read(self, x: np.ndarray) -> int:
        """Fill ``x`` (``(period, channels)`` float64) with the next period; OK, XRUN or LOST."""

    @abstractmethod
    def write(self, y: np.ndarray) -> int:
        """Queue ``y`` (``(period, channels)`` float64) for output; OK, XRUN or LOST."""

    def reopen(self) -> bool:
        """Try once to bring a lost device back; True when the stream runs again."""
        self.close()
        try:
            self.open()
        except DeviceError as e:
            self.last_error = str(e)
            return False
        return True

    @abstractmethod
    def close(self) -> None:
        """Release the device; safe to call twice."""

    def describe(self) -> dict:
        """What is open, for status replies and logs."""
        c = self.config
        return {"backend": self.name, "rate": self.rate, "period": self.period, "periods": self.periods,
                "format": c.format, "capture_device": c.capture_device, "playback_device": c.playback_device}
