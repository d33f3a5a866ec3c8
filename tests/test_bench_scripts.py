"""The offline scripts of ``bench/`` run, as a person runs them, and print every figure they promise;
``masterbox bench --json`` gives one JSON object; every ``bench_<area>.py`` has what ``masterbox bench``
calls. Nothing here holds a figure to a speed (tests/bench_scripts.py): the runs are the scripts' shortest,
far too short to measure anything. The scripts that start jackd, an engine or a SCHED_FIFO thread are in
tests/test_bench_scripts_rig.py.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess

from tests.bench_scripts import (
    BENCH,
    QUICK_ARGS,
    RIG_SCRIPTS,
    ROOT,
    figure,
    figures,
    json_out,
    key_values,
    number,
    run_script,
)


def test_every_script_in_bench_is_run_by_a_test():
    scripts = {p.name for p in BENCH.glob("*.py")}
    assert scripts == set(QUICK_ARGS), "bench/ and tests/bench_scripts.py QUICK_ARGS differ: give the new " \
                                      "script a short mode and a test"
    assert RIG_SCRIPTS <= scripts


def test_every_bench_area_has_the_run_that_masterbox_bench_calls():
    """``masterbox bench`` imports each ``bench/bench_<area>.py`` and calls ``run(quick=...)``."""
    for path in sorted(BENCH.glob("bench_*.py")):
        tree = ast.parse(path.read_text())
        runs = [f for f in tree.body if isinstance(f, ast.FunctionDef) and f.name == "run"]
        assert runs, f"{path.name} has no top-level run(quick)"
        params = [a.arg for a in runs[0].args.args + runs[0].args.kwonlyargs]
        assert "quick" in params, f"{path.name}: run({', '.join(params)}) takes no quick"


def test_masterbox_bench_json_is_one_json_object(masterbox_cmd):
    proc = subprocess.run([*masterbox_cmd, "bench", "--json", "--quick", "--only", "spectrum"], cwd=ROOT,
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    doc = json_out(proc)
    assert list(doc) == ["spectrum"], doc
    _spectrum_figures(doc["spectrum"])


def test_masterbox_bench_json_keeps_what_a_benchmark_prints_off_stdout(tmp_path, monkeypatch, capsys):
    from firmware.cli import main
    from firmware.commands import bench

    (tmp_path / "bench_talky.py").write_text('def run(quick=False):\n    print("run 1: 0.5 s")\n'
                                             '    return {"x_s": 0.5, "quick": quick}\n')
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    assert main(["bench", "--json", "--quick"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out) == {"talky": {"x_s": 0.5, "quick": True}}
    assert "run 1: 0.5 s" in err


def test_masterbox_bench_prints_a_group_of_figures_as_an_indented_tree(tmp_path, monkeypatch, capsys):
    from firmware.cli import main
    from firmware.commands import bench

    (tmp_path / "bench_grouped.py").write_text(
        'def run(quick=False):\n'
        '    return {"file": "3 s", "loop": {"chain": {"ns": 150, "rt_x": 140}, "empty": {}}, "ratio": 0.5}\n')
    monkeypatch.setattr(bench, "BENCH_DIR", tmp_path)
    assert main(["bench", "--quick"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "== grouped", "  file: 3 s", "  loop:", "    chain:", "      ns: 150", "      rt_x: 140", "    empty: {}",
        "  ratio: 0.5"]


def test_bench_chain():
    out = json_out(run_script("bench_chain.py"))
    figures(out, [f"rt_x_block_{b}" for b in (32, 64, 128, 256, 1024)])
    figures(out, [f"block_us_{b}_{q}" for b in (64, 128) for q in ("p50", "p99", "p99.9", "max", "p99.9_of_period")])
    runs = ("master", "master_1pass", "ffmpeg_chain", "x42_limiter", "ffmpeg_chain_1thread", "x42_limiter_1thread",
            "master_3s", "master_jit", "master_3s_jit")
    figures(out, [f"{k}_wall_s" for k in runs])
    figures(out, [f"{k}_cpu_s" for k in runs], positive=False)
    for k in runs:    # every output file was measured, and came out limited (the ceilings are -1 dBTP)
        assert -6.0 < out[f"tp_{k}_dbtp"] < 0.5, (k, out[f"tp_{k}_dbtp"])
    figures(out, [k for k in out if k.startswith("cpu_ratio_")])
    assert len([k for k in out if k.startswith("cpu_ratio_")]) == 12
    assert out["repeats"] == 1 and out["file_seconds"] == 3.0
    assert isinstance(out["aot_built"], bool) and set(out["commands"]) == set(runs)


def test_bench_glide():
    out = json_out(run_script("bench_glide.py"))
    assert list(out) == ["steady", "moved", "bypassed", "sets-nobypass", "sets", "sets+capture"]
    for mode, parts in out.items():
        for part in ("block", "kernel"):
            assert parts[part]["n"] > 0, (mode, part)
            figures(parts[part], ["p50", "p99", "p99.9", "max", "mean"])
        assert 0 <= parts["gliding_fraction"] <= 1
    for mode in ("sets-nobypass", "sets", "sets+capture"):
        assert out[mode]["set_flat"]["n"] > 0 and figure(out[mode]["set_flat"]["max"], mode)
    assert out["sets+capture"]["push"]["n"] > 0 and figure(out["sets+capture"]["push"]["max"], "push")


def test_bench_level_match():
    out = json_out(run_script("bench_level_match.py"))
    assert out["bypass_s"] == 5.0 and out["moments"] == 10, out
    figures(out, ["rms_lu", "p95_lu", "worst_lu"], positive=False)
    figure(abs(out["mean_lu"]), "mean_lu", positive=False)
    assert len(out["programmes"]) == 2, out
    for name, row in out["programmes"].items():
        assert row["moments"] == 5, (name, row)
        figures(row, ["rms_lu", "worst_lu"], positive=False)
        figure(abs(row["mean_lu"]), name, positive=False)


def test_bench_limiter_sound_against_its_peers():
    out = json_out(run_script("bench_limiter_sound.py"))
    assert set(out) == {"masterbox", "x42_10ms", "x42_50ms", "alimiter_50ms"}
    for name, row in out.items():
        sines = (30, 40, 60, 100, 1000)
        for f in sines:
            assert -140.0 <= row[f"thdn_{f}_db"] < 0, (name, f, row)
            assert -10.0 < row[f"level_{f}_dbfs"] <= 0.5, (name, f, row)
        assert -140.0 <= row["imd_smpte_db"] < 0, (name, row)
        assert -6.0 < row["music_tp_dbtp"] < 0.5, (name, row)
        assert -30.0 < row["music_lufs"] < 0, (name, row)


def test_bench_meter():
    out = json_out(run_script("bench_meter.py"))
    figures(out, ["kernel_realtime_x", "kernel_realtime_x_hot_master", "kernel_realtime_x_without_true_peak",
                  "analyze_s", "ffmpeg_ebur128_s", "analyze_over_ffmpeg", "cold_start_s", "warm_start_s"])
    figures(out, ["analyze_cpu_s", "ffmpeg_ebur128_cpu_s", "analysis_numpy_reader_cpu_s",
                  "analysis_libsndfile_cpu_s", "cold_start_cpu_s", "warm_start_cpu_s"], positive=False)
    assert out["repeats"] == 1 and out["file"] == "2 s stereo 48000 Hz PCM_24 WAV"


def test_bench_panel():
    out = key_values(run_script("bench_panel.py"))
    for k in ("meters_cpu_us_per_refresh", "meters_cpu_percent_of_a_core_at_40_hz",
              "pots_cpu_us_per_poll_5_pots_mock_spi", "meter_reader_read_us", "loop_rate_hz",
              "loop_cpu_percent_of_a_core_with_mock_spi_pots", "loop_meters_only_rate_hz",
              "loop_meters_only_cpu_percent_of_a_core"):
        figure(number(out.get(k, "missing")), k, positive=False)
    assert figure(number(out["loop_rate_hz"]), "loop_rate_hz") and out["meter_reader_engine_running"] == "False"
    encoders = {k: v for k, v in out.items() if k.startswith("encoder_")}
    assert len(encoders) == 8, out
    for k, v in encoders.items():
        assert re.fullmatch(r"ours \d+/\d+ wrong, gpiozero RotaryEncoder \d+/\d+ wrong", v), (k, v)


def test_bench_reference():
    out = json_out(run_script("bench_reference.py"))
    for mode in ("chain", "chain+reference", "chain+reference+mono"):
        figures(out["loop"][mode], ["p50_us", "p99_us", "max_us"])
    figures(out["loop"], ["mix_ns_per_frame", "listen_ns_per_frame"])
    assert set(out["prepare"]) == {"5 s 44.1 kHz -> 48 kHz", "5 s 48 kHz"}
    for row in out["prepare"].values():
        figures(row, ["wall_s", "file_mb"])
        figure(row["cpu_s"], "cpu_s", positive=False)


def _spectrum_figures(out: dict) -> None:
    keys = ["tap_us_64", "tap_us_128", "tap_us_256", "publish_us", "analysis_ms_48k", "vectorscope_ms_48k",
            "analysis_ms_96k", "vectorscope_ms_96k"]
    assert sorted(out) == sorted(keys), out
    for k in keys:     # each a sentence of figures: "p50 1.20, p99 3.40, max 12.0 = ..."
        values = [float(v) for v in re.findall(r"-?\d+(?:\.\d+)?(?:e[-+]?\d+)?", str(out[k]))]
        assert values, (k, out[k])
        for v in values:
            figure(v, k, positive=False)


def test_bench_spectrum():
    _spectrum_figures(key_values(run_script("bench_spectrum.py")))


def test_bench_stages():
    out = json_out(run_script("bench_stages.py"))
    stages = ("input", "eq", "multiband", "stereo", "limiter", "dither", "meter_in", "meter_out")
    figures(out, ["ns_per_frame_copy", "ns_per_frame_stages_sum"] + [f"ns_per_frame_{s}" for s in stages],
            positive=False)
    figures(out, [f"{k}_chain_{b}" for k in ("ns_per_frame", "rt_x") for b in (4096, 128)])
    assert out["seconds_of_audio"] == 1.0 and out["repeats"] == 1


def test_bench_storage():
    out = key_values(run_script("bench_storage.py"))
    keys = ["presets_save_50_s", "presets_list_cold_no_cache_ms", "presets_list_cold_cached_ms",
            "presets_list_warm_ms", "state_persist_ms", "capture_push_us_median", "capture_push_us_p999",
            "capture_push_us_max", "capture_dropped_frames", "zip_megabytes", "zip_overhead_bytes",
            "zip_cpu_s_per_gb", "zip_plain_read_cpu_s_per_gb", "upload_megabytes", "upload_pieces",
            "upload_server_cpu_s_per_gb", "upload_server_user_cpu_s_per_gb", "upload_mb_per_s",
            "upload_dd_cpu_s_per_gb", "upload_mb_per_s_while_capturing"]
    keys += [f"capture_{k}_while_uploading" for k in ("push_us_median", "push_us_p999", "push_us_max",
                                                      "dropped_frames")]
    for k in keys:
        figure(number(out.get(k, "missing")), k, positive=False)
    for k in ("zip_cpu_ratio_vs_plain_read", "upload_cpu_ratio_vs_dd"):
        if out[k] != "None":        # the script's word for a ratio over a CPU time that read 0
            figure(number(out[k]), k, positive=False)
    for k in ("state_persist_ms", "capture_push_us_max", "upload_mb_per_s", "upload_megabytes"):
        figure(number(out[k]), k)


def test_reliability_soak_check():
    out = json_out(run_script("reliability_soak.py"))
    assert out["ok"] is True and out["soak"]["steps"] == out["check"]["steps"] == 20, out
    assert out["check"]["samples_checked"] == 20 * 2400 and out["soak"]["nonfinite_samples"] == 0
    figures(out["soak"], ["speed_x_realtime", "rss_end_bytes", "blocks"])
    assert -60.0 < out["check"]["worst_true_peak_over_ceiling_db"] <= 0.1, out["check"]
