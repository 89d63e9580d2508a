"""`edgevoice-hermes` as a user runs it: a real Mosquitto, the service as a subprocess, and a
test client doing what Rhasspy's dialogue manager and a satellite do."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import yaml
from hermes_support import frames, speech, wait_ready
from rhasspyhermes.asr import AsrError, AsrStartListening, AsrStopListening, AsrTextCaptured
from rhasspyhermes.audioserver import AudioFrame
from support import REPO, Recorder, need_fsdd

PLUGIN = Path(__file__).resolve().parents[1]


def test_service_over_mqtt(tmp_path: Path, broker, bundle_dir) -> None:  # type: ignore[no-untyped-def]
    need_fsdd()
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"bundle": str(bundle_dir), "site_id": "base",
                                   "sinks": [{"name": "hermes", "broker": broker.url}]}))
    rec = Recorder(broker.port, "#")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(tmp_path / "notify"))
    sock.settimeout(30)
    env = {**os.environ, "NOTIFY_SOCKET": str(tmp_path / "notify"), "PYTHONPATH": os.pathsep.join(
        [str(PLUGIN), str(REPO), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.Popen([sys.executable, "-m", "edgevoice_hermes", "-c", str(cfg),
                             "--site-id", "kitchen"], cwd=REPO, env=env,
                            stderr=subprocess.PIPE, text=True)
    try:
        wait_ready(sock)  # connected and subscribed

        def publish(message) -> None:  # type: ignore[no-untyped-def]
            site = getattr(message, "site_id", "kitchen")
            rec.client.publish(message.topic(site_id=site), message.payload(), qos=1)

        # Rhasspy's dialogue manager after a wake word, then the satellite's stream
        publish(AsrStartListening(site_id="kitchen", session_id="dm-1", stop_on_silence=True))
        for chunk in frames(speech(["7_lucas_3", "2_george_3"])):
            publish(AudioFrame(wav_bytes=chunk))  # site "kitchen", as the satellite sends
        [body] = rec.wait_for("textCaptured", 1)
        text = AsrTextCaptured.from_dict(body)
        assert (text.session_id, text.site_id, text.text) == ("dm-1", "kitchen", "seven two")
        publish(AsrStopListening(site_id="kitchen", session_id="dm-1"))  # as the DM does

        # bad input: a frame that is not a WAV, a session nobody started
        publish(AsrStartListening(site_id="kitchen", session_id="dm-2", stop_on_silence=False))
        rec.client.publish(AudioFrame.topic(site_id="kitchen"), b"not a wav", qos=1)
        publish(AsrStopListening(site_id="kitchen", session_id="ghost"))
        got = [AsrError.from_dict(p) for p in rec.wait_for("asr", 2)]
        assert {(e.session_id, "not a WAV" in e.error) for e in got} == {
            ("dm-2", True), ("ghost", False)}

        # the service is unaffected: the next session works
        publish(AsrStartListening(site_id="kitchen", session_id="dm-3", stop_on_silence=False))
        for chunk in frames(speech(["9_jackson_4"])):
            publish(AudioFrame(wav_bytes=chunk))
        publish(AsrStopListening(site_id="kitchen", session_id="dm-3"))
        later = [AsrTextCaptured.from_dict(p) for p in rec.wait_for("textCaptured", 2)]
        assert [(t.session_id, t.text) for t in later] == [("dm-1", "seven two"),
                                                           ("dm-3", "nine")]
        assert proc.poll() is None
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=20)
        rec.close()
        sock.close()
    assert proc.returncode == 0, stderr
    assert "never started" in stderr and "not a WAV" in stderr  # the log says it too
