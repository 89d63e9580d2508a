"""The real `edgevoice-wyoming` server, started as a subprocess, heard through the wyoming
library's own client over real sockets, with real recordings (FSDD's held-out speaker)."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import yaml
from support import DEFAULT_BUNDLE, REPO, free_port, need_fsdd
from wyoming.asr import Transcribe
from wyoming.audio import AudioChunk, AudioStart, AudioStop
from wyoming.client import AsyncClient
from wyoming.event import Event, async_read_event
from wyoming.info import Describe, Info

from edgevoice.audio import read_wav, resample, to_int16
from edgevoice.config import load_settings
from edgevoice.transcribe import Transcriber

# One take of each digit by nicolas, the speaker the shipped model never heard.
CLIPS = [f"{d}_nicolas_{k}" for d, k in enumerate((3, 7, 11, 19, 23, 29, 31, 37, 41, 43))]


class Server:
    """`python -m edgevoice_wyoming.cli` on a free port (or a Unix socket), until stopped."""

    def __init__(self, tmp: Path, bundle: Path, *args: str, unix: bool = False) -> None:
        config = tmp / "edgevoice.yaml"
        config.write_text(yaml.safe_dump({"bundle": str(bundle)}))
        self.uri = f"unix://{tmp / 'asr.sock'}" if unix else f"tcp://127.0.0.1:{free_port()}"
        self.log = tmp / "server.log"
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "edgevoice_wyoming.cli", "--uri", self.uri, "-c",
                 str(config), *args], cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 30
        while True:
            try:
                self.info = asyncio.run(describe(self.uri))
                return
            except OSError:
                if self.proc.poll() is not None or time.monotonic() > deadline:
                    self.stop()
                    raise RuntimeError(
                        f"the server did not start:\n{self.log.read_text()}") from None
                time.sleep(0.1)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(15)


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory, bundle_dir: Path) -> Iterator[Server]:
    s = Server(tmp_path_factory.mktemp("wyoming"), bundle_dir)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def bundle_dir() -> Path:
    """support.py's bundle_dir, module-scoped for the module's server."""
    return Path(os.environ.get("EDGEVOICE_TEST_BUNDLE") or DEFAULT_BUNDLE)


def clip(name: str) -> tuple[np.ndarray, int]:
    samples, info = read_wav(need_fsdd() / f"{name}.wav")
    return to_int16(samples), info.sample_rate


def pcm(samples: np.ndarray, width: int = 2, channels: int = 1) -> bytes:
    """int16 mono -> interleaved little-endian PCM of `width` bytes (1: unsigned, as in WAV)."""
    x = np.repeat(samples.astype(np.int32), channels)
    if width == 1:
        return ((x >> 8) + 128).astype(np.uint8).tobytes()
    if width == 4:
        return (x << 16).astype("<i4").tobytes()
    return x.astype("<i2").tobytes()


async def describe(uri: str) -> Info:
    async with AsyncClient.from_uri(uri, read_timeout=10) as client:
        await client.write_event(Describe().event())
        event = await client.read_event()
        assert event is not None and Info.is_type(event.type)
        return Info.from_event(event)


async def transcribe(uri: str, audio: bytes, rate: int, width: int = 2, channels: int = 1,
                     chunk_ms: int = 64, pace: float = 0.0) -> list[Event]:
    """One stream as Home Assistant sends it; the events received until the transcript (or an
    error, or the end of the connection). `pace` > 0 sends in real time times `pace`."""
    step = int(rate * chunk_ms / 1000) * width * channels
    async with AsyncClient.from_uri(uri, read_timeout=30) as client:
        await client.write_event(Transcribe(language="en").event())
        await client.write_event(AudioStart(rate, width, channels).event())
        for i in range(0, len(audio), step):
            await client.write_event(AudioChunk(rate, width, channels, audio[i:i + step]).event())
            if pace:
                await asyncio.sleep(chunk_ms / 1000 * pace)
        await client.write_event(AudioStop().event())
        return await read_until_transcript(client)


async def read_until_transcript(client: AsyncClient) -> list[Event]:
    events = []
    while (event := await client.read_event()) is not None:
        events.append(event)
        if event.type in ("transcript", "error"):
            break
    return events


def text_of(events: list[Event]) -> str:
    assert events and events[-1].type == "transcript", [(e.type, e.data) for e in events]
    return str(events[-1].data["text"])


@pytest.fixture(scope="module")
def local(bundle_dir: Path) -> Transcriber:
    """`edgevoice transcribe`'s chain, in this process."""
    settings, registry = load_settings({"bundle": str(bundle_dir)}, "test")
    return Transcriber(settings, registry)


