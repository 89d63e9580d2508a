"""The `hermes` sink: what the daemon hears, published as Hermes messages.

The daemon cuts utterances with its own VAD, outside any Rhasspy dialogue session, so its
messages carry `sessionId: null`; to be Rhasspy's ASR inside its sessions, run the service
(`edgevoice-hermes`, see service.py).
"""

from __future__ import annotations

from typing import Any

from edgevoice.messages import Message, Transcript, VadEvent
from edgevoice.stages.mqtt import MqttSink
from edgevoice_hermes import protocol


class HermesSink(MqttSink):
    """Transcripts on hermes/asr/textCaptured, speech start/stop on hermes/voiceActivity/..."""

    name = "hermes"

    def messages(self, message: Message) -> list[tuple[str, Any, int]]:
        if message.topic == "vad" and not self.options.vad_events:
            return []
        mapped = hermes_message(message)
        return [] if mapped is None else [(mapped[0], mapped[1], self.options.qos)]


def hermes_message(message: Message) -> tuple[str, dict[str, Any]] | None:
    """edgevoice message -> (Hermes topic, Hermes payload), or None when Hermes has no peer."""
    if isinstance(message, Transcript):
        # Recognition runs while the person speaks: what is left after the end of speech
        # (finalize_ms) is the processing time a client waits for.
        seconds = (message.finalize_ms or 0.0) / 1000.0
        return protocol.TEXT_CAPTURED, protocol.text_captured(
            message.result, site_id=message.site_id, session_id=None, seconds=seconds)
    if isinstance(message, VadEvent):
        up = message.event == "start"
        at = message.start if up or message.end is None else message.end
        return (protocol.vad_topic(message.site_id, up),
                {"siteId": message.site_id, "signalMs": int(round(at * 1000))})
    return None
