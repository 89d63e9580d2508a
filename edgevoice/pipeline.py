"""The stage chain: denoise -> vad/segmenter -> frontend -> acoustic model -> decoder -> sinks.

Built once from validated settings (hooks are used only here, at start-up); per-frame work is
plain method calls. Audio arrives as int16 frames at the bundle's rate.
"""

from __future__ import annotations

import logging
import time
import uuid
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from edgevoice.bundle import Bundle
from edgevoice.components import SpeechAudio, SpeechEnd, SpeechStart, StageContext
from edgevoice.config import Choice, Settings
from edgevoice.decoding import DecoderContext
from edgevoice.errors import BundleError, EdgevoiceError, PluginError
from edgevoice.options import validate
from edgevoice.plugins import Registry

log = logging.getLogger("edgevoice.pipeline")

PAYLOAD_VERSION = 1


def notify(hook: Any, **kwargs: Any) -> None:
    """Call a notification hook; a plugin's failure is logged, never fatal."""
    try:
        hook(**kwargs)
    except Exception as exc:
        log.error("plugin hook %s failed: %s: %s", hook.name, type(exc).__name__, exc)


def decoder_choice(settings: Settings, registry: Registry, bundle: Bundle) -> Choice:
    """The configured decoder, with the bundle's decoder defaults (e.g. `vocabulary: lm`)
    under whatever the YAML sets itself, when the bundle recommends this same decoder."""
    choice = settings.stages["decoder"]
    defaults = {k: v for k, v in bundle.decoder.items() if k != "name"}
    if bundle.decoder.get("name") != choice.name or not defaults:
        return choice
    own = {k: v for k, v in settings.core.decoder.items() if k != "name"}
    errors: list[str] = []
    cls = registry.get("decoder", choice.name, choice.path)
    options = validate(cls.Options, {**defaults, **own}, choice.path, errors)
    if errors or options is None:
        raise BundleError(f"{bundle.path}: decoder defaults do not fit: {'; '.join(errors)}")
    return replace(choice, options=options)


def build(choice: Choice, registry: Registry, ctx: Any) -> Any:
    """Instantiate a chosen component; its own errors name it."""
    cls = registry.get(choice.kind, choice.name, choice.path)
    try:
        return cls(choice.options, ctx)
    except EdgevoiceError:
        raise
    except Exception as exc:
        raise PluginError(f"{choice.path} ({choice.kind} {choice.name!r}): failed to start: "
                          f"{type(exc).__name__}: {exc}") from exc


def warn_denoise_mismatch(choice: Choice, bundle: Bundle) -> None:
    """A model trained behind one denoiser hears different audio behind another: say so."""
    trained = bundle.raw.get("denoise")
    if not isinstance(trained, dict):
        return  # a bundle from before the build recorded its denoiser
    used = {"name": choice.name, **{k: v for k, v in vars(choice.options).items()}}
    if trained.get("name") != choice.name or any(
            used.get(k) != v for k, v in trained.items() if k != "name"):
        want = ", ".join(f"{k}: {v}" for k, v in trained.items())
        log.warning("%s: the model %r was trained behind denoise {%s}; this config uses %r, so "
                    "it hears audio unlike its training (set %s to match)", choice.path,
                    bundle.raw.get("name"), want, choice.name, choice.path)


@dataclass
class Utterance:
    id: str
    start: float  # stream seconds
    last_partial: str = ""
    last_partial_at: float = 0.0  # stream seconds