@pytest.fixture(scope="module")
def expected(local: Transcriber) -> dict[str, str]:
    """What `edgevoice transcribe` hears in each clip, as a satellite is told it: nothing
    where the bundle's reject threshold marked it rejected."""
    heard = {name: local.transcribe(need_fsdd() / f"{name}.wav") for name in CLIPS}
    return {name: "" if t.rejected else t.text for name, t in heard.items()}


def test_describe_names_the_bundle(server: Server) -> None:
    (program,) = server.info.asr
    (model,) = program.models
    assert program.name == "edgevoice" and program.supports_transcript_streaming
    assert model.name == "digits" and model.languages == ["en"] and model.installed
    assert "words: eight five four nine one seven six three two zero" in str(model.description)


def test_transcripts_are_the_recognizers(server: Server, expected: dict[str, str]) -> None:
    """Over the wire, each held-out clip (8 kHz, resampled by the server) is heard exactly as
    `edgevoice transcribe` hears it, and the streamed events spell the same text."""
    words = "zero one two three four five six seven eight nine".split()
    right = 0
    for name in CLIPS:
        samples, rate = clip(name)
        events = asyncio.run(transcribe(server.uri, pcm(samples), rate))
        assert [e.type for e in events] == ["transcript-start", "transcript-chunk",
                                            "transcript-stop", "transcript"] \
            or [e.type for e in events] == ["transcript-start", "transcript-stop", "transcript"]
        text = text_of(events)
        assert text == expected[name]
        assert "".join(e.data["text"] for e in events if e.type == "transcript-chunk") == text
        assert events[-1].data["language"] == "en"
        right += text == words[int(name[0])]
    assert right >= 7, f"only {right} of {len(CLIPS)} held-out digits heard right"


@pytest.mark.parametrize("width,channels", [(1, 1), (2, 2), (4, 1), (2, 6)])
def test_widths_and_channels_are_converted(server: Server, width: int, channels: int) -> None:
    samples, rate = clip(CLIPS[7])
    mono16 = text_of(asyncio.run(transcribe(server.uri, pcm(samples), rate)))
    assert mono16 == "seven"
    got = text_of(asyncio.run(transcribe(server.uri, pcm(samples, width, channels), rate,
                                         width, channels)))
    assert got == mono16


def test_rates_are_converted(server: Server, local: Transcriber) -> None:
    samples, rate = clip(CLIPS[4])
    for new_rate in (16000, 22050, 48000):
        x = to_int16(resample(samples.astype(np.float32) / 32768, rate, new_rate))
        want = local.transcribe_samples(x, new_rate).text
        assert want == "four"
        assert text_of(asyncio.run(transcribe(server.uri, pcm(x), new_rate))) == want


def test_clients_at_once_each_hear_their_own(server: Server, expected: dict[str, str]) -> None:
    """Six clients stream different clips at the same time in real time, while another sits
    in the middle of a stream: each gets its own clip's transcript."""

    async def stalled() -> None:
        async with AsyncClient.from_uri(server.uri) as client:
            await client.write_event(AudioStart(8000, 2, 1).event())
            await client.write_event(AudioChunk(8000, 2, 1, bytes(8000)).event())
            await asyncio.sleep(4)

    async def all_at_once() -> list[list[Event]]:
        names = CLIPS[:6]
        streams = [transcribe(server.uri, pcm(clip(n)[0]), 8000, pace=1.0) for n in names]
        sitting = asyncio.create_task(stalled())
        results = await asyncio.gather(*streams)
        await sitting
        return results

    for name, events in zip(CLIPS[:6], asyncio.run(all_at_once()), strict=True):
        assert text_of(events) == expected[name], name


def test_unix_socket(tmp_path: Path, bundle_dir: Path) -> None:
    server = Server(tmp_path, bundle_dir, unix=True)
    try:
        assert server.info.asr[0].models[0].name == "digits"
        samples, rate = clip(CLIPS[5])
        assert text_of(asyncio.run(transcribe(server.uri, pcm(samples), rate))) == "five"
    finally:
        assert server.stop() == 0  # SIGTERM: a clean exit, and the socket file removed
    assert not (tmp_path / "asr.sock").exists()


# -- bad clients: an error event, the connection closed, everyone else served ------------------

async def raw_exchange(uri: str, data: bytes) -> tuple[list[Event], bool]:
    """Send raw bytes; the events received and whether the server then closed the connection."""
    port = int(uri.rsplit(":", 1)[1])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    events = []
    try:
        while (event := await asyncio.wait_for(async_read_event(reader), 10)) is not None:
            events.append(event)
    finally:
        writer.close()
    return events, reader.at_eof()


