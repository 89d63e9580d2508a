"""Why the broker cannot be reached is said at once, and again at growing intervals."""

from __future__ import annotations

import logging
import os
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import Broker, Recorder, free_port

from edgevoice.components import StageContext
from edgevoice.messages import VadEvent
from edgevoice.stages.mqtt import ConnectionLog, MqttOptions, MqttSink


def openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True)


def make_certs(d: Path) -> Path:
    """A throwaway CA; a server certificate for `localhost` signed by it; a client certificate
    signed by it; and a self-signed `localhost` certificate signed by nobody."""
    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.crt", "-days", "1",
            "-subj", "/CN=edgevoice test CA", "-addext", "basicConstraints=critical,CA:TRUE",
            "-addext", "keyUsage=critical,keyCertSign,cRLSign", cwd=d)
    (d / "server.ext").write_text("subjectAltName=DNS:localhost\n")
    (d / "client.ext").write_text("extendedKeyUsage=clientAuth\n")
    for who in ("server", "client"):
        openssl("req", *key, "-keyout", f"{who}.key", "-out", f"{who}.csr",
                "-subj", f"/CN={'localhost' if who == 'server' else 'edgevoice'}", cwd=d)
        openssl("x509", "-req", "-in", f"{who}.csr", "-CA", "ca.crt", "-CAkey", "ca.key",
                "-CAcreateserial", "-out", f"{who}.crt", "-days", "1", "-extfile",
                f"{who}.ext", cwd=d)
    openssl("req", "-x509", *key, "-keyout", "self.key", "-out", "self.crt", "-days", "1",
            "-subj", "/CN=localhost", "-addext", "subjectAltName=DNS:localhost", cwd=d)
    return d


class TlsBroker(Broker):
    """Mosquitto with a TLS listener (`port`) that wants a client certificate."""

    def __init__(self, tmp: Path, certs: Path, server: str = "server") -> None:
        super().__init__(tmp)
        self.conf.write_text(
            ("user root\n" if os.geteuid() == 0 else "")  # else it cannot read the keys
            + f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
            f"cafile {certs / 'ca.crt'}\ncertfile {certs / (server + '.crt')}\n"
            f"keyfile {certs / (server + '.key')}\nrequire_certificate true\n")


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    return make_certs(tmp_path_factory.mktemp("certs"))


@pytest.fixture
def tls_broker(tmp_path, certs) -> Iterator[TlsBroker]:  # type: ignore[no-untyped-def]
    b = TlsBroker(tmp_path, certs)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A listener that accepts connections and never says a word."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        yield s.getsockname()[1]


def sink(url: str, tmp: Path, **options) -> MqttSink:  # type: ignore[no-untyped-def]
    return MqttSink(MqttOptions(broker=url, spool_dir=str(tmp / "spool"), connect_timeout=1.0,
                                reconnect_min=0.2, reconnect_max=1.0, **options),
                    StageContext("kitchen", 16000, 160))


def first_warning(caplog, timeout: float = 5.0) -> str:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for r in caplog.records:
            if r.name == "edgevoice.mqtt" and r.levelno >= logging.WARNING:
                return str(r.getMessage())
        time.sleep(0.05)
    pytest.fail("nothing was logged")


# (broker URL, sink options, what the log must say) for each mistake
CASES = {
    "wrong CA": ("mqtts://localhost:{tls}", {"ca_file": "self.crt"},
                 "certificate verify failed: self-signed certificate in certificate chain "
                 "(set ca_file"),
    "self-signed without ca_file": ("mqtts://localhost:{self}", {},
                                    "certificate verify failed: self-signed certificate"),
    "host name mismatch": ("mqtts://127.0.0.1:{tls}", {"ca_file": "ca.crt"},
                           "certificate verify failed: IP address mismatch, certificate is "
                           "not valid for '127.0.0.1'"),
    "mqtt:// to a TLS port": ("mqtt://127.0.0.1:{tls}", {},
                              "the connection was closed before the broker answered"),
    "mqtts:// to a plain port": ("mqtts://localhost:{plain}", {"ca_file": "ca.crt"},
                                 "TLS handshake failed"),
    "wrong port": ("mqtt://127.0.0.1:{free}", {}, "connection refused"),
    "unresolvable host": ("mqtt://no-such-host.invalid:1883", {},
                          "name does not resolve: no-such-host.invalid"),
    "silent listener": ("mqtt://127.0.0.1:{silent}", {},
                        "no MQTT CONNACK within 1 s (is 127.0.0.1:{silent} an MQTT broker"),
    "silent TLS listener": ("mqtts://localhost:{silent}", {"ca_file": "ca.crt", "keepalive": 5},
                            "no answer within 1 s (connect_timeout; a firewall, the wrong host, "
                            "or not a TLS port?)"),
}


