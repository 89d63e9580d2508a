"""The MQTT spool: messages a run could not deliver, kept on disk for the next run to send.

One JSON object a line: `topic`, `payload` (the JSON text as published), `qos` and `time` (wall
clock when the message was made, so its age is known whatever the payload holds). A damaged line
never stops a start: it is moved to `<spool>.bad` and counted. What people said is in these
files, so they are 0600 in a 0700 directory, and a symbolic link or a file of another user in
their place is refused, never followed (edgevoice.private).
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from edgevoice.private import private_dir, read_private, write_private

log = logging.getLogger("edgevoice.mqtt")

MAX_TOPIC_BYTES = 65535  # an MQTT topic's length field


@dataclass(frozen=True)
class Spooled:
    topic: str
    payload: str  # JSON object text
    qos: int
    time: float  # Unix s when the message was made

    def line(self) -> bytes:
        return json.dumps({"topic": self.topic, "payload": self.payload, "qos": self.qos,
                           "time": self.time}, ensure_ascii=False).encode("utf-8") + b"\n"


def parse_line(line: bytes) -> Spooled | None:
    """The message a spool line holds, or None when the line is not one (damaged, tampered)."""
    made: Any
    try:
        value = json.loads(line.decode("utf-8"))
        if isinstance(value, list) and len(value) == 3:  # written before lines had a time
            topic, payload, qos = value
            made = json.loads(payload).get("time") if isinstance(payload, str) else None
        elif isinstance(value, dict) and set(value) == {"topic", "payload", "qos", "time"}:
            topic, payload, qos, made = (value[k] for k in ("topic", "payload", "qos", "time"))
        else:
            return None
        if not (isinstance(topic, str) and isinstance(payload, str)
                and isinstance(json.loads(payload), dict)
                and type(qos) is int and 0 <= qos <= 2
                and type(made) in (int, float) and math.isfinite(made)
                # what paho would refuse to publish to: wildcards, NUL, empty, too long
                and topic and not any(c in topic for c in "#+\0")
                and len(topic.encode("utf-8")) <= MAX_TOPIC_BYTES):
            return None
        payload.encode("utf-8")  # a lone surrogate (\ud800) cannot be sent
    # not UTF-8 or JSON, a payload that is not an object, a time too large for a float
    except (ValueError, RecursionError, AttributeError, OverflowError):
        return None
    return Spooled(topic, payload, qos, float(made))


def ages(seconds: Iterable[float]) -> str:
    """'70 s', or '2.1 min to 3.5 h': how old some messages are, for a log line."""
    values = sorted(seconds)
    low, high = duration(values[0]), duration(values[-1])
    return low if low == high else f"{low} to {high}"


def duration(s: float) -> str:
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.1f} min"
    return f"{s / 3600:.1f} h"


class Spool:
    """The spool file of one broker and topic prefix, and its `.replaying` copy: what a run
    took from the spool stays on disk until that run has delivered or re-spooled it."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.replaying = path.with_suffix(".replaying")
        self.bad = path.with_name(path.name + ".bad")

    def _directory(self, create: bool) -> bool:
        """Whether the directory exists (made 0700 if `create`); refuses a symbolic link to a
        directory of another user."""
        return private_dir(self.path.parent, create, "spool_dir")

    def take(self, max_age: float) -> list[Spooled]:
        """Claim what earlier runs left (also a `.replaying` copy of a run that was killed):
        the messages younger than `max_age` s, oldest first. Damaged lines go to `.bad`."""
        if not self._directory(create=False):
            return []
        data = read_private(self.replaying)
        if data and not data.endswith(b"\n"):
            data += b"\n"
        data += read_private(self.path)
        items, bad = [], []
        for line in data.split(b"\n"):
            if line.strip():
                item = parse_line(line)
                if item is None:
                    bad.append(line + b"\n")
                else:
                    items.append(item)
        if bad:
            write_private(self.bad, b"".join(bad), append=True)
            log.error("mqtt: %d damaged line(s) in the spool %s were not sent; they are kept in "
                      "%s", len(bad), self.path, self.bad)
        now = time.time()
        stale = [now - item.time for item in items if now - item.time > max_age]
        if stale:
            log.warning("mqtt: %d spooled message(s) were discarded, %s old: older than "
                        "spool_max_age (%s)", len(stale), ages(stale), duration(max_age))
        items = [item for item in items if now - item.time <= max_age]
        if items:  # the copy is written before the spool goes: a crash in between may send a
            # message twice, never lose it
            write_private(self.replaying, b"".join(item.line() for item in items), append=False)
        else:
            self.done()
        self.path.unlink(missing_ok=True)
        return items

    def save(self, items: list[Spooled]) -> None:
        """Append messages for a later run."""
        self._directory(create=True)
        write_private(self.path, b"".join(item.line() for item in items), append=True)

    def done(self) -> None:
        """What this run took is delivered or saved again: drop its copy."""
        self.replaying.unlink(missing_ok=True)
