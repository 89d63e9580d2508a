"""Wyoming events read within bounds, and audio chunks turned into mono int16 samples.

The library's own reader trusts the lengths a peer announces (a header saying `payload_length:
10000000000` is read until memory runs out) and drops a malformed event silently; this one
refuses either with a ClientError that says what was wrong, which the server sends back as an
`error` event before it closes the connection.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import numpy as np
from wyoming.audio import AudioChunk, AudioChunkConverter, AudioFormat
from wyoming.event import Event

from edgevoice.audio import MIN_SAMPLE_RATE

MAX_DATA_BYTES = 64 * 1024  # an event's JSON data: a few hundred bytes in practice
MAX_PAYLOAD_BYTES = 1 << 20  # one audio chunk: 32 s of 16 kHz 16-bit mono (clients send ~64 ms)
MAX_RATE = 384_000
MAX_CHANNELS = 32


class ClientError(Exception):
    """The client broke the protocol or a limit: sent back as an `error` event, then the
    connection is closed. `code` is the event's machine-readable code."""

    def __init__(self, text: str, code: str = "bad-request") -> None:
        super().__init__(text)
        self.code = code


async def read_event(reader: asyncio.StreamReader) -> Event | None:
    """The next event, or None when the peer has closed the connection (mid-event too)."""
    try:
        line = await reader.readline()
    except ValueError:  # longer than the reader's limit (64 KiB) without a newline
        raise ClientError("not a Wyoming event: a header line longer than 64 KiB") from None
    if not line.endswith(b"\n"):
        return None  # EOF, possibly half-way through a header
    try:
        header = json.loads(line)
    except ValueError:
        raise ClientError("not a Wyoming event: the header line is not JSON") from None
    if not isinstance(header, dict) or not isinstance(header.get("type"), str):
        raise ClientError("not a Wyoming event: the header has no 'type'")
    data = header.get("data") or {}
    if not isinstance(data, dict):
        raise ClientError(f"{header['type']}: 'data' must be an object")
    data_length = _length(header, "data_length", MAX_DATA_BYTES)
    payload_length = _length(header, "payload_length", MAX_PAYLOAD_BYTES)
    try:
        if data_length:
            extra = json.loads(await reader.readexactly(data_length))
            if not isinstance(extra, dict):
                raise ClientError(f"{header['type']}: its data must be a JSON object")
            data.update(extra)
        payload = await reader.readexactly(payload_length) if payload_length else None
    except asyncio.IncompleteReadError:
        return None  # the peer went away half-way through the event
    except ValueError:
        raise ClientError(f"{header['type']}: its data is not JSON") from None
    return Event(type=header["type"], data=data, payload=payload)


def _length(header: dict, key: str, limit: int) -> int:
    value = header.get(key) or 0
    if not isinstance(value, int) or not 0 <= value <= limit:
        raise ClientError(f"{header['type']}: {key} {value!r} is outside 0..{limit}",
                          "too-large" if isinstance(value, int) and value > limit else
                          "bad-request")
    return value


def audio_format(data: dict, where: str) -> AudioFormat:
    """`rate`, `width` and `channels` of an audio-start or audio-chunk, checked."""
    try:
        fmt = AudioFormat(int(data["rate"]), int(data["width"]), int(data["channels"]))
    except (KeyError, TypeError, ValueError):
        raise ClientError(f"{where}: needs integer 'rate', 'width' and 'channels'") from None
    if not MIN_SAMPLE_RATE <= fmt.rate <= MAX_RATE:
        raise ClientError(f"{where}: rate {fmt.rate} Hz is outside "
                          f"{MIN_SAMPLE_RATE}..{MAX_RATE} (speech needs at least 8 kHz)")
    if fmt.width not in (1, 2, 3, 4):
        raise ClientError(f"{where}: width {fmt.width} is not 1, 2, 3 or 4 bytes a sample")
    if not 1 <= fmt.channels <= MAX_CHANNELS:
        raise ClientError(f"{where}: channels {fmt.channels} is outside 1..{MAX_CHANNELS}")
    return fmt


@dataclass
class ChunkDecoder:
    """Audio chunks of one stream -> mono int16 at the stream's own rate: the library's
    converter changes the width, channels are averaged here (its converter only mixes two).
    The rate is left to edgevoice's resampler, which streams with a better filter."""

    fmt: AudioFormat

    def __post_init__(self) -> None:
        self._width = AudioChunkConverter(width=2)

    def decode(self, event: Event) -> np.ndarray:
        fmt = audio_format(event.data, "audio-chunk")
        if fmt != self.fmt:
            raise ClientError(f"audio-chunk: {_describe(fmt)} in a stream that started as "
                              f"{_describe(self.fmt)}; send one format per stream")
        audio = event.payload or b""
        frame = fmt.width * fmt.channels
        if len(audio) % frame:
            raise ClientError(f"audio-chunk: {len(audio)} bytes is not a whole number of "
                              f"{frame}-byte sample frames ({_describe(fmt)})")
        chunk = self._width.convert(AudioChunk(fmt.rate, fmt.width, fmt.channels, audio))
        samples = np.frombuffer(chunk.audio, "<i2")
        if fmt.channels > 1:
            mixed = samples.reshape(-1, fmt.channels).mean(axis=1)
            samples = np.round(mixed).astype(np.int16)
        return samples


def _describe(fmt: AudioFormat) -> str:
    return f"{fmt.rate} Hz, {fmt.width * 8}-bit, {fmt.channels} channel(s)"
