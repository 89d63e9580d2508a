"""What every component is built with, and the events a segmenter emits.

What each kind of component must provide, and on which thread it is called, is written down
as typing.Protocols in edgevoice.contracts.
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
