"""The ASR service's session contract, driven with Rhasspy's own message classes the way
Rhasspy's dialogue manager drives an ASR service (no broker: `handle` in, replies out)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from edgevoice_hermes.service import HermesAsr
from hermes_support import frames, speech
from rhasspyhermes.asr import (
    AsrError,
    AsrStartListening,
    AsrStopListening,
    AsrTextCaptured,
    AsrToggleOff,
    AsrToggleOn,
    AsrToggleReason,
)
from rhasspyhermes.audioserver import AudioFrame
from support import need_fsdd

from edgevoice.components import build
from edgevoice.config import load_settings
from edgevoice.recognizer import Recognizer, stage_context


@pytest.fixture
def asr(bundle_dir: Path) -> Iterator[HermesAsr]:
    need_fsdd()
    settings, registry = load_settings({"bundle": str(bundle_dir), "sinks": [{"name": "stdout"}]},
                                       "test")
    from edgevoice.bundle import load_bundle

    bundle = load_bundle(str(bundle_dir))
    ctx = stage_context(settings, bundle)
    service = HermesAsr(lambda: Recognizer.open(settings, registry, bundle),
                        lambda: build(settings.stages["vad"], registry, ctx),
                        sample_rate=ctx.sample_rate, frame_samples=ctx.frame_samples)
    yield service
    service.close()


def send(asr: HermesAsr, message: Any) -> list[tuple[str, dict]]:
    """A rhasspyhermes message as the broker delivers it."""
    topic = message.topic(site_id=getattr(message, "site_id", "default"))
    data = message.payload()
    return asr.handle(topic, data.encode() if isinstance(data, str) else data)


def stream(asr: HermesAsr, site: str, names: list[str], lead_s: float = 0.4
           ) -> list[tuple[str, dict]]:
    out = []
    for chunk in frames(speech(names, lead_s=lead_s)):
        out += send(asr, AudioFrame(wav_bytes=chunk)) if site == "default" else \
            asr.handle(AudioFrame.topic(site_id=site), chunk)
    return out


def captured(replies: list[tuple[str, dict]]) -> list[AsrTextCaptured]:
    """Parsed by Rhasspy's own class: what its dialogue manager would see."""
    return [AsrTextCaptured.from_dict(p) for t, p in replies if t == AsrTextCaptured.topic()]


def errors(replies: list[tuple[str, dict]]) -> list[AsrError]:
    return [AsrError.from_dict(p) for t, p in replies if t == AsrError.topic()]


def test_start_frames_stop(asr: HermesAsr) -> None:
    """startListening without stopOnSilence: everything until stopListening is one text,
    with the dialogue manager's sessionId and siteId and the protocol's field meanings."""
    assert send(asr, AsrStartListening(site_id="kitchen", session_id="s-1",
                                       stop_on_silence=False, wakeword_id="porcupine")) == []
    assert stream(asr, "kitchen", ["7_lucas_3", "2_george_3"]) == []  # nothing before stop
    replies = send(asr, AsrStopListening(site_id="kitchen", session_id="s-1"))
    [text] = captured(replies)
    assert (text.session_id, text.site_id, text.wakeword_id) == ("s-1", "kitchen", "porcupine")
    assert text.text == "seven two"
    assert 0 < text.likelihood <= 1
    assert 0 < text.seconds < 2.0  # processing time, far less than the 2.7 s of audio
    tokens = text.asr_tokens[0]
    assert [t.value for t in tokens] == ["seven", "two"]
    assert [(t.range_start, t.range_end) for t in tokens] == [(0, 5), (6, 9)]
    assert all(text.text[t.range_start:t.range_end] == t.value for t in tokens)
    assert 0.3 < tokens[0].time.start < tokens[0].time.end < tokens[1].time.start < 3.0
    assert asr.sessions == {}


