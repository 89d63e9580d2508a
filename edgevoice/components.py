"""What every component is built with, and the events a segmenter emits.

What each kind of component must provide, and on which thread it is called, is written down
as typing.Protocols in edgevoice.contracts.
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
