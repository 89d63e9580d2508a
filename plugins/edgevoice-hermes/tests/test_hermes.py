"""The hermes plugin, installed as a package, turns edgevoice transcripts into Hermes messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from edgevoice_hermes import hermes_message
from support import REPO, Recorder, compose, need_fsdd


def test_payload_mapping() -> None:
    topic, body = hermes_message("transcript", {
        "site_id": "hall", "utterance_id": "u1", "text": "one two", "confidence": 0.9,
        "duration": 1.5, "words": [{"word": "one", "start": 0.1, "end": 0.4, "confidence": 0.95}]})
    assert topic == "hermes/asr/textCaptured"
    assert body["text"] == "one two" and body["siteId"] == "hall" and body["sessionId"] == "u1"
    assert body["likelihood"] == 0.9 and body["seconds"] == 1.5
    assert body["asrTokens"][0][0]["value"] == "one"
    assert hermes_message("vad", {"site_id": "hall", "event": "stop"})[0] == \
        "hermes/voiceActivity/hall/speechStopped"
    assert hermes_message("partial", {"text": "x"}) is None


def test_daemon_publishes_hermes(tmp_path: Path, broker, bundle_dir) -> None:  # type: ignore[no-untyped-def]
    need_fsdd()
    wav = compose(tmp_path / "a.wav", ["3_george_1", "5_jackson_2"])
    rec = Recorder(broker.port, "hermes/#")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"bundle": str(bundle_dir), "site_id": "hall",
                                   "sinks": [{"name": "hermes", "broker": broker.url}]}))
    out = subprocess.run([sys.executable, "-m", "edgevoice", "run", "-c", str(cfg), "--input",
                          str(wav)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    captured = rec.wait_for("textCaptured", 1)
    rec.close()
    assert len(captured) == 1 and captured[0]["siteId"] == "hall" and captured[0]["text"]
    assert json.dumps(captured[0])
