"""`edgevoice-hermes`: the Rhasspy ASR service (service.py) on an MQTT broker.

It reads the daemon's YAML for the recognition chain (bundle, denoise, vad, frontend, model,
decoder) and takes its connection (broker, credentials, TLS) from the config's `hermes` sink
entry when there is one, so both programs are configured in one place. Messages are parsed and
queued on paho's thread and handled, one at a time, on the main thread.
"""

from __future__ import annotations

import argparse
import logging
import queue
import signal
import sys
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from edgevoice.errors import ConfigError, EdgevoiceError
from edgevoice.startup import limit_blas_threads
from edgevoice_hermes.sink import HermesSink

log = logging.getLogger("edgevoice.hermes")

CONNECT_WAIT = 5.0  # s to wait for the broker before saying READY anyway (paho keeps trying)


class HermesLink(HermesSink):
    """The service's connection: the hermes sink's (reconnects, TLS, credentials, delivery
    accounting), subscribed to the service's topics."""

    def __init__(self, options: Any, ctx: Any, topics: list[str]) -> None:
        # A textCaptured is an answer for now: never spooled and replayed at a later start.
        super().__init__(replace(options, spool_dir=None), ctx)
        self.topics = topics
        self.inbox: queue.SimpleQueue[tuple[str, bytes]] = queue.SimpleQueue()
        self.subscribed = threading.Event()

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any = None) -> None:
        super()._on_connect(client, userdata, flags, reason, props)
        if not reason.is_failure:
            client.on_subscribe = lambda *_: self.subscribed.set()
            client.subscribe([(t, 0 if "audio" in t else 1) for t in self.topics])

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        if msg.retain:  # a startListening left on the broker is not a request for now
            return
        self.inbox.put((msg.topic, bytes(msg.payload)))

    def send(self, topic: str, body: dict[str, Any]) -> None:
        self.send_json(topic, body, self.options.qos)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="edgevoice-hermes", description="Rhasspy 2.5 ASR service: "
                                "hermes/asr/startListening sessions over satellites' audio.")
    p.add_argument("--config", "-c", metavar="PATH", help="edgevoice YAML (default: "
                   "/etc/edgevoice/edgevoice.yaml if present, else built-in defaults)")
    p.add_argument("--broker", metavar="mqtt://HOST:PORT",
                   help="broker (default: the config's hermes sink, else mqtt://localhost:1883)")
    p.add_argument("--site-id", action="append", metavar="ID",
                   help="serve only this site (repeatable; default: every site)")
    p.add_argument("--debug", action="store_true", help="debug logs and tracebacks")
    return p


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    from edgevoice.bundle import load_bundle
    from edgevoice.components import build
    from edgevoice.config import load_raw, load_settings
    from edgevoice.daemon import sd_notify
    from edgevoice.recognizer import Recognizer, stage_context
    from edgevoice_hermes.service import HermesAsr

    raw, origin = load_raw(args.config)
    settings, registry = load_settings(raw, origin)
    logging.basicConfig(level=logging.DEBUG if args.debug else settings.core.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
                        stream=sys.stderr)
    models = settings.core.models_dir
    bundle = load_bundle(settings.core.bundle, Path(models) if models else None)
    options = next((c.options for c in settings.sinks if c.name == HermesSink.name),
                   HermesSink.Options())
    if args.broker:
        try:
            options = replace(options, broker=args.broker)
        except ValueError as exc:
            raise ConfigError([f"--broker: {exc}"], "command line") from None
    ctx = stage_context(settings, bundle)
    asr = HermesAsr(lambda: Recognizer.open(settings, registry, bundle),
                    lambda: build(settings.stages["vad"], registry, ctx),
                    sample_rate=ctx.sample_rate, frame_samples=ctx.frame_samples,
                    site_ids=tuple(args.site_id or ()))
    asr.warm()
    link = HermesLink(options, ctx, asr.topics())
    link.open()
    if not link.subscribed.wait(CONNECT_WAIT):  # ready means requests are heard
        log.warning("hermes: broker %s not reachable yet; serving once it is", options.broker)
    sd_notify("READY=1\nSTATUS=serving hermes/asr")
    log.info("hermes: ASR service for %s on %s (model %s)",
             ", ".join(args.site_id) if args.site_id else "every site", options.broker,
             bundle.describe())
    try:
        while not stop.is_set():
            try:
                topic, payload = link.inbox.get(timeout=0.25)
            except queue.Empty:
                continue
            for out_topic, body in asr.handle(topic, payload):
                link.send(out_topic, body)
    finally:
        sd_notify("STOPPING=1")
        asr.close()
        link.flush(5.0)
        link.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    limit_blas_threads()
    args = _parser().parse_args(argv)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        return run(args, stop)
    except EdgevoiceError as exc:
        if args.debug:
            raise
        print(f"edgevoice-hermes: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
