"""What a component of each kind must provide, as `typing.Protocol`s.

A component is a class with `name` (unique per kind), `kind`, an `Options` frozen dataclass
(validated from its YAML block) and the members of its kind's protocol below. It is built as
`cls(options, ctx)` at start-up (stages and decoders again at a reload). The registry checks at
registration that a class has its kind's methods (`missing_members`), so a plugin's mistake
shows at start-up; attributes set in `__init__` can only be checked by mypy.

Threads: a source's `read()` runs on the capture thread (and its `close()` and `open()` when a
failed live source is reopened); every other call, to every kind, comes from the processing
thread (the daemon's main thread), one at a time; commands from MQTT (`cmd/hotwords` too) are
parsed on the MQTT client's thread, queued, and applied on the processing thread.
"""

from __future__ import annotations

import inspect
from typing import Any, Literal, Protocol, runtime_checkable

import numpy as np

from edgevoice.components import Event, StageContext
from edgevoice.decoding import DecoderContext, DecodeResult
from edgevoice.messages import Message

Kind = Literal["source", "denoise", "vad", "frontend", "model", "decoder", "sink"]


class Component(Protocol):
    """What every component class has."""

    # Class attributes (plain annotations: mypy takes `name = "x"` in a class body for an
    # instance variable, and a ClassVar here would make every plugin spell ClassVar out).
    name: str  # what the YAML's `name:` picks; unique per kind
    kind: str  # one of Kind
    Options: type[Any]  # frozen dataclass; `edgevoice.options.opt` documents its fields

    def __init__(self, options: Any, ctx: Any) -> None: ...


class Source(Component, Protocol):
    """Audio in: a microphone, a file, a stream. Any rate; the daemon resamples and re-cuts."""

    sample_rate: int  # Hz of the blocks `read` returns; read after `open()`
    live: bool  # True: cannot wait (a device), audio is dropped when processing falls behind

    def __init__(self, options: Any, ctx: StageContext) -> None: ...

    def open(self) -> None:
        """Start capturing; raise AudioError with the fix. Called again to reopen a live
        source after `read` raised AudioError."""

    def read(self) -> np.ndarray | None:
        """Block until the next block of mono samples (int16, or float in -1..1); None at
        the end of the stream. Runs on the capture thread."""

    def close(self) -> None: ...


class Denoiser(Component, Protocol):
    """Frame in, frame out: int16, `ctx.frame_samples` long, at `ctx.sample_rate`."""

    def __init__(self, options: Any, ctx: StageContext) -> None: ...

    def process(self, frame: np.ndarray) -> np.ndarray: ...

    def reset(self) -> None:
        """A new stream starts (another file): forget noise estimates."""

    def close(self) -> None: ...


class Vad(Component, Protocol):
    """Frames in, utterance events out. Subclass `edgevoice.Segmenter` and write only
    `is_speech(frame) -> bool` rather than implementing this from scratch."""

    def __init__(self, options: Any, ctx: StageContext) -> None: ...

    def process(self, frame: np.ndarray) -> list[Event]:
        """One denoised int16 frame; SpeechStart, the utterance's SpeechAudio frames
        (pre-roll included) and SpeechEnd, in stream order."""

    def flush(self) -> list[Event]:
        """End of stream: end an open utterance."""

    def reset(self) -> None:
        """Audio was skipped (muted, dropped): start over without an open utterance."""

    def close(self) -> None: ...


class Frontend(Component, Protocol):
    """Utterance audio in, features out: what the bundle's model was trained on."""

    def __init__(self, options: Any, ctx: StageContext) -> None: ...

    def process(self, samples: np.ndarray) -> np.ndarray:
        """int16 samples -> features [frames, bundle.frontend.n_mels] (frames may be 0)."""

    def reset(self) -> None:
        """A new utterance starts."""

    def close(self) -> None: ...


class Model(Component, Protocol):
    """Features in, CTC log-probabilities out, while the person is still speaking."""

    frame_seconds: float  # duration of one output frame; decoders time words with it

    def __init__(self, options: Any, ctx: StageContext) -> None: ...

    def process(self, features: np.ndarray) -> np.ndarray:
        """features -> log-probabilities [frames, len(bundle.tokens)] (frames may be 0)."""

    def flush(self) -> np.ndarray:
        """End of utterance: the log-probabilities still held back."""

    def reset(self) -> None:
        """A new utterance starts."""

    def close(self) -> None: ...


class Decoder(Component, Protocol):
    """CTC log-probabilities in, text out; streaming (see edgevoice.decoding)."""

    def __init__(self, options: Any, ctx: DecoderContext) -> None: ...

    def process(self, logprobs: np.ndarray) -> None:
        """More log-probabilities [frames, tokens] of the current utterance."""

    def partial(self) -> str:
        """The best text so far, cheaply (called every `partial_interval_ms`)."""

    def finalize(self) -> DecodeResult:
        """The utterance's result; word times are seconds from its start."""

    def reset(self) -> None:
        """A new utterance starts."""


@runtime_checkable
class SupportsHotwords(Protocol):
    """A decoder that can favour phrases (MQTT `cmd/hotwords`)."""

    def set_hotwords(self, hotwords: list[tuple[str, float]]) -> None:
        """Replace the (phrase, boost) pairs from the next utterance on; raise an
        EdgevoiceError for a phrase it cannot take. Called on the processing thread."""


@runtime_checkable
class WantsStats(Protocol):
    """A sink that wants the daemon's periodic `Stats` messages (the mqtt sink's
    `stats_interval`); the daemon makes them at the shortest interval any sink asks for."""

    stats_interval: float  # s between Stats messages; 0: none


class Sink(Component, Protocol):
    """Payloads out: MQTT, files, webhooks."""

    def __init__(self, options: Any, ctx: StageContext) -> None: ...

    def open(self) -> None:
        """Connect; raise to stop the daemon from starting."""

    def publish(self, message: Message) -> None:
        """A message (edgevoice.messages): `message.topic` is "transcript", "partial", "vad",
        "status", "listening" or "stats", `message.to_payload()` its versioned JSON. Must not
        block for long: it runs on the processing thread."""

    def flush(self, timeout: float) -> int:
        """At shutdown: deliver what is pending within `timeout` s; the number undelivered."""

    def close(self) -> None: ...


PROTOCOLS: dict[str, type] = {
    "source": Source, "denoise": Denoiser, "vad": Vad, "frontend": Frontend, "model": Model,
    "decoder": Decoder, "sink": Sink,
}


def methods(protocol: type) -> list[str]:
    """The public methods a protocol requires, its bases' included."""
    names: dict[str, None] = {}
    for base in reversed(protocol.__mro__):
        if getattr(base, "_is_protocol", False) and base is not Protocol:
            names.update((k, None) for k, v in vars(base).items()
                         if inspect.isfunction(v) and not k.startswith("_"))
    return list(names)


def missing_members(cls: type, kind: str) -> tuple[list[str], list[str]]:
    """(methods of `kind`'s protocol that `cls` lacks, methods it leaves abstract)."""
    abstract = sorted(getattr(cls, "__abstractmethods__", ()))
    lacking = [m for m in methods(PROTOCOLS[kind])
               if not callable(getattr(cls, m, None)) and m not in abstract]
    return [f"{m}()" for m in lacking], [f"{m}()" for m in abstract]
