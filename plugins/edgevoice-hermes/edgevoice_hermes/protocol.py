"""The Hermes side, in one place: topics, payloads with the protocol's meanings, and the WAV
chunks satellites send as `audioFrame`s. The sink, the ASR service and the source all use it.

Meanings (Rhasspy 2.5, `rhasspyhermes.asr.AsrTextCaptured`): `seconds` is the time the ASR
spent processing, not the audio's length; `likelihood` is 0..1; `asrTokens` is one list of
tokens whose `rangeStart`/`rangeEnd` are character offsets into `text` and whose `time` is
seconds from the start of the utterance.
"""

from __future__ import annotations

import io
import wave
from typing import Any

import numpy as np

from edgevoice.audio import MIN_SAMPLE_RATE
from edgevoice.decoding import DecodeResult
from edgevoice.errors import AudioError

TEXT_CAPTURED = "hermes/asr/textCaptured"
ASR_ERROR = "hermes/error/asr"  # where Rhasspy's services publish and its dialogue manager looks
START_LISTENING = "hermes/asr/startListening"
STOP_LISTENING = "hermes/asr/stopListening"
TOGGLE_ON = "hermes/asr/toggleOn"
TOGGLE_OFF = "hermes/asr/toggleOff"
AUDIO_FRAME = "hermes/audioServer/{site_id}/audioFrame"
SESSION_FRAME = "hermes/audioServer/{site_id}/{session_id}/audioSessionFrame"


def asr_tokens(result: DecodeResult) -> list[list[dict[str, Any]]]:
    """The words as Hermes tokens: character ranges in `result.text`, utterance times."""
    text, cursor, tokens = result.text, 0, []
    for w in result.words:
        at = text.find(w.word, cursor)
        at = at if at >= 0 else min(cursor, len(text))  # a word the text spells otherwise
        end = min(at + len(w.word), len(text))
        tokens.append({"value": w.word, "confidence": round(w.confidence, 3),
                       "rangeStart": at, "rangeEnd": end,
                       "time": {"start": round(w.start, 3), "end": round(w.end, 3)}})
        cursor = end
    return [tokens]


def text_captured(result: DecodeResult, *, site_id: str, session_id: str | None,
                  seconds: float, wakeword_id: str | None = None, lang: str | None = None
                  ) -> dict[str, Any]:
    """`hermes/asr/textCaptured`. A result the decoder rejected (below its
    `reject_threshold`) is sent as empty text: Hermes has no "rejected" flag, and an
    assistant must not act on a guess (Rhasspy answers it with intentNotRecognized)."""
    rejected = result.rejected
    return {"text": "" if rejected else result.text,
            "likelihood": round(result.confidence, 4), "seconds": round(seconds, 4),
            "siteId": site_id, "sessionId": session_id, "wakewordId": wakeword_id,
            "asrTokens": [[]] if rejected else asr_tokens(result), "lang": lang}


def asr_error(error: str, *, site_id: str, session_id: str | None, context: str | None = None
              ) -> dict[str, Any]:
    """`hermes/error/asr` (rhasspyhermes.asr.AsrError)."""
    return {"error": error, "siteId": site_id, "sessionId": session_id, "context": context}


def vad_topic(site_id: str, up: bool) -> str:
    return f"hermes/voiceActivity/{site_id}/{'vadUp' if up else 'vadDown'}"


def decode_wav(data: bytes) -> tuple[np.ndarray, int]:
    """One `audioFrame` payload (a whole small WAV file) -> (mono int16 samples, rate).
    AudioError says what is wrong with it."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        raise AudioError(f"audio frame of {len(data)} bytes is not a WAV (no RIFF/WAVE "
                         "header); Hermes audio frames are WAV files")
    try:
        with wave.open(io.BytesIO(data)) as w:
            rate, channels, width = w.getframerate(), w.getnchannels(), w.getsampwidth()
            raw = w.readframes(w.getnframes())
    except (wave.Error, EOFError) as exc:
        raise AudioError(f"audio frame is a damaged WAV: {exc}") from None
    if width != 2 or channels < 1:
        raise AudioError(f"audio frame is {8 * width}-bit, {channels}-channel; Hermes audio "
                         "is 16-bit PCM (Rhasspy's audio servers send 16 kHz 16-bit mono)")
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(f"audio frame at {rate} Hz, below the {MIN_SAMPLE_RATE} Hz speech "
                         "needs")
    samples = np.frombuffer(raw[: len(raw) - len(raw) % (2 * channels)], "<i2")
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1).astype(np.int16)
    return samples, rate


def encode_wav(samples: np.ndarray, rate: int) -> bytes:
    """Mono int16 samples as a WAV file in memory (tests, satellites written in Python)."""
    out = io.BytesIO()
    with wave.open(out, "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(rate)
        w.writeframes(np.asarray(samples, "<i2").tobytes())
    return out.getvalue()
