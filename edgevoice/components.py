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
- sink:     `open()`, `publish(message)` (edgevoice.messages: `message.topic`,
            `message.to_payload()`), `flush(timeout) -> undelivered count`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from edgevoice.bundle import Bundle
from edgevoice.errors import EdgevoiceError, PluginError

if TYPE_CHECKING:
    from edgevoice.commands import CommandQueue
    from edgevoice.config import Choice
    from edgevoice.plugins import Registry


@dataclass(frozen=True)
class StageContext:
    site_id: str
    sample_rate: int  # Hz of the pipeline (the bundle's rate)
    frame_samples: int  # samples per pipeline frame
    bundle: Bundle | None = None
    commands: CommandQueue | None = None  # where a component hands commands up (MQTT cmd/#)


@dataclass(frozen=True)
class SpeechStart:
    start: float  # seconds of audio fed to this VAD before the utterance (pre-roll included);
    # the pipeline turns them into stream seconds (mutes and reloads included)


@dataclass(frozen=True)
class SpeechAudio:
    samples: np.ndarray  # int16 frame belonging to the current utterance


@dataclass(frozen=True)
class SpeechEnd:
    end: float  # seconds of audio fed to this VAD where speech ended (hang-over excluded)
    reason: str  # "silence", "max_length", "end_of_stream"
    too_short: bool = False  # shorter than the minimum utterance: no transcript


Event = SpeechStart | SpeechAudio | SpeechEnd


class Closeable:
    """Default no-op lifecycle for components."""

    def reset(self) -> None:
        pass

    def close(self) -> None:
        pass


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
