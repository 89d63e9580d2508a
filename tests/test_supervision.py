"""Transient faults: a failing audio device is reopened, systemd hears READY and STOPPING,
noise suppression runs in the real pipeline."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from support import REPO, compose, edgevoice, need_fsdd

FLAKY_SOURCE = '''
from dataclasses import dataclass
import numpy as np
from edgevoice import hookimpl
from edgevoice.audio import read_wav
from edgevoice.errors import AudioError

@dataclass(frozen=True)
class Opts:
    path: str = ""

class Flaky:
    """A live device that fails twice mid-stream (as an unplugged USB microphone would)."""
    name, kind, Options, live = "flaky", "source", Opts, True
    def __init__(self, options, ctx):
        x, info = read_wav(options.path)
        self.sample_rate = info.sample_rate
        self.blocks = [x[i:i + 320] for i in range(0, len(x), 320)]
        self.reads = 0
        self.opens = 0
    def open(self):
        self.opens += 1
        if self.opens == 2:
            raise AudioError("source flaky: device still gone")
    def read(self):
        self.reads += 1
        if self.reads == 30:
            raise AudioError("source flaky: device disappeared")
        return self.blocks.pop(0) if self.blocks else None
    def close(self): pass

@hookimpl
def register_sources(register):
    register(Flaky)
'''


def test_failing_live_source_is_reopened(tmp_path: Path, bundle_dir: Path) -> None:
    need_fsdd()
    wav = compose(tmp_path / "a.wav", ["3_george_1", "5_jackson_2"], utterance_gap_s=1.0)
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "flaky.py").write_text(FLAKY_SOURCE)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"bundle": str(bundle_dir), "plugin_dirs": [str(tmp_path / "p")],
                                   "source": {"name": "flaky", "path": str(wav)},
                                   "sinks": [{"name": "stdout"}]}))
    out = edgevoice("run", "--config", str(cfg), timeout=60)
    assert out.returncode == 0, out.stderr
    assert "device disappeared; reopening" in out.stderr
    assert "device still gone; retrying" in out.stderr and "audio source reopened" in out.stderr
    assert "Traceback" not in out.stderr
    assert len(out.stdout.splitlines()) == 1 and json.loads(out.stdout)["text"]


def test_systemd_notify_ready_and_stopping(tmp_path: Path, bundle_dir: Path) -> None:
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"bundle": str(bundle_dir), "source": {"name": "stdin"},
                                   "sinks": [{"name": "stdout"}]}))
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(30)
        proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "-c", str(cfg)],
                                cwd=REPO, stdin=subprocess.PIPE, stderr=subprocess.PIPE,
                                env={**os.environ, "NOTIFY_SOCKET": path,
                                     "WATCHDOG_USEC": "200000"})
        try:
            messages = [sock.recv(4096).decode()]
            assert messages[0].startswith("READY=1")
            messages.append(sock.recv(4096).decode())
            assert messages[1] == "WATCHDOG=1"  # pinged at half the interval while idle
            proc.send_signal(signal.SIGTERM)
            while "STOPPING=1" not in messages[-1]:
                messages.append(sock.recv(4096).decode())
            assert proc.wait(20) == 128 + signal.SIGTERM  # the unit's SuccessExitStatus
        finally:
            proc.kill()


def test_webrtc_noise_suppression_in_the_pipeline(tmp_path: Path, bundle_dir: Path) -> None:
    need_fsdd()
    wav = compose(tmp_path / "a.wav", ["3_george_1", "5_jackson_2"])
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"bundle": str(bundle_dir), "sinks": [{"name": "stdout"}],
                                   "denoise": {"name": "webrtc", "noise_suppression": 2}}))
    out = edgevoice("transcribe", "--config", str(cfg), str(wav))
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["text"] == "three five"
