"""MQTT sink: transcripts, partials, VAD events; retained status, listening state and stats;
cmd/# control; optionally Home Assistant discovery (edgevoice.stages.homeassistant).

Messages are published with QoS 1 by default. While the broker is away, paho keeps QoS>0
messages queued (up to `queue_size`) and sends them on reconnect; every message is tracked until
the broker acknowledges it, so `flush` knows exactly what was not delivered, and what is left at
exit goes to the spool (`edgevoice.stages.spool`). States (status, listening, stats) are
retained and never spooled: a stale one sent at the next start would overwrite a newer one.
Why the broker cannot be reached is logged at the first failed attempt and then at growing
intervals.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import threading
import time
import uuid
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlparse

from edgevoice.commands import NAMES, CommandError, parse_command
from edgevoice.components import Closeable, StageContext
from edgevoice.errors import SinkError
from edgevoice.messages import Message, Status
from edgevoice.options import opt
from edgevoice.stages.homeassistant import discovery_configs
from edgevoice.stages.spool import Spool, Spooled, duration

log = logging.getLogger("edgevoice.mqtt")

CommandName = Literal["reload", "listen", "hotwords"]
STATES = ("listening", "stats")  # retained, never spooled; "status" is the sink's own


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
    connect_timeout: float = opt(10.0, "s to wait for the broker at each attempt (TCP, TLS, "
                                 "its MQTT CONNACK) before giving up on that attempt", min=0.1)
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
    stats_interval: float = opt(60.0, "s between health stats, retained on <prefix>/stats; "
                                "0: none", min=0.0)
    homeassistant: bool = opt(False, "announce this device to Home Assistant (MQTT discovery): "
                              "a last-transcript sensor and a listening switch")
    discovery_prefix: str = opt("homeassistant", "Home Assistant's MQTT discovery prefix")

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
        problems += topic_problems(self.discovery_prefix, "discovery_prefix", fields=False)
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


def topic_problems(prefix: str, key: str = "topic_prefix", fields: bool = True) -> list[str]:
    """Why the prefix `key` cannot be published to (wildcards, empty levels), if it cannot;
    `fields`: it may hold {site_id}."""
    try:
        topic = prefix.format(site_id="x") if fields else prefix
    except (KeyError, IndexError, ValueError):
        return [f"{key} {prefix!r}: only {{site_id}} may appear in braces"]
    problems = []
    if any(c in topic for c in "#+\0"):
        problems.append(f"{key} {prefix!r}: MQTT wildcards (# +) and NUL cannot be "
                        "published to")
    if not topic.strip("/") or "//" in topic.strip("/"):
        problems.append(f"{key} {prefix!r}: has an empty topic level")
    return problems


def parse_broker(url_text: str) -> tuple[str, int, bool]:
    url = urlparse(url_text)
    tls = url.scheme in ("mqtts", "ssl")
    return url.hostname or "localhost", url.port or (8883 if tls else 1883), tls


class ConnectionLog:
    """Failed connection attempts, logged so that an outage of days neither floods the journal
    nor goes quiet: the first at once, then at growing intervals (`first` s, doubling up to
    `longest`) and whenever the reason changes, always with the reason."""

    def __init__(self, where: str, first: float = 10.0, longest: float = 600.0) -> None:
        self.where, self.first, self.longest = where, first, longest
        self.failures = 0
        self.reason = ""
        self._since = self._next = 0.0
        self._interval = first

    def failed(self, reason: str, now: float) -> bool:
        """One more failed attempt (`now`: monotonic s); whether it was logged."""
        self.failures += 1
        if self.failures == 1:
            self._since = now
        due = self.failures == 1 or reason != self.reason or now >= self._next
        self.reason = reason
        if not due:
            log.debug("mqtt: cannot connect to %s: %s", self.where, reason)
            return False
        if self.failures == 1:
            log.warning("mqtt: cannot connect to %s: %s; retrying", self.where, reason)
        else:
            log.warning("mqtt: still cannot connect to %s (%d attempts in %s): %s; retrying",
                        self.where, self.failures, duration(now - self._since), reason)
        self._next = now + self._interval
        self._interval = min(self._interval * 2, self.longest)
        return True

    def connected(self, now: float) -> None:
        if self.failures:
            log.info("mqtt: connected to %s after %d failed attempt(s) in %s", self.where,
                     self.failures, duration(now - self._since))
        else:
            log.info("mqtt: connected to %s", self.where)
        self.failures = 0
        self._interval = self.first


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
        self.stats_interval = options.stats_interval  # the daemon makes Stats this often
        self._discovery = discovery_configs(
            discovery_prefix=options.discovery_prefix.rstrip("/"), prefix=self.prefix,
            site_id=self.site_id, model=self.model, listen_switch="listen" in self.accepted
            and self.commands is not None) if options.homeassistant else []
        self._password = self._read_password()
        self._pending: dict[int, Spooled] = {}  # by mid, until the broker acknowledges it
        self._acked_early: set[int] = set()
        self._spool: Spool | None = None
        self._backlog: deque[Spooled] = deque()  # from the spool, not yet handed to paho
        self._replays: set[int] = set()  # mids of spooled messages not yet acknowledged
        self._replaying = False  # the spool's .replaying copy is still needed
        # at most this many messages in paho's queue come from the spool: live ones need room
        self._window = max(1, options.queue_size // 2)
        self._closing = False
        self._lock = threading.Lock()
        self._connected = threading.Event()
        self._connection_log = ConnectionLog(f"{self.host}:{self.port}")
        self._attempt = 0  # connection attempts so far
        self._attempt_failed = False  # the current attempt's failure is already counted
        self._report_lock = threading.Lock()
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
        c = self._new_client(client_id)
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
        c.connect_timeout = o.connect_timeout  # TCP and TLS; the CONNACK is watched by us
        c.on_connect = self._on_connect
        c.on_disconnect = self._on_disconnect
        c.on_publish = self._on_publish
        c.on_message = self._on_message
        self._client = c
        self._queue_full = mqtt.MQTT_ERR_QUEUE_SIZE
        self._take_spool()
        c.connect_async(self.host, self.port, keepalive=o.keepalive)
        c.loop_start()  # paho's thread connects, and reconnects with backoff, on its own

    def _new_client(self, client_id: str) -> Any:
        """paho's client, made to say why each connection attempt failed: its loop swallows
        the error, and waits `keepalive` s for a TLS handshake or a CONNACK that may never
        come."""
        import paho.mqtt.client as mqtt

        sink = self

        class Client(mqtt.Client):
            def reconnect(self) -> mqtt.MQTTErrorCode:
                attempt = sink._attempt_started()
                watch = threading.Timer(sink.options.connect_timeout, sink._overdue,
                                        (attempt, self))
                watch.daemon = True
                watch.start()
                try:
                    return super().reconnect()
                except OSError as exc:
                    watch.cancel()
                    sink._failed(sink._why(exc), attempt)
                    raise

        return Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)

    # -- why the broker cannot be reached --------------------------------------------------
    def _attempt_started(self) -> int:
        with self._report_lock:
            self._attempt += 1
            self._attempt_failed = False
            return self._attempt

    def _failed(self, reason: str, attempt: int | None = None) -> bool:
        """Count the failure of the current attempt once (paho's thread, or the CONNACK
        watch); whether it was counted now."""
        with self._report_lock:
            if self._closing or self._attempt_failed or attempt not in (None, self._attempt):
                return False
            self._attempt_failed = True
            self._connection_log.failed(reason, time.monotonic())
            return True

    def _why(self, exc: OSError) -> str:
        """What a failed connection attempt means, and where to look."""
        import ssl

        where = f"{self.host}:{self.port}"
        if isinstance(exc, ssl.SSLCertVerificationError):
            hint = ("the broker's certificate is for another name: use that name in `broker`"
                    if "mismatch" in str(exc.verify_message) else
                    "set ca_file to the CA that signed the broker's certificate")
            return f"TLS: certificate verify failed: {exc.verify_message} ({hint})"
        if isinstance(exc, socket.gaierror):
            return f"name does not resolve: {self.host} ({exc.strerror})"
        if isinstance(exc, ConnectionRefusedError):
            return "connection refused (is the broker running, and on this port?)"
        if self.tls and isinstance(exc, ssl.SSLError | ConnectionResetError | TimeoutError):
            # the TCP connection stood: the TLS handshake failed
            return (f"TLS handshake failed: {exc.strerror or exc} (is {where} a TLS port? "
                    "a plain MQTT port takes mqtt://)")
        if isinstance(exc, TimeoutError):
            return (f"no answer within {self.options.connect_timeout:g} s (connect_timeout; "
                    "a firewall, or the wrong host?)")
        return str(exc.strerror or exc)

    def _overdue(self, attempt: int, client: Any) -> None:
        """`connect_timeout` s into an attempt and no CONNACK: say so now. A connection that
        stands is closed so that paho tries again; a TLS handshake cannot be cut short."""
        if self._connected.is_set():
            return
        where = f"{self.host}:{self.port}"
        sock = client.socket()
        if sock is None:
            why = (f"no answer within {self.options.connect_timeout:g} s (connect_timeout; a "
                   f"firewall, the wrong host{', or not a TLS port' if self.tls else ''}?)")
        else:
            why = (f"no MQTT CONNACK within {self.options.connect_timeout:g} s (is {where} an "
                   f"MQTT broker{'' if self.tls else '; a TLS port takes mqtts://'}?)")
        if self._failed(why, attempt) and sock is not None:
            try:  # the plain socket call: an SSLSocket's own shutdown would race paho's reads
                socket.socket.shutdown(sock, socket.SHUT_RDWR)
            except (OSError, TypeError):
                pass

    # -- the spool ---------------------------------------------------------------------------
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

    def _take_spool(self) -> None:
        """What earlier runs could not deliver: sent once connected, a window at a time."""
        path = self.spool_file
        if path is None:
            return
        self._spool = Spool(path)
        try:
            items = self._spool.take(self.options.spool_max_age)
        except OSError as exc:
            log.error("mqtt: cannot read the spool %s: %s", path, exc)
            return
        if items:
            self._backlog.extend(items)
            self._replaying = True
            log.info("mqtt: %d message(s) from an earlier run are sent once connected",
                     len(items))

    def _feed(self) -> None:
        """paho's thread (connected, or a message acknowledged): hand spooled messages to paho
        while fewer than `_window` are outstanding, so they never fill its queue."""
        while True:
            with self._lock:
                if self._closing or not self._connected.is_set() or not self._backlog \
                        or len(self._pending) >= self._window:
                    finished = self._replaying and not self._backlog and not self._replays \
                        and not self._closing
                    break
                item = self._backlog.popleft()
            body = json.loads(item.payload)
            body["replayed"] = True
            if not self._publish_tracked(Spooled(item.topic, json.dumps(body, ensure_ascii=False),
                                                 item.qos, item.time), replay=True):
                with self._lock:
                    self._backlog.appendleft(item)
                return
        if finished and self._spool is not None:
            self._replaying = False
            self._spool.done()

    def _spool_pending(self) -> None:
        """Save what the broker has not acknowledged, for the next run to send."""
        with self._lock:
            items = sorted([*self._pending.values(), *self._backlog], key=lambda i: i.time)
            self._pending.clear()
            self._backlog.clear()
        if not items:
            if self._spool is not None:
                self._spool.done()
            return
        unreachable = ("" if self._connected.is_set() or not self._connection_log.failures
                       else f" (the broker: {self._connection_log.reason})")
        if self._spool is None:
            log.error("mqtt: %d undelivered message(s) lost: spool_dir is null%s", len(items),
                      unreachable)
            return
        try:
            self._spool.save(items)
        except OSError as exc:  # the .replaying copy stays: the next run sends what it holds
            log.error("mqtt: %d undelivered message(s) lost: cannot write the spool %s: %s%s",
                      len(items), self._spool.path, exc, unreachable)
            return
        self._spool.done()
        log.warning("mqtt: %d undelivered message(s) saved to %s; they are sent when edgevoice "
                    "next starts with this broker%s", len(items), self._spool.path, unreachable)

    # -- paho's callbacks ------------------------------------------------------------------
    def _on_connect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                    props: Any = None) -> None:
        if reason.is_failure:
            self._failed(f"the broker refused the connection: {reason}")
            return
        with self._report_lock:
            self._connection_log.connected(time.monotonic())
        self._connected.set()
        client.publish(f"{self.prefix}/status", self._status("online"), qos=1, retain=True)
        for topic, config in self._discovery:  # again at every connection: see homeassistant.py
            client.publish(topic, config, qos=1, retain=True)
        if self.accepted and self.commands is not None:
            client.subscribe(f"{self.prefix}/cmd/#", qos=1)
        self._feed()

    def _on_disconnect(self, client: Any, userdata: Any, flags: Any, reason: Any,
                       props: Any = None) -> None:
        if self._connected.is_set():
            log.warning("mqtt: lost the broker %s:%s (%s); reconnecting, %d message(s) queued",
                        self.host, self.port, reason, self.undelivered)
        else:
            hint = "" if self.tls else "; a TLS port takes mqtts://"
            self._failed(f"the connection was closed before the broker answered ({reason}{hint})")
        self._connected.clear()

    def _on_publish(self, client: Any, userdata: Any, mid: int, reason: Any,
                    props: Any = None) -> None:
        with self._lock:
            if self._pending.pop(mid, None) is not None:
                self.delivered += 1
                self._replays.discard(mid)
            else:  # acknowledged before publish() returned and recorded it
                self._acked_early.add(mid)
        self._feed()

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

    # -- publishing ----------------------------------------------------------------------------
    def messages(self, message: Message) -> list[tuple[str, Any, int]]:
        """(MQTT topic, JSON body, QoS) to send for one edgevoice message; plugins that speak
        another protocol over MQTT override this and keep the delivery accounting."""
        o = self.options
        topic = message.topic
        if topic == "partial" and not o.partials or topic == "vad" and not o.vad_events \
                or topic == "stats" and not o.stats_interval:
            return []
        return [(f"{self.prefix}/{topic}", message.to_payload(),
                 0 if topic == "partial" else o.qos)]

    def publish(self, message: Message) -> None:
        for full, body, qos in self.messages(message):
            if message.topic in STATES:
                self._send_state(full, body)
            else:
                self.send_json(full, body, qos)

    def _send_state(self, topic: str, body: Any) -> None:
        """A state, retained; queued by paho while the broker is away, never spooled."""
        info = self._client.publish(topic, json.dumps(body, ensure_ascii=False), qos=1,
                                    retain=True)
        if info.rc == self._queue_full:
            log.debug("mqtt: queue full: %s not sent", topic)

    def send_json(self, topic: str, body: Any, qos: int) -> None:
        """Publish one JSON body on a full topic, tracked until acknowledged and spooled if it
        is not (for plugins that speak another protocol over the same connection)."""
        item = Spooled(topic, json.dumps(body, ensure_ascii=False), qos, time.time())
        if not self._publish_tracked(item):
            with self._lock:
                self.dropped += 1
            log.error("mqtt: queue full (%d messages while the broker is away): dropped a "
                      "message for %s (%d dropped so far); raise queue_size",
                      self.options.queue_size, topic, self.dropped)

    def _publish_tracked(self, item: Spooled, replay: bool = False) -> bool:
        """Hand a message to paho and track it until acknowledged; False: paho's queue is full.
        Never hold our lock across paho's publish: paho calls _on_publish with its own lock
        held, and the two orders would deadlock."""
        info = self._client.publish(item.topic, item.payload, qos=item.qos)
        if info.rc == self._queue_full:
            return False
        if item.qos > 0:
            with self._lock:
                if info.mid in self._acked_early:
                    self._acked_early.discard(info.mid)
                    self.delivered += 1
                else:
                    self._pending[info.mid] = item
                    if replay:
                        self._replays.add(info.mid)
        return True

    @property
    def undelivered(self) -> int:
        with self._lock:
            return len(self._pending) + len(self._backlog)

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
        with self._lock:
            self._closing = True
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
