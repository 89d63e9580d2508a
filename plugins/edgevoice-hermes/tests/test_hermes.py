"""The hermes sink: the daemon's transcripts and VAD events as Hermes messages, read back with
Rhasspy's own message classes."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml
from edgevoice_hermes.sink import hermes_message
from hermes_support import rhasspyhermes  # noqa: F401 (skips without rhasspy-hermes)
from rhasspyhermes.asr import AsrTextCaptured
from support import REPO, Recorder, compose, need_fsdd

from edgevoice.decoding import DecodeResult, Word
from edgevoice.messages import ModelInfo, Partial, Transcript, VadEvent


def test_payload_mapping() -> None:
    words = (Word("one", 0.1, 0.4, 0.95), Word("twenty", 0.5, 0.9, 0.85))
    result = DecodeResult("one twenty", 0.9, words)
    transcript = Transcript.create(
        result, offset=2.0, site_id="hall", utterance_id="u1", start=2.0, end=3.5,
        end_reason="silence", model=ModelInfo("digits", "1.0"), time=0.0, finalize_ms=12.0)
    topic, body = hermes_message(transcript)
    assert topic == AsrTextCaptured.topic()
    text = AsrTextCaptured.from_dict(body)
    assert (text.text, text.site_id, text.session_id) == ("one twenty", "hall", None)
    assert text.likelihood == 0.9
    assert text.seconds == 0.012  # processing time, not the 1.5 s of audio
    tokens = text.asr_tokens[0]
    assert [(t.value, t.range_start, t.range_end) for t in tokens] == [
        ("one", 0, 3), ("twenty", 4, 10)]
    assert (tokens[1].time.start, tokens[1].time.end) == (0.5, 0.9)  # from the utterance
    start = VadEvent("hall", "u1", "start", 2.0)
    stop = VadEvent("hall", "u1", "stop", 2.0, 3.5, "silence")
    assert hermes_message(start) == ("hermes/voiceActivity/hall/vadUp",
                                     {"siteId": "hall", "signalMs": 2000})
    assert hermes_message(stop) == ("hermes/voiceActivity/hall/vadDown",
                                    {"siteId": "hall", "signalMs": 3500})
    assert hermes_message(Partial("hall", "u1", "x")) is None


def test_rejected_result_is_empty_text() -> None:
    result = DecodeResult("one", 0.1, (Word("one", 0.1, 0.4, 0.1),), rejected=True)
    transcript = Transcript.create(
        result, offset=0.0, site_id="hall", utterance_id="u1", start=0.0, end=1.0,
        end_reason="silence", model=ModelInfo("digits", "1.0"), time=0.0)
    text = AsrTextCaptured.from_dict(hermes_message(transcript)[1])
    assert text.text == "" and text.asr_tokens == [[]]


def test_daemon_publishes_hermes(tmp_path: Path, broker, bundle_dir) -> None:  # type: ignore[no-untyped-def]
    need_fsdd()
    wav = compose(tmp_path / "a.wav", ["7_lucas_3", "2_george_3"])
    rec = Recorder(broker.port, "hermes/#")
    cfg = tmp_path / "c.yaml"
    cfg.write_text(yaml.safe_dump({"bundle": str(bundle_dir), "site_id": "hall",
                                   "sinks": [{"name": "hermes", "broker": broker.url}]}))
    out = subprocess.run([sys.executable, "-m", "edgevoice", "run", "-c", str(cfg), "--input",
                          str(wav)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    captured = rec.wait_for("textCaptured", 1)
    rec.close()
    assert len(rec.topic("vadUp")) == 1 and len(rec.topic("vadDown")) == 1
    [text] = [AsrTextCaptured.from_dict(p) for p in captured]
    assert text.site_id == "hall" and text.text == "seven two"
    assert 0 <= text.seconds < 1.0
