"""Command line: parse, call, print. User mistakes are one line on stderr and a non-zero exit;
`--debug` shows the traceback."""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from edgevoice import __version__
from edgevoice.errors import EdgevoiceError
from edgevoice.startup import limit_blas_threads, seconds_since_start

log = logging.getLogger("edgevoice")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgevoice", description="Offline speech recognition "
                                "daemon: microphone -> VAD -> TFLite CTC model -> MQTT.")
    p.add_argument("--version", action="version", version=f"edgevoice {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def config_arg(sp: argparse.ArgumentParser) -> None:
        sp.add_argument("--config", "-c", metavar="PATH",
                        help="YAML config (default: /etc/edgevoice/edgevoice.yaml if present, "
                             "else built-in defaults)")

    run = sub.add_parser("run", help="run the daemon (microphone, or --input WAV)")
    config_arg(run)
    run.add_argument("--input", "-i", metavar="WAV", help="WAV file instead of the microphone")
    run.add_argument("--realtime", action="store_true", help="pace --input at real-time speed")
    run.add_argument("--broker", metavar="mqtt://HOST:PORT", help="MQTT broker for the mqtt sink")
    run.add_argument("--site-id", metavar="ID", help="site id (MQTT topics, payloads)")
    run.add_argument("--bundle", metavar="DIR", help="model bundle instead of the config's")
    run.add_argument("--decoder", choices=("greedy", "beam"), help="decoder override")

    tr = sub.add_parser("transcribe", help="transcribe WAV files, one JSON line per file")
    config_arg(tr)
    tr.add_argument("files", nargs="+", metavar="FILE")
    tr.add_argument("--decoder", choices=("greedy", "beam"), help="decoder override")
    tr.add_argument("--bundle", metavar="DIR", help="model bundle instead of the config's")

    cc = sub.add_parser("check-config", help="validate a config file and exit")
    cc.add_argument("path", metavar="PATH")

    pl = sub.add_parser("plugins", help="list every component and the plugin providing it")
    config_arg(pl)
    pl.add_argument("--options", action="store_true", help="also list each component's options")

    sub.add_parser("devices", help="list audio input devices")
    md = sub.add_parser("model", help="describe and verify a model bundle")
    md.add_argument("bundle", nargs="?", default=None, metavar="DIR")
    return p


def _setup_logging(level: str, debug: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if debug else getattr(logging, level.upper()),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)


def _settings(path: str | None, **overrides: Any):  # type: ignore[no-untyped-def]
    from edgevoice.config import apply_overrides, load_raw, load_settings

    raw, origin = load_raw(path)
    return load_settings(apply_overrides(raw, **overrides), origin)


def cmd_run(args: argparse.Namespace) -> int:
    from edgevoice.daemon import Daemon, Stopped

    overrides = dict(input_wav=args.input, realtime=args.realtime, broker=args.broker,
                     site_id=args.site_id, decoder=args.decoder, bundle=args.bundle)
    settings, registry = _settings(args.config, **overrides)
    _setup_logging(settings.core.log_level, args.debug)
    daemon = Daemon(settings, registry,
                    reload_settings=lambda: _settings(args.config, **overrides))
    try:
        daemon.start()
    except Stopped as stop:  # SIGTERM while a FIFO waited for its writer, say
        daemon.close()
        return stop.exit_code
    except BaseException:
        daemon.close()
        raise
    log.info("ready in %.0f ms (since the process started)", seconds_since_start() * 1000)
    return daemon.run()


def cmd_transcribe(args: argparse.Namespace) -> int:
    from edgevoice.daemon import Stopped

    def stop(signum: int, frame: object) -> None:
        raise Stopped(signum)

    # Explicit: a FIFO waiting for its writer must still end on SIGINT when the shell
    # started us with SIGINT ignored (`edgevoice transcribe fifo &`).
    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    try:
        return _transcribe(args)
    except Stopped as stopped:
        return stopped.exit_code


def _transcribe(args: argparse.Namespace) -> int:
    from edgevoice.transcribe import Transcriber

    settings, registry = _settings(args.config, decoder=args.decoder, bundle=args.bundle)
    _setup_logging("warning", args.debug)
    transcriber = Transcriber(settings, registry)
    failed = 0
    for path in args.files:
        try:
            out = transcriber.transcribe(path).to_payload()
        except EdgevoiceError as exc:
            failed += 1
            out = {"file": path, "error": str(exc)}
            print(f"edgevoice: error: {exc}", file=sys.stderr)
        print(json.dumps(out, ensure_ascii=False), flush=True)
    return 1 if failed else 0


def cmd_check_config(args: argparse.Namespace) -> int:
    """Validate the YAML, load the bundle, then build (without opening) every component and
    the model; every problem found is reported in one go."""
    from edgevoice.bundle import load_bundle
    from edgevoice.components import build
    from edgevoice.config import load_raw, load_settings, parse_core
    from edgevoice.errors import ConfigError
    from edgevoice.pipeline import Pipeline
    from edgevoice.recognizer import stage_context

    raw, origin = load_raw(args.path)
    problems: list[str] = []
    settings = None
    try:
        settings, registry = load_settings(raw, origin)
    except ConfigError as exc:
        problems += exc.problems
    core = settings.core if settings else parse_core(raw, origin)[0]
    try:
        bundle = load_bundle(core.bundle, Path(core.models_dir) if core.models_dir else None)
    except EdgevoiceError as exc:
        problems.append(f"bundle: {exc}")
        bundle = None
    if settings is not None and bundle is not None:
        ctx = stage_context(settings, bundle)
        try:
            Pipeline(settings, registry, bundle, sinks=[]).close()
        except EdgevoiceError as exc:
            problems.append(str(exc))
        for choice in (settings.source, *settings.sinks):
            try:
                build(choice, registry, ctx)
            except EdgevoiceError as exc:
                problems.append(exc_in(choice.path, exc))
    if problems:
        raise ConfigError(problems, args.path)
    assert settings is not None and bundle is not None
    print(f"{args.path}: OK (source {settings.source.name}, "
          + ", ".join(f"{k} {c.name}" for k, c in settings.stages.items())
          + f", sinks {', '.join(s.name for s in settings.sinks)}; model {bundle.name} "
          f"{bundle.version})")
    return 0


def exc_in(path: str, exc: Exception) -> str:
    return str(exc) if path in str(exc) else f"{path}: {exc}"


def cmd_plugins(args: argparse.Namespace) -> int:
    from edgevoice.config import load_raw, parse_core
    from edgevoice.options import describe_options
    from edgevoice.plugins import create_registry

    raw, origin = load_raw(args.config)
    registry = create_registry(parse_core(raw, origin)[0].plugin_dirs)
    for kind, comps in registry.components.items():
        for name, comp in sorted(comps.items()):
            doc = (comp.cls.__doc__ or "").strip().splitlines()
            print(f"{kind:9} {name:12} {comp.provider:24} {doc[0] if doc else ''}")
            if args.options:
                for opt_name, typ, default, help_text in describe_options(comp.cls.Options):
                    print(f"{'':23}{opt_name}: {typ} = {default!r}  {help_text}")
    for plugin, why in registry.failures.items():
        print(f"FAILED    {plugin}: {why}")
    return 0


def cmd_devices(args: argparse.Namespace) -> int:
    from edgevoice.errors import AudioError

    try:
        from edgevoice.stages.sources import list_input_devices

        devices = list_input_devices()
    except ImportError:
        raise AudioError("pyaudio is not installed: `pip install 'edgevoice[mic]'`") from None
    if not devices:
        print("no audio input devices found")
        return 1
    for index, name in devices:
        print(f"{index:3}  {name}")
    return 0


def cmd_model(args: argparse.Namespace) -> int:
    from edgevoice.bundle import DEFAULT_BUNDLE, load_bundle
    from edgevoice.runtime import interpreter_class, open_acoustic_model

    bundle = load_bundle(args.bundle or DEFAULT_BUNDLE)
    model = open_acoustic_model(bundle)
    print(bundle.describe())
    print(f"runtime {interpreter_class()[1]}, input {model.input_dtype}, "
          f"output {model.output_dtype}, every file and bundle.yaml's values verified (sha256)")
    for key, value in bundle.metrics.items():
        print(f"  {key}: {value}")
    return 0


COMMANDS = {"run": cmd_run, "transcribe": cmd_transcribe, "check-config": cmd_check_config,
            "plugins": cmd_plugins, "devices": cmd_devices, "model": cmd_model}


def main(argv: list[str] | None = None) -> int:
    limit_blas_threads()  # first: numpy is not loaded yet (this module does not import it)
    args = _parser().parse_args(argv)
    if not args.command:
        _parser().print_help()
        return 2
    try:
        return COMMANDS[args.command](args)
    except EdgevoiceError as exc:
        if args.debug:
            raise
        print(f"edgevoice: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:  # `edgevoice model | head -3`: the reader has what it wanted
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141


if __name__ == "__main__":
    sys.exit(main())
