"""Offline transcription of whole files with the configured denoise, frontend, model and
decoder (no VAD: a file is one utterance)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.audio import read_wav, resample, to_int16
from edgevoice.bundle import load_bundle
from edgevoice.components import StageContext
from edgevoice.config import Settings
from edgevoice.decoding import DecoderContext
from edgevoice.pipeline import build
from edgevoice.plugins import Registry


class Transcriber:
    def __init__(self, settings: Settings, registry: Registry) -> None:
        core = settings.core
        models = Path(core.models_dir) if core.models_dir else None
        self.bundle = bundle = load_bundle(core.bundle, models)
        self.frame = bundle.sample_rate * core.audio.frame_ms // 1000
        ctx = StageContext(core.site_id, bundle.sample_rate, self.frame, bundle)
        self.denoise = build(settings.stages["denoise"], registry, ctx)
        self.frontend = build(settings.stages["frontend"], registry, ctx)
        self.model = build(settings.stages["model"], registry, ctx)
        dctx = DecoderContext.create(bundle.tokens, bundle.blank, self.model.frame_seconds,
                                     bundle.lm_file)
        self.decoder = build(settings.stages["decoder"], registry, dctx)
        self.skip_denoise = settings.stages["denoise"].name == "none"

    def transcribe(self, path: str | Path) -> dict[str, Any]:
        samples, info = read_wav(path)
        t0 = time.perf_counter()
        x = to_int16(resample(samples, info.sample_rate, self.bundle.sample_rate))
        if not self.skip_denoise:
            n = -(-len(x) // self.frame) * self.frame
            x = np.concatenate((x, np.zeros(n - len(x), np.int16)))
            x = np.concatenate([self.denoise.process(x[i : i + self.frame])
                                for i in range(0, n, self.frame)])
        self.frontend.reset()
        self.model.reset()
        self.decoder.reset()
        logprobs = self.model.process(self.frontend.process(x))
        self.decoder.process(logprobs)
        self.decoder.process(self.model.flush())
        result = self.decoder.finalize()
        elapsed = time.perf_counter() - t0
        out: dict[str, Any] = {"file": str(path), **result.to_dict(),
                               "duration": round(info.duration, 3)}
        if info.sample_rate != self.bundle.sample_rate or info.channels != 1 \
                or info.sample_format != "pcm16":
            out["converted_from"] = info.describe()
        out["rtf"] = round(elapsed / max(info.duration, 1e-9), 5)
        out["model"] = {"name": self.bundle.name, "version": self.bundle.version}
        return out
