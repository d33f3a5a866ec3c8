"""The captures folder: list, delete and export recordings; their analysis sidecars.

Each capture file ``NAME.wav`` (written by :mod:`firmware.capture_writer`) gets a sidecar
``NAME.json`` once it is finished: the ``masterbox analyze`` keys at the top level, plus

* ``qc``: sample clips (samples at full scale, and runs of 3+ of them), inter-sample overs
  (4x-oversampled values above 0 dBFS), DC offset per channel, the minimum L/R correlation
  over 400 ms windows with signal, and leading/trailing silence (below -60 dBFS);
* ``streaming``: what each streaming service's loudness normalisation would do to it.

The analysis's loudness is also written into the capture's Broadcast Wave chunk
(:func:`stamp_capture_loudness`), where a DAW or a delivery check reads it.

Streaming normalisation rules: :mod:`firmware.streaming`.

The control process imports this module (the index); the analysis itself imports the meter
(numba), so :func:`write_sidecar` runs in the engine process or a worker subprocess
(``python -m firmware.captures sidecar FILE``), never in the control process.
"""

from __future__ import annotations

import json
import math
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from firmware import bwf, paths
from firmware.atomic import fsync_dir, remove_stale_temporaries, write_atomic
from firmware.capture_sidecar import SIDECAR_FORMAT, WRITER_KEYS, read_sidecar, sidecar_path
from firmware.capture_upload import UPLOAD_DESCRIPTION
from firmware.capture_writer import CAPTURE_DESCRIPTION, MARKER_SUFFIX, MAX_HEADER_BYTES, parse_header
from firmware.processes import pid_alive
from firmware.streaming import streaming_preview

SILENCE_DBFS = -60.0
CLIP_LEVEL = 1.0 - 2.0 ** -15  # at full scale to 16-bit precision
CLIP_RUN = 3
CORR_WINDOW_S = 0.4
CORR_MIN_RMS_DBFS = -50.0


class CaptureError(ValueError):
    """A capture operation that cannot be done (the message says why)."""


# -- QC -----------------------------------------------------------------------------------
def _interpolator(factor: int = 4, taps_per_phase: int = 12):
    """Polyphase windowed-sinc interpolator: phases 1..factor-1 (phase 0 = the samples)."""
    import numpy as np

    n = factor * taps_per_phase + 1
    t = (np.arange(n) - (n - 1) / 2) / factor
    h = np.sinc(t) * np.kaiser(n, 8.0)
    return [h[k::factor] for k in range(1, factor)]


