"""A file's sample rate converted into a temporary file, for ``masterbox master --rate``.

The chain then masters the converted file, so its true-peak ceiling holds at the rate that is
delivered (:mod:`dsp.resample` says why and how). The temporary file is 32-bit float (about
-150 dB of rounding, far below any output word length) and sits next to the output, which is
where :func:`firmware.render.master_file` already needs room; the caller deletes it.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

READ = 1 << 16      # frames read per step


def convert_file(src: Path, dst: Path, rate_out: int, open_input: Callable,
                 tick: Callable[[int], None] | None = None, name=None):
    """Write ``src`` at ``rate_out`` into ``dst`` (32-bit float WAV, RF64 when large).

    Returns (how many input samples were replaced by silence, a :class:`dsp.meter.LoudnessMeter`
    that measured the input as it was read). Samples that are NaN, infinite or beyond +80 dBFS
    become 0 *before* the filter, as the chain would treat them, instead of spreading over the
    filter's length; the meter hears them so too, as the chain's input meter hears a file it reads
    itself. The meter is the input's, at its own rate and channel count (a mono file as its one
    channel, as ``analyze`` measures it): the report's "input" is the file, not the converted audio
    the chain heard (~0.24 s of CPU for 5 minutes of 96 kHz stereo, on top of ~3 s for the command).
    ``open_input`` opens ``src`` the way the renderer does (its checks and messages).
    ``tick(frames)`` is told the input frames read after each block. A failed write (a full disk) is
    an ``OSError`` naming ``name`` (default ``dst``): :class:`firmware.sndfile_output.SoundFileOutput`.
    """
    import numpy as np

    from dsp.meter import LoudnessMeter
    from dsp.resample import Resampler
    from firmware.analysis import SampleFaults
    from firmware.render import container, read_block
    from firmware.sndfile_output import SoundFileOutput

    with open_input(src) as snd:
        rate, channels, frames = snd.samplerate, snd.channels, snd.frames
        fmt = container("WAV", frames * rate_out // rate + 1, channels, "32f")   # the length rounded up
        r = Resampler(rate, rate_out, channels)
        meter = LoudnessMeter(rate, channels)
        buf = np.empty((READ, channels))
        faults = SampleFaults(READ, channels)
        with SoundFileOutput(dst, rate_out, channels, fmt, "FLOAT", name=name) as out:
            while True:
                got = read_block(snd, READ, buf)
                faults.clean(got)
                if len(got):
                    meter.process(got)
                y = r.process(got) if len(got) else r.finish()
                out.write(y)
                if not len(got):
                    break
                if tick is not None:
                    tick(len(got))
    return faults.count, meter
