"""The hermes plugin, installed as a package, turns edgevoice transcripts into Hermes messages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from edgevoice_hermes import hermes_message
from support import REPO, Recorder, compose, need_fsdd

from edgevoice.decoding import DecodeResult, Word
from edgevoice.messages import ModelInfo, Partial, Transcript, VadEvent


def test_payload_mapping() -> None:
    words = (Word("one", 0.1, 0.4, 0.95), Word("two", 0.5, 0.9, 0.85))
    result = DecodeResult("one two", 0.9, words)
    transcript = Transcript.create(
        result, offset=2.0, site_id="hall", utterance_id="u1", start=2.0, end=3.5,
        end_reason="silence", model=ModelInfo("digits", "1.0"), time=0.0)
    topic, body = hermes_message(transcript)
    assert topic == "hermes/asr/textCaptured"
    assert body["text"] == "one two" and body["siteId"] == "hall" and body["sessionId"] == "u1"
    assert body["likelihood"] == 0.9 and body["seconds"] == 1.5
    assert body["asrTokens"][0][0]["value"] == "one"
    assert body["asrTokens"][0][1]["time"] == {"start": 2.5, "end": 2.9}
    stop = VadEvent("hall", "u1", "stop", 2.0, 3.5, "silence")
    assert hermes_message(stop)[0] == "hermes/voiceActivity/hall/speechStopped"
    assert hermes_message(Partial("hall", "u1", "x")) is None


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
