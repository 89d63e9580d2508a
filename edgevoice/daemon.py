"""Daemon lifecycle: capture thread, bounded queue, processing loop, signals, systemd.

The capture thread only reads the source and appends to a bounded queue, so it never waits on
processing; a live source that outruns processing loses audio by the configured overflow policy
and the loss is counted and logged. A file or a pipe is not live: it waits instead of dropping.

Exit codes (`run()`): 0 the input ended and everything was delivered; 2 the source failed;
3 transcripts could not be delivered within `delivery_timeout`; 4 audio was dropped because
processing fell behind; 128 + N stopped by signal N (143 SIGTERM, 130 SIGINT), whatever was
undelivered is spooled by the sinks.
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.audio import Framer, StreamResampler, to_int16
from edgevoice.bundle import Bundle, load_bundle
from edgevoice.commands import Command, CommandQueue, Listen, Reload, SetHotwords
from edgevoice.components import build
from edgevoice.config import Settings
from edgevoice.contracts import WantsStats
from edgevoice.errors import AudioError, EdgevoiceError, SinkError
from edgevoice.health import StatsClock, Tally
from edgevoice.messages import Listening, Message
from edgevoice.pipeline import Pipeline, notify
from edgevoice.plugins import Registry
from edgevoice.recognizer import stage_context

log = logging.getLogger("edgevoice.daemon")

STALL_SECONDS = 10.0  # a live source silent this long is hung: stop feeding the watchdog
RELOAD_SECONDS = 2.0  # reloads closer together than this are coalesced into one
STOP_FLUSH_SECONDS = 5.0  # delivery allowed after a stop signal (a second signal cuts it short)
EXIT_SOURCE_FAILED, EXIT_UNDELIVERED, EXIT_AUDIO_DROPPED = 2, 3, 4


STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)


class Stopped(BaseException):  # noqa: N818 - like KeyboardInterrupt, not an error
    """A stop signal arrived while the daemon was starting (a FIFO waiting for its writer, a
    model loading): start-up is abandoned, like KeyboardInterrupt, not an `except Exception`."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.exit_code = 128 + signum


class Feeder:
    """Source blocks -> pipeline frames: resampling (skipped when rates match) and re-cutting."""

    def __init__(self, source_rate: int, pipeline: Pipeline) -> None:
        self.pipeline = pipeline
        self.resampler = StreamResampler(source_rate, pipeline.bundle.sample_rate)
        self.framer = Framer(pipeline.frame_samples)

    def feed(self, block: np.ndarray | None) -> bool:
        """Feed one block (None: end of stream); True once the stream has ended."""
        if block is not None:
            for frame in self.framer.push(to_int16(self.resampler.process(block))):
                self.pipeline.feed(frame)
            return False
        tail = to_int16(self.resampler.process(np.zeros(0, np.float32), last=True))
        for frame in (*self.framer.push(tail), *self.framer.pad()):
            self.pipeline.feed(frame)
        self.pipeline.finish()
        return True


def sd_notify(message: str) -> None:
    """Tell systemd about our state (Type=notify); silent when not under systemd."""
    address = os.environ.get("NOTIFY_SOCKET")
    if not address:
        return
    if address.startswith("@"):
        address = "\0" + address[1:]
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as s:
            s.connect(address)
            s.sendall(message.encode())
    except OSError as exc:
        log.debug("sd_notify failed: %s", exc)


class AudioQueue:
    """Bounded queue of audio blocks between the capture thread and processing."""

    def __init__(self, max_samples: int, live: bool, overflow: str) -> None:
        self.max_samples, self.live, self.overflow = max_samples, live, overflow
        self._blocks: deque[np.ndarray | None] = deque()
        self._samples = 0
        self._cond = threading.Condition()
        self.dropped_samples = 0
        self.closed = False

    def put(self, block: np.ndarray | None) -> None:
        """None marks the end of the stream."""
        with self._cond:
            n = 0 if block is None else len(block)
            if block is not None and self._samples + n > self.max_samples:
                if not self.live:
                    while self._samples + n > self.max_samples and not self.closed:
                        self._cond.wait(0.1)
                elif self.overflow == "drop_newest":
                    self.dropped_samples += n
                    return
                else:
                    while self._samples + n > self.max_samples and self._blocks:
                        old = self._blocks.popleft()
                        if old is not None:
                            self._samples -= len(old)
                            self.dropped_samples += len(old)
            self._blocks.append(block)
            self._samples += n
            self._cond.notify_all()

    @property
    def samples(self) -> int:
        """Audio waiting to be processed, in samples."""
        return self._samples

    def get(self, timeout: float) -> tuple[bool, np.ndarray | None]:
        """(True, block) or (True, None) at end of stream; (False, None) on timeout."""
        with self._cond:
            if not self._blocks:
                self._cond.wait(timeout)
            if not self._blocks:
                return False, None
            block = self._blocks.popleft()
            self._samples -= 0 if block is None else len(block)
            self._cond.notify_all()
            return True, block

    def close(self) -> None:
        with self._cond:
            self.closed = True
            self._cond.notify_all()


