"""Audio backends: ALSA (pyalsaaudio), PortAudio (sounddevice) and a simulated, clock-paced one.

``open_backend(name, config, **options)`` builds one by name; all share
:class:`hw.audio.base.AudioBackend` (read a period, write a period, never raise on device
trouble: report ``XRUN`` or ``LOST`` and count it).
"""

from __future__ import annotations

from hw.audio.base import LOST, OK, XRUN, AudioBackend, DeviceError, StreamConfig

BACKENDS = ("alsa", "portaudio", "sim")

__all__ = ["AudioBackend", "DeviceError", "StreamConfig", "OK", "XRUN", "LOST", "BACKENDS", "make_backend"]


def make_backend(name: str, config: StreamConfig, **options) -> AudioBackend:
    """The backend called ``name`` for ``config`` (not opened yet). ``options`` go to its constructor."""
    if name == "alsa":
        from hw.audio.alsa import AlsaBackend

        return AlsaBackend(config, **options)
    if name == "portaudio":
        from hw.audio.portaudio import PortAudioBackend

        return PortAudioBackend(config, **options)
    if name == "sim":
        from hw.audio.sim import SimBackend

        return SimBackend(config, **options)
    raise DeviceError(f"unknown audio backend {name!r}; use one of {', '.join(BACKENDS)}")