def header(event_type: str, **fields: object) -> bytes:
    return json.dumps({"type": event_type, **fields}).encode() + b"\n"


BAD = {
    "garbage": (b"\x00\xffGET / HTTP/1.1\r\n\r\n", "not a Wyoming event"),
    "huge payload announced": (header("audio-chunk", data={"rate": 16000, "width": 2,
                                                           "channels": 1},
                                      payload_length=10**10), "payload_length"),
    "endless line": (b"x" * 200_000, "longer than 64 KiB"),
    "no rate": (header("audio-start", data={"width": 2}), "needs integer 'rate'"),
    "odd bytes": (header("audio-start", data={"rate": 16000, "width": 2, "channels": 1})
                  + header("audio-chunk", data={"rate": 16000, "width": 2, "channels": 1},
                           payload_length=3) + b"abc", "not a whole number"),
    "format changes": (header("audio-start", data={"rate": 16000, "width": 2, "channels": 1})
                       + header("audio-chunk", data={"rate": 8000, "width": 2, "channels": 1},
                                payload_length=2) + b"\0\0", "send one format per stream"),
    "stop without start": (header("audio-stop"), "audio-stop without audio-start"),
}


@pytest.mark.parametrize("case", sorted(BAD))
def test_bad_input_gets_an_error_and_the_door(server: Server, case: str) -> None:
    data, says = BAD[case]
    events, closed = asyncio.run(raw_exchange(server.uri, data))
    assert [e.type for e in events] == ["error"] and says in events[0].data["text"]
    assert closed
    samples, rate = clip(CLIPS[2])  # the server carries on
    assert text_of(asyncio.run(transcribe(server.uri, pcm(samples), rate))) == "two"


def test_limits(tmp_path: Path, bundle_dir: Path) -> None:
    """A stream longer than --max-seconds, a client silent mid-stream for --idle-seconds and a
    connection beyond --max-clients are each refused with an error event; a client that hangs
    up mid-stream costs nothing; the server then serves as before."""
    samples, rate = clip(CLIPS[4])  # first: a skip (no FSDD) must not leave a server running
    server = Server(tmp_path, bundle_dir, "--max-seconds", "2", "--idle-seconds", "1",
                    "--max-clients", "2")

    async def too_long() -> list[Event]:
        """An hour of audio as fast as the socket takes it, while the answer is read."""
        async with AsyncClient.from_uri(server.uri, read_timeout=10) as client:
            answer = asyncio.create_task(read_until_transcript(client))
            second = pcm(np.zeros(rate, np.int16))
            try:
                await client.write_event(AudioStart(rate, 2, 1).event())
                for _ in range(3600):
                    await client.write_event(AudioChunk(rate, 2, 1, second).event())
            except ConnectionError:
                pass  # refused half-way, as it should be
            return await answer

    async def silent_mid_stream() -> list[Event]:
        async with AsyncClient.from_uri(server.uri, read_timeout=10) as client:
            await client.write_event(AudioStart(rate, 2, 1).event())
            await client.write_event(AudioChunk(rate, 2, 1, pcm(samples[:800])).event())
            return await read_until_transcript(client)

    async def hang_up_then_busy() -> list[Event]:
        async with AsyncClient.from_uri(server.uri) as a:
            await a.write_event(AudioStart(rate, 2, 1).event())
            await a.write_event(AudioChunk(rate, 2, 1, pcm(samples)).event())
        await asyncio.sleep(0.5)  # for the server to see it go
        async with AsyncClient.from_uri(server.uri) as b, \
                AsyncClient.from_uri(server.uri) as c:
            await b.write_event(Describe().event())
            await c.write_event(Describe().event())
            for client in (b, c):
                event = await client.read_event()
                assert event is not None and Info.is_type(event.type)
            async with AsyncClient.from_uri(server.uri, read_timeout=10) as d:
                return await read_until_transcript(d)

    try:
        events = asyncio.run(too_long())
        assert events[-1].type == "error" and events[-1].data["code"] == "too-long"
        events = asyncio.run(silent_mid_stream())
        assert events[-1].type == "error" and events[-1].data["code"] == "timeout"
        events = asyncio.run(hang_up_then_busy())
        assert events[-1].type == "error" and events[-1].data["code"] == "busy"
        assert text_of(asyncio.run(transcribe(server.uri, pcm(samples), rate))) == "four"
    finally:
        assert server.stop() == 0
    log = server.log.read_text()
    assert "longer than 2 s" in log and "gone in the middle of a stream" in log
    assert "Traceback" not in log
