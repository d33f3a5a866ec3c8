"""Storage figures: preset library speed, state persistence latency, capture ``push`` cost.

Run with ``masterbox bench --only storage`` (``--quick`` for fewer repeats), or
``python bench/bench_storage.py [--quick] [--presets N] [--repeats N] [--blocks N] [--megabytes N]``
(``--presets 50 --repeats 1 --blocks 400 --megabytes 4`` only to see that it runs). Figures, never
pass/fail; absolute times depend on the load of the machine they run on.

* ``presets_save_1000_s``: saving 1,000 user presets (each an atomic, fsynced write).
* ``presets_list_cold_no_cache_ms``: the first listing of 1,000 presets by a fresh store with no
  listing cache file (every file parsed and validated); ``..._cold_cached_ms`` the same with the
  cache file (what a boot sees); ``presets_list_warm_ms``: later listings (median).
* ``state_persist_ms``: from ``StateStore.set`` to the new value readable in ``state.json``
  (median; the writer gathers changes for 250 ms by design).
* ``capture_push_us_*``: ``CaptureSession.push`` of 128 frames, both taps, paced at about real
  time with the writer thread draining next to it (median, 99.9th percentile, max).
* ``zip_*``: the ZIP of ticked captures (``GET /api/v1/captures.zip``, :mod:`webui.zipstream`)
  built from a 256 MB file: CPU seconds per GB, against reading the same file in the same
  chunks (median; the ratio is what the CRC and the copies add), and the bytes the ZIP adds.
* ``upload_*``: a 256 MB WAV uploaded in pieces (``POST``/``PUT /api/v1/uploads``) to waitress on
  loopback, the server in its own process: its CPU seconds per GB and the rate, against ``dd
  conv=fsync`` of the same file onto the same disk (median, alternating); ``capture_*_while_uploading``:
  the capture ``push`` figures again while another process uploads as fast as it can onto the same disk.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def _presets(tmp: Path, repeats: int, count: int = 1000) -> dict:
    from dsp import schema
    from firmware.presets import INDEX_FILE, PresetStore

    store = PresetStore(tmp / "user", tmp / "nofactory")
    values = schema.defaults()
    t0 = time.perf_counter()
    for i in range(count):
        store.save(f"Preset {i:04d} – ü", values)
    save_s = time.perf_counter() - t0
    (tmp / "user" / INDEX_FILE).unlink(missing_ok=True)
    t0 = time.perf_counter()
    PresetStore(tmp / "user", tmp / "nofactory").list()  # writes the cache file
    cold = time.perf_counter() - t0
    fresh = PresetStore(tmp / "user", tmp / "nofactory")
    t0 = time.perf_counter()
    fresh.list()
    cold_cached = time.perf_counter() - t0
    warm = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fresh.list()
        warm.append(time.perf_counter() - t0)
    return {f"presets_save_{count}_s": round(save_s, 2), "presets_list_cold_no_cache_ms": round(cold * 1e3, 1),
            "presets_list_cold_cached_ms": round(cold_cached * 1e3, 1),
            "presets_list_warm_ms": round(statistics.median(warm) * 1e3, 1)}


def _state(tmp: Path, repeats: int) -> dict:
    from firmware.presets import PresetStore
    from firmware.state import StateStore

    path = tmp / "state.json"
    st = StateStore(path, PresetStore(tmp / "u2", tmp / "nofactory"))
    times = []
    for i in range(repeats):
        value = round(-6.0 + i * 0.5, 2)
        t0 = time.perf_counter()
        st.set({"eq1.gain_db": value})
        while True:
            try:
                if json.loads(path.read_text())["values"]["eq1.gain_db"] == value:
                    break
            except (OSError, ValueError):
                pass
            time.sleep(0.002)
        times.append(time.perf_counter() - t0)
    st.close()
    return {"state_persist_ms": round(statistics.median(times) * 1e3, 1)}


def _capture(tmp: Path, blocks: int) -> dict:
    import numpy as np

    from firmware.capture_writer import CaptureSession

    s = CaptureSession(tmp / "captures", 48000, 2, taps=("input", "output"), fmt="PCM_24", floor_mb=0,
                       analyze=False)
    x = np.random.default_rng(0).uniform(-1, 1, (128, 2))
    ts = np.empty(blocks)
    t_start = time.perf_counter()
    for i in range(blocks):
        t0 = time.perf_counter_ns()
        s.push(x, x)
        ts[i] = (time.perf_counter_ns() - t0) / 1000
        delay = t_start + (i + 1) * 128 / 48000 - time.perf_counter()
        if delay > 0.002:
            time.sleep(delay)
    st = s.stop()
    return {"capture_push_us_median": round(float(np.median(ts)), 1),
            "capture_push_us_p999": round(float(np.percentile(ts, 99.9)), 1),
            "capture_push_us_max": round(float(ts.max()), 1), "capture_dropped_frames": st["dropped_frames"]}


def _zip(tmp: Path, repeats: int, megabytes: int) -> dict:
    """The ZIP of ticked captures (webui/zipstream.py) against reading the same file in the same chunks."""
    import os
    import resource

    from webui.zipstream import CHUNK, zip_stream

    wav = tmp / "big.wav"
    with open(wav, "wb") as f:
        for _ in range(megabytes):
            f.write(os.urandom(1 << 20))
    size = wav.stat().st_size

    def cpu() -> float:
        r = resource.getrusage(resource.RUSAGE_SELF)
        return r.ru_utime + r.ru_stime

    plain, zipped = [], []
    for _ in range(repeats):            # alternating, so both see the same machine
        c0 = cpu()
        with open(wav, "rb") as f:
            while f.read(CHUNK):
                pass
        plain.append(cpu() - c0)
        c0 = cpu()
        n = sum(len(b) for b in zip_stream([("big.wav", wav)]))
        zipped.append(cpu() - c0)
    med_plain, med_zip = statistics.median(plain), statistics.median(zipped)
    return {"zip_megabytes": megabytes, "zip_overhead_bytes": n - size,
            "zip_cpu_s_per_gb": round(med_zip / size * 1e9, 3),
            "zip_plain_read_cpu_s_per_gb": round(med_plain / size * 1e9, 3),
            "zip_cpu_ratio_vs_plain_read": round(med_zip / med_plain, 2) if med_plain > 0 else None}


_UPLOAD_SERVER = """
import sys
from pathlib import Path
from firmware.captures import CaptureIndex
from firmware.control import Control
from firmware.presets import PresetStore
from firmware.state import StateStore
from webui import create_app
from webui.server import ServerThread
home = Path(sys.argv[1])
presets = PresetStore(home / "presets")
control = Control(state=StateStore(home / "state.json", presets=presets, autosave=False), presets=presets,
                  captures=CaptureIndex(home / "captures"), watch=False)
