"""Audio sources: microphone (pyaudio), WAV file, raw PCM on stdin.

Every source's `read()` returns a block of mono int16 samples as a numpy array (None at the end
of the stream), so the daemon frames them without converting.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevoice.audio import MAX_SAMPLE_RATE, WavInfo, WavReader
from edgevoice.components import Closeable, StageContext
from edgevoice.errors import AudioError
from edgevoice.options import opt

log = logging.getLogger("edgevoice.source")

LIVE_BLOCK_MS = 20  # a file paced like a microphone delivers what a microphone would
FILE_BLOCK_MS = 500  # unpaced: few, large blocks (the default 10 s queue holds 20)


@dataclass(frozen=True)
class MicOptions:
    device: str | int | None = opt(None, "input device: index, or part of its name; null: default")
    sample_rate: int | None = opt(None, "capture rate in Hz; null: the pipeline's rate", min=8000,
                                  max=MAX_SAMPLE_RATE)
    block_ms: int = opt(20, "capture block length, ms", min=5, max=200)


class MicSource(Closeable):
    """Live microphone through PortAudio; 16-bit mono."""

    name = "mic"
    kind = "source"
    Options = MicOptions
    live = True

    def __init__(self, options: MicOptions, ctx: StageContext) -> None:
        self.options = options
        self.sample_rate = options.sample_rate or ctx.sample_rate
        self._pa = None
        self._stream = None
        self.overflows = 0

    def open(self) -> None:
        try:
            import pyaudio
        except ImportError:
            raise AudioError("source mic: pyaudio is not installed: "
                             "`pip install 'edgevoice[mic]'` (needs portaudio19-dev)") from None
        self._pa = pa = portaudio()
        index = self._find_device(pa)
        block = self.sample_rate * self.options.block_ms // 1000
        try:
            with _quiet_sound_libraries():
                self._stream = pa.open(format=pyaudio.paInt16, channels=1,
                                       rate=self.sample_rate, input=True,
                                       input_device_index=index, frames_per_buffer=block)
        except (OSError, ValueError) as exc:
            self.close()
            raise AudioError(f"source mic: cannot open input device {index} at "
                             f"{self.sample_rate} Hz: {exc}") from None
        self._block = block
        self._overflowed = pyaudio.paInputOverflowed

    def _find_device(self, pa) -> int:  # type: ignore[no-untyped-def]
        inputs = list_input_devices(pa)
        if not inputs:
            self.close()
            raise AudioError("source mic: no microphone found (no audio input devices); "
                             "plug one in, or use `--input FILE.wav`")
        want = self.options.device
        if want is None:
            try:
                return int(pa.get_default_input_device_info()["index"])
            except OSError:
                return inputs[0][0]
        if isinstance(want, int):
            if want in [i for i, _ in inputs]:
                return want
        else:
            for i, name in inputs:
                if str(want).lower() in name.lower():
                    return i
        names = ", ".join(f"{i}: {n}" for i, n in inputs)
        self.close()
        raise AudioError(f"source mic: no input device {want!r}; available: {names}")

    def read(self) -> np.ndarray | None:
        assert self._stream is not None
        try:
            data = self._stream.read(self._block, exception_on_overflow=True)
        except OSError as exc:
            if exc.errno != self._overflowed:
                raise AudioError(f"source mic: read failed: {exc}") from None
            self.overflows += 1  # PortAudio's buffer overran: that audio is gone
            if self.overflows in (1, 10, 100) or self.overflows % 1000 == 0:
                log.warning("source mic: input overflowed %d time(s), audio was lost; the "
                            "machine is too busy (try a larger block_ms)", self.overflows)
            data = self._stream.read(self._block, exception_on_overflow=False)
        return np.frombuffer(data, np.int16)

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
        if self._pa is not None:
            self._pa.terminate()
            self._pa = None


def list_input_devices(pa=None) -> list[tuple[int, str]]:  # type: ignore[no-untyped-def]
    """(index, name) of every PortAudio device with input channels."""
    own = pa is None
    if own:
        pa = portaudio()
    try:
        out = []
        for i in range(pa.get_device_count()):
            info = pa.get_device_info_by_index(i)
            if int(info.get("maxInputChannels", 0)) > 0:
                out.append((i, str(info.get("name"))))
        return out
    finally:
        if own:
            pa.terminate()


def portaudio() -> Any:
    """A PyAudio instance, created without the screenfuls ALSA and JACK print while PortAudio
    probes every device they know of (65 lines on a machine with no sound card)."""
    import pyaudio

    # A client that finds no JACK server must not start one (libjack would, by default).
    os.environ.setdefault("JACK_NO_START_SERVER", "1")
    with _quiet_sound_libraries():
        return pyaudio.PyAudio()


# What ALSA, JACK and PortAudio's ALSA host API print on fd 2 while probing or opening devices;
# PortAudio reports the failures that matter itself, as errors we word for the user.
SOUND_LIBRARY_NOISE = (b"ALSA lib ", b"Cannot connect to server ", b"jack server is not running",
                       b"JackShmReadWritePtr", b"Expression '")


def _noise_line(line: bytes) -> bytes | None:
    return None if line.startswith(SOUND_LIBRARY_NOISE) else line


def _quiet_sound_libraries() -> AbstractContextManager[None]:
    from edgevoice.runtime import filtered_stderr  # not at import: it loads the model code

    return filtered_stderr(_noise_line)


@dataclass(frozen=True)
class WavOptions:
    path: str = opt("", "WAV file standing in for the microphone")
    realtime: bool = opt(False, "pace blocks at the speed of real time, like a microphone")
    block_ms: int | None = opt(None, f"block length, ms; null: {LIVE_BLOCK_MS} with realtime, "
                               f"else {FILE_BLOCK_MS}", min=5, max=1000)
    tail_silence_ms: int = opt(0, "silence appended at the end, ms (closes a final utterance)",
                               min=0, max=10000)


class WavSource(Closeable):
    """A WAV file as if it were a microphone; any PCM/float format, downmixed to mono.

    Yields int16 blocks: a 16-bit mono file's samples as stored, any other format converted
    once. Unpaced, it reads large blocks: the queue between the capture thread and processing
    costs the same per block whatever its length, and the daemon cuts frames itself.
    """

    name = "wav"
    kind = "source"
    Options = WavOptions
    live = False

    def __init__(self, options: WavOptions, ctx: StageContext) -> None:
        if not options.path:
            raise AudioError("source wav: `path` is required")
        self.options = options
        self.info: WavInfo | None = None
        self._reader: WavReader | None = None
        self.sample_rate = ctx.sample_rate

    def open(self) -> None:
        self._reader = reader = WavReader(self.options.path)
        self.info = reader.info
        self.sample_rate = reader.info.sample_rate
        self._tail = self.sample_rate * self.options.tail_silence_ms // 1000
        self._pos = 0
        ms = self.options.block_ms or (LIVE_BLOCK_MS if self.options.realtime else FILE_BLOCK_MS)
        self._block = max(1, self.sample_rate * ms // 1000)
        self._t0 = time.monotonic()

    def read(self) -> np.ndarray | None:
        if self.options.realtime:
            delay = self._t0 + self._pos / self.sample_rate - time.monotonic()
            if delay > 0:
                time.sleep(delay)
        assert self._reader is not None, "read() before open()"
        block = self._reader.read_int16(self._block)
        if not len(block):
            if self._tail <= 0:
                return None
            block = np.zeros(min(self._block, self._tail), np.int16)
            self._tail -= len(block)
        self._pos += len(block)
        return block

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None


@dataclass(frozen=True)
class StdinOptions:
    sample_rate: int = opt(16000, "rate of the raw PCM on stdin, Hz", min=8000,
                           max=MAX_SAMPLE_RATE)
    block_ms: int = opt(20, "block length, ms", min=5, max=1000)
    live: bool = opt(False, "true: a live capture (`arecord ... |`): when processing falls "
                     "behind, lose audio by `audio.overflow` instead of making the writer wait")


class StdinSource(Closeable):
    """Raw signed 16-bit little-endian mono PCM on standard input (e.g. from `arecord`).

    A pipe is waited for, as a file is: when processing falls behind, the writer waits, so
    audio piped from a file (`cat x.raw |`) is never lost. `live: true` makes it a microphone.
    """

    name = "stdin"
    kind = "source"
    Options = StdinOptions
    live = False

    def __init__(self, options: StdinOptions, ctx: StageContext) -> None:
        self.options = options
        self.sample_rate = options.sample_rate
        self.live = options.live

    def open(self) -> None:
        try:
            # None when the process started with fd 0 closed (`<&-`): the fd may since belong
            # to another file, so only Python's own stdin object is trusted.
            self._fd = sys.stdin.fileno()
            os.fstat(self._fd)
        except (AttributeError, ValueError, OSError):
            raise AudioError("source stdin: standard input is closed; pipe raw 16-bit PCM "
                             "into edgevoice, e.g. `arecord -t raw -f S16_LE -r 16000 | "
                             "edgevoice run`") from None
        self._bytes = 2 * self.sample_rate * self.options.block_ms // 1000
        self._odd = b""

    def read(self) -> np.ndarray | None:
        # os.read, not sys.stdin.buffer: a thread blocked inside the buffered reader holds its
        # lock, and the interpreter aborts at exit when a signal stops the daemon.
        chunk = os.read(self._fd, self._bytes)
        if not chunk:
            return None
        data = self._odd + chunk
        cut = len(data) - len(data) % 2
        self._odd = data[cut:]
        return np.frombuffer(data[:cut], "<i2")
