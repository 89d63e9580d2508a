"""The messages edgevoice publishes: transcripts, partials, VAD events, status, whether it is
listening, and periodic health statistics.

Sinks and `on_*` hooks receive these frozen types; `to_payload()` is the JSON every sink writes
(MQTT, stdout, files) and `edgevoice transcribe` prints. Rounding and the shift of word times
from utterance to stream (or file) seconds happen here, once.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar, Literal

from edgevoice.decoding import DecodeResult, Word

PAYLOAD_VERSION = 1

Topic = Literal["transcript", "partial", "vad", "status", "listening", "stats"]


def seconds(value: float) -> float:
    """Times in payloads: milliseconds are enough, and keep the JSON short."""
    return round(float(value), 3)


@dataclass(frozen=True)
class ModelInfo:
    name: str
    version: str

    def to_payload(self) -> dict[str, Any]:
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class VadEvent:
    """Speech started (`event` "start") or stopped ("stop") in an utterance."""

    topic: ClassVar[Topic] = "vad"
    site_id: str
    utterance_id: str
    event: Literal["start", "stop"]
    start: float  # stream seconds, pre-roll included
    end: float | None = None  # stream seconds where speech ended ("stop" only)
    reason: str | None = None  # "silence", "max_length", "end_of_stream", ... ("stop" only)
    time: float = 0.0  # wall clock (Unix seconds) when the event was made

    def to_payload(self) -> dict[str, Any]:
        p: dict[str, Any] = {"version": PAYLOAD_VERSION, "site_id": self.site_id,
                             "utterance_id": self.utterance_id, "event": self.event,
                             "start": seconds(self.start)}
        if self.end is not None:
            p["end"] = seconds(self.end)
        if self.reason is not None:
            p["reason"] = self.reason
        p["time"] = self.time
        return p


@dataclass(frozen=True)
class Partial:
    """The best text so far of an utterance still being spoken."""

    topic: ClassVar[Topic] = "partial"
    site_id: str
    utterance_id: str
    text: str
    time: float = 0.0

    def to_payload(self) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, "site_id": self.site_id,
                "utterance_id": self.utterance_id, "text": self.text, "time": self.time}


@dataclass(frozen=True)
class Transcript:
    """The final result of one utterance (the daemon) or one file (`edgevoice transcribe`).

    `result` keeps the decoder's utterance-relative word times; `words` are in stream (or
    file) seconds, made by `Transcript.create`.
    """

    topic: ClassVar[Topic] = "transcript"
    site_id: str
    utterance_id: str
    result: DecodeResult
    words: tuple[Word, ...]
    start: float  # stream (file) seconds
    end: float
    end_reason: str
    model: ModelInfo
    time: float  # wall clock (Unix seconds)
    finalize_ms: float | None = None
    file: str | None = None  # `transcribe`: the file, its original format, and the speed
    converted_from: str | None = None
    rtf: float | None = None

    @classmethod
    def create(cls, result: DecodeResult, *, offset: float, clamp: tuple[float, float] | None
               = None, **fields: Any) -> Transcript:
        """A transcript whose word times are the decoder's plus `offset`, kept within `clamp`
        (a file's own span: its framing edges are not the file's)."""
        words = []
        for w in result.words:
            start, end = w.start + offset, w.end + offset
            if clamp is not None:
                start = min(max(start, clamp[0]), clamp[1])
                end = min(max(end, clamp[0]), clamp[1])
            words.append(Word(w.word, start, end, w.confidence))
        return cls(result=result, words=tuple(words), **fields)

    @property
    def text(self) -> str:
        return self.result.text

    @property
    def confidence(self) -> float:
        return self.result.confidence

    @property
    def rejected(self) -> bool:
        return self.result.rejected

    @property
    def duration(self) -> float:
        return self.end - self.start

    def to_payload(self) -> dict[str, Any]:
        p: dict[str, Any] = {"version": PAYLOAD_VERSION}
        if self.file is not None:
            p["file"] = self.file
        p.update({"site_id": self.site_id, "utterance_id": self.utterance_id,
                  **self.result.to_dict()})
        p["words"] = [{"word": w.word, "start": seconds(w.start), "end": seconds(w.end),
                       "confidence": round(w.confidence, 3)} for w in self.words]
        p.update({"start": seconds(self.start), "end": seconds(self.end),
                  "duration": seconds(self.duration), "end_reason": self.end_reason})
        if self.finalize_ms is not None:
            p["timings"] = {"finalize_ms": round(self.finalize_ms, 2)}
        if self.converted_from is not None:
            p["converted_from"] = self.converted_from
        if self.rtf is not None:
            p["rtf"] = round(self.rtf, 5)
        p["model"] = self.model.to_payload()
        p["time"] = self.time
        return p


@dataclass(frozen=True)
class Status:
    """The daemon's retained state ("online", "offline")."""

    topic: ClassVar[Topic] = "status"
    site_id: str
    state: str
    model: str | None
    time: float = field(default=0.0)

    def to_payload(self) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, "state": self.state, "site_id": self.site_id,
                "model": self.model, "time": self.time}


@dataclass(frozen=True)
class Listening:
    """Whether the daemon transcribes (`cmd/listen`): sent at start and at every change."""

    topic: ClassVar[Topic] = "listening"
    site_id: str
    on: bool
    time: float = 0.0

    def to_payload(self) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, "site_id": self.site_id,
                "state": "on" if self.on else "off", "time": self.time}


@dataclass(frozen=True)
class Stats:
    """The daemon's health, made every `stats_interval` s on the processing thread. Counts
    are totals since start; `rtf` and `audio_seconds` cover the last `interval` only."""

    topic: ClassVar[Topic] = "stats"
    site_id: str
    interval: float  # s of wall clock this message covers
    audio_seconds: float  # audio processed in the interval (not while muted)
    rtf: float | None  # processing thread's CPU s per s of audio in the interval; None: no audio
    queue_seconds: float  # audio waiting between capture and processing, now
    dropped_seconds: float  # audio lost because processing fell behind, since start
    utterances: int  # transcripts made, since start
    rejected: int  # of which rejected by the decoder's confidence threshold
    listening: bool
    uptime: float  # s since the daemon started
    model: ModelInfo
    time: float = 0.0

    def to_payload(self) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, "site_id": self.site_id,
                "interval": seconds(self.interval), "audio_seconds": seconds(self.audio_seconds),
                "rtf": None if self.rtf is None else round(self.rtf, 5),
                "queue_seconds": seconds(self.queue_seconds),
                "dropped_seconds": seconds(self.dropped_seconds),
                "utterances": self.utterances, "rejected": self.rejected,
                "listening": self.listening, "uptime": seconds(self.uptime),
                "model": self.model.to_payload(), "time": self.time}


Message = VadEvent | Partial | Transcript | Status | Listening | Stats
