"""The meter against the published numbers: BS.1770 filter table, EBU Tech 3341 and 3342 cases.

Expected values come from the standards (see ../shared/reference/loudness-and-peaks.md), never
from the meter's own output.
"""

from __future__ import annotations

import numpy as np
import pytest

from dsp.kweighting import highpass_coefficients, kweighting_coefficients, shelf_coefficients
from dsp.meter import LoudnessMeter
from dsp.truepeak import oversampling_factor
from tests.signals import EBU3341, EBU3342, faded, tone_segments, true_peak_case

RATES = (44100, 48000, 96000)

# BS.1770-4 Table 1 / Table 2 (48 kHz).
BS1770_SHELF = ([1.53512485958697, -2.69169618940638, 1.19839281085285], [1.0, -1.69065929318241, 0.73248077421585])
BS1770_HIGHPASS = ([1.0, -2.0, 1.0], [1.0, -1.99004745483398, 0.99007225036621])


def _meter(x: np.ndarray, rate: int) -> LoudnessMeter:
    m = LoudnessMeter(rate, x.shape[1])
    m.process(x)
    return m


def test_kweighting_reproduces_the_bs1770_table_at_48k():
    b, a = shelf_coefficients(48000)
    np.testing.assert_allclose(b, BS1770_SHELF[0], atol=1e-12)
    np.testing.assert_allclose(a, BS1770_SHELF[1], atol=1e-12)
    b, a = highpass_coefficients(48000)
    np.testing.assert_allclose(b, BS1770_HIGHPASS[0], atol=1e-12)
    np.testing.assert_allclose(a, BS1770_HIGHPASS[1], atol=1e-12)


@pytest.mark.parametrize("rate", [44100, 88200, 96000, 192000])
def test_kweighting_has_the_same_response_at_other_rates(rate):
    """Same analog curve: the response matches 48 kHz's within 0.02 dB from 20 Hz to 15 kHz."""

    def response(coefs, r, f):
        z = np.exp(-2j * np.pi * f / r)
        sb, sa, hb, ha = coefs[0:3], [1, *coefs[3:5]], coefs[5:8], [1, *coefs[8:10]]
        h = np.polyval(sb[::-1], z) / np.polyval(sa[::-1], z) * np.polyval(hb[::-1], z) / np.polyval(ha[::-1], z)
        return 20 * np.log10(np.abs(h))

    f = np.geomspace(20, 15000, 200)
    ref = response(kweighting_coefficients(48000), 48000, f)
    got = response(kweighting_coefficients(rate), rate, f)
    assert np.max(np.abs(got - ref)) < 0.02


def test_calibration_stereo_sine_minus_18_reads_minus_18():
    x = tone_segments([(5.0, -18.0)], 48000)
    r = _meter(x, 48000).readings()
    assert r["integrated_lufs"] == pytest.approx(-18.0, abs=0.05)


def test_channel_weights_mono_one_channel_and_51_lfe_excluded():
    rate = 48000
    sine = tone_segments([(3.0, 0.0)], rate, freq=997.0, channels=1)[:, 0]
    mono = _meter(sine[:, None], rate).readings()["integrated_lufs"]
    assert mono == pytest.approx(-3.01, abs=0.05)
    stereo = _meter(np.column_stack([sine, sine]), rate).readings()["integrated_lufs"]
    assert stereo == pytest.approx(0.0, abs=0.05)
    # 5.1 in WAV order L R C LFE Ls Rs: the LFE channel must not count, surrounds weigh 1.41.
    z = np.zeros_like(sine)
    lfe_only = _meter(np.column_stack([z, z, z, sine, z, z]), rate).readings()
    assert lfe_only["integrated_lufs"] is None
    surround = _meter(np.column_stack([z, z, z, z, sine, z]), rate).readings()["integrated_lufs"]
    assert surround == pytest.approx(-3.01 + 10 * np.log10(1.41), abs=0.05)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("case", [1, 2])
def test_ebu3341_cases_1_2_momentary_short_term_integrated(case, rate):
    expected = {1: -23.0, 2: -33.0}[case]
    m = LoudnessMeter(rate, 2)
    x = tone_segments(EBU3341[case], rate)
    hop = rate // 10
    for k in range(0, x.shape[0], hop):  # read the live values every 100 ms once the windows are full
        m.process(x[k : k + hop])
        r = m.readings()
        if k >= 3 * rate:
            assert r["momentary_lufs"] == pytest.approx(expected, abs=0.1)
            assert r["short_term_lufs"] == pytest.approx(expected, abs=0.1)
    assert r["integrated_lufs"] == pytest.approx(expected, abs=0.1)


@pytest.mark.parametrize("rate", RATES)
@pytest.mark.parametrize("case", [3, 4, 5])
def test_ebu3341_cases_3_4_5_integrated(case, rate):
    r = _meter(tone_segments(EBU3341[case], rate), rate).readings()
    assert r["integrated_lufs"] == pytest.approx(-23.0, abs=0.1)


@pytest.mark.parametrize("rate", RATES)
def test_ebu3341_case_9_short_term_constant_after_3_s(rate):
    m = LoudnessMeter(rate, 2)
    x = tone_segments(EBU3341[9], rate)
    hop = rate // 10
    seen = []
    for k in range(0, x.shape[0], hop):
        m.process(x[k : k + hop])
        if k + hop >= 3 * rate:
            seen.append(m.readings()["short_term_lufs"])
    assert len(seen) >= 100
    np.testing.assert_allclose(seen, -23.0, atol=0.1)


@pytest.mark.parametrize("rate", RATES)
def test_ebu3341_case_12_momentary_constant_after_1_s(rate):
    m = LoudnessMeter(rate, 2)
    x = tone_segments(EBU3341[12], rate)
    hop = rate // 10
    seen = []
    for k in range(0, x.shape[0], hop):
        m.process(x[k : k + hop])
        if k + hop >= 1 * rate:
            seen.append(m.readings()["momentary_lufs"])
    assert len(seen) >= 80
    np.testing.assert_allclose(seen, -23.0, atol=0.1)


@pytest.mark.parametrize("case", [15, 16, 17, 18, 19])
def test_ebu3341_true_peak_cases_15_to_19(case):
    x, expected = true_peak_case(case, 48000)
    tp = _meter(x, 48000).readings()["true_peak_dbtp"]
    assert expected - 0.4 <= tp <= expected + 0.2


@pytest.mark.parametrize("rate", [44100, 88200, 96000])
def test_true_peak_of_an_intersample_peak_at_other_rates(rate):
    """A sine at fs/4 sampled 45 degrees off its crests: samples at -3 dB of the real peak."""
    n = np.arange(rate)
    x = np.sin(2 * np.pi * n / 4 + np.pi / 4)
    x = np.repeat(x[:, None], 2, axis=1)
    r = _meter(faded(x, rate), rate).readings()
    assert r["sample_peak_dbfs"] == pytest.approx(-3.01, abs=0.01)
    assert -0.4 <= r["true_peak_dbtp"] <= 0.2


def test_oversampling_factor_by_rate():
    assert [oversampling_factor(r) for r in (44100, 48000, 88200, 96000, 176400, 192000)] == [4, 4, 2, 2, 1, 1]


@pytest.mark.parametrize("case", [1, 2, 3, 4])
def test_ebu3342_loudness_range(case):
    segments, expected = EBU3342[case]
    r = _meter(tone_segments(segments, 48000), 48000).readings()
    assert r["loudness_range_lu"] == pytest.approx(expected, abs=1.0)
