"""edgevoice plugin: a `hermes` sink speaking the Hermes MQTT protocol (Rhasspy and friends)."""

from __future__ import annotations

from typing import Any

from edgevoice import hookimpl
from edgevoice.stages.mqtt import MqttSink


class HermesSink(MqttSink):
    """Transcripts on hermes/asr/textCaptured, VAD events on hermes/voiceActivity/..."""

    name = "hermes"

    def messages(self, topic: str, payload: dict[str, Any]) -> list[tuple[str, Any, int]]:
        if topic == "vad" and not self.options.vad_events:
            return []
        mapped = hermes_message(topic, payload)
        return [] if mapped is None else [(mapped[0], mapped[1], self.options.qos)]


def hermes_message(topic: str, p: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
    """edgevoice payload -> (Hermes topic, Hermes payload), or None when Hermes has no peer."""
    site, session = p.get("site_id"), p.get("utterance_id")
    if topic == "transcript":
        tokens = [{"value": w["word"], "confidence": w["confidence"],
                   "rangeStart": 0, "rangeEnd": 0, "time": {"start": w["start"], "end": w["end"]}}
                  for w in p.get("words", [])]
        return "hermes/asr/textCaptured", {
            "text": p["text"], "likelihood": p["confidence"], "seconds": p.get("duration", 0.0),
            "siteId": site, "sessionId": session, "wakewordId": None, "asrTokens": [tokens],
        }
    if topic == "vad":
        kind = "speechStarted" if p.get("event") == "start" else "speechStopped"
        return f"hermes/voiceActivity/{site}/{kind}", {"siteId": site, "sessionId": session}
    return None


@hookimpl
def register_sinks(register) -> None:  # type: ignore[no-untyped-def]
    register(HermesSink)
