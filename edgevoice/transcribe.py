"""Offline transcription of whole files with the configured denoise, frontend, model and
decoder (no VAD: a file is one utterance)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.audio import StreamResampler, WavReader, to_int16
from edgevoice.bundle import load_bundle
from edgevoice.components import StageContext
from edgevoice.config import Settings
from edgevoice.decoding import DecoderContext
from edgevoice.pipeline import build, decoder_choice
from edgevoice.plugins import Registry

EDGE_SECONDS = 0.3  # lead-in and tail added around each file
EDGE_DBFS = -55.0  # their level: a quiet room through a microphone


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
        self.decoder = build(decoder_choice(settings, registry, bundle), registry, dctx)
        self.skip_denoise = settings.stages["denoise"].name == "none"
        # Faint noise (not digital silence, which no microphone gives) framing each file.
        n = int(EDGE_SECONDS * bundle.sample_rate)
        level = 32768 * 10 ** (EDGE_DBFS / 20)
        self.edge = np.round(level * np.random.default_rng(0).standard_normal(n)).astype(np.int16)

    def transcribe(self, path: str | Path) -> dict[str, Any]:
        """Stream a file through the stages in one-second blocks (constant memory).

        The file is framed by EDGE_SECONDS of faint noise on each side, as the daemon's
        pre-roll and hang-over frame an utterance: a recording trimmed tight to its words
        (most datasets) otherwise loses its first or last word. Word times are the file's own.
        """
        with WavReader(path) as reader:
            info = reader.info
            t0 = time.perf_counter()
            resampler = StreamResampler(info.sample_rate, self.bundle.sample_rate)
            self.denoise.reset()  # each file is its own stream, as in the build's evaluation
            self.frontend.reset()
            self.model.reset()
            self.decoder.reset()
            rest = self._feed(self.edge, np.zeros(0, np.int16), last=False)
            while True:
                block = reader.read(info.sample_rate)
                last = len(block) == 0
                x = to_int16(resampler.process(block, last=last))
                if last:
                    x = np.concatenate((x, self.edge))
                rest = self._feed(x, rest, last)
                if last:
                    break
        self.decoder.process(self.model.flush())
        result = self.decoder.finalize()
        elapsed = time.perf_counter() - t0
        out: dict[str, Any] = {"file": str(path), **result.to_dict(),
                               "duration": round(info.duration, 3)}
        lead = len(self.edge) / self.bundle.sample_rate
        for word in out["words"]:
            for key in ("start", "end"):
                word[key] = round(min(max(word[key] - lead, 0.0), info.duration), 3)
        if info.sample_rate != self.bundle.sample_rate or info.channels != 1 \
                or info.sample_format != "pcm16":
            out["converted_from"] = info.describe()
        out["rtf"] = round(elapsed / max(info.duration, 1e-9), 5)
        out["model"] = {"name": self.bundle.name, "version": self.bundle.version}
        return out

    def _feed(self, x: np.ndarray, rest: np.ndarray, last: bool) -> np.ndarray:
        """Samples through denoise, frontend, model and decoder; returns what denoise kept."""
        if not self.skip_denoise:
            x, rest = self._denoise(np.concatenate((rest, x)), pad=last)
        self.decoder.process(self.model.process(self.frontend.process(x)))
        return rest

    def _denoise(self, x: np.ndarray, pad: bool) -> tuple[np.ndarray, np.ndarray]:
        """Denoise whole frames; return them and the samples left over for the next block."""
        f = self.frame
        if pad and len(x) % f:
            x = np.concatenate((x, np.zeros(f - len(x) % f, np.int16)))
        n = len(x) // f * f
        done = [self.denoise.process(x[i : i + f]) for i in range(0, n, f)]
        return (np.concatenate(done) if done else x[:0]), x[n:]
