"""The Wyoming speech-to-text service: `describe` -> `info`; `transcribe`, `audio-start`,
`audio-chunk`..., `audio-stop` -> `transcript-start`, `transcript-chunk`, `transcript-stop` and
`transcript`.

Each client has its own recognizer (taken from a pool, so a new connection per utterance, as
Home Assistant makes them, builds nothing) and its streams run on worker threads, so one
client's decode never stalls another's events. A client that breaks the protocol or a limit
gets an `error` event and is disconnected; the server and the other clients carry on.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from concurrent.futures import ThreadPoolExecutor

from wyoming.asr import Transcribe, Transcript, TranscriptChunk, TranscriptStart, TranscriptStop
from wyoming.audio import AudioChunk, AudioFormat, AudioStart, AudioStop
from wyoming.error import Error
from wyoming.event import Event
from wyoming.info import AsrModel, AsrProgram, Attribution, Describe, Info
from wyoming.ping import Ping, Pong
from wyoming.server import AsyncEventHandler

from edgevoice import __version__
from edgevoice.bundle import Bundle
from edgevoice.config import Settings
from edgevoice.plugins import Registry
from edgevoice.transcribe import Transcriber
from edgevoice_wyoming.limits import Limits
from edgevoice_wyoming.protocol import ChunkDecoder, ClientError, audio_format, read_event
from edgevoice_wyoming.session import Session

log = logging.getLogger("edgevoice.wyoming")
LINGER_SECONDS = 2.0  # after an error event, how long the client's input is read and dropped


class Service:
    """What every client shares: the settings, the loaded bundle, the answer to `describe`,
    idle recognizers and the worker threads."""

    def __init__(self, settings: Settings, registry: Registry, languages: list[str],
                 limits: Limits | None = None) -> None:
        # The first recognizer is built now (loading the bundle), so a broken config or bundle
        # fails at start-up, not at the first client.
        first = Transcriber(settings, registry)
        self.settings, self.registry, self.bundle = settings, registry, first.bundle
        self.languages = languages
        self.limits = limits or Limits()
        self.info = describe(self.bundle, languages)
        self.executor = ThreadPoolExecutor(self.limits.max_clients, "wyoming-asr")
        self._idle = [first]
        self._clients = 0
        self._numbers = itertools.count(1)

    def handler(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> Handler:
        """The `handler_factory` of wyoming's AsyncServer."""
        return Handler(self, reader, writer)

    def new_transcriber(self) -> Transcriber:
        return Transcriber(self.settings, self.registry, self.bundle)

    async def take_transcriber(self) -> Transcriber:
        if self._idle:
            return self._idle.pop()
        return await asyncio.get_running_loop().run_in_executor(self.executor,
                                                                self.new_transcriber)

    def give_back(self, transcriber: Transcriber) -> None:
        self._idle.append(transcriber)

    def admit(self) -> tuple[bool, int]:
        """A connection is served if fewer than max_clients are; also its number, for logs."""
        number = next(self._numbers)
        if self._clients >= self.limits.max_clients:
            return False, number
        self._clients += 1
        return True, number

    def leave(self) -> None:
        self._clients -= 1

    def close(self) -> None:
        self.executor.shutdown(wait=True, cancel_futures=True)


def describe(bundle: Bundle, languages: list[str]) -> Info:
    """The `info` answer: one ASR program, edgevoice, with the bundle as its model."""
    words = vocabulary(bundle)
    about = str(bundle.raw.get("description") or bundle.name)
    if words:
        about += "; words: " + " ".join(words)
    attribution = Attribution(name="edgevoice", url="")
    model = AsrModel(name=bundle.name, attribution=attribution, installed=True,
                     description=about, version=bundle.version, languages=languages)
    return Info(asr=[AsrProgram(
        name="edgevoice", attribution=attribution, installed=True,
        description="offline speech recognition for small devices", version=__version__,
        models=[model], supports_transcript_streaming=True)])


def vocabulary(bundle: Bundle) -> list[str]:
    """The words of the bundle's language model (what `vocabulary: lm` allows), if it has one."""
    if bundle.lm_file is None:
        return []
    from edgevoice.lm import SPECIAL, read_arpa

    return sorted(w for w in read_arpa(bundle.lm_file, ngrams=False).word_lines
                  if w not in SPECIAL)