def qc_file(path, block_windows: int = 16) -> dict[str, Any]:
    """Clip, inter-sample over, DC, correlation and silence checks, streamed block by block."""
    import numpy as np
    import soundfile as sf

    with sf.SoundFile(str(path)) as snd:
        rate, ch = snd.samplerate, snd.channels
        win = max(int(round(CORR_WINDOW_S * rate)), 1)
        phases = _interpolator()
        hist_len = max(len(p) for p in phases) - 1
        hist = np.zeros((hist_len, ch))
        silence = 10 ** (SILENCE_DBFS / 20)
        min_ms = (10 ** (CORR_MIN_RMS_DBFS / 20)) ** 2
        clipped, overs, events = 0, 0, 0
        run = np.zeros(ch, dtype=np.int64)
        total = np.zeros(ch)
        frames = 0
        first_loud = last_loud = None
        min_corr = None
        for x in snd.blocks(blocksize=win * block_windows, dtype="float64", always_2d=True):
            n = len(x)
            a = np.abs(x)
            # sample clips, and runs of CLIP_RUN or more (carried across blocks)
            m = a >= CLIP_LEVEL
            clipped += int(m.sum())
            for c in range(ch):
                col = m[:, c]
                if not col.any():
                    if run[c] >= CLIP_RUN:
                        events += 1
                    run[c] = 0
                    continue
                edges = np.flatnonzero(np.diff(np.concatenate(([0], col.astype(np.int8), [0]))))
                starts, ends = edges[0::2], edges[1::2]
                lengths = ends - starts
                if starts[0] == 0:
                    lengths[0] += run[c]
                elif run[c] >= CLIP_RUN:
                    events += 1
                if ends[-1] == n:  # the last run continues into the next block
                    run[c] = lengths[-1]
                    lengths = lengths[:-1]
                else:
                    run[c] = 0
                events += int((lengths >= CLIP_RUN).sum())
            # inter-sample overs (interpolated values past 0 dBFS)
            ext = np.concatenate((hist, x))
            for c in range(ch):
                for h in phases:
                    y = np.convolve(ext[:, c], h, mode="valid")
                    overs += int((np.abs(y) > 1.0).sum())
            hist = ext[-hist_len:]
            total += x.sum(axis=0)
            # silence at the ends
            loud = np.flatnonzero((a > silence).any(axis=1))
            if len(loud):
                if first_loud is None:
                    first_loud = frames + int(loud[0])
                last_loud = frames + int(loud[-1])
            # correlation per 400 ms window
            if ch >= 2:
                k = n // win
                if k:
                    w = x[:k * win].reshape(k, win, ch)
                    ll = (w[:, :, 0] ** 2).sum(axis=1)
                    rr = (w[:, :, 1] ** 2).sum(axis=1)
                    lr = (w[:, :, 0] * w[:, :, 1]).sum(axis=1)
                    ok = ((ll + rr) / (2 * win) > min_ms) & (ll > 0) & (rr > 0)
                    if ok.any():
                        c = float((lr[ok] / np.sqrt(ll[ok] * rr[ok])).min())
                        min_corr = c if min_corr is None else min(min_corr, c)
            frames += n
        for c in range(ch):
            if run[c] >= CLIP_RUN:
                events += 1
    duration = frames / rate if rate else 0.0
    dc = [float(t / frames) if frames else 0.0 for t in total]
    return {
        "clipped_samples": clipped,
        "clip_events": events,
        "intersample_overs": overs,
        "dc_offset": [round(d, 7) for d in dc],
        "dc_offset_dbfs": [None if d == 0 else round(20 * math.log10(abs(d)), 1) for d in dc],
        "min_correlation": None if min_corr is None else round(min_corr, 3),
        "leading_silence_s": round(duration if first_loud is None else first_loud / rate, 3),
        "trailing_silence_s": round(duration if last_loud is None else (frames - 1 - last_loud) / rate, 3),
        "silence_threshold_dbfs": SILENCE_DBFS,
    }


# -- sidecars -----------------------------------------------------------------------------
def analyze_capture(wav, extra: dict | None = None) -> dict[str, Any]:
    """The sidecar document of one capture (analysis keys, qc, streaming, metadata)."""
    from firmware.analysis import KEYS, AnalysisError, analyze_file

    wav = Path(wav)
    doc: dict[str, Any] = {"format": SIDECAR_FORMAT, "file": wav.name, **(extra or {})}
    try:
        doc.update(analyze_file(wav))
        doc["analysis_error"] = None
    except AnalysisError as e:
        doc.update({k: None for k in KEYS})
        doc["analysis_error"] = str(e)
    try:
        doc["qc"] = qc_file(wav)
    except Exception as e:
        doc["qc"] = {"error": f"{type(e).__name__}: {e}"}
    doc["streaming"] = streaming_preview(doc.get("integrated_lufs"), doc.get("true_peak_dbtp"))
    return doc


def run_analysis(jobs: list, timeout: float) -> subprocess.CompletedProcess:
    """Write the sidecars of ``jobs`` (``[file, facts]`` pairs; facts may be None) in one worker
    process, ``python -m firmware.captures sidecar --jobs JSON``: the caller never imports numba."""
    return subprocess.run([sys.executable, "-m", "firmware.captures", "sidecar", "--jobs", json.dumps(jobs)],
                          capture_output=True, text=True, timeout=timeout)


def write_sidecar(wav, extra: dict | None = None) -> Path:
    """Analyse a finished capture and write ``NAME.json`` next to it (atomically). Without ``extra``, the
    recording's facts are those of the sidecar already there (pending or an older analysis)."""
    wav = Path(wav)
    old = {}
    side = sidecar_path(wav)
    if side.exists() and extra is None:
        try:
            old = {k: v for k, v in json.loads(side.read_text()).items()
                   if k in WRITER_KEYS}
        except (OSError, ValueError):
            old = {}
    doc = analyze_capture(wav, extra if extra is not None else old)
    stamp_capture_loudness(wav, doc)
    write_atomic(side, json.dumps(doc, indent=1, ensure_ascii=False) + "\n")
    return side


