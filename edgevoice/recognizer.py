"""The recognition chain, in one place: denoise -> frontend -> acoustic model -> decoder.

A `Recognizer` is opened once from validated settings, the plugin registry and a bundle, and
turns one stream of int16 samples at the bundle's rate into text: `start()`, `accept(samples)`,
`partial()`, `finish() -> DecodeResult`. The daemon's pipeline (which denoises before its VAD),
`edgevoice transcribe` and network servers (one recognizer per client) all use it.
"""

from __future__ import annotations

import logging
from dataclasses import replace
from typing import Any

import numpy as np

from edgevoice.audio import Framer
from edgevoice.bundle import Bundle
from edgevoice.commands import CommandQueue
from edgevoice.components import StageContext, build
from edgevoice.config import Choice, Settings
from edgevoice.contracts import SupportsHotwords
from edgevoice.decoding import DecoderContext, DecodeResult
from edgevoice.errors import BundleError
from edgevoice.options import validate
from edgevoice.plugins import Registry

log = logging.getLogger("edgevoice.recognizer")


def stage_context(settings: Settings, bundle: Bundle, commands: CommandQueue | None = None
                  ) -> StageContext:
    """What every component of a run is built with: the site, the bundle and its frame."""
    core = settings.core
    frame = bundle.sample_rate * core.audio.frame_ms // 1000
    return StageContext(core.site_id, bundle.sample_rate, frame, bundle, commands)


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


class Recognizer:
    """One stream of int16 samples at `sample_rate` in, text out. Not thread-safe: one per
    stream (a client, a file, the daemon's microphone)."""

    def __init__(self, bundle: Bundle, ctx: StageContext, denoise: Any, frontend: Any,
                 model: Any, decoder: Any) -> None:
        self.bundle = bundle
        self.sample_rate = ctx.sample_rate
        self.frame_samples = ctx.frame_samples
        self.denoiser, self.frontend, self.model, self.decoder = denoise, frontend, model, decoder
        self.frame_seconds = float(model.frame_seconds)
        self.denoises = getattr(denoise, "name", "none") != "none"
        # The frontend costs mostly per call: run it (and the model) once per model step, on
        # exactly as many samples as the model's next step needs; features and results are the
        # same as frame by frame, as the frontend and the model stream.
        fe, spec = bundle.frontend, bundle.streaming
        self._step = spec.step * fe.hop
        self._first = self._step + max(fe.win - fe.hop, 0)
        self._framer = Framer(self.frame_samples)  # the denoiser takes whole frames
        self.start()

    @classmethod
    def open(cls, settings: Settings, registry: Registry, bundle: Bundle,
             ctx: StageContext | None = None) -> Recognizer:
        """Build the configured chain for `bundle` (with the run's context, when there is
        one); a component's failure names it."""
        ctx = ctx or stage_context(settings, bundle)
        stages = settings.stages
        warn_denoise_mismatch(stages["denoise"], bundle)
        denoise = build(stages["denoise"], registry, ctx)
        frontend = build(stages["frontend"], registry, ctx)
        model = build(stages["model"], registry, ctx)
        dctx = DecoderContext.create(bundle.tokens, bundle.blank, model.frame_seconds,
                                     bundle.lm_file, base=ctx)
        decoder = build(decoder_choice(settings, registry, bundle), registry, dctx)
        return cls(bundle, ctx, denoise, frontend, model, decoder)

    # -- a stream ----------------------------------------------------------------------------
    def start(self) -> None:
        """A new utterance: the frontend, model and decoder start afresh (the denoiser, which
        tracks the room's noise, keeps going: `reset()` restarts it too)."""
        self.frontend.reset()
        self.model.reset()
        self.decoder.reset()
        self._pending: list[np.ndarray] = []
        self._pending_n = 0
        self._due = self._first

    def accept(self, samples: np.ndarray) -> bool:
        """Samples as they come (any length): denoised in whole frames, then recognised.
        True when the decoder has moved on (a new `partial()` may differ)."""
        if not self.denoises:
            return self.accept_clean(samples)
        return self.accept_clean(self._denoise(self._framer.push(samples)))

    def accept_clean(self, samples: np.ndarray) -> bool:
        """Samples that have been through the denoiser already (the daemon denoises ahead of
        its VAD with `clean`); True when the decoder has moved on."""
        if not len(samples):
            return False
        self._pending.append(samples)
        self._pending_n += len(samples)
        return self._pending_n >= self._due and self._run()

    def clean(self, frame: np.ndarray) -> np.ndarray:
        """One frame of `frame_samples` through the denoiser."""
        return self.denoiser.process(frame)

    def partial(self) -> str:
        """The best text so far, without ending the utterance."""
        return str(self.decoder.partial())

    def finish(self) -> DecodeResult:
        """End of the utterance: everything pending is recognised; the result. The next
        `accept` starts a new utterance."""
        if self.denoises and self._framer.pending:
            self.accept_clean(self._denoise(self._framer.pad()))
        self._run()
        tail = self.model.flush()
        if len(tail):
            self.decoder.process(tail)
        result: DecodeResult = self.decoder.finalize()
        self.start()
        return result

    def reset(self) -> None:
        """A new stream: everything, the denoiser included, starts afresh."""
        self.denoiser.reset()
        self._framer.clear()
        self.start()

    def set_hotwords(self, hotwords: list[tuple[str, float]]) -> bool:
        """New hot phrases from the next utterance on; False when the decoder has none."""
        if not isinstance(self.decoder, SupportsHotwords):
            return False
        self.decoder.set_hotwords(hotwords)
        return True

    def close(self) -> None:
        for stage in (self.denoiser, self.frontend, self.model, self.decoder):
            close = getattr(stage, "close", None)
            if close is not None:
                close()

    # -- inside ------------------------------------------------------------------------------
    def _run(self) -> bool:
        if not self._pending_n:
            return False
        x = self._pending[0] if len(self._pending) == 1 else np.concatenate(self._pending)
        self._pending, self._pending_n = [], 0
        self._due = self._step
        logprobs = self.model.process(self.frontend.process(x))
        if not len(logprobs):
            return False
        self.decoder.process(logprobs)
        return True

    def _denoise(self, frames: np.ndarray) -> np.ndarray:
        if not len(frames):
            return frames.reshape(-1)
        return np.concatenate([self.denoiser.process(f) for f in frames])
