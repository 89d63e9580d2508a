"""The `hermes` source: a satellite's `hermes/audioServer/<siteId>/audioFrame` stream as the
daemon's microphone, so `edgevoice run` listens to a Rhasspy satellite as it would to a local
microphone (its own VAD, transcripts to its sinks). For Rhasspy's sessions, run the service.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.audio import StreamResampler, to_int16
from edgevoice.components import Closeable, StageContext
from edgevoice.errors import AudioError, EdgevoiceError
from edgevoice.options import opt
from edgevoice.stages.mqtt import MqttOptions, parse_broker
from edgevoice_hermes import protocol

log = logging.getLogger("edgevoice.hermes")

CONNECT_WAIT = 5.0  # s open() waits for the subscription, so "ready" means audio is heard
WAIT = 0.25  # s: read() returns (empty) this often without audio, so the daemon sees it alive


@dataclass(frozen=True)
class HermesSourceOptions:
    site_id: str | None = opt(None, "the satellite whose audioFrames to take; null: the "
                              "config's site_id")
    broker: str = opt("mqtt://localhost:1883", "mqtt://HOST:PORT, or mqtts:// for TLS")
    username: str | None = opt(None, "user name")
    password_env: str | None = opt(None, "environment variable holding the password")
    password_file: str | None = opt(None, "file holding the password")
    ca_file: str | None = opt(None, "CA certificate for TLS; implies TLS")
    sample_rate: int = opt(16000, "Hz handed to the daemon; frames at another rate are "
                           "resampled to it", min=8000)
    queue_seconds: float = opt(5.0, "audio held while processing catches up, s; older "
                               "frames are dropped", min=0.1, max=600.0)

    def __post_init__(self) -> None:
        # the connection is checked exactly as the mqtt sink checks it
        MqttOptions(broker=self.broker, username=self.username, password_env=self.password_env,
                    password_file=self.password_file, ca_file=self.ca_file)


class HermesSource(Closeable):
    """A satellite's audio from MQTT (16-bit PCM WAV chunks, any rate)."""

    name = "hermes"
    kind = "source"
    Options = HermesSourceOptions
    live = True

    def __init__(self, options: HermesSourceOptions, ctx: StageContext) -> None:
        self.options = options
        self.site_id = options.site_id or ctx.site_id
        self.sample_rate = options.sample_rate
        self.topic = protocol.AUDIO_FRAME.format(site_id=self.site_id)
        self._frames: queue.Queue[np.ndarray] = queue.Queue(
            maxsize=max(1, int(options.queue_seconds * 50)))  # ~20 ms or longer per frame
        self._resampler: StreamResampler | None = None
        self._rate = 0
        self._bad = 0
        self._client: Any = None

    def open(self) -> None:
        import paho.mqtt.client as mqtt

        o = self.options
        host, port, tls = parse_broker(o.broker)
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        if o.username:
            c.username_pw_set(o.username, self._password())
        if tls or o.ca_file:
            c.tls_set(ca_certs=o.ca_file)
        subscribed = threading.Event()
        c.on_connect = lambda cl, *_: cl.subscribe(self.topic, qos=0)
        c.on_subscribe = lambda *_: subscribed.set()
        c.on_message = self._on_message
        c.connect_async(host, port)
        c.loop_start()  # paho's thread connects and reconnects on its own
        self._client = c
        if subscribed.wait(CONNECT_WAIT):
            log.info("source hermes: taking %s from %s:%s", self.topic, host, port)
        else:
            log.warning("source hermes: broker %s:%s not reachable yet; taking %s once it is",
                        host, port, self.topic)

    def _password(self) -> str | None:
        o = self.options
        if o.password_env:
            return os.environ.get(o.password_env)
        if o.password_file:
            try:
                return Path(o.password_file).expanduser().read_text().strip()
            except OSError as exc:
                raise AudioError(f"source hermes: password_file {o.password_file}: "
                                 f"{exc.strerror}") from None
        return None

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        """paho's thread: decode, resample to `sample_rate`, queue."""
        try:
            samples, rate = protocol.decode_wav(bytes(msg.payload))
        except EdgevoiceError as exc:
            self._bad += 1
            if self._bad in (1, 10, 100) or self._bad % 1000 == 0:
                log.error("source hermes: %s: %s (%d bad frame(s) skipped)", msg.topic, exc,
                          self._bad)
            return
        if rate != self._rate:
            self._rate, self._resampler = rate, StreamResampler(rate, self.sample_rate)
        assert self._resampler is not None
        block = to_int16(self._resampler.process(samples))
        try:
            self._frames.put_nowait(block)
        except queue.Full:  # processing fell behind: the oldest audio goes
            try:
                self._frames.get_nowait()
            except queue.Empty:
                pass
            self._frames.put_nowait(block)

    def read(self) -> np.ndarray | None:
        """The next frame's samples; an empty block when none came within WAIT seconds."""
        try:
            return self._frames.get(timeout=WAIT)
        except queue.Empty:
            return np.zeros(0, np.int16)

    def close(self) -> None:
        if self._client is not None:
            self._client.disconnect()
            self._client.loop_stop()
            self._client = None