def stamp_capture_loudness(wav, doc: dict) -> bool:
    """Write the analysis's loudness into the bext chunk of a capture this box recorded (or made
    from an uploaded AIFF or FLAC).

    Why: the output tap's capture is often the master itself (the box inline before the recorder),
    and a delivery is checked by reading its loudness from the file (EBU R 128 s1). The writer
    cannot know the loudness while it records; once the file is finished and measured the five
    fields are written in place (:func:`firmware.bwf.stamp_loudness_in_place`). Uploaded WAVs and
    masters are left as they are: a file that came from elsewhere is not ours to change, and a
    master carries the loudness its render measured. Done before the sidecar is written, so a
    power cut in between leaves the capture "pending" and the next analysis stamps it.
    Returns True when the file was written.
    """
    if doc.get("analysis_error"):
        return False
    try:
        b = bwf.read(wav)
        if b is None or not b.description.startswith((CAPTURE_DESCRIPTION, UPLOAD_DESCRIPTION)):
            return False
        return bwf.stamp_loudness_in_place(wav, doc)
    except (OSError, bwf.BextError):
        return False       # the sidecar still has the analysis


# -- the index ----------------------------------------------------------------------------
def _check_name(name: str) -> str:
    if (not isinstance(name, str) or not name or name != Path(name).name or name.startswith(".")
            or "/" in name or "\\" in name or ".." in name or "\x00" in name):
        raise CaptureError(f"not a capture name: {name!r}")
    return name.removesuffix(".wav")


def _foreign_facts(wav: Path) -> tuple[int | None, int | None, float | None]:
    """(rate, channels, seconds) from the header of a WAV the box did not write, as far as
    :mod:`firmware.wav_reader` reads it (None where it cannot: the analysis says it later)."""
    from firmware.wav_reader import open_wav

    reader = open_wav(wav)
    if reader is None:
        return None, None, None
    with reader:
        return reader.samplerate, reader.channels, reader.frames / reader.samplerate


