"""Child process for the kill -9 capture test: records a deterministic signal in real time.

Prints ``pushed N committed M fsync S`` after every block: how much it handed to the writer,
how much the header on disk covers so far, and the slowest data fsync of the writer's header
commits (the disk's share of the header's lag, which no program controls).
"""

import sys
import time

import numpy as np

from firmware.capture_writer import CaptureSession

RATE, BLOCK = 48000, 480


def block(i: int) -> np.ndarray:
    """Block ``i`` of the test signal (the parent regenerates it to compare)."""
    rng = np.random.default_rng(i)
    return rng.uniform(-0.9, 0.9, (BLOCK, 2))


def main(directory: str, fmt: str) -> None:
    s = CaptureSession(directory, RATE, 2, taps=("output",), fmt=fmt, preset="kill test", floor_mb=0,
                       analyze=False, modified=True)
    t0 = time.monotonic()
    i = 0
    while True:
        b = block(i)
        s.push(b, b)
        i += 1
        print(f"pushed {i * BLOCK} committed {s.committed_frames} fsync {s.slowest_fsync_s:.4f}", flush=True)
        delay = t0 + i * BLOCK / RATE - time.monotonic()
        if delay > 0:
            time.sleep(delay)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
