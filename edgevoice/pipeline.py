"""The daemon's utterances: denoise -> VAD/segmenter -> recognizer -> messages to the sinks.

The pipeline owns segmentation and utterance state; the recognition chain is a `Recognizer`.
With `capture` set, each transcript and the audio the recognizer heard go to `Capture`.
Built once from validated settings (hooks are used only here, at start-up); per-frame work is
plain method calls. Audio arrives as int16 frames at the bundle's rate.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from edgevoice.bundle import Bundle
from edgevoice.capture import Capture
from edgevoice.components import SpeechAudio, SpeechEnd, SpeechStart, StageContext, build
from edgevoice.config import Settings
from edgevoice.messages import Message, ModelInfo, Partial, Transcript, VadEvent
from edgevoice.plugins import Registry
from edgevoice.recognizer import Recognizer, stage_context

log = logging.getLogger("edgevoice.pipeline")


def notify(hook: Any, **kwargs: Any) -> None:
    """Call a notification hook; a plugin's failure is logged, never fatal."""
    try:
        hook(**kwargs)
    except Exception as exc:
        log.error("plugin hook %s failed: %s: %s", hook.name, type(exc).__name__, exc)


@dataclass
class Utterance:
    id: str
    start: float  # stream seconds
    last_partial: str = ""
    last_partial_at: float = 0.0  # stream seconds
    audio: list[np.ndarray] = field(default_factory=list)  # what the recognizer heard (capture)


class Pipeline:
    """Runs frames through the denoiser and the VAD, utterances through the recognizer, and
    hands the messages to the sinks."""

    def __init__(self, settings: Settings, registry: Registry, bundle: Bundle,
                 sinks: list[Any], stream_time: float = 0.0,
                 ctx: StageContext | None = None) -> None:
        self.settings = settings
        self.site_id = settings.site_id
        self.hook = registry.hook
        self.bundle = bundle
        self.model = ModelInfo(bundle.name, bundle.version)
        self.sinks = sinks
        capture = settings.core.capture
        self.capture = Capture(capture, bundle.sample_rate, settings.origin) if capture else None
        ctx = ctx or stage_context(settings, bundle)  # one context for the whole chain
        self.recognizer = Recognizer.open(settings, registry, bundle, ctx)
        self.frame_samples = self.recognizer.frame_samples
        self.vad = build(settings.stages["vad"], registry, ctx)
        self.partial_every = settings.core.partial_interval_ms / 1000.0
        self.utt: Utterance | None = None
        self.stream_time = stream_time  # seconds of audio since the daemon started
        # The VAD counts the audio it was fed; the stream also moved on while muted, while
        # audio was dropped, and before a reload made this VAD: its times + this = stream time.
        self._vad_offset = stream_time
        self.transcripts = 0
        self.failures = 0
        self._last_failure_log = -1e9

    # -- per frame -------------------------------------------------------------------------
    def feed(self, frame: np.ndarray) -> None:
        """One int16 frame of `frame_samples` at the bundle rate."""
        try:
            frame = self.recognizer.clean(frame)
            self.stream_time += len(frame) / self.bundle.sample_rate
            for event in self.vad.process(frame):
                self._handle(event)
        except Exception as exc:  # a failing stage costs this utterance, not the daemon
            self._failed(exc)

    def finish(self) -> None:
        """End of stream: close any open utterance."""
        try:
            for event in self.vad.flush():
                self._handle(event)
        except Exception as exc:
            self._failed(exc)

    def skip(self, seconds: float, reason: str) -> None:
        """Audio that will not be processed (muted, or dropped when processing fell behind):
        the clock moves on and an open utterance ends here rather than being spliced."""
        if self.utt is not None:
            log.info("utterance %s ended early: %s", self.utt.id, reason)
            self.finish()
        self.vad.reset()
        self.stream_time += seconds
        self._vad_offset += seconds

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        utt, self.utt = self.utt, None
        where = f"utterance {utt.id}" if utt else "pipeline"
        for reset in (self.vad.reset, self.recognizer.start):
            try:
                reset()
            except Exception:  # the stage is already broken; its reset may be too
                pass
        if time.monotonic() - self._last_failure_log > 10.0:  # a stage failing on every frame
            self._last_failure_log = time.monotonic()      # must not flood the journal
            log.error("%s lost: a stage failed: %s: %s (%d failure(s) so far)", where,
                      type(exc).__name__, exc, self.failures)
        notify(self.hook.on_error, error=exc, where=where)

    def _handle(self, event: Any) -> None:
        if isinstance(event, SpeechAudio):
            if self.utt is None:
                return
            if self.capture is not None:
                self.utt.audio.append(event.samples)
            if self.recognizer.accept_clean(event.samples):
                self._maybe_partial()
        elif isinstance(event, SpeechStart):
            self._start(event)
        elif isinstance(event, SpeechEnd):
            self._end(event)

    def _maybe_partial(self) -> None:
        utt = self.utt
        if self.partial_every <= 0 or utt is None:
            return
        # Paced by audio time, so a file processed faster than real time gets the same partials.
        if self.stream_time - utt.last_partial_at < self.partial_every:
            return
        utt.last_partial_at = self.stream_time
        text = self.recognizer.partial()
        if text and text != utt.last_partial:
            utt.last_partial = text
            self.publish(Partial(self.site_id, utt.id, text, time.time()))

    # -- utterance boundaries ----------------------------------------------------------------
    def _start(self, event: SpeechStart) -> None:
        self.recognizer.start()
        start = event.start + self._vad_offset
        self.utt = Utterance(uuid.uuid4().hex, start, last_partial_at=self.stream_time)
        message = VadEvent(self.site_id, self.utt.id, "start", start, time=time.time())
        self.publish(message)
        notify(self.hook.on_utterance_start, event=message)

    def _end(self, event: SpeechEnd) -> None:
        utt = self.utt
        if utt is None:
            return
        self.utt = None
        t0 = time.perf_counter()
        result = self.recognizer.finish()
        decode_ms = (time.perf_counter() - t0) * 1000
        end = event.end + self._vad_offset
        stop = VadEvent(self.site_id, utt.id, "stop", utt.start, end, event.reason, time.time())
        self.publish(stop)
        notify(self.hook.on_utterance_end, event=stop)
        if event.too_short:
            log.debug("utterance %s shorter than min_utterance_ms: dropped", utt.id)
            return
        if not result.text:
            log.info("utterance %s: nothing recognised", utt.id)
        transcript = Transcript.create(
            result, offset=utt.start, site_id=self.site_id, utterance_id=utt.id,
            start=utt.start, end=end, end_reason=event.reason, model=self.model,
            time=time.time(), finalize_ms=decode_ms)
        self.transcripts += 1
        self.publish(transcript)
        notify(self.hook.on_transcript, transcript=transcript)
        if self.capture is not None and utt.audio:
            self.capture.add(np.concatenate(utt.audio), transcript)

    def publish(self, message: Message) -> None:
        for sink in self.sinks:
            try:
                sink.publish(message)
            except Exception as exc:  # one failing sink must not stop the others
                log.error("sink %s: could not publish %s: %s", sink.name, message.topic, exc)
                notify(self.hook.on_error, error=exc, where=f"sink {sink.name}")

    def close(self) -> None:
        self.vad.close()
        self.recognizer.close()
        if self.capture is not None:
            self.capture.close()
