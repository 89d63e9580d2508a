"""What every component is built with, and the events a segmenter emits.

Protocols by kind (all components take `(options, ctx)` and have `close()`):

- source:   `open()`, `read() -> np.ndarray | None` (a block at `sample_rate`, None at end),
            attributes `sample_rate` (Hz) and `live` (True for devices that cannot wait).
- denoise:  `process(frame) -> frame` (int16, pipeline rate, `frame_samples` long), `reset()`.
- vad:      `process(frame) -> list[event]`, `flush() -> list[event]`, `reset()`.
- frontend: `process(samples) -> features [n, n_features]`, `reset()`.
- model:    `process(features) -> logprobs [n, tokens]`, `flush() -> logprobs`, `reset()`,
            attribute `frame_seconds`.
- decoder:  see edgevoice.decoding (`process`, `partial`, `finalize`, `reset`).
- sink:     `open()`, `publish(topic, payload)`, `flush(timeout) -> undelivered count`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevoice.bundle import Bundle


@dataclass(frozen=True)
class StageContext:
    site_id: str
    sample_rate: int  # Hz of the pipeline (the bundle's rate)
    frame_samples: int  # samples per pipeline frame
    bundle: Bundle | None = None
    extra: Any = None  # decoder context, command callbacks, ...


@dataclass(frozen=True)
class SpeechStart:
    start: float  # stream seconds of the first audio in the utterance (pre-roll included)


@dataclass(frozen=True)
class SpeechAudio:
    samples: np.ndarray  # int16 frame belonging to the current utterance


@dataclass(frozen=True)
class SpeechEnd:
    end: float  # stream seconds where speech ended (hang-over excluded)
    reason: str  # "silence", "max_length", "end_of_stream"
    too_short: bool = False  # shorter than the minimum utterance: no transcript


Event = SpeechStart | SpeechAudio | SpeechEnd


class Closeable:
    """Default no-op lifecycle for components."""

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass
