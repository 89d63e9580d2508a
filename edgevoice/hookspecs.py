"""pluggy hook specifications for edgevoice plugins (entry-point group "edgevoice").

Plugins mark their implementations with `edgevoice.hookimpl`. `register_*` hooks are called
once at start-up with a `register(component_class)` callable. A component class has `name`
(str, unique per kind), `kind`, an `Options` frozen dataclass and the protocol of its kind (see
edgevoice.contracts). `on_*` hooks are notifications, on the processing thread; they run once
per utterance or lifecycle event, never per audio frame.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from edgevoice.messages import Transcript, VadEvent

hookspec = pluggy.HookspecMarker("edgevoice")
hookimpl = pluggy.HookimplMarker("edgevoice")  # for plugins: `from edgevoice import hookimpl`

Register = Callable[[type], None]


@hookspec
def register_sources(register: Register) -> None:
    """Register audio source classes (kind "source"): microphones, files, network streams."""


@hookspec
def register_stages(register: Register) -> None:
    """Register audio stage classes: kinds "denoise", "vad", "frontend" and "model"."""


@hookspec
def register_decoders(register: Register) -> None:
    """Register CTC decoder classes (kind "decoder")."""


@hookspec
def register_sinks(register: Register) -> None:
    """Register transcript sink classes (kind "sink"): MQTT, stdout, files, webhooks."""


@hookspec
def on_startup(config: Any) -> None:
    """The daemon has built its pipeline from `config` (a validated Settings) and is ready."""


@hookspec
def on_shutdown(reason: str) -> None:
    """The daemon is stopping ("signal", "end of input", "error")."""


@hookspec
def on_utterance_start(event: VadEvent) -> None:
    """Speech started: `event` (edgevoice.messages.VadEvent) has utterance_id, site_id and
    start (stream seconds)."""


@hookspec
def on_utterance_end(event: VadEvent) -> None:
    """Speech ended: `event` has utterance_id, site_id, start, end and reason."""


@hookspec
def on_transcript(transcript: Transcript) -> None:
    """A transcript (edgevoice.messages.Transcript: text, words in stream seconds, result,
    ...) is ready; `transcript.to_payload()` is the JSON the sinks publish."""


@hookspec
def on_error(error: Exception, where: str) -> None:
    """A component failed at `where` (e.g. "sink mqtt"); the daemon keeps running if it can."""
