"""The box's own backend: full-duplex ALSA through pyalsaaudio.

Both directions are opened non-blocking and waited on with ``poll()`` on the PCMs' descriptors,
so a device that stops delivering (USB pulled, JACK server gone, a plugin that hangs) is noticed
after ``lost_after`` seconds instead of blocking the engine forever inside ``snd_pcm_readi``.

The stream starts with the first :meth:`AlsaBackend.read` (so nothing the engine does between
opening and looping can overrun it). Start-up and every recovery use the same recipe, which
fixes the input-to-output delay at ``period * periods`` frames: fill the playback buffer with
``periods`` periods of silence, then start the capture. Each captured period is processed and
written while the playback still holds ``periods - 1`` periods, which is the processing budget.

An xrun (EPIPE on either side) is counted and recovered in place with that recipe: the
period is lost, the stream keeps running. Any other error, or silence from the device for
``lost_after`` seconds, closes the device and reports ``LOST``; the engine then calls
:meth:`AlsaBackend.reopen` once a second.

pyalsaaudio returns each captured period as a new ``bytes`` object (a malloc and free of one
period, not tracked by the garbage collector); everything else here is preallocated.
"""

from __future__ import annotations

import errno
import select
import threading
import time

import numpy as np

from hw.audio.base import LOST, OK, XRUN, AudioBackend, DeviceError, StreamConfig
from hw.audio.formats import SampleCodec, sample_format

RATES = (44100, 48000, 88200, 96000)


def _close_quietly(pcms) -> None:
    for pcm in pcms:
        try:
            pcm.close()
        except Exception:  # noqa: BLE001 - a vanished device may fail to close; it is gone either way
            pass


def granted_problem(info: dict, kind: str, device: str, rate: int, format_name: str, channels: int,
                    period: int, periods: int) -> str | None:
    """Why the stream the device granted (``pcm.info()``) cannot be used as asked, or None.

    pyalsaaudio 0.11 opens a PCM with the *nearest* configuration the device allows and says nothing
    when a setting was not granted, so each one is checked here, at open, where a person can fix it.
    Unchecked, a mono device ran with each block eating two device periods (xruns, distortion), a
    4-channel one failed every read ("Data size must be a multiple of framesize") and a larger
    period overflowed the capture ring; a period count smaller than asked cannot hold the prefill.
    A period count larger than asked is harmless (the prefill, not the buffer, sets the latency).
    """
    where = f"ALSA {kind} device {device!r}"
    if info.get("rate") != rate or info.get("format_name") != format_name:
        return (f"{where} does not do {rate} Hz {format_name} "
                f"(it offered {info.get('rate')} Hz {info.get('format_name')}); try a plughw: device")
    got = info.get("channels")
    if got != channels:
        return (f"{where} gives {got} channel(s); masterbox needs {channels}: use a plughw: device, or an "
                f"ALSA 'plug' or 'route' PCM that maps the device's channels to {channels}")
    got = info.get("period_size")
    if got != period:
        return (f"{where} grants a period of {got} frames, not {period}: set period = {got} "
                f"([audio] in the config, the System page, or --period {got})")
    got = info.get("periods")
    if got is not None and got < periods:
        return (f"{where} grants {got} periods, not {periods}: set periods = {got} "
                f"([audio] in the config, the System page, or --periods {got})")
    return None


