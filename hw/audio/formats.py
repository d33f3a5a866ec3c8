"""Sample formats on the wire and the conversion to and from the engine's float64 frames.

The engine works in float64 ``(frames, channels)`` arrays scaled to -1..1; devices speak one of
the ALSA formats below. :class:`SampleCodec` owns every buffer one period needs, made once at
start-up, and converts with a fixed sequence of numpy ufunc calls writing into those buffers
(``out=``), so a period costs no array allocation.

Integer conversion is the usual symmetric one: ``code = round_half_even(x * 2**(bits-1))``,
clipped to the format's range, and ``x = code / 2**(bits-1)`` back (what libsndfile does when it
reads PCM into floats, so offline renders and the live stream agree). Non-finite samples (a NaN
burst from a broken float source, or from a chain that misbehaves) become 0 on both sides: a
NaN must never reach a DAC or the chain's filter states.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class SampleFormat:
    """One wire format: its ALSA name, bytes per sample, and significant bits (None = float)."""

    name: str
    width: int
    bits: int | None

    @property
    def output_bits(self) -> int | None:
        """Word length the chain should quantise (and dither) to for this format."""
        return self.bits if self.bits in (16, 24) else None


FORMATS: dict[str, SampleFormat] = {
    f.name: f
    for f in (
        SampleFormat("S16_LE", 2, 16),
        SampleFormat("S24_LE", 4, 24),  # 24 bits in the low three bytes of a 32-bit word
        SampleFormat("S24_3LE", 3, 24),  # packed, three bytes per sample
        SampleFormat("S32_LE", 4, 32),
        SampleFormat("FLOAT_LE", 4, None),
    )
}


def sample_format(name: str) -> SampleFormat:
    """Look up a format by its ALSA name (case-insensitive); ValueError lists the known ones."""
    f = FORMATS.get(str(name).upper())
    if f is None:
        raise ValueError(f"unknown sample format {name!r}; use one of {', '.join(FORMATS)}")
    return f


class SampleCodec:
    """Preallocated converter between one period of wire bytes and float64 frames.

    ``raw`` (a uint8 array of ``nbytes``) is the wire side: :meth:`encode` fills it, and
    :meth:`decode` reads it (fill it first with :meth:`load`, or write into it directly).
    """

    def __init__(self, fmt: str | SampleFormat, frames: int, channels: int = 2):
        self.format = fmt if isinstance(fmt, SampleFormat) else sample_format(fmt)
        self.frames = int(frames)
        self.channels = int(channels)
        n = self.frames * self.channels
        self.frame_bytes = self.format.width * self.channels
        self.nbytes = self.frames * self.frame_bytes
        self.raw = np.zeros(self.nbytes, dtype=np.uint8)
        self.raw_view = memoryview(self.raw)  # bytes-like, for device writes and loads
        self._t = np.zeros((self.frames, self.channels), dtype=np.float64)
        self._mask = np.zeros((self.frames, self.channels), dtype=np.bool_)
        self._notmask = np.zeros((self.frames, self.channels), dtype=np.bool_)
        name = self.format.name
        if name == "S16_LE":
            self._ints = self.raw.view("<i2").reshape(self.frames, self.channels)
        elif name in ("S24_LE", "S32_LE"):
            self._ints = self.raw.view("<i4").reshape(self.frames, self.channels)
        elif name == "FLOAT_LE":
            self._floats = self.raw.view("<f4").reshape(self.frames, self.channels)
        elif name == "S24_3LE":
            # Packed 24-bit samples travel through a padded 32-bit word: bytes 1..3 of each word
            # hold the sample, so the word read as int32 is sample << 8 (sign included).
            self._packed = self.raw.reshape(n, 3)
            self._pad = np.zeros((n, 4), dtype=np.uint8)
            self._pad_hi = self._pad[:, 1:]
            self._words = self._pad.view("<i4").reshape(self.frames, self.channels)
        if self.format.bits is not None:
            full = float(2 ** (self.format.bits - 1))
            self._scale_in = 1.0 / full
            self._scale_out = full
            # full-size bounds: np.clip and scalar bounds make temporary arrays, these do not
            self._lo = np.full((self.frames, self.channels), -full)
            self._hi = np.full((self.frames, self.channels), full - 1.0)
            self._i32 = np.zeros((self.frames, self.channels), dtype=np.int32)

    # -- wire -> float ----------------------------------------------------------------
    def load(self, data, offset: int = 0) -> int:
        """Copy device bytes into ``raw`` at byte ``offset``; returns the new fill level."""
        end = offset + len(data)
        self.raw_view[offset:end] = data
        return end

    def decode(self, out: np.ndarray) -> None:
        """``raw`` -> ``out`` (float64, ``(frames, channels)``)."""
        name = self.format.name
        if name == "FLOAT_LE":
            np.copyto(out, self._floats)
            self.sanitize(out)
        else:
            if name in ("S16_LE", "S32_LE"):
                ints = self._ints
            elif name == "S24_LE":
                # the top byte of a 24-in-32 word is not guaranteed to be a sign extension
                np.left_shift(self._ints, 8, out=self._i32)
                np.right_shift(self._i32, 8, out=self._i32)
                ints = self._i32
            else:  # S24_3LE
                np.copyto(self._pad_hi, self._packed)
                np.right_shift(self._words, 8, out=self._i32)
                ints = self._i32
            # cast, then scale in place: a mixed-type multiply would allocate a cast buffer
            np.copyto(out, ints, casting="safe")
            np.multiply(out, self._scale_in, out=out)

    # -- float -> wire ----------------------------------------------------------------
    def encode(self, y: np.ndarray) -> memoryview:
        """``y`` (float64, ``(frames, channels)``) -> ``raw``; returns ``raw_view`` for writing."""
        name = self.format.name
        if name == "FLOAT_LE":
            np.copyto(self._floats, y, casting="same_kind")
            self.sanitize(self._floats)
            return self.raw_view
        t = self._t
        np.multiply(y, self._scale_out, out=t)
        self.sanitize(t)
        np.rint(t, out=t)
        np.minimum(t, self._hi, out=t)
        np.maximum(t, self._lo, out=t)
        if name == "S16_LE":
            np.copyto(self._ints, t, casting="unsafe")
        elif name in ("S24_LE", "S32_LE"):
            np.copyto(self._ints, t, casting="unsafe")
        else:  # S24_3LE
            np.copyto(self._i32, t, casting="unsafe")
            np.left_shift(self._i32, 8, out=self._words)
            np.copyto(self._packed, self._pad_hi)
        return self.raw_view

    def sanitize(self, a: np.ndarray) -> None:
        """Replace NaN and infinities in ``a`` (shape ``(frames, channels)``) by 0, in place."""
        np.isfinite(a, out=self._mask)
        np.logical_not(self._mask, out=self._notmask)
        np.copyto(a, 0.0, where=self._notmask)


def quantize(x: np.ndarray, fmt: str | SampleFormat) -> np.ndarray:
    """Whole-array version of the wire round trip (encode then decode), for tests and offline use.

    Returns float64 samples exactly as the engine would send them through ``fmt``.
    """
    f = fmt if isinstance(fmt, SampleFormat) else sample_format(fmt)
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if f.bits is None:
        return x.astype(np.float32).astype(np.float64)
    full = float(2 ** (f.bits - 1))
    return np.clip(np.rint(x * full), -full, full - 1.0) / full


def to_bytes(x: np.ndarray, fmt: str | SampleFormat) -> bytes:
    """Float frames -> raw interleaved bytes in ``fmt`` (for writing test inputs and infiles)."""
    x = np.ascontiguousarray(x, dtype=np.float64)
    codec = SampleCodec(fmt, x.shape[0], x.shape[1])
    return bytes(codec.encode(x))


def from_bytes(data: bytes, fmt: str | SampleFormat, channels: int = 2) -> np.ndarray:
    """Raw interleaved bytes in ``fmt`` -> float64 frames (whole frames only)."""
    f = fmt if isinstance(fmt, SampleFormat) else sample_format(fmt)
    frames = len(data) // (f.width * channels)
    codec = SampleCodec(f, frames, channels)
    codec.load(memoryview(data)[: codec.nbytes])
    out = np.zeros((frames, channels), dtype=np.float64)
    codec.decode(out)
    return out
