"""MQTT sink: transcripts, partials, VAD events and a retained status, plus cmd/# control.

Messages are published with QoS 1 by default. While the broker is away, paho keeps QoS>0
messages queued (up to `queue_size`) and sends them on reconnect; every message is tracked until
the broker acknowledges it, so `flush` knows exactly what was not delivered.
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from edgevoice.commands import NAMES, CommandError, parse_command
from edgevoice.components import Closeable, StageContext
from edgevoice.errors import SinkError
from edgevoice.messages import Message, Status
from edgevoice.options import opt

log = logging.getLogger("edgevoice.mqtt")

CommandName = Literal["reload", "listen", "hotwords"]


@dataclass(frozen=True)
class MqttOptions:
    broker: str = opt("mqtt://localhost:1883", "mqtt://HOST:PORT, or mqtts:// for TLS")
    topic_prefix: str = opt("edgevoice/{site_id}", "topic prefix; {site_id} is substituted")
    client_id: str | None = opt(None, "MQTT client id; null: edgevoice-<site_id>-<random>")
    qos: int = opt(1, "QoS of transcripts and VAD events", min=0, max=2)
    username: str | None = opt(None, "user name")
    password_env: str | None = opt(None, "environment variable holding the password")
    password_file: str | None = opt(None, "file holding the password (e.g. a systemd credential)")
    ca_file: str | None = opt(None, "CA certificate for TLS; implies TLS")
    cert_file: str | None = opt(None, "client certificate for TLS")
    key_file: str | None = opt(None, "client key for TLS")
    tls_insecure: bool = opt(False, "skip the broker host name check (testing only)")
    keepalive: int = opt(30, "keep-alive, s", min=5, max=3600)
    queue_size: int = opt(1000, "messages kept while the broker is unreachable", min=1)
    reconnect_min: float = opt(0.5, "first reconnect delay, s", min=0.1)
    reconnect_max: float = opt(30.0, "longest reconnect delay, s", min=1.0)
    partials: bool = opt(True, "publish partial results on <prefix>/partial")
    vad_events: bool = opt(True, "publish speech start/stop on <prefix>/vad")
    commands: bool | list[CommandName] = opt(
        True, "commands taken on <prefix>/cmd/<name>: true (reload, listen, hotwords), false "
        "(none), or a list of those names; retained command messages are always ignored")
    spool_dir: str | None = opt("auto", "where messages still undelivered at exit are kept and "
                                "sent at the next start; auto: $STATE_DIRECTORY or "
                                "~/.local/state/edgevoice; null: nowhere")
    spool_max_age: float = opt(3600.0, "spooled messages older than this (s) are not sent: "
                               "a stale voice command must not run hours later", min=0.0)

    def __post_init__(self) -> None:
        problems = []  # every one at once: check-config must not need a run per mistake
        url = urlparse(self.broker)
        try:
            _ = url.port  # raises on a port that is not a number, or out of range
        except ValueError:
            problems.append(f"broker {self.broker!r}: the port is not a number from 1 to 65535")
        if url.scheme not in ("mqtt", "mqtts", "tcp", "ssl") or not url.hostname:
            problems.append(f"broker {self.broker!r} is not mqtt://HOST:PORT or "
                            "mqtts://HOST:PORT")
        if url.username is not None or url.password is not None:
            problems.append("broker: put no user name or password in the URL (they would "
                            "show in logs and process lists): use username and password_env "
                            "or password_file")
        if url.path not in ("", "/") or url.query or url.fragment:
            problems.append(f"broker {self.broker!r}: a broker URL has no path or query")
        problems += topic_problems(self.topic_prefix)
        if self.password_env and self.password_file:
            problems.append("give password_env or password_file, not both")
        if self.password_env and self.password_env not in os.environ:
            problems.append(f"password_env: ${self.password_env} is not set")
        if (self.password_env or self.password_file) and not self.username:
            problems.append("a password needs a username")
        for key in ("ca_file", "cert_file", "key_file"):  # password_file: a credential that
            # exists only inside the service (systemd LoadCredential) is read when the sink starts
            value = getattr(self, key)
            if value is not None and not Path(value).expanduser().is_file():
                problems.append(f"{key} {value}: no such file")
        if problems:
            raise ValueError("; ".join(problems))


def topic_problems(prefix: str) -> list[str]:
    """Why `topic_prefix` cannot be published to (wildcards, empty levels), if it cannot."""
    try:
        topic = prefix.format(site_id="x")
    except (KeyError, IndexError, ValueError):
        return [f"topic_prefix {prefix!r}: only {{site_id}} may appear in braces"]
    problems = []
    if any(c in topic for c in "#+\0"):
        problems.append(f"topic_prefix {prefix!r}: MQTT wildcards (# +) and NUL cannot be "
                        "published to")
    if not topic.strip("/") or "//" in topic.strip("/"):
        problems.append(f"topic_prefix {prefix!r}: has an empty topic level")
    return problems


def parse_broker(url_text: str) -> tuple[str, int, bool]:
    url = urlparse(url_text)
    tls = url.scheme in ("mqtts", "ssl")
    return url.hostname or "localhost", url.port or (8883 if tls else 1883), tls


class MqttSink(Closeable):
    """Publishes to an MQTT broker (QoS 1, reconnects, TLS, credentials); takes commands."""

    name = "mqtt"
    kind = "sink"
    Options = MqttOptions

    def __init__(self, options: MqttOptions, ctx: StageContext) -> None:
        self.options = options
        self.site_id = ctx.site_id
        self.prefix = options.topic_prefix.format(site_id=ctx.site_id).rstrip("/")
        self.host, self.port, self.tls = parse_broker(options.broker)
        self.commands = ctx.commands
        accepted = options.commands
        self.accepted = set(NAMES if accepted is True else () if accepted is False else accepted)
        self.model = getattr(ctx.bundle, "name", None)
        self._password = self._read_password()
        # mid -> (topic, JSON, QoS) of each message until the broker acknowledges it
        self._pending: dict[int, tuple[str, str, int]] = {}
        self._acked_early: set[int] = set()
        self._replaying: Path | None = None  # spool file being replayed by this run
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self.dropped = 0
        self.delivered = 0
        self._client: Any = None

    def _read_password(self) -> str | None:
        o = self.options
        if o.password_env:
            if o.password_env not in os.environ:
                raise SinkError(f"sink mqtt: password_env: ${o.password_env} is not set")
            return os.environ[o.password_env]
        if o.password_file:
            try:
                return Path(o.password_file).expanduser().read_text().strip()
            except OSError as exc:
                raise SinkError(f"sink mqtt: password_file {o.password_file}: {exc.strerror}"
                                ) from None
        return None

    def _status(self, state: str) -> str:
        return json.dumps(Status(self.site_id, state, self.model, time.time()).to_payload())

    def open(self) -> None:
        import paho.mqtt.client as mqtt

        o = self.options
        client_id = o.client_id or f"edgevoice-{self.site_id}-{uuid.uuid4().hex[:6]}"
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        if o.username:
            c.username_pw_set(o.username, self._password)
        if self.tls or o.ca_file:
            import ssl

            c.tls_set(ca_certs=o.ca_file, certfile=o.cert_file, keyfile=o.key_file,
                      cert_reqs=ssl.CERT_REQUIRED)
            c.tls_insecure_set(o.tls_insecure)
        c.will_set(f"{self.prefix}/status", self._status("offline"), qos=1, retain=True)
        c.max_queued_messages_set(o.queue_size)
        c.reconnect_delay_set(o.reconnect_min, o.reconnect_max)  # type: ignore[arg-type]
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self._client = c
        self._queue_full = mqtt.MQTT_ERR_QUEUE_SIZE
        c.connect_async(self.host, self.port, keepalive=o.keepalive)
        c.loop_start()  # paho's thread connects, and reconnects with backoff, on its own
        self._resend_spool()

    @property
    def spool_file(self) -> Path | None:
        where = self.options.spool_dir
        if where is None:
            return None
        if where == "auto":
            state = os.environ.get("STATE_DIRECTORY", "").split(":")[0]
            base = Path(state) if state else Path.home() / ".local" / "state" / "edgevoice"
        else:
            base = Path(where).expanduser()
        name = f"mqtt-{self.host}-{self.port}-{self.prefix.replace('/', '_')}.jsonl"
        return base / name

    def _resend_spool(self) -> None:
        """Queue what an earlier run could not deliver; it goes out once connected. The file
        stays (renamed) until this run has either delivered or re-spooled its messages."""
        path = self.spool_file
        if path is None:
            return
        replaying = path.with_suffix(".replaying")
        try:
            lines = replaying.read_text(encoding="utf-8").splitlines() \
                if replaying.exists() else []  # left by a run that was killed
            if path.exists():
                lines += path.read_text(encoding="utf-8").splitlines()
                replaying.write_text("\n".join(lines) + "\n", encoding="utf-8")
                path.unlink()
        except OSError as exc:
            log.error("mqtt: cannot read the spool %s: %s", path, exc)
            return
        if not lines:
            return
        self._replaying = replaying
        sent = stale = 0
        for line in lines:
            try:
                topic, data, qos = json.loads(line)
                payload = json.loads(data)
            except (ValueError, TypeError):
                log.error("mqtt: skipping a damaged line in the spool %s", replaying)
                continue
            if time.time() - float(payload.get("time", 0)) > self.options.spool_max_age:
                stale += 1
                continue
            payload["replayed"] = True
            self._publish_tracked(topic, json.dumps(payload, ensure_ascii=False), qos)
            sent += 1
        log.info("mqtt: %d message(s) from an earlier run queued for delivery", sent)
        if stale:
            log.warning("mqtt: %d spooled message(s) older than spool_max_age (%g s) were "
                        "discarded", stale, self.options.spool_max_age)

    def _spool_pending(self) -> None:
        """Save what the broker has not acknowledged, for the next run to send."""
        with self._lock:
            pending = list(self._pending.values())
            self._pending.clear()
        path = self.spool_file
        if self._replaying is not None:  # what it held is now delivered, or in `pending`
            self._replaying.unlink(missing_ok=True)
        if not pending or path is None:
            return
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            with open(path, "a", encoding="utf-8") as f:
                for item in pending:
                    f.write(json.dumps(item) + "\n")
        except OSError as exc:
            log.error("mqtt: %d undelivered message(s) lost: cannot write the spool %s: %s",
                      len(pending), path, exc)
            return
        log.warning("mqtt: %d undelivered message(s) saved to %s; they are sent when edgevoice "
                    "next starts with this broker", len(pending), path)

    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any = None) -> None:
        if reason.is_failure:
            log.warning("mqtt: broker %s:%s refused the connection: %s", self.host, self.port,
                        reason)
            return
        log.info("mqtt: connected to %s:%s", self.host, self.port)
        self._connected.set()
        client.publish(f"{self.prefix}/status", self._status("online"), qos=1, retain=True)
        if self.accepted and self.commands is not None:
            client.subscribe(f"{self.prefix}/cmd/#", qos=1)

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any = None) -> None:
        if self._connected.is_set():
            log.warning("mqtt: lost the broker %s:%s (%s); reconnecting, %d message(s) queued",
                        self.host, self.port, reason, len(self._pending))
        self._connected.clear()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any,
                    props: Any = None) -> None:
        with self._lock:
            if self._pending.pop(mid, None) is not None:
                self.delivered += 1
            else:  # acknowledged before publish() returned and recorded it
                self._acked_early.add(mid)

    def _on_message(self, client: Any, userdata: Any, msg: Any) -> None:
        """paho's thread: parse and queue; the daemon applies commands between frames."""
        name = msg.topic[len(self.prefix) + len("/cmd/"):]
        if msg.retain:  # left on the broker by anyone, earlier: a command is for now
            log.warning("mqtt: ignored a retained cmd/%s (commands are not retained; clear it "
                        "with an empty retained message)", name[:60])
            return
        if name in NAMES and name not in self.accepted:
            log.warning("mqtt: cmd/%s is not in this config's `commands` list: ignored", name)
            return
        try:
            command = parse_command(name, msg.payload)
        except CommandError as exc:
            log.error("mqtt: cmd/%s: rejected: %s", name[:60], exc)
            return
        if self.commands is not None:
            self.commands.put(command)

    def messages(self, message: Message) -> list[tuple[str, Any, int]]:
        """(MQTT topic, JSON body, QoS) to send for one edgevoice message; plugins that speak
        another protocol over MQTT override this and keep the delivery accounting."""
        o = self.options
        topic = message.topic
        if topic == "partial" and not o.partials or topic == "vad" and not o.vad_events:
            return []
        return [(f"{self.prefix}/{topic}", message.to_payload(),
                 0 if topic == "partial" else o.qos)]

    def publish(self, message: Message) -> None:
        for full, body, qos in self.messages(message):
            self._publish_tracked(full, json.dumps(body, ensure_ascii=False), qos)

    def _publish_tracked(self, full: str, data: str, qos: int) -> None:
        # Never hold our lock across paho's publish: paho calls _on_publish with its own
        # lock held, and the two orders would deadlock.
        info = self._client.publish(full, data, qos=qos)
        if info.rc == self._queue_full:
            with self._lock:
                self.dropped += 1
            log.error("mqtt: queue full (%d messages while the broker is away): dropped a "
                      "message for %s (%d dropped so far); raise queue_size",
                      self.options.queue_size, full, self.dropped)
        elif qos > 0:
            with self._lock:
                if info.mid in self._acked_early:
                    self._acked_early.discard(info.mid)
                    self.delivered += 1
                else:
                    self._pending[info.mid] = (full, data, qos)

    @property
    def undelivered(self) -> int:
        with self._lock:
            return len(self._pending)

    def flush(self, timeout: float) -> int:
        """Wait until the broker has acknowledged everything; return what is still pending."""
        deadline = time.monotonic() + timeout
        while self.undelivered and time.monotonic() < deadline:
            time.sleep(0.01)
        return self.undelivered + self.dropped

    def close(self) -> None:
        c = self._client
        if c is None:
            return
        self._spool_pending()
        if self._connected.is_set():
            info = c.publish(f"{self.prefix}/status", self._status("offline"), qos=1, retain=True)
            try:
                info.wait_for_publish(timeout=2.0)
            except (RuntimeError, ValueError):
                pass
        self._connected.clear()
        c.disconnect()
        c.loop_stop()
        self._client = None