control.uploads.analyse = None      # the analysis is the recordings' cost, not the upload's
app = create_app(control, {"web": {"threads": 4}})
app.extensions["masterbox"].passwords.set(sys.argv[2])
print(ServerThread(app, host="127.0.0.1", port=0).start().port, flush=True)
sys.stdin.read()
"""


def _client(url: str):
    """``call(method, path, body=None, ctype=JSON)`` -> the JSON answer, logged in to the bench server at ``url``."""
    import urllib.request

    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor())
    csrf = None

    def call(method: str, path: str, body: bytes | None = None, ctype: str = "application/json"):
        req = urllib.request.Request(url + path, data=body, method=method,
                                     headers={"Content-Type": ctype, **({"X-CSRF-Token": csrf} if csrf else {})})
        with opener.open(req, timeout=120) as r:
            return json.loads(r.read())

    csrf = call("GET", "/auth/session")["csrf_token"]
    csrf = call("POST", "/auth/login", json.dumps({"password": "bench-password"}).encode())["csrf_token"]
    return call


def _send(call, src: Path, name: str, until: float = float("inf")) -> tuple[dict, int]:
    """Upload ``src`` as ``name`` piece by piece (stopping at ``perf_counter() >= until``); the last
    answer and the bytes sent."""
    st = call("POST", "/uploads", json.dumps({"file": name, "size": src.stat().st_size}).encode())
    sent = 0
    with open(src, "rb") as f:
        while st["state"] == "receiving" and time.perf_counter() < until:
            piece = f.read(st["chunk_bytes"])
            st = call("PUT", f"/uploads/{st['id']}?offset={st['offset']}", piece, "application/octet-stream")
            sent += len(piece)
    return st, sent


def _upload_loop(url: str, src: Path, seconds: float) -> None:
    """The uploader process of :func:`_capture_while_uploading`: ``src`` again and again for ``seconds``,
    each removed once in; prints the megabytes sent and the time taken as JSON."""
    import urllib.parse

    call = _client(url)
    total, t0, k = 0, time.perf_counter(), 0
    while time.perf_counter() - t0 < seconds:
        st, sent = _send(call, src, f"loop{k}.wav", until=t0 + seconds)
        total += sent
        call("DELETE", "/captures/" + urllib.parse.quote(st["capture"]) if st["state"] == "done"
             else "/uploads/" + st["id"])
        k += 1
    print(json.dumps({"megabytes": total / 1e6, "seconds": time.perf_counter() - t0}))


class _UploadServer:
    """The web server with a Control in a process of its own, its captures under ``tmp/upload-home``."""

    def __init__(self, tmp: Path):
        import os
        import subprocess

        self.home = tmp / "upload-home"
        (self.home / "captures").mkdir(parents=True, exist_ok=True)
        env = {**os.environ, "MASTERBOX_HOME": str(self.home), "MASTERBOX_CONFIG": str(tmp / "none.toml"),
               "PYTHONPATH": str(ROOT)}
        self.proc = subprocess.Popen([sys.executable, "-c", _UPLOAD_SERVER, str(self.home), "bench-password"],
                                     env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{int(self.proc.stdout.readline())}/api/v1"
        self._clk = os.sysconf("SC_CLK_TCK")

    def cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the server so far."""
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
        return int(fields[11]) / self._clk, int(fields[12]) / self._clk

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(10)


