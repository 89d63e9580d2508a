"""Simple sinks: JSON lines on stdout or appended to a file."""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from edgevoice.components import Closeable, StageContext
from edgevoice.errors import SinkError
from edgevoice.messages import Message, Topic
from edgevoice.options import opt


@dataclass(frozen=True)
class JsonLinesOptions:
    topics: tuple[Topic, ...] = opt(["transcript"], "which messages to write")


class StdoutSink(Closeable):
    """One JSON object per line on standard output."""

    name = "stdout"
    kind = "sink"
    Options = JsonLinesOptions

    def __init__(self, options: JsonLinesOptions, ctx: StageContext) -> None:
        self.topics = set(options.topics)

    def open(self) -> None:
        self._out: IO[str] = sys.stdout

    def publish(self, message: Message) -> None:
        if message.topic in self.topics:
            self._out.write(json.dumps(message.to_payload(), ensure_ascii=False) + "\n")
            self._out.flush()

    def flush(self, timeout: float) -> int:
        return 0


@dataclass(frozen=True)
class FileOptions(JsonLinesOptions):
    path: str = opt("", "file to append JSON lines to")

    def __post_init__(self) -> None:
        if not self.path:
            raise ValueError("`path` is required: the file to append JSON lines to")


class FileSink(StdoutSink):
    """JSON lines appended to a file (a local log of everything heard)."""

    name = "file"
    Options = FileOptions  # type: ignore[assignment]

    def __init__(self, options: FileOptions, ctx: StageContext) -> None:
        if not options.path:
            raise SinkError("sink file: `path` is required")
        super().__init__(options, ctx)
        self.path = Path(options.path).expanduser()

    def open(self) -> None:
        try:
            self._out = open(self.path, "a", encoding="utf-8")  # noqa: SIM115
        except OSError as exc:
            raise SinkError(f"sink file: cannot open {self.path}: {exc.strerror}") from None

    def close(self) -> None:
        self._out.close()
