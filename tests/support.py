"""Test helpers: a real Mosquitto broker, an MQTT recorder, FSDD audio, the CLI."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from edgevoice.audio import read_wav, resample, write_wav

REPO = Path(__file__).resolve().parents[1]
FSDD = (REPO / ".." / "shared" / "data" / "fsdd").resolve()
DEFAULT_BUNDLE = REPO / "edgevoice" / "models" / "digits"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Broker:
    def __init__(self, tmp: Path) -> None:
        self.port = free_port()
        self.conf = tmp / "mosquitto.conf"
        # No cap on what the broker queues for a subscriber: the tests' Recorder may fall
        # behind on a busy machine, and the broker's default (1,000) would drop what it missed.
        self.conf.write_text(f"listener {self.port} 127.0.0.1\nallow_anonymous true\n"
                             "max_queued_messages 0\n")
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"mqtt://127.0.0.1:{self.port}"

    def start(self) -> None:
        self.proc = subprocess.Popen([_mosquitto(), "-c", str(self.conf)],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.terminate()
            self.proc.wait(10)
            self.proc = None


def _mosquitto() -> str:
    for cand in (shutil.which("mosquitto"), "/usr/sbin/mosquitto"):
        if cand and Path(cand).exists():
            return cand
    pytest.fail("mosquitto is not installed: `apt-get install mosquitto` (.ci/run does this)")


class Recorder:
    """Subscribes to a topic filter and keeps every message (topic, decoded JSON)."""

    def __init__(self, port: int, topic: str = "#") -> None:
        import paho.mqtt.client as mqtt

        self.messages: list[tuple[str, dict]] = []
        self._cond = threading.Condition()
        self._subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2)
        c.on_connect = lambda cl, u, f, rc, p: cl.subscribe(topic, qos=1)
        c.on_subscribe = lambda *a: self._subscribed.set()
        c.on_message = self._on_message
        c.connect("127.0.0.1", port)
        c.loop_start()
        self.client = c
        assert self._subscribed.wait(10), "recorder could not subscribe"

    def _on_message(self, client, userdata, msg) -> None:  # type: ignore[no-untyped-def]
        try:
            payload = json.loads(msg.payload)
        except ValueError:
            payload = {"raw": msg.payload.decode("utf-8", "replace")}
        with self._cond:
            self.messages.append((msg.topic, payload))
            self._cond.notify_all()

    def topic(self, suffix: str) -> list[dict]:
        with self._cond:
            return [p for t, p in self.messages if t.endswith("/" + suffix)]

    def wait_for(self, suffix: str, count: int = 1, timeout: float = 20) -> list[dict]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len([1 for t, _ in self.messages if t.endswith("/" + suffix)]) < count:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(left)
        return self.topic(suffix)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def need_fsdd() -> Path:
    if not FSDD.is_dir():
        pytest.skip(f"FSDD recordings not found at {FSDD} (they live in ../shared/data/fsdd)")
    return FSDD


def digit_clip(name: str, rate: int = 16000) -> np.ndarray:
    samples, info = read_wav(need_fsdd() / f"{name}.wav")
    return resample(samples, info.sample_rate, rate)


def compose(path: Path, names: list[str], gap_s: float = 0.25, utterance_gap_s: float = 1.5,
            rate: int = 16000, groups: list[int] | None = None) -> Path:
    """A WAV of FSDD digits: `groups` gives how many digits form each utterance."""
    groups = groups or [len(names)]
    parts = [np.zeros(int(0.5 * rate), np.float32)]
    it = iter(names)
    for n in groups:
        for k in range(n):
            parts.append(digit_clip(next(it), rate))
            if k < n - 1:
                parts.append(np.zeros(int(gap_s * rate), np.float32))
        parts.append(np.zeros(int(utterance_gap_s * rate), np.float32))
    write_wav(path, np.concatenate(parts), rate)
    return path


def edgevoice(*args: str, timeout: float = 120, **kw) -> subprocess.CompletedProcess[str]:
    """Run the edgevoice CLI as a subprocess, as a user would."""
    return subprocess.run([sys.executable, "-m", "edgevoice", *args], capture_output=True,
                          text=True, timeout=timeout, cwd=REPO, **kw)


def run_capturing(tmp: Path, bundle: Path, wav: Path, **capture: object
                  ) -> tuple[list[dict], subprocess.CompletedProcess[str]]:
    """`edgevoice run --input WAV` with `capture` on and the stdout sink: the transcripts it
    printed, and the finished process."""
    import yaml

    cfg = tmp / "capture.yaml"
    cfg.write_text(yaml.safe_dump({"bundle": str(bundle), "site_id": "kitchen",
                                   "sinks": [{"name": "stdout"}], "capture": capture}))
    out = edgevoice("run", "--config", str(cfg), "--input", str(wav))
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()], out


# -- fixtures (imported by the conftest files of tests/ and of each plugin package) --

@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    b = Broker(tmp_path)
    b.start()
    yield b
    b.stop()


@pytest.fixture
def recorder(broker: Broker) -> Iterator[Recorder]:
    r = Recorder(broker.port)
    yield r
    r.close()


@pytest.fixture
def bundle_dir() -> Path:
    """The shipped bundle, or EDGEVOICE_TEST_BUNDLE to run the suite against another one."""
    if os.environ.get("EDGEVOICE_TEST_BUNDLE"):
        return Path(os.environ["EDGEVOICE_TEST_BUNDLE"])
    if not (DEFAULT_BUNDLE / "bundle.yaml").exists():
        pytest.fail("the shipped default bundle edgevoice/models/digits is missing")
    return DEFAULT_BUNDLE



class DyingBatchMaker:
    """Makes ~10 MB batches and is killed outright (as by the OOM killer) on its 4th: the
    batch workers' test of a worker dying half-way through sending."""

    def __init__(self) -> None:
        self.made = 0

    def batch(self, seed: int, size: int):  # noqa: ANN201 (a Batch; imported lazily)
        import os
        import signal

        from edgevoice.training.batches import Batch

        self.made += 1
        if self.made == 4:
            os.kill(os.getpid(), signal.SIGKILL)
        x = np.zeros((size, 4000, 40), np.float32)
        return Batch(x, np.full(size, 4000, np.int32), np.zeros((size, 3), np.int32),
                     np.full(size, 3, np.int32))