def _bench_wav(tmp: Path, megabytes: int) -> Path:
    import numpy as np
    import soundfile as sf

    src = tmp / "mix.wav"
    sf.write(src, np.random.default_rng(1).uniform(-0.5, 0.5, ((megabytes << 20) // 6, 2)), 48000, subtype="PCM_24")
    return src


def _upload(tmp: Path, repeats: int, megabytes: int) -> dict:
    """A WAV uploaded in pieces (firmware/capture_upload.py) through waitress on loopback, the server in a
    process of its own: its CPU per GB and the wall-clock rate, against ``dd conv=fsync`` of the same file
    onto the same disk (the least any durable way in costs: read the bytes, write them, flush them)."""
    import subprocess

    from firmware.capture_upload import CHUNK_BYTES

    src = _bench_wav(tmp, megabytes)
    size = src.stat().st_size
    server = _UploadServer(tmp)
    home = server.home
    try:
        call = _client(server.url)
        up_cpu, up_user, up_wall, cp_cpu = [], [], [], []
        for k in range(repeats):         # alternating with dd, so both see the same machine
            (u0, s0), t0 = server.cpu(), time.perf_counter()
            st, _ = _send(call, src, f"mix{k}.wav")
            up_wall.append(time.perf_counter() - t0)
            u1, s1 = server.cpu()
            up_cpu.append(u1 + s1 - u0 - s0)
            up_user.append(u1 - u0)
            (home / "captures" / f"{st['capture']}.wav").unlink()
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            subprocess.run(["dd", f"if={src}", f"of={home / 'captures' / 'copy.wav'}", "bs=4M", "conv=fsync",
                            "status=none"], check=True)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            cp_cpu.append(r1.ru_utime + r1.ru_stime - r0.ru_utime - r0.ru_stime)
            (home / "captures" / "copy.wav").unlink()
    finally:
        server.close()
        src.unlink()
    med_up, med_cp = statistics.median(up_cpu), statistics.median(cp_cpu)
    return {"upload_megabytes": round(size / 2**20), "upload_pieces": -(-size // CHUNK_BYTES),
            "upload_server_cpu_s_per_gb": round(med_up / size * 1e9, 3),
            "upload_server_user_cpu_s_per_gb": round(statistics.median(up_user) / size * 1e9, 3),
            "upload_mb_per_s": round(size / 1e6 / statistics.median(up_wall), 1),
            "upload_dd_cpu_s_per_gb": round(med_cp / size * 1e9, 3),
            "upload_cpu_ratio_vs_dd": round(med_up / med_cp, 2) if med_cp > 0 else None}


def _capture_while_uploading(tmp: Path, blocks: int, megabytes: int) -> dict:
    """The capture ``push`` figures (as :func:`_capture`) while another process uploads a WAV as fast as it
    can into a captures folder on the same disk: does the recording keep up with the disk shared?"""
    import subprocess

    src = _bench_wav(tmp, megabytes)
    server = _UploadServer(tmp)
    try:
        loop = (f"import sys; sys.path[:0] = [{str(Path(__file__).parent)!r}, {str(ROOT)!r}]; import bench_storage; "
                f"bench_storage._upload_loop({server.url!r}, bench_storage.Path({str(src)!r}), {blocks * 128 / 48000})")
        up = subprocess.Popen([sys.executable, "-c", loop], stdout=subprocess.PIPE, text=True)
        time.sleep(0.5)                 # the uploader logged in and sending
        cap = _capture(tmp / "during", blocks)
        sent = json.loads(up.communicate(timeout=120)[0])
    finally:
        server.close()
        src.unlink()
    return {f"{k}_while_uploading": v for k, v in cap.items()} | {
        "upload_mb_per_s_while_capturing": round(sent["megabytes"] / sent["seconds"], 1)}


def run(quick: bool = False, presets: int = 1000, repeats: int | None = None, blocks: int | None = None,
        megabytes: int | None = None) -> dict:
    """Every figure. ``quick``: fewer repeats, 2,000 capture blocks instead of 20,000, 64 MB files instead of
    256; ``presets`` (saved), ``repeats`` (all of them), ``blocks`` and ``megabytes`` override."""
    def pick(value, if_quick, normal):
        return value if value is not None else if_quick if quick else normal

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        blocks = pick(blocks, 2000, 20000)
        megabytes = pick(megabytes, 64, 256)
        out = _presets(tmp, pick(repeats, 5, 20), presets)
        out.update(_state(tmp, pick(repeats, 5, 15)))
        out.update(_capture(tmp, blocks))
        out.update(_zip(tmp, pick(repeats, 3, 7), megabytes))
        out.update(_upload(tmp, pick(repeats, 3, 7), megabytes))
        out.update(_capture_while_uploading(tmp, blocks, megabytes))
    return out


def main(argv: list[str] | None = None) -> int:
    import argparse

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats, 2,000 capture blocks, 64 MB files")
    ap.add_argument("--presets", type=int, default=1000, help="presets saved (default 1000)")
    ap.add_argument("--repeats", type=int, help="repeats of every measurement (default 5-20, by measurement)")
    ap.add_argument("--blocks", type=int, help="128-frame capture blocks pushed, paced (default 20000)")
    ap.add_argument("--megabytes", type=int, help="size of the files zipped and uploaded (default 256)")
    a = ap.parse_args(argv)
    for k, v in run(a.quick, a.presets, a.repeats, a.blocks, a.megabytes).items():
        print(f"{k}: {v}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