def test_stop_on_silence_then_dialogue_stop(asr: HermesAsr) -> None:
    """stopOnSilence: textCaptured comes at the end of speech; the stopListening Rhasspy's
    dialogue manager then sends is expected, not an error."""
    send(asr, AsrStartListening(site_id="hall", session_id="s-2", stop_on_silence=True))
    replies = stream(asr, "hall", ["4_jackson_5", "9_jackson_4"], lead_s=2.0)
    [text] = captured(replies)
    assert (text.session_id, text.site_id, text.text) == ("s-2", "hall", "four nine")
    # Word times count from the utterance (pre-roll included), not from the session, where
    # "four" starts after 2 s of silence.
    assert text.asr_tokens[0][0].time.start < 1.0
    assert send(asr, AsrStopListening(site_id="hall", session_id="s-2")) == []


def test_other_sites_audio_is_ignored(asr: HermesAsr) -> None:
    send(asr, AsrStartListening(site_id="hall", session_id="s-3", stop_on_silence=False))
    assert stream(asr, "garage", ["7_lucas_3"]) == []
    stream(asr, "hall", ["2_george_3"])
    assert stream(asr, "garage", ["9_jackson_4"]) == []
    [text] = captured(send(asr, AsrStopListening(site_id="hall", session_id="s-3")))
    assert text.text == "two"


def test_not_a_wav_ends_the_session_with_an_error(asr: HermesAsr) -> None:
    send(asr, AsrStartListening(site_id="hall", session_id="s-4", stop_on_silence=False))
    [error] = errors(asr.handle("hermes/audioServer/hall/audioFrame", b"\x00\x01" * 500))
    assert (error.session_id, error.site_id) == ("s-4", "hall")
    assert "not a WAV" in error.error
    assert asr.sessions == {}
    assert send(asr, AsrStopListening(site_id="hall", session_id="s-4")) == []  # already ended
    send(asr, AsrStartListening(site_id="hall", session_id="s-5", stop_on_silence=False))
    stream(asr, "hall", ["7_lucas_3"])  # the service goes on
    assert captured(send(asr, AsrStopListening(site_id="hall", session_id="s-5")))[0].text \
        == "seven"


def test_unknown_session(asr: HermesAsr) -> None:
    [error] = errors(send(asr, AsrStopListening(site_id="hall", session_id="nobody")))
    assert error.session_id == "nobody" and "startListening" in error.error
    [error] = errors(asr.handle("hermes/audioServer/hall/nobody/audioSessionFrame",
                                frames(speech(["7_lucas_3"]))[0]))
    assert error.session_id == "nobody"
    assert asr.handle("hermes/asr/startListening", b"{not json") == []


def test_toggle_off_mutes_a_site(asr: HermesAsr) -> None:
    send(asr, AsrStartListening(site_id="hall", session_id="s-6", stop_on_silence=False))
    send(asr, AsrToggleOff(site_id="hall", reason=AsrToggleReason.TTS_SAY))
    stream(asr, "hall", ["7_lucas_3"])  # the assistant's own voice, say
    send(asr, AsrToggleOn(site_id="hall", reason=AsrToggleReason.TTS_SAY))
    stream(asr, "hall", ["2_george_3"])
    [text] = captured(send(asr, AsrStopListening(site_id="hall", session_id="s-6")))
    assert text.text == "two"


def test_session_frames_go_to_their_session(asr: HermesAsr) -> None:
    send(asr, AsrStartListening(site_id="hall", session_id="a", stop_on_silence=False))
    send(asr, AsrStartListening(site_id="hall", session_id="b", stop_on_silence=False))
    for chunk in frames(speech(["9_jackson_4"])):
        asr.handle("hermes/audioServer/hall/b/audioSessionFrame", chunk)
    assert captured(send(asr, AsrStopListening(site_id="hall", session_id="a")))[0].text == ""
    assert captured(send(asr, AsrStopListening(site_id="hall", session_id="b")))[0].text \
        == "nine"
