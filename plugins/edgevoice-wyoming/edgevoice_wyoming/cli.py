"""`edgevoice-wyoming`: serve the daemon's recognizer to Wyoming clients (Home Assistant).

The same YAML as `edgevoice run` chooses the bundle, denoiser, frontend, model and decoder;
source, VAD and sinks are the daemon's business and are not used here (Home Assistant, or the
satellite, decides where an utterance ends).
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import logging
import sys
from typing import Any
from urllib.parse import urlparse

from edgevoice.errors import EdgevoiceError
from edgevoice.startup import limit_blas_threads
from edgevoice_wyoming.limits import Limits

log = logging.getLogger("edgevoice.wyoming")


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgevoice-wyoming", description="Wyoming speech-to-text "
                                "server on edgevoice (Home Assistant: Settings -> Devices & "
                                "services -> Add -> Wyoming Protocol -> host and port).")
    p.add_argument("--uri", default="tcp://0.0.0.0:10300",
                   help="where to listen: tcp://HOST:PORT or unix:///PATH (default %(default)s)")
    p.add_argument("--config", "-c", metavar="PATH",
                   help="the daemon's YAML config (default: /etc/edgevoice/edgevoice.yaml if "
                        "present, else built-in defaults)")
    p.add_argument("--bundle", metavar="DIR", help="model bundle instead of the config's")
    p.add_argument("--decoder", choices=("greedy", "beam"), help="decoder override")
    p.add_argument("--language", action="append", metavar="CODE",
                   help="language the bundle speaks, as announced to clients (default en; "
                        "repeat for several)")
    p.add_argument("--max-seconds", type=float, default=Limits.max_seconds, metavar="S",
                   help="longest audio stream accepted, s (default %(default)g)")
    p.add_argument("--max-clients", type=int, default=Limits.max_clients, metavar="N",
                   help="connections served at once (default %(default)d)")
    p.add_argument("--idle-seconds", type=float, default=Limits.idle_seconds, metavar="S",
                   help="a client silent this long in the middle of a stream is disconnected "
                        "(default %(default)g)")
    p.add_argument("--zeroconf", nargs="?", const="edgevoice", metavar="NAME",
                   help="announce the server on the local network (mDNS) for Home Assistant "
                        "to discover; needs `pip install 'edgevoice-wyoming[zeroconf]'`")
    p.add_argument("--debug", action="store_true", help="show tracebacks and debug logs")
    return p


def load(args: argparse.Namespace) -> tuple[Any, Any]:
    from edgevoice.config import apply_overrides, load_raw, load_settings

    raw, origin = load_raw(args.config)
    raw = apply_overrides(raw, decoder=args.decoder, bundle=args.bundle)
    if not raw.get("sinks"):  # the daemon needs one; this server publishes nowhere
        raw["sinks"] = [{"name": "stdout"}]
    return load_settings(raw, origin)


def check_args(args: argparse.Namespace) -> None:
    if urlparse(args.uri).scheme not in ("tcp", "unix", "stdio"):
        raise EdgevoiceError(f"--uri {args.uri}: use tcp://HOST:PORT or unix:///PATH")
    if not 1 <= args.max_clients <= 1024:
        raise EdgevoiceError(f"--max-clients {args.max_clients}: use 1..1024")
    if not 0 < args.max_seconds <= 3600:
        raise EdgevoiceError(f"--max-seconds {args.max_seconds:g}: use more than 0, at most 3600")
    if not 0 < args.idle_seconds <= 3600:
        raise EdgevoiceError(f"--idle-seconds {args.idle_seconds:g}: use more than 0, at most "
                             "3600")
    if args.zeroconf and urlparse(args.uri).scheme != "tcp":
        raise EdgevoiceError("--zeroconf announces a TCP server: give --uri tcp://HOST:PORT")
    if args.zeroconf and importlib.util.find_spec("zeroconf") is None:
        raise EdgevoiceError("--zeroconf needs the zeroconf package: "
                             "pip install 'edgevoice-wyoming[zeroconf]'")


async def serve(args: argparse.Namespace) -> None:
    from wyoming.server import AsyncServer

    from edgevoice_wyoming.server import Service

    settings, registry = load(args)
    logging.basicConfig(
        level=logging.DEBUG if args.debug else getattr(logging, settings.core.log_level.upper()),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    limits = Limits(max_seconds=args.max_seconds, max_clients=args.max_clients,
                    idle_seconds=args.idle_seconds)
    service = Service(settings, registry, args.language or ["en"], limits)
    try:
        server = AsyncServer.from_uri(args.uri)
    except ValueError as exc:
        raise EdgevoiceError(f"--uri {args.uri}: {exc}") from None
    try:
        if args.zeroconf:
            await announce(args.uri, args.zeroconf)
        log.info("listening on %s: model %s", args.uri, service.bundle.describe())
        await server.run(service.handler)
    except OSError as exc:  # the port is taken, the socket's folder is missing, ...
        raise EdgevoiceError(f"--uri {args.uri}: {exc.strerror or exc}") from None
    finally:
        service.close()


async def announce(uri: str, name: str) -> None:
    """mDNS: Home Assistant offers the server under Discovered."""
    from wyoming.zeroconf import HomeAssistantZeroconf

    parts = urlparse(uri)
    host = parts.hostname if parts.hostname not in ("0.0.0.0", "::", "") else None
    assert parts.port is not None
    await HomeAssistantZeroconf(port=parts.port, name=name, host=host).register_server()
    log.info("announced as %r on the local network (zeroconf)", name)


def main(argv: list[str] | None = None) -> int:
    limit_blas_threads()  # before numpy loads, as the daemon does
    args = parser().parse_args(argv)
    try:
        check_args(args)
        asyncio.run(serve(args))
    except EdgevoiceError as exc:
        if args.debug:
            raise
        print(f"edgevoice-wyoming: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