class Daemon:
    """Owns the source, the pipeline and the sinks; `run()` returns the exit code."""

    def __init__(self, settings: Settings, registry: Registry,
                 reload_settings: Callable[[], tuple[Settings, Registry]] | None = None
                 ) -> None:
        self.settings = settings
        self.registry = registry
        self.reload_settings = reload_settings
        self.stop_event = threading.Event()
        self.reload_requested = threading.Event()
        self.commands = CommandQueue()
        self.listening = True
        self.capture_error: Exception | None = None
        self.heartbeat = time.monotonic()  # last time the capture thread was alive
        self.sinks: list[Any] = []
        self.tally = Tally()  # transcripts published, for Stats; outlives reloads
        self.hotwords: list[tuple[str, float]] | None = None  # set over MQTT: kept on reload
        self.last_reload = -RELOAD_SECONDS
        self.pipeline: Pipeline | None = None
        self.source: Any = None
        self.signals: list[int] = []  # stop signals received, in order
        self._starting = False

    @property
    def stop_code(self) -> int | None:
        """128 + the first stop signal's number, once one has arrived."""
        return 128 + self.signals[0] if self.signals else None

    # -- start-up ---------------------------------------------------------------------------
    def start(self) -> None:
        """Open sinks, model and source; a stop signal meanwhile raises Stopped."""
        self._starting = True
        try:
            self._install_signals()
            self._start()
        finally:
            self._starting = False

    def _hold_stop_signals(self) -> list[int] | None:
        """Block the stop signals in this (main) thread while start-up starts threads (paho's,
        a sink's): they inherit the block and keep it, so the kernel can deliver a stop signal
        only to this thread, where it interrupts a FIFO's open(); delivered to another thread
        it would leave that open() waiting for a writer. The old mask, to restore."""
        if threading.current_thread() is not threading.main_thread():
            return None
        return list(signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS))

    def _start(self) -> None:
        held = self._hold_stop_signals()
        try:
            bundle = self._build()
        finally:
            if held is not None:  # a signal that came meanwhile is delivered here, now
                signal.pthread_sigmask(signal.SIG_SETMASK, held)
        self.source.open()
        log.info("model %s", bundle.describe())
        notify(self.registry.hook.on_startup, config=self.settings)

    def _build(self) -> Bundle:
        """Sinks (opened), pipeline and source (not yet opened)."""
        bundle = self._load_bundle(self.settings)
        ctx = stage_context(self.settings, bundle, self.commands)
        for choice in self.settings.sinks:
            sink = build(choice, self.registry, ctx)
            try:
                sink.open()
            except EdgevoiceError:
                raise
            except Exception as exc:
                raise SinkError(f"{choice.path} (sink {choice.name!r}): cannot start: "
                                f"{type(exc).__name__}: {exc}") from exc
            self.sinks.append(sink)
        self.pipeline = Pipeline(self.settings, self.registry, bundle, [self.tally, *self.sinks],
                                 ctx=ctx)
        self.source = build(self.settings.source, self.registry, ctx)
        return bundle

    def _load_bundle(self, settings: Settings) -> Bundle:
        models = settings.core.models_dir
        return load_bundle(settings.core.bundle, Path(models) if models else None)

    # -- commands (MQTT cmd/#, signals), applied on the processing thread ---------------------
    def _apply(self, command: Command) -> None:
        if isinstance(command, Reload):
            self.reload_requested.set()
        elif isinstance(command, Listen):
            if command.on != self.listening:
                self.listening = command.on
                log.info("listening %s", "on" if command.on else "off")
        elif isinstance(command, SetHotwords):
            self._set_hotwords(list(command.hotwords))

    def _set_hotwords(self, hotwords: list[tuple[str, float]]) -> None:
        assert self.pipeline is not None
        try:
            done = self.pipeline.recognizer.set_hotwords(hotwords)
        except EdgevoiceError as exc:  # a phrase the model cannot spell
            log.error("hotwords: rejected: %s", exc)
            return
        if not done:
            log.warning("hotwords: the %s decoder does not support hot words; use `beam`",
                        self.settings.stages["decoder"].name)
            return
        self.hotwords = hotwords
        log.info("hotwords set: %s", ", ".join(p for p, _ in hotwords) or "(none)")

    def _install_signals(self) -> None:
        if threading.current_thread() is not threading.main_thread():
            return
        signal.signal(signal.SIGTERM, self._on_stop_signal)
        signal.signal(signal.SIGINT, self._on_stop_signal)
        signal.signal(signal.SIGHUP, lambda *_: self.commands.put(Reload()))

    def _on_stop_signal(self, signum: int, frame: object) -> None:
        self.signals.append(signum)
        self.stop_event.set()
        if self._starting:  # a blocking open() would retry after the handler: leave it
            raise Stopped(signum)

    # -- running ------------------------------------------------------------------------------
    def _capture(self, queue: AudioQueue) -> None:
        """Capture thread: read the source into the queue, reopening a failed live device."""
        delay = 0.5
        while not self.stop_event.is_set():
            self.heartbeat = time.monotonic()
            try:
                block = self.source.read()
            except AudioError as exc:
                if not self.source.live:
                    self._capture_failed(exc, queue)
                    return
                log.error("%s; reopening in %.1f s", exc, delay)
                self._reopen_source(delay)
                delay = min(delay * 2, 30.0)
                continue
            except Exception as exc:  # a plugin source's bug must end the run, not hang it
                self._capture_failed(exc, queue)
                return
            queue.put(block)
            if block is None:
                return
            delay = 0.5

    def _capture_failed(self, exc: Exception, queue: AudioQueue) -> None:
        if not isinstance(exc, EdgevoiceError):
            exc = AudioError(f"source {self.settings.source.name}: read failed: "
                             f"{type(exc).__name__}: {exc}")
        self.capture_error = exc
        queue.put(None)

    def _reopen_source(self, delay: float) -> None:
        self.source.close()
        while not self.stop_event.wait(delay):
            self.heartbeat = time.monotonic()
            try:
                self.source.open()
                log.info("audio source reopened")
                return
            except AudioError as exc:
                log.error("%s; retrying", exc)
                delay = min(delay * 2, 30.0)

    def run(self) -> int:
        """Process until end of input or a stop signal; returns the process exit code."""
        core = self.settings.core
        queue = AudioQueue(int(self.source.sample_rate * core.audio.queue_seconds),
                           self.source.live, core.audio.overflow)
        self.heartbeat = time.monotonic()
        capture = threading.Thread(target=self._capture, args=(queue,), name="capture",
                                   daemon=True)
        capture.start()
        sd_notify("READY=1\nSTATUS=listening")
        log.info("listening (%s)", self.settings.source.name)
        reason = "error"
        try:
            reason = "end of input" if self._process(queue) else "signal"
        finally:
            self.stop_event.set()
            queue.close()
            capture.join(timeout=2.0)  # the source is closed only once nobody reads it
            code = self._shutdown(reason, queue)
        return code

    def _watchdog_ok(self) -> bool:
        """Ping systemd's watchdog only while the capture thread is alive and delivering."""
        return not self.source.live or time.monotonic() - self.heartbeat < STALL_SECONDS

    def _process(self, queue: AudioQueue) -> bool:
        """The processing loop; True when the input ended, False when stopped."""
        assert self.pipeline is not None
        watchdog = int(os.environ.get("WATCHDOG_USEC", "0")) / 2e6
        last_ping = last_warning = time.monotonic()
        drops_seen = 0
        listening: bool | None = None  # what the sinks were last told
        feeder = Feeder(self.source.sample_rate, self.pipeline)
        clock = self._stats_clock(last_ping)
        while not self.stop_event.is_set():
            got, block = queue.get(timeout=0.25)
            now = time.monotonic()
            if watchdog and now - last_ping > watchdog and self._watchdog_ok():
                sd_notify("WATCHDOG=1")
                last_ping = now
            if queue.dropped_samples > drops_seen:
                lost = (queue.dropped_samples - drops_seen) / self.source.sample_rate
                drops_seen = queue.dropped_samples
                self.pipeline.skip(lost, "audio_dropped")
                if now - last_warning > 10.0:
                    log.warning("processing fell behind: %.2f s of audio dropped so far",
                                drops_seen / self.source.sample_rate)
                    last_warning = now
            for command in self.commands.drain():
                self._apply(command)
            if listening != self.listening:
                if listening:
                    self.pipeline.skip(0.0, "listen_off")
                listening = self.listening
                self._publish(Listening(self.settings.site_id, listening, time.time()))
            if clock is not None and clock.due(now):
                self._publish(clock.stats(
                    now, tally=self.tally, queued_samples=queue.samples,
                    dropped_samples=queue.dropped_samples, listening=listening,
                    model=self.pipeline.model))
            if self.reload_requested.is_set() and self.pipeline.utt is None \
                    and now - self.last_reload >= RELOAD_SECONDS:
                self.last_reload = now
                self._reload()
                feeder = Feeder(self.source.sample_rate, self.pipeline)
            if not got:
                continue
            if not listening and block is not None:
                self.pipeline.skip(len(block) / self.source.sample_rate, "listen_off")
                continue
            if clock is not None and block is not None:
                clock.samples += len(block)
            if feeder.feed(block):
                return True
        return False

    def _stats_clock(self, now: float) -> StatsClock | None:
        """Stats at the shortest interval a sink asks for; None when none does."""
        wanted = [s.stats_interval for s in self.sinks
                  if isinstance(s, WantsStats) and s.stats_interval > 0]
        if not wanted:
            return None
        return StatsClock(self.settings.site_id, min(wanted), self.source.sample_rate, now)

    def _publish(self, message: Message) -> None:
        assert self.pipeline is not None
        self.pipeline.publish(message)  # its handling of a failing sink, not a second one

    def _reload(self) -> None:
        self.reload_requested.clear()
        if self.reload_settings is None:
            return
        sd_notify("RELOADING=1")
        assert self.pipeline is not None
        old = self.settings
        try:
            settings, registry = self.reload_settings()
            bundle = self._load_bundle(settings)
            pipeline = Pipeline(settings, registry, bundle, [self.tally, *self.sinks],
                                stream_time=self.pipeline.stream_time,
                                ctx=stage_context(settings, bundle, self.commands))
        except EdgevoiceError as exc:
            log.error("reload failed, keeping the running configuration: %s", exc)
        else:
            self.pipeline.close()
            self.pipeline, self.settings, self.registry = pipeline, settings, registry
            log.info("reloaded: model %s", bundle.describe())
            if self.hotwords is not None:  # what a broker client set outlives a reload
                self._set_hotwords(self.hotwords)
            fixed = [k for k in ("site_id", "source", "sinks", "audio", "plugin_dirs")
                     if getattr(old.core, k) != getattr(settings.core, k)]
            if fixed:
                log.warning("reload: changes to %s take effect only after a restart",
                            ", ".join(fixed))
        sd_notify("READY=1")

    def _shutdown(self, reason: str, queue: AudioQueue) -> int:
        sd_notify("STOPPING=1")
        codes = []
        if self.capture_error is not None:
            log.error("%s", self.capture_error)
            codes.append(EXIT_SOURCE_FAILED)
        end_of_input = reason == "end of input"
        timeout = self.settings.core.delivery_timeout if end_of_input else STOP_FLUSH_SECONDS
        for sink in self.sinks:
            # After the input ended any stop signal ends the wait; after a stop, a second one.
            left = self._flush(sink, timeout, patience=0 if end_of_input else 1)
            if left is None:
                log.warning("stopped by a signal while delivering: sink %s keeps what is "
                            "undelivered for the next start", sink.name)
                break
            if left:
                err = SinkError(f"sink {sink.name}: {left} message(s) could not be delivered "
                                f"within {timeout:g} s")
                log.error("%s", err)
                notify(self.registry.hook.on_error, error=err, where=f"sink {sink.name}")
                if end_of_input:
                    codes.append(EXIT_UNDELIVERED)
        if queue.dropped_samples:  # an error where it makes the run incomplete
            (log.error if end_of_input else log.warning)(
                "%.2f s of audio were dropped because processing fell behind",
                queue.dropped_samples / self.source.sample_rate)
            codes.append(EXIT_AUDIO_DROPPED)
        notify(self.registry.hook.on_shutdown, reason=reason)
        self.close()
        # A stop by signal is how a service ends (systemd's SIGTERM): its code says only that,
        # and the unit counts it a success (SuccessExitStatus=143).
        if self.capture_error is None and self.stop_code is not None:
            return self.stop_code
        return codes[0] if codes else 0

    def _flush(self, sink: Any, timeout: float, patience: int) -> int | None:
        """`sink.flush(timeout)`, on a helper thread so that more than `patience` stop signals
        end the wait at once (None then); the sink's close() spools what is left."""
        result: list[int] = []
        done = threading.Event()

        def flush() -> None:
            try:
                result.append(sink.flush(timeout))
            except Exception as exc:  # a sink's bug: counted as nothing delivered
                log.error("sink %s: flush failed: %s: %s", sink.name, type(exc).__name__, exc)
            finally:
                done.set()

        threading.Thread(target=flush, name=f"flush-{sink.name}", daemon=True).start()
        while not done.wait(0.05):
            if len(self.signals) > patience:
                return None
        return result[0] if result else 1

    def close(self) -> None:
        if self.source is not None:
            self.source.close()
        if self.pipeline is not None:
            self.pipeline.close()
        for sink in self.sinks:
            try:
                sink.close()
            except Exception as exc:  # closing must not hide the real outcome
                log.debug("sink %s close: %s", sink.name, exc)
