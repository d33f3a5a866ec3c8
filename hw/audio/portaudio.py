"""PortAudio backend through python-sounddevice's blocking raw stream, for desktops.

The same job as the ALSA backend with PortAudio choosing the host API: one full-duplex
``sounddevice.RawStream`` with ``blocksize = period``. At start (and after an error) the output
buffer is filled with silence, so steady state reads one period and writes one period.
Overflows and underflows reported by PortAudio count as xruns (the stream keeps running);
a PortAudio error closes the stream, reports ``LOST`` and the engine retries once a second.

PortAudio has no 24-in-32 sample type, so ``S24_LE`` is refused (use ``S24_3LE`` or ``S32_LE``).
Device names are PortAudio's (``python -m sounddevice`` lists them) or their index.
"""

from __future__ import annotations

import numpy as np

from hw.audio.base import LOST, OK, XRUN, AudioBackend, DeviceError, StreamConfig
from hw.audio.formats import SampleCodec, sample_format

_DTYPES = {"S16_LE": "int16", "S24_3LE": "int24", "S32_LE": "int32", "FLOAT_LE": "float32"}


def _device(name: str):
    """PortAudio device index for a name ("default" = PortAudio's default) or an index string."""
    if name in ("", "default", None):
        return None
    return int(name) if str(name).isdigit() else name


class PortAudioBackend(AudioBackend):
    name = "portaudio"

    def __init__(self, config: StreamConfig):
        super().__init__(config)
        self.format = sample_format(config.format)
        if self.format.name not in _DTYPES:
            raise DeviceError(f"PortAudio cannot do {self.format.name}; use one of {', '.join(_DTYPES)}")
        self._in = SampleCodec(self.format, self.period, self.channels)
        self._out = SampleCodec(self.format, self.period, self.channels)
        self._stream = None
        self._latency = (0.0, 0.0)

    @property
    def output_bits(self) -> int | None:
        return self.format.output_bits

    @property
    def io_latency_samples(self) -> int:
        if self._stream is None:
            return super().io_latency_samples
        return int(round((self._latency[0] + self._latency[1]) * self.rate)) + self.period

    def open(self) -> None:
        import sounddevice as sd

        self._sd_error = sd.PortAudioError
        try:
            stream = sd.RawStream(samplerate=self.rate, blocksize=self.period, channels=self.channels,
                                  dtype=_DTYPES[self.format.name],
                                  device=(_device(self.config.capture_device), _device(self.config.playback_device)),
                                  latency=self.period * self.periods / self.rate)
            stream.start()
        except (sd.PortAudioError, ValueError) as e:
            raise DeviceError(f"cannot open PortAudio devices {self.config.capture_device!r} / "
                              f"{self.config.playback_device!r}: {e}") from None
        self._stream = stream
        self._latency = stream.latency
        self._prefill()

    def _prefill(self) -> None:
        silence = bytes(self._out.nbytes)
        free = self._stream.write_available
        while free >= self.period:
            self._stream.write(silence)
            free -= self.period

    def close(self) -> None:
        if self._stream is not None:
            try:
                self._stream.abort()
                self._stream.close()
            except Exception:  # noqa: BLE001 - a vanished device may fail to close; it is gone either way
                pass
            self._stream = None

    def _lost(self, why: str) -> int:
        self.device_errors += 1
        self.last_error = why
        self.close()
        return LOST

    def read(self, x: np.ndarray) -> int:
        if self._stream is None:
            return LOST
        try:
            data, overflowed = self._stream.read(self.period)
        except self._sd_error as e:
            return self._lost(f"PortAudio read failed: {e}")
        self._in.load(data)
        self._in.decode(x)
        if overflowed:
            self.note_xrun("input overflow")
            return XRUN
        return OK

    def write(self, y: np.ndarray) -> int:
        if self._stream is None:
            return LOST
        try:
            underflowed = self._stream.write(self._out.encode(y))
        except self._sd_error as e:
            return self._lost(f"PortAudio write failed: {e}")
        if underflowed:
            self.note_xrun("output underflow")
            try:
                self._prefill()
            except self._sd_error as e:
                return self._lost(f"PortAudio refill failed: {e}")
            return XRUN
        return OK