class Handler(AsyncEventHandler):
    """One connection: at most one stream at a time, on the client's own recognizer."""

    def __init__(self, service: Service, reader: asyncio.StreamReader,
                 writer: asyncio.StreamWriter) -> None:
        super().__init__(reader, writer)
        self.service = service
        self.peer = ""
        self._transcriber: Transcriber | None = None
        self._session: Session | None = None
        self._decoder: ChunkDecoder | None = None
        self._language: str | None = None

    async def run(self) -> None:
        """Events until the client leaves; a ClientError is sent back as an `error` event
        and ends the connection. (Replaces the library's loop, whose reader trusts the
        lengths a client announces and drops malformed events without a word.)"""
        admitted, number = self.service.admit()
        peer = self.writer.get_extra_info("peername")
        self.peer = f"client {number}" + (f" ({peer[0]}:{peer[1]})"
                                          if isinstance(peer, tuple) else "")
        try:
            if not admitted:
                raise ClientError(f"busy: {self.service.limits.max_clients} clients are "
                                  "connected already (edgevoice-wyoming --max-clients)", "busy")
            await self._serve()
        except ClientError as exc:
            log.warning("%s: %s; closing the connection", self.peer, exc)
            await self._send_error(exc)
        except ConnectionError as exc:
            log.info("%s: connection lost (%s)", self.peer, exc)
        except Exception:  # a bug here ends this connection only, said in the log
            log.exception("%s: failed; closing the connection", self.peer)
            await self._send_error(ClientError("internal error (see the server's log)",
                                               "internal"))
        finally:
            await self.disconnect()
            if admitted:
                self.service.leave()
            self.writer.close()

    async def _serve(self) -> None:
        while True:
            idle = self.service.limits.idle_seconds if self._session else None
            try:
                event = await asyncio.wait_for(read_event(self.reader), idle)
            except asyncio.TimeoutError:
                raise ClientError(f"nothing for {idle:g} s in the middle of an audio stream",
                                  "timeout") from None
            if event is None or not await self.handle_event(event):
                return

    async def handle_event(self, event: Event) -> bool:
        kind = event.type
        if Describe.is_type(kind):
            await self.write_event(self.service.info.event())
        elif Ping.is_type(kind):
            await self.write_event(Pong(text=event.data.get("text")).event())
        elif Transcribe.is_type(kind):
            language = Transcribe.from_event(event).language
            self._language = language if isinstance(language, str) else None
        elif AudioStart.is_type(kind):
            if self._session is not None:
                raise ClientError("audio-start: the previous stream has not ended "
                                  "(audio-stop first)")
            await self._start(audio_format(event.data, "audio-start"))
        elif AudioChunk.is_type(kind):
            if self._session is None:  # some clients skip audio-start
                await self._start(audio_format(event.data, "audio-chunk"))
            await self._feed(event)
        elif AudioStop.is_type(kind):
            await self._stop()
        else:
            log.debug("%s: ignored a %r event", self.peer, kind)
        return True

    async def disconnect(self) -> None:
        if self._session is not None:
            session, self._session = self._session, None
            log.info("%s: gone in the middle of a stream (%.1f s of audio); dropped",
                     self.peer, session.samples / session.rate)
            if not await session.cancel():
                self._transcriber = None  # it failed: not handed to the next client
        if self._transcriber is not None:
            self.service.give_back(self._transcriber)
            self._transcriber = None

    # -- a stream ----------------------------------------------------------------------------
    async def _start(self, fmt: AudioFormat) -> None:
        if self._transcriber is None:
            self._transcriber = await self.service.take_transcriber()
        self._decoder = ChunkDecoder(fmt)
        self._session = Session(self._transcriber, fmt.rate, self.peer, self.service.executor)

    async def _feed(self, event: Event) -> None:
        assert self._session is not None and self._decoder is not None
        samples = self._decoder.decode(event)
        limit = self.service.limits.max_seconds
        if self._session.samples + len(samples) > limit * self._session.rate:
            raise ClientError(f"audio-chunk: the stream is longer than {limit:g} s "
                              "(edgevoice-wyoming --max-seconds); it is dropped", "too-long")
        try:
            await self._session.feed(samples)
        except Exception as exc:
            raise self._failed(exc) from exc

    async def _stop(self) -> None:
        session, self._session = self._session, None
        if session is None:
            raise ClientError("audio-stop without audio-start")
        t0 = time.perf_counter()
        try:
            transcript = await session.finish()
        except Exception as exc:
            raise self._failed(exc) from exc
        text = "" if transcript.rejected else transcript.text
        language = self._language or self.service.languages[0]
        log.info("%s: %r%s (%.2f s of audio; %.0f ms after audio-stop)", self.peer,
                 transcript.text, " rejected" if transcript.rejected else "",
                 transcript.duration, (time.perf_counter() - t0) * 1000)
        # Streamed transcripts are sent once the stream has ended: the beam revises its best
        # guess while audio comes, and a chunk once sent cannot be taken back.
        events = [TranscriptStart(language=language).event()]
        if text:
            events.append(TranscriptChunk(text).event())
        events += [TranscriptStop().event(), Transcript(text, language=language).event()]
        for e in events:
            await self.write_event(e)

    def _failed(self, exc: Exception) -> ClientError:
        log.error("%s: recognition failed", self.peer, exc_info=exc)
        self._transcriber = None  # not handed to the next client
        return ClientError(f"recognition failed: {exc}", "recognition-failed")

    async def _send_error(self, exc: ClientError) -> None:
        """The error event, then a lingering close: a client still sending would otherwise
        get a reset that can destroy the error event before it reads it."""
        try:
            await self.write_event(Error(text=str(exc), code=exc.code).event())
            if self.writer.can_write_eof():
                self.writer.write_eof()
            await asyncio.wait_for(self._discard_input(), LINGER_SECONDS)
        except (ConnectionError, RuntimeError, asyncio.TimeoutError):
            pass  # the client has gone, or would not stop

    async def _discard_input(self) -> None:
        while await self.reader.read(1 << 16):
            pass
