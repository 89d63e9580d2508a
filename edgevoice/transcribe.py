"""Offline transcription: read -> resample -> recognizer, one result per file, array or
stream of blocks (no VAD: each is one utterance)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from edgevoice.audio import StreamResampler, WavReader, to_int16
from edgevoice.bundle import Bundle, load_bundle
from edgevoice.config import Settings
from edgevoice.messages import ModelInfo, Transcript
from edgevoice.plugins import Registry
from edgevoice.recognizer import Recognizer

EDGE_SECONDS = 0.3  # lead-in and tail added around each file
EDGE_DBFS = -55.0  # their level: a quiet room through a microphone
BLOCK_SECONDS = 1.0  # read and resampled a block at a time: memory stays flat on long files


class Transcriber:
    def __init__(self, settings: Settings, registry: Registry, bundle: Bundle | None = None
                 ) -> None:
        core = settings.core
        if bundle is None:
            models = Path(core.models_dir) if core.models_dir else None
            bundle = load_bundle(core.bundle, models)
        self.bundle = bundle
        self.site_id = settings.site_id
        self.model = ModelInfo(bundle.name, bundle.version)
        self.recognizer = Recognizer.open(settings, registry, bundle)
        # Faint noise (not digital silence, which no microphone gives) framing each file.
        n = int(EDGE_SECONDS * bundle.sample_rate)
        level = 32768 * 10 ** (EDGE_DBFS / 20)
        self.edge = np.round(level * np.random.default_rng(0).standard_normal(n)).astype(np.int16)

    def transcribe(self, path: str | Path) -> Transcript:
        """A WAV file of any rate, width and channel count, streamed (constant memory)."""
        with WavReader(path) as reader:
            info = reader.info
            converted = None
            if info.sample_rate != self.bundle.sample_rate or info.channels != 1 \
                    or info.sample_format != "pcm16":
                converted = info.describe()
            return self.transcribe_blocks(_blocks(reader), info.sample_rate, str(path),
                                          converted_from=converted)

    def transcribe_samples(self, samples: np.ndarray, sample_rate: int,
                           name: str = "<samples>") -> Transcript:
        """Mono samples (int16, or float in [-1, 1]) at `sample_rate`."""
        return self.transcribe_blocks([samples], sample_rate, name)

    def transcribe_blocks(self, blocks: Iterable[np.ndarray], sample_rate: int, name: str,
                          converted_from: str | None = None) -> Transcript:
        """A stream of mono blocks at `sample_rate`, recognised as they come.

        The audio is framed by EDGE_SECONDS of faint noise on each side, as the daemon's
        pre-roll and hang-over frame an utterance: a recording trimmed tight to its words
        (most datasets) otherwise loses its first or last word. Word times are the audio's own.
        """
        rec = self.recognizer
        t0 = time.perf_counter()
        rec.reset()  # each file is its own stream, as in the build's evaluation
        resampler = StreamResampler(sample_rate, self.bundle.sample_rate)
        rec.accept(self.edge)
        n = 0
        for block in blocks:
            n += len(block)
            rec.accept(to_int16(resampler.process(block)))
        rec.accept(to_int16(resampler.process(np.zeros(0, np.float32), last=True)))
        rec.accept(self.edge)
        result = rec.finish()
        duration = n / sample_rate
        lead = len(self.edge) / self.bundle.sample_rate
        return Transcript.create(
            result, offset=-lead, clamp=(0.0, duration), site_id=self.site_id,
            utterance_id=uuid.uuid4().hex, start=0.0, end=duration, end_reason="end_of_input",
            model=self.model, time=time.time(), file=name, converted_from=converted_from,
            rtf=(time.perf_counter() - t0) / max(duration, 1e-9))


def _blocks(reader: WavReader) -> Iterator[np.ndarray]:
    size = int(reader.info.sample_rate * BLOCK_SECONDS)
    while len(block := reader.read(size)):
        yield block
