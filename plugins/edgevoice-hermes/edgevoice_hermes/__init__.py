"""edgevoice plugin: a `hermes` sink speaking the Hermes MQTT protocol (Rhasspy and friends)."""

from __future__ import annotations

from typing import Any

from edgevoice import hookimpl
from edgevoice.messages import Message, Transcript, VadEvent
from edgevoice.stages.mqtt import MqttSink


class HermesSink(MqttSink):
    """Transcripts on hermes/asr/textCaptured, VAD events on hermes/voiceActivity/..."""

    name = "hermes"

    def messages(self, message: Message) -> list[tuple[str, Any, int]]:
        if message.topic == "vad" and not self.options.vad_events:
            return []
        mapped = hermes_message(message)
        return [] if mapped is None else [(mapped[0], mapped[1], self.options.qos)]


def hermes_message(message: Message) -> tuple[str, dict[str, Any]] | None:
    """edgevoice message -> (Hermes topic, Hermes payload), or None when Hermes has no peer."""
    if isinstance(message, Transcript):
        tokens = [{"value": w.word, "confidence": round(w.confidence, 3),
                   "rangeStart": 0, "rangeEnd": 0,
                   "time": {"start": round(w.start, 3), "end": round(w.end, 3)}}
                  for w in message.words]
        return "hermes/asr/textCaptured", {
            "text": message.text, "likelihood": round(message.confidence, 4),
            "seconds": round(message.duration, 3), "siteId": message.site_id,
            "sessionId": message.utterance_id, "wakewordId": None, "asrTokens": [tokens],
        }
    if isinstance(message, VadEvent):
        kind = "speechStarted" if message.event == "start" else "speechStopped"
        return (f"hermes/voiceActivity/{message.site_id}/{kind}",
                {"siteId": message.site_id, "sessionId": message.utterance_id})
    return None


@hookimpl
def register_sinks(register) -> None:  # type: ignore[no-untyped-def]
    register(HermesSink)