class CaptureIndex:
    """The captures folder as the control process sees it (no numba here)."""

    def __init__(self, directory: Path | str | None = None):
        self.directory = Path(directory) if directory is not None else paths.captures_dir()

    def _recording(self) -> set[str]:
        """The files a living process records into. A marker whose process is gone (an engine killed
        mid-capture) is not believed: its files are finished captures waiting for
        :func:`firmware.capture_writer.repair_unfinished`, not recordings to keep hands off."""
        names: set[str] = set()
        for marker in self.directory.glob(f".*{MARKER_SUFFIX}"):
            try:
                info = json.loads(marker.read_text())
                if pid_alive(int(info.get("pid", 0))):
                    names.update(info.get("files", []))
            except (OSError, ValueError, TypeError, AttributeError):
                continue
        return names

    def _row(self, wav: Path, recording: set[str]) -> dict[str, Any]:
        st = wav.stat()
        hdr = None
        try:
            with open(wav, "rb") as f:
                hdr = parse_header(f.read(MAX_HEADER_BYTES))
        except OSError:
            pass
        rate = channels = fmt = duration = None
        d = read_sidecar(wav)
        if hdr:
            rate, channels, fmt = hdr["rate"], hdr["channels"], hdr["fmt"]
            duration = hdr["data_bytes"] // hdr["block"] / rate
        elif d is None:      # a WAV from elsewhere (uploaded, copied in), not analysed yet
            rate, channels, duration = _foreign_facts(wav)
        summary = None
        if d is not None:
            summary = {k: d.get(k) for k in ("integrated_lufs", "true_peak_dbtp", "loudness_range_lu", "preset",
                                               "modified", "tap", "stop_reason", "dropped_frames", "source")}
            duration = d.get("duration_s", duration)
            rate = rate or d.get("sample_rate")
            channels = channels or d.get("channels")
        is_rec = wav.name in recording
        return {"name": wav.stem, "file": wav.name, "size_bytes": st.st_size, "mtime": st.st_mtime,
                "duration_s": duration, "sample_rate": rate, "channels": channels, "format": fmt,
                "recording": is_rec, "analysis": "recording" if is_rec else ("done" if summary else "pending"),
                "summary": summary}

    def is_recording(self) -> bool:
        """True while the engine records into this folder (a ``.NAME.recording`` marker names a file)."""
        return bool(self._recording())

    def list(self) -> list[dict[str, Any]]:
        """Every capture, newest first."""
        # os.scandir, not Path.glob: glob lists a folder it may not read as empty, which would say
        # "no captures" to a user who may not see them (the box's data, read by another user)
        try:
            names = [e.name for e in os.scandir(self.directory) if e.name.endswith(".wav") and e.name[0] != "."]
        except (FileNotFoundError, NotADirectoryError):
            return []
        recording = self._recording()
        rows = []
        for wav in (self.directory / n for n in names):
            try:
                rows.append(self._row(wav, recording))
            except FileNotFoundError:
                continue
        return sorted(rows, key=lambda r: (r["mtime"], r["name"]), reverse=True)

    def path(self, name: str) -> Path:
        wav = self.directory / f"{_check_name(name)}.wav"
        if not wav.is_file():
            raise CaptureError(f"no capture named {name!r}")
        return wav

    def get(self, name: str) -> dict[str, Any]:
        wav = self.path(name)
        row = self._row(wav, self._recording())
        row["sidecar"] = read_sidecar(wav)
        return row

    def delete(self, name: str) -> None:
        wav = self.path(name)
        if wav.name in self._recording():
            raise CaptureError(f"{name!r} is being recorded; stop the capture first")
        wav.unlink()
        sidecar_path(wav).unlink(missing_ok=True)
        fsync_dir(self.directory)

    def export(self, name: str, dest: Path | str) -> Path:
        """Copy a capture's WAV to ``dest`` (a file, or a folder to copy into)."""
        wav = self.path(name)
        dest = Path(dest)
        if dest.is_dir():
            dest = dest / wav.name
        tmp = dest.with_name(f".{dest.name}.part")
        shutil.copyfile(wav, tmp)
        os.replace(tmp, dest)
        return dest

    def remove_stale_temporaries(self, older_than_s: float = 60.0) -> list[tuple[str, int]]:
        """Delete the temporary files a power cut or a killed job left in the folder; (name, bytes) of each.

        ``master``, ``album``, an upload and the sidecar writer write ``.NAME.*.tmp`` (a rate
        conversion ``.NAME.*.tmp.wav``) and rename it at the end; cut off before that, the file
        stays, hidden from the list and as big as the master was going to be
        (:func:`firmware.atomic.remove_stale_temporaries` says which are left alone).
        """
        return remove_stale_temporaries(self.directory, older_than_s)

    def analyze_pending(self, timeout: float = 3600, older_than_s: float = 0.0,
                        skip=frozenset()) -> tuple[list[str], list[tuple[str, float]]]:
        """Write missing sidecars of finished captures in one worker subprocess (no numba here).

        ``older_than_s`` skips captures finished moments ago, whose sidecar the engine is writing;
        ``skip`` holds ``(name, mtime)`` pairs not to try again. Returns the names that have a
        sidecar now, and the ``(name, mtime)`` of every capture tried.
        """
        pending = [r for r in self.list() if r["analysis"] == "pending" and time.time() - r["mtime"] >= older_than_s
                   and (r["name"], r["mtime"]) not in skip]
        if not pending:
            return [], []
        run_analysis([[str(self.directory / r["file"]), None] for r in pending], timeout)
        done = [r["name"] for r in pending if read_sidecar(self.directory / r["file"]) is not None]
        return done, [(r["name"], r["mtime"]) for r in pending]


WORKER_NICE = 10  # the analysis worker yields the CPU to the audio engine


def main(argv: list[str]) -> int:
    """Worker entry: ``python -m firmware.captures sidecar FILE...`` or ``sidecar --jobs JSON``
    (a list of ``[file, writer facts]`` pairs, as the capture writer sends)."""
    if len(argv) < 2 or argv[0] != "sidecar" or (argv[1] == "--jobs" and len(argv) != 3):
        print("usage: python -m firmware.captures sidecar FILE... | sidecar --jobs JSON", file=sys.stderr)
        return 2
    try:
        os.nice(WORKER_NICE)
    except OSError:
        pass
    jobs = json.loads(argv[2]) if argv[1] == "--jobs" else [[f, None] for f in argv[1:]]
    failed = 0
    for path, meta in jobs:
        try:
            write_sidecar(path, meta)
        except Exception as e:  # one bad file must not cost the others their analysis
            print(f"{path}: {type(e).__name__}: {e}", file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
