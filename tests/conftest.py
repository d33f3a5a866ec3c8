"""Shared fixtures. Every test gets its own data root so nothing touches ./var or the box."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    home = tmp_path / "mbhome"
    home.mkdir()
    monkeypatch.setenv("MASTERBOX_HOME", str(home))
    monkeypatch.setenv("MASTERBOX_CONFIG", str(tmp_path / "masterbox.toml"))
    monkeypatch.setenv("GPIOZERO_PIN_FACTORY", "mock")
    yield home


@pytest.fixture
def masterbox_cmd():
    """The installed console script (falls back to `python -m firmware.cli`)."""
    exe = Path(sys.executable).with_name("masterbox")
    return [str(exe)] if exe.exists() else [sys.executable, "-m", "firmware.cli"]


def pytest_report_header(config):
    return f"masterbox tests, MASTERBOX_HOME per test; cpu count {os.cpu_count()}"


# Tests on the JACK-paced rig assert zero xruns, which depends on the scheduler waking the audio
# thread in time. On the shared, non-preemptible VMs this suite runs on (CI included) a single
# late wake-up of jackd or the engine sometimes lands in a 60 s window, whatever the engine does,
# so such a test gets up to two more attempts; the assertion itself stays strict, and each failed
# attempt is reported in the summary ("R" / "rerun") with its xrun log. MB_RT_RERUNS=0 runs each once
# (to see every attempt's failure while measuring).
RT_RERUNS = int(os.environ.get("MB_RT_RERUNS", "2"))


# `make test` runs the suite in two parts. First the modules below, on both cores at once
# (pytest-xdist, `-m parallel -n 2`): they start no engine, no jackd, no browser and no paced
# process, and assert nothing about wall time, so sharing the machine cannot change their outcome
# (offline DSP and file work, the installer, the Flask test client, fuzzing against stand-ins).
# Then everything else, one test at a time on a quiet machine, as before: the real-time rig, the
# engines, the whole-box, panel and SSE tests, and every test that times something (a learner
# session, a 100 ms panel path, a kill at a random moment). A new module is in the second part
# unless it is added here.
PARALLEL_MODULES = {
    "tests/dsp/*", "tests/test_master.py", "tests/test_master_split.py", "tests/firmware/test_album.py",
    "tests/test_analyze.py",
    "tests/test_wav_reader.py", "tests/test_schema.py", "tests/test_presets_cli.py",
    "tests/hw/test_audio_formats.py", "tests/system/test_installer.py", "tests/system/test_units.py",
    "tests/reliability/test_rel_api_fuzz.py", "tests/reliability/test_rel_config_fuzz.py",
    "tests/reliability/test_rel_dsp_hypothesis.py", "tests/reliability/test_rel_soak.py",
    "tests/webui/test_webui_api.py", "tests/webui/test_webui_fuzz.py", "tests/webui/test_webui_openapi.py",
    "tests/webui/test_webui_download.py", "tests/webui/test_webui_no_numba.py", "tests/state/test_captures.py",
    "tests/test_spectrum.py", "tests/webui/test_webui_spectrum.py", "tests/state/test_reference_track.py",
    "tests/state/test_settings_slots.py", "tests/webui/test_webui_slots.py",
    # files, presets, state, the web API with a control and no engine: nothing timed (2026-11-24)
    "tests/test_wav_writer.py", "tests/test_bwf.py", "tests/state/test_presets.py", "tests/state/test_state.py",
    "tests/state/test_undo.py", "tests/state/test_learn_on_chain.py", "tests/panel/test_config.py",
    "tests/panel/test_pot.py", "tests/webui/test_webui_auth.py", "tests/webui/test_webui_upload.py",
    "tests/webui/test_webui_mastering.py", "tests/webui/test_webui_undo.py", "tests/reliability/test_rel_security.py",
    # masters from the web UI against a stand-in engine, compared with offline `master`/`album` renders (2026-11-24)
    "tests/webui/test_webui_master_label.py",
    # the offline bench/ scripts in their shortest runs, figures never held to a speed; the ones with jackd,
    # an engine or a SCHED_FIFO thread are tests/test_bench_scripts_rig.py, in the second part (2026-11-25)
    "tests/test_bench_scripts.py",
    # pure functions: which characters are control characters (2026-11-25)
    "tests/test_names.py",
    # every command's --help, in-process (2026-11-25)
    "tests/test_cli_help.py",
}


def pytest_configure(config):
    config.addinivalue_line("markers", "parallel: may share the machine with other tests (tests/conftest.py, "
                                       "PARALLEL_MODULES); `make test` runs these first, on all cores")


def _parallel_module(path: Path) -> bool:
    rel = path.resolve().relative_to(ROOT).as_posix()
    return rel in PARALLEL_MODULES or f"{rel.rsplit('/', 1)[0]}/*" in PARALLEL_MODULES


def pytest_collection_modifyitems(config, items):
    for item in items:
        if item.get_closest_marker("realtime") and not item.get_closest_marker("flaky") and RT_RERUNS > 0:
            item.add_marker(pytest.mark.flaky(reruns=RT_RERUNS, reruns_delay=2))
        if _parallel_module(Path(str(item.path))) and not item.get_closest_marker("realtime") \
                and not item.get_closest_marker("browser"):
            item.add_marker(pytest.mark.parallel)


@pytest.fixture
def host_witness():
    """Stalls of the machine itself for the whole test, to tell the host's xruns from ours
    (tests/host_witness.py). Call ``stop()`` before reading them."""
    from tests.host_witness import HostWitness

    with HostWitness() as witness:
        yield witness
