"""``masterbox engine``: run the real-time engine alone (audio in -> chain -> audio out).

Defaults come from the ``[audio]`` section of the config file; options override them. The
engine listens for control requests on ``run_dir()/engine.sock`` and publishes meters to
``run_dir()/meters.shm`` (and the last 1.5 s of audio, for the spectrum analyser, to ``scope.shm``
beside it) while it runs. It stops after ``--duration`` seconds, on SIGTERM or
SIGINT, or on a ``stop`` request, and then writes ``--stats-json``.

Examples::

    masterbox engine --backend alsa --device hw:1 --period 128 --periods 2 --format S32_LE
    masterbox engine --backend sim --input song.wav --output out.wav --duration 10 --stats-json s.json
"""

from __future__ import annotations

import argparse
import json
import sys

BACKENDS = ("alsa", "portaudio", "sim")
FORMATS = ("S16_LE", "S24_LE", "S24_3LE", "S32_LE", "FLOAT_LE")


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("engine", help="run the real-time engine alone", description=__doc__,
                       formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--backend", choices=BACKENDS, help="audio backend (config: audio.backend)")
    p.add_argument("--device", help="ALSA/PortAudio device for both directions (config: audio.device)")
    p.add_argument("--capture-device", help="input device when it differs from --device")
    p.add_argument("--playback-device", help="output device when it differs from --device")
    p.add_argument("--rate", type=int, help="sample rate: 44100, 48000, 88200 or 96000")
    p.add_argument("--period", type=int, help="frames per period (block), e.g. 64, 128, 256")
    p.add_argument("--periods", type=int, help="periods in the device buffer (2 = lowest latency)")
    p.add_argument("--format", type=str.upper, choices=FORMATS, help="sample format on the wire")
    p.add_argument("--preset", default="", help="start from this preset (factory or user)")
    p.add_argument("--set", action="append", default=[], metavar="ID=VALUE", help="a parameter value (repeatable)")
    p.add_argument("--bypass", action="store_true", help="start bypassed")
    p.add_argument("--duration", type=float, help="stop after this many seconds")
    p.add_argument("--stats-json", metavar="FILE", help="write the run's statistics here at exit")
    p.add_argument("--wait-ready", action="store_true",
                   help="build the chain before opening the device (processed from the first sample)")
    p.add_argument("--input", metavar="WAV",
                   help="sim backend: source file, looped, converted to --rate (default: the demo programme)")
    p.add_argument("--output", metavar="WAV", help="sim backend: write what would be played here")
    p.add_argument("--no-realtime", action="store_true",
                   help="do not ask for SCHED_FIFO, locked memory or a CPU wake-up latency")
    p.add_argument("--cpu-latency-us", type=int, metavar="US",
                   help="hold every CPU's wake-up latency at or below this while running (0: idle CPUs poll; "
                        "-1: leave the system's idle states alone; default: [audio] cpu_latency_us, -1)")
    p.add_argument("--cpu", type=int, metavar="N",
                   help="run the audio loop on CPU N alone (e.g. one kept free with isolcpus=N; -1: any CPU; "
                        "default: [audio] cpu, -1)")
    p.add_argument("--socket", help="control socket path (default: run_dir()/engine.sock)")
    p.add_argument("--meters", help="meters file path (default: run_dir()/meters.shm)")
    p.add_argument("--quiet", action="store_true", help="only warnings and errors on stderr")
    p.set_defaults(func=run)


def _values(args, UserError) -> tuple[dict, str]:
    from dsp import schema

    values: dict = {}
    preset = ""
    if args.preset:
        from firmware.presets import PresetError, PresetStore

        try:
            p = PresetStore().get(args.preset)
        except PresetError as e:
            raise UserError(f"preset: {e}") from None
        values.update(p.params)
        preset = p.name
    for text in args.set:
        try:
            k, v = schema.parse_assignment(text)
        except schema.ParamError as e:
            raise UserError(f"--set {text}: {e}") from None
        values[k] = v
    return values, preset


def stream_config(args, audio: dict):
    """The StreamConfig from the ``[audio]`` config section with the command line on top."""
    from hw.audio import StreamConfig

    device = args.device or audio.get("device") or "default"
    return StreamConfig(
        rate=int(args.rate or audio.get("rate", 48000)),
        period=int(args.period or audio.get("period", 128)),
        periods=int(args.periods or audio.get("periods", 2)),
        format=str(args.format or audio.get("format", "S32_LE")).upper(),
        capture_device=args.capture_device or (None if args.device else audio.get("capture_device")) or device,
        playback_device=args.playback_device or (None if args.device else audio.get("playback_device")) or device,
    )


def run(args: argparse.Namespace) -> int:
    import logging
    import signal
    from pathlib import Path

    from firmware.cli import UserError
    from firmware.config import ConfigError, load_config

    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO, stream=sys.stderr,
                        format="masterbox engine: %(message)s")
    try:
        cfg = load_config()
    except ConfigError as e:
        raise UserError(str(e)) from None
    audio = cfg.get("audio", {})
    backend_name = args.backend or audio.get("backend", "alsa")
    if backend_name != "sim" and (args.input or args.output):
        raise UserError("--input and --output are for --backend sim")
    values, preset = _values(args, UserError)
    config = stream_config(args, audio)
    if config.period < 16 or config.period > 8192:
        raise UserError(f"--period {config.period} is out of range 16..8192")
    if config.periods < 2 or config.periods > 16:
        raise UserError(f"--periods {config.periods} is out of range 2..16")
    if config.rate not in (44100, 48000, 88200, 96000):
        raise UserError(f"--rate {config.rate}: use 44100, 48000, 88200 or 96000")

    from firmware import start_failure
    from firmware.control_channel import ControlServer, default_socket_path
    from firmware.engine import Engine
    from firmware.meters_shm import MeterPublisher, MeterWriter
    from firmware.scope_shm import ScopeWriter
    from hw.audio import DeviceError, make_backend

    socket_path = Path(args.socket) if args.socket else default_socket_path()
    tried = {"backend": backend_name, "capture_device": config.capture_device,
             "playback_device": config.playback_device, "rate": config.rate, "period": config.period,
             "periods": config.periods}

    def _failed(e: Exception):
        # the supervisor only sees an exit; the control process reads why (firmware/start_failure.py)
        start_failure.record(socket_path, str(e), tried)
        return UserError(str(e))

    options = {}
    if backend_name == "sim":
        options = {"source": args.input, "sink": args.output}
    try:
        backend = make_backend(backend_name, config, **options)
    except (DeviceError, ValueError) as e:
        raise _failed(e) from None
    engine = Engine(backend, values, bypass=args.bypass, preset=preset, wait_ready=args.wait_ready,
                    realtime=not args.no_realtime,
                    cpu_latency_us=args.cpu_latency_us if args.cpu_latency_us is not None
                    else int(audio.get("cpu_latency_us", -1)),
                    cpu=args.cpu if args.cpu is not None else int(audio.get("cpu", -1)))
    storage = cfg.get("storage", {})
    server = ControlServer(engine, args.socket, capture_floor_mb=int(storage.get("free_space_floor_mb", 500)))
    try:
        server.start()  # first: a second engine must fail here, before it touches the meters file
    except (RuntimeError, OSError) as e:
        raise UserError(f"control socket: {e}") from None
    publisher = MeterPublisher(engine, MeterWriter(args.meters))
    server.publisher = publisher
    publisher.start()
    # the spectrum analyser's ring sits beside the meters (before run(): the loader warms its tap);
    # without it the box only loses its analyser, so it is no reason not to pass audio
    try:
        engine.attach_scope(ScopeWriter(config.rate, Path(args.meters).with_name("scope.shm") if args.meters else None))
    except OSError as e:
        logging.getLogger("masterbox.engine").warning("no spectrum analyser: %s", e)

    def _stop(signum, frame):
        engine.request_stop()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    log = logging.getLogger("masterbox.engine")

    def _started():
        start_failure.clear(socket_path)
        log.info("running: %s %s, %d Hz, %d x %d frames, %s; control %s", backend_name,
                 config.capture_device if config.capture_device == config.playback_device else
                 f"{config.capture_device} -> {config.playback_device}", config.rate, config.periods,
                 config.period, config.format, server.path)

    try:
        stats = engine.run(args.duration, on_started=_started)
    except DeviceError as e:
        raise _failed(e) from None
    finally:
        cap = engine.capture
        if cap is not None:
            engine.capture = None
            cap.stop()
        server.stop()
        publisher.stop()
        if engine.scope is not None:
            engine.scope.close()
    out = stats.as_dict()
    out["input_faults"] = int(getattr(engine.chain, "faults", 0) or 0)
    if args.stats_json:
        from firmware.atomic import write_atomic

        write_atomic(Path(args.stats_json), json.dumps(out, indent=2) + "\n")
    log.info("stopped after %d blocks: %d xruns, %d device errors, max load %.2f", out["blocks"], out["xruns"],
             out["device_errors"], out["max_load"])
    return 0