class AlsaBackend(AudioBackend):
    """Capture from ``config.capture_device`` and play to ``config.playback_device``."""

    name = "alsa"

    def __init__(self, config: StreamConfig, lost_after: float = 1.0):
        super().__init__(config)
        if self.rate not in RATES:
            raise DeviceError(f"rate {self.rate} Hz is not supported; use one of {', '.join(map(str, RATES))}")
        self.format = sample_format(config.format)
        self.lost_after = float(lost_after)
        self._cap = None
        self._pb = None
        self._in = SampleCodec(self.format, self.period, self.channels)
        self._out = SampleCodec(self.format, self.period, self.channels)
        self._nbytes = self._in.nbytes
        # captured bytes gather here: a device may hand over less (or, after a partial read,
        # more) than one period per read
        self._ring = np.zeros(2 * self._nbytes, dtype=np.uint8)
        self._ring_mv = memoryview(self._ring)
        self._ring_head = self._ring[: self._nbytes]
        self._fill = 0
        self._silence = bytes(self._nbytes)
        self._poll_ms = max(5, int(4000 * self.period / self.rate))

    @property
    def output_bits(self) -> int | None:
        return self.format.output_bits

    # -- opening ----------------------------------------------------------------------
    def _open_pcm(self, alsaaudio, direction, device):
        kind = "capture" if direction == alsaaudio.PCM_CAPTURE else "playback"
        try:
            pcm = alsaaudio.PCM(direction, alsaaudio.PCM_NONBLOCK, device=device, channels=self.channels,
                                rate=self.rate, format=getattr(alsaaudio, f"PCM_FORMAT_{self.format.name}"),
                                periodsize=self.period, periods=self.periods)
        except alsaaudio.ALSAAudioError as e:
            raise DeviceError(f"cannot open ALSA {kind} device {device!r}: {e}") from None
        problem = granted_problem(pcm.info(), kind, device, self.rate, self.format.name, self.channels,
                                  self.period, self.periods)
        if problem:
            pcm.close()
            raise DeviceError(problem)
        return pcm

    def open(self) -> None:
        import alsaaudio

        self._alsaaudio = alsaaudio
        self._error_type = alsaaudio.ALSAAudioError
        try:
            self._cap = self._open_pcm(alsaaudio, alsaaudio.PCM_CAPTURE, self.config.capture_device)
            self._pb = self._open_pcm(alsaaudio, alsaaudio.PCM_PLAYBACK, self.config.playback_device)
        except DeviceError:
            self.close()
            raise
        self.granted = {"capture": self._cap.info(), "playback": self._pb.info()}
        self._cpoll = self._poller(self._cap)
        self._ppoll = self._poller(self._pb)
        self._running = False  # the stream starts with the first read, when the loop is there

    @staticmethod
    def _poller(pcm):
        p = select.poll()
        for fd, mask in pcm.polldescriptors():
            p.register(fd, mask)
        return p

    def _start(self) -> bool:
        """Prefill the playback with silence, then start the capture. False if the device failed."""
        try:
            for _ in range(self.periods):
                if self._write_bytes(self._silence, starting=True) != OK:
                    return False
            self._fill = 0
            n, data = self._cap.read()  # a read on a prepared capture stream starts it
            if n > 0:
                self._fill = self._ring_load(data, 0)
        except self._error_type as e:
            self.last_error = str(e)
            return False
        return True

    def close(self) -> None:
        self._release(self._cap, self._pb)
        self._cap = self._pb = None

    def _release(self, *pcms) -> None:
        """Close PCMs from a helper thread: closing a vanished device can block for good.

        (The JACK plugin's close waits for a server that was killed.) The audio thread must not
        hang on it, so the close runs in a daemon thread that may simply never return.
        """
        pcms = [p for p in pcms if p is not None]
        if pcms:
            threading.Thread(target=_close_quietly, args=(pcms,), name="alsa-close", daemon=True).start()

    # -- the stream -------------------------------------------------------------------
    def _ring_load(self, data, fill: int) -> int:
        end = fill + len(data)
        self._ring_mv[fill:end] = data
        return end

    def _lost(self, why: str) -> int:
        if self._cap is None and self._pb is None:
            return LOST  # already reported (a failure inside the restart recipe)
        self.device_errors += 1
        self.last_error = why
        self.close()
        return LOST

    def _recover(self, what: str) -> int:
        """After an xrun: restart both directions with the start-up recipe (same latency)."""
        self.note_xrun(what)
        try:
            self._pb.drop()
            self._cap.drop()
        except self._error_type as e:
            return self._lost(f"recovering from an xrun failed: {e}")
        if not self._start():
            return self._lost(f"restarting after an xrun failed: {self.last_error}")
        return XRUN

    def _wait(self, poller, pcm, want) -> bool:
        """Wait until ``pcm`` is ready for ``want`` (POLLIN/POLLOUT); False after lost_after seconds."""
        waited = 0.0
        start = time.monotonic()
        while waited < self.lost_after:
            ready = poller.poll(self._poll_ms)
            if ready and pcm.polldescriptors_revents(ready) & (want | select.POLLERR):
                return True
            waited = time.monotonic() - start
        return False

    def read(self, x: np.ndarray) -> int:
        if self._cap is None:
            return LOST
        if not self._running:
            if not self._start():
                return self._lost(f"the stream did not start: {self.last_error}")
            self._running = True
        nbytes = self._nbytes
        fill = self._fill
        cap = self._cap
        while fill < nbytes:
            try:
                n, data = cap.read()
            except self._error_type as e:
                return self._lost(f"capture failed: {e}")
            if n > 0:
                fill = self._ring_load(data, fill)
            elif n == 0:
                if not self._wait(self._cpoll, cap, select.POLLIN):
                    return self._lost(f"capture device delivered nothing for {self.lost_after:g} s")
            elif n == -errno.EPIPE:
                return self._recover("capture overrun")
            else:
                return self._lost(f"capture failed: error {n}")
        np.copyto(self._in.raw, self._ring_head)
        if fill > nbytes:  # rare: a read that crossed the period boundary
            rest = fill - nbytes
            self._ring[:rest] = self._ring[nbytes:fill]
            fill = rest
        else:
            fill = 0
        self._fill = fill
        self._in.decode(x)
        return OK

    def write(self, y: np.ndarray) -> int:
        if self._pb is None:
            return LOST
        return self._write_bytes(self._out.encode(y))

    def _write_bytes(self, buf, starting: bool = False) -> int:
        pb = self._pb
        fb = self._out.frame_bytes
        total = len(buf)
        off = 0
        while off < total:
            try:
                n = pb.write(buf if off == 0 else buf[off:])
            except self._error_type as e:
                return self._lost(f"playback failed: {e}")
            if n > 0:
                off += n * fb
            elif n == 0:
                if not self._wait(self._ppoll, pb, select.POLLOUT):
                    return self._lost(f"playback device took nothing for {self.lost_after:g} s")
            elif n == -errno.EPIPE:
                if starting:
                    self.last_error = "playback underran while being filled"
                    return LOST
                return self._recover("playback underrun")
            else:
                return self._lost(f"playback failed: error {n}")
        return OK
