"""Wire formats: the codec against an independent byte-level reference, NaN handling, no allocation."""

from __future__ import annotations

import struct
import tracemalloc

import numpy as np
import pytest

from hw.audio.formats import FORMATS, SampleCodec, from_bytes, quantize, sample_format, to_bytes


def reference_bytes(x: np.ndarray, fmt: str) -> bytes:
    """Interleaved samples packed one by one with struct: what ALSA expects on the wire."""
    out = bytearray()
    for v in x.reshape(-1):
        v = 0.0 if not np.isfinite(v) else float(v)
        if fmt == "FLOAT_LE":
            out += struct.pack("<f", v)
            continue
        bits = sample_format(fmt).bits
        full = 2 ** (bits - 1)
        code = int(min(max(round(v * full), -full), full - 1))  # Python round: half to even, like rint
        if fmt == "S16_LE":
            out += struct.pack("<h", code)
        elif fmt in ("S24_LE", "S32_LE"):
            out += struct.pack("<i", code)
        else:  # S24_3LE
            out += struct.pack("<i", code)[:3]
    return bytes(out)


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_encode_matches_a_byte_level_reference_and_decodes_back(fmt):
    rng = np.random.default_rng(4)
    x = rng.uniform(-1.2, 1.2, (257, 2))
    x[0] = [1.0, -1.0]
    x[1] = [0.5 / 2 ** 15, -0.5 / 2 ** 23]  # ties
    x[5, 1] = np.nan
    x[6, 0] = np.inf
    data = to_bytes(x, fmt)
    assert data == reference_bytes(x, fmt)
    back = from_bytes(data, fmt)
    assert np.array_equal(back, quantize(x, fmt))
    assert np.all(np.isfinite(back))


def test_s24_le_reads_a_24_bit_sample_whatever_the_top_byte_holds():
    # the low three bytes hold -1 (0xFFFFFF); the top byte is garbage
    data = bytes([0xFF, 0xFF, 0xFF, 0x12, 0x00, 0x00, 0x40, 0xAB])
    assert from_bytes(data, "S24_LE").tolist() == [[-1 / 2 ** 23, 0.5]]


def test_unknown_format_names_the_known_ones():
    with pytest.raises(ValueError, match="S24_3LE"):
        sample_format("U8")


@pytest.mark.parametrize("fmt", list(FORMATS))
def test_a_period_converts_without_allocating_buffers(fmt):
    codec = SampleCodec(fmt, 128, 2)
    x = np.random.default_rng(1).uniform(-1, 1, (128, 2))
    y = np.zeros((128, 2))
    codec.encode(x)
    codec.decode(y)
    tracemalloc.start()
    try:
        for _ in range(200):
            codec.encode(x)
            codec.decode(y)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 2048, f"{peak} bytes allocated converting periods"  # no array was made