@pytest.mark.parametrize("case", CASES)
def test_why_the_broker_cannot_be_reached_is_logged_at_once(tmp_path, certs, tls_broker, broker,
                                                            silent_port, caplog, case) -> None:
    self_signed = None
    if case == "self-signed without ca_file":
        (tmp_path / "self").mkdir()
        self_signed = TlsBroker(tmp_path / "self", certs, server="self")
        self_signed.start()
    ports = {"tls": tls_broker.port, "plain": broker.port, "free": free_port(),
             "silent": silent_port, "self": self_signed.port if self_signed else 0}
    url, options, why = CASES[case]
    options = {k: str(certs / v) if k.endswith("_file") else v for k, v in options.items()}
    s = sink(url.format(**ports), tmp_path, **options)
    caplog.set_level(logging.INFO, "edgevoice.mqtt")
    started = time.monotonic()
    s.open()
    try:
        message = first_warning(caplog)
        assert time.monotonic() - started < 3.5
        assert "mqtt: cannot connect to " in message and why.format(**ports) in message, message
        s.publish(VadEvent("kitchen", "u1", "start", 1.0, time=time.time()))
        time.sleep(2.5)  # several more attempts, each failing for the same reason...
    finally:
        s.close()
        if self_signed is not None:
            self_signed.stop()
    failures = [r.getMessage() for r in caplog.records if "connect to" in r.getMessage()]
    assert len(failures) == 1  # ...are not logged again so soon
    # and the spool's note says why the message is there
    assert f"saved to {s.spool_file}" in caplog.text and why.format(**ports) in caplog.text.split(
        "saved to")[-1]


def test_tls_with_the_right_ca_and_a_client_certificate_delivers(tmp_path, certs, tls_broker
                                                                 ) -> None:
    s = sink(f"mqtts://localhost:{tls_broker.port}", tmp_path, ca_file=str(certs / "ca.crt"),
             cert_file=str(certs / "client.crt"), key_file=str(certs / "client.key"))
    s.open()
    try:
        s.publish(VadEvent("kitchen", "u1", "start", 1.0, time=time.time()))
        assert s.flush(5) == 0
    finally:
        s.close()


def test_a_broker_that_comes_late_is_reported_when_it_does(tmp_path, caplog) -> None:
    port = free_port()
    b = Broker(tmp_path)
    b.port = port
    b.conf.write_text(f"listener {port} 127.0.0.1\nallow_anonymous true\n")
    s = sink(f"mqtt://127.0.0.1:{port}", tmp_path)
    caplog.set_level(logging.INFO, "edgevoice.mqtt")
    s.open()
    try:
        assert "connection refused" in first_warning(caplog)
        b.start()
        rec = Recorder(port, "edgevoice/+/vad")
        s.publish(VadEvent("kitchen", "u1", "start", 1.0, time=time.time()))
        assert rec.wait_for("vad", 1, timeout=10)
        rec.close()
    finally:
        s.close()
        b.stop()
    assert f"mqtt: connected to 127.0.0.1:{port} after " in caplog.text


def test_failures_are_logged_at_growing_intervals_with_their_reason(caplog) -> None:
    """An hour of failed attempts every 30 s: a handful of lines, each with the reason; a new
    reason is said at once; connecting starts over."""
    report = ConnectionLog("broker:1883", first=10.0, longest=600.0)
    caplog.set_level(logging.DEBUG, "edgevoice.mqtt")
    logged = [t for t in range(0, 3600, 30) if report.failed("connection refused", float(t))]
    assert logged == [0, 30, 60, 120, 210, 390, 720, 1320, 1920, 2520, 3120]
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == len(logged) and all("connection refused" in x for x in lines)
    assert lines[0] == "mqtt: cannot connect to broker:1883: connection refused; retrying"
    assert lines[-1] == ("mqtt: still cannot connect to broker:1883 (105 attempts in 52.0 min): "
                         "connection refused; retrying")
    assert report.failed("name does not resolve", 3601.0)  # a new reason: at once
    report.connected(3700.0)
    assert "connected to broker:1883 after 121 failed attempt(s) in 61.7 min" in caplog.text
    assert report.failed("connection refused", 3800.0)  # a new outage: at once
