"""The `hermes` source: `edgevoice run` listening to a satellite's audioFrames over MQTT."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import yaml
from hermes_support import frames, speech, wait_ready
from rhasspyhermes.asr import AsrTextCaptured
from rhasspyhermes.audioserver import AudioFrame
from support import REPO, Recorder, need_fsdd


def test_daemon_hears_a_satellite(tmp_path: Path, broker, bundle_dir) -> None:  # type: ignore[no-untyped-def]
    need_fsdd()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({
        "bundle": str(bundle_dir), "site_id": "sat1",
        "source": {"name": "hermes", "broker": broker.url},
        "sinks": [{"name": "hermes", "broker": broker.url}]}))
    rec = Recorder(broker.port, "#")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice", "run", "-c", str(cfg)],
                            cwd=REPO, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify")})
    try:
        wait_ready(sock)  # the source is subscribed
        sat1, sat2 = AudioFrame.topic(site_id="sat1"), AudioFrame.topic(site_id="sat2")
        for chunk in frames(np.zeros(16000, np.int16)):  # the satellite's idle stream
            rec.client.publish(sat1, chunk)
        rec.client.publish(sat1, b"garbage, not a WAV")
        other = frames(speech(["9_jackson_4"]))
        for k, chunk in enumerate(frames(speech(["7_lucas_3", "2_george_3"]))):
            rec.client.publish(sat1, chunk)
            if k < len(other):
                rec.client.publish(sat2, other[k])  # another satellite: not ours
        got = [AsrTextCaptured.from_dict(p) for p in rec.wait_for("textCaptured", 1)]
        assert [(t.site_id, t.text) for t in got] == [("sat1", "seven two")]
        assert proc.poll() is None  # the bad frame was skipped
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        rec.close()
        sock.close()
    assert proc.returncode == 143, stderr  # stopped by SIGTERM, cleanly
    assert "not a WAV" in stderr
