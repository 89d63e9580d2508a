"""Commands from outside (MQTT `cmd/#`, signals) as data: parsed where they arrive, queued,
and applied by the daemon on its processing thread between frames.

Hot words are parsed with the same validator and defaults as the YAML (`decoder.hotwords`), so
a phrase means the same thing whichever way it arrives.
"""

from __future__ import annotations

import json
import queue
from dataclasses import dataclass
from typing import Any

from edgevoice.beam import BeamOptions, hot_pair
from edgevoice.errors import EdgevoiceError
from edgevoice.options import validate

MAX_PAYLOAD = 16 * 1024  # bytes: a command is a word or a short list, never megabytes
MAX_HOTWORDS = 100  # the beam decoder's tries grow with every phrase
NAMES = ("reload", "listen", "hotwords")


class CommandError(EdgevoiceError):
    """A command that is refused; the message says why and what would be accepted."""


@dataclass(frozen=True)
class Reload:
    """Re-read the config and the model bundle between utterances."""


@dataclass(frozen=True)
class Listen:
    """Start (True) or stop (False) transcribing; the stream's clock keeps running."""

    on: bool


@dataclass(frozen=True)
class SetHotwords:
    """Replace the decoder's hot phrases from the next utterance on."""

    hotwords: tuple[tuple[str, float], ...]  # (phrase, boost)


Command = Reload | Listen | SetHotwords

LISTEN_WORDS = {"on": True, "true": True, "1": True, "start": True,
                "off": False, "false": False, "0": False, "stop": False}


def parse_command(name: str, payload: bytes) -> Command:
    """One command from its name (the topic after `cmd/`) and payload; CommandError (saying
    why, without the command's name) if it is refused."""
    if len(payload) > MAX_PAYLOAD:
        raise CommandError(f"payload of {len(payload)} bytes is over the {MAX_PAYLOAD}-byte "
                           "limit")
    if name == "reload":
        return Reload()
    if name == "listen":
        text = payload.decode("utf-8", "replace").strip().lower()
        if text not in LISTEN_WORDS:
            raise CommandError(f"{text[:40]!r} is neither on nor off "
                               "(on/off, true/false, 1/0, start/stop)")
        return Listen(LISTEN_WORDS[text])
    if name == "hotwords":
        return SetHotwords(parse_hotwords(payload))
    raise CommandError(f"unknown command {name[:60]!r} (known: {', '.join(NAMES)})")


def parse_hotwords(payload: bytes) -> tuple[tuple[str, float], ...]:
    """A JSON list of phrases or {"phrase", "boost"} mappings, checked like the YAML's
    `decoder.hotwords` (same types, same default boost, same bounds)."""
    try:
        data: Any = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise CommandError(f"not JSON ({str(exc)[:80]}); expected a list like "
                           '["tobias", {"phrase": "call mum", "boost": 3}]') from None
    except RecursionError:  # 16 KiB of "[" nest deeper than Python recurses
        raise CommandError("JSON nested too deeply; expected a flat list of phrases") from None
    if isinstance(data, list) and len(data) > MAX_HOTWORDS:
        raise CommandError(f"{len(data)} phrases; at most {MAX_HOTWORDS}")
    errors: list[str] = []
    # the YAML's own declaration of decoder.hotwords: same types, defaults and bounds
    parsed = validate(BeamOptions, {"hotwords": data}, "", errors)
    if parsed is None:
        raise CommandError("; ".join(errors))
    return tuple(hot_pair(h) for h in parsed.hotwords)


class CommandQueue:
    """Commands handed up from any thread (paho's, a signal handler) to the processing loop."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Command] = queue.SimpleQueue()

    def put(self, command: Command) -> None:
        self._queue.put(command)

    def drain(self) -> list[Command]:
        out = []
        while True:
            try:
                out.append(self._queue.get_nowait())
            except queue.Empty:
                return out
