"""Child process for the kill -9 preset test: saves presets (and state changes) as fast as it can.

Prints ``saved NAME`` after each save has *returned*; the parent kills it at a random moment.
"""

import sys

from dsp import schema
from firmware.presets import PresetStore
from firmware.state import StateStore


def params(i: int) -> dict:
    return {**schema.defaults(), "eq1.gain_db": (i % 300) / 20 - 7.5, "out.drive_db": (i % 24) * 0.5}


def name(i: int) -> str:
    return f"Kill ✂ {i % 40} /x../"   # a separator, dots: a name the web (and so the store) takes


def main(user_dir: str, state_file: str) -> None:
    store = PresetStore(user_dir)
    state = StateStore(state_file, store)
    i = 0
    while True:
        store.save(name(i), params(i))
        print(f"saved {i}", flush=True)
        state.set({"eq1.gain_db": (i % 300) / 20 - 7.5})
        i += 1


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