class Pipeline:
    """Runs frames through the stages and hands payloads to the sinks."""

    def __init__(self, settings: Settings, registry: Registry, bundle: Bundle,
                 sinks: list[Any], stream_time: float = 0.0) -> None:
        self.settings = settings
        self.hook = registry.hook
        self.bundle = bundle
        self.sinks = sinks
        core = settings.core
        self.frame_samples = bundle.sample_rate * core.audio.frame_ms // 1000
        ctx = StageContext(core.site_id, bundle.sample_rate, self.frame_samples, bundle)
        st = settings.stages
        warn_denoise_mismatch(st["denoise"], bundle)
        self.denoise = build(st["denoise"], registry, ctx)
        self.vad = build(st["vad"], registry, ctx)
        self.frontend = build(st["frontend"], registry, ctx)
        self.model = build(st["model"], registry, ctx)
        self.frame_seconds = float(self.model.frame_seconds)
        dctx = DecoderContext.create(bundle.tokens, bundle.blank, self.frame_seconds,
                                     bundle.lm_file)
        self.decoder = build(decoder_choice(settings, registry, bundle), registry, dctx)
        self.partial_every = core.partial_interval_ms / 1000.0
        self.utt: Utterance | None = None
        self.stream_time = stream_time  # seconds of audio since the daemon started
        self.transcripts = 0
        self.failures = 0
        self._last_failure_log = -1e9

    # -- per frame -------------------------------------------------------------------------
    def feed(self, frame: np.ndarray) -> None:
        """One int16 frame of `frame_samples` at the bundle rate."""
        try:
            frame = self.denoise.process(frame)
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

    def _failed(self, exc: Exception) -> None:
        self.failures += 1
        utt, self.utt = self.utt, None
        where = f"utterance {utt.id}" if utt else "pipeline"
        for stage in (self.vad, self.frontend, self.model, self.decoder):
            try:
                stage.reset()
            except Exception:  # the stage is already broken; its reset may be too
                pass
        if time.monotonic() - self._last_failure_log > 10.0:  # a stage failing on every frame
            self._last_failure_log = time.monotonic()      # must not flood the journal
            log.error("%s lost: a stage failed: %s: %s (%d failure(s) so far)", where,
                      type(exc).__name__, exc, self.failures)
        notify(self.hook.on_error, error=exc, where=where)

    def _handle(self, event: Any) -> None:
        if isinstance(event, SpeechAudio):
            if self.utt is not None:
                self._advance(event.samples)
        elif isinstance(event, SpeechStart):
            self._start(event)
        elif isinstance(event, SpeechEnd):
            self._end(event)

    def _advance(self, samples: np.ndarray) -> None:
        logprobs = self.model.process(self.frontend.process(samples))
        if len(logprobs):
            self.decoder.process(logprobs)
            self._maybe_partial()

    def _maybe_partial(self) -> None:
        utt = self.utt
        if self.partial_every <= 0 or utt is None:
            return
        # Paced by audio time, so a file processed faster than real time gets the same partials.
        if self.stream_time - utt.last_partial_at < self.partial_every:
            return
        utt.last_partial_at = self.stream_time
        text = self.decoder.partial()
        if text and text != utt.last_partial:
            utt.last_partial = text
            self._publish("partial", {**self._base(utt), "text": text})

    # -- utterance boundaries ----------------------------------------------------------------
    def _start(self, event: SpeechStart) -> None:
        self.frontend.reset()
        self.model.reset()
        self.decoder.reset()
        self.utt = Utterance(uuid.uuid4().hex, event.start, last_partial_at=self.stream_time)
        payload = {**self._base(self.utt), "event": "start", "start": round(event.start, 3)}
        self._publish("vad", payload)
        notify(self.hook.on_utterance_start, event=payload)

    def _end(self, event: SpeechEnd) -> None:
        utt = self.utt
        if utt is None:
            return
        self.utt = None
        t0 = time.perf_counter()
        tail = self.model.flush()
        if len(tail):
            self.decoder.process(tail)
        result = self.decoder.finalize()
        decode_ms = (time.perf_counter() - t0) * 1000
        end_info = {**self._base(utt), "event": "stop", "start": round(utt.start, 3),
                    "end": round(event.end, 3), "reason": event.reason}
        self._publish("vad", end_info)
        notify(self.hook.on_utterance_end, event=end_info)
        if event.too_short:
            log.debug("utterance %s shorter than min_utterance_ms: dropped", utt.id)
            return
        if not result.text:
            log.info("utterance %s: nothing recognised", utt.id)
        decoded = result.to_dict()
        for word in decoded.get("words", []):  # utterance-relative -> stream seconds
            word["start"] = round(utt.start + word["start"], 3)
            word["end"] = round(utt.start + word["end"], 3)
        payload = {
            **self._base(utt), **decoded,
            "start": round(utt.start, 3), "end": round(event.end, 3),
            "duration": round(event.end - utt.start, 3), "end_reason": event.reason,
            "timings": {"finalize_ms": round(decode_ms, 2)},
            "model": {"name": self.bundle.name, "version": self.bundle.version},
            "time": time.time(),
        }
        self.transcripts += 1
        self._publish("transcript", payload)
        notify(self.hook.on_transcript, transcript=payload)

    def _base(self, utt: Utterance) -> dict[str, Any]:
        return {"version": PAYLOAD_VERSION, "site_id": self.settings.site_id,
                "utterance_id": utt.id}

    def _publish(self, topic: str, payload: dict[str, Any]) -> None:
        for sink in self.sinks:
            try:
                sink.publish(topic, payload)
            except Exception as exc:  # one failing sink must not stop the others
                log.error("sink %s: could not publish %s: %s", sink.name, topic, exc)
                notify(self.hook.on_error, error=exc, where=f"sink {sink.name}")

    def close(self) -> None:
        for stage in (self.denoise, self.vad, self.frontend, self.model):
            stage.close()
