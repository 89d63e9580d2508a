"""Audio formats, WAV reading (files and streams), resampling and re-chunking. No devices."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.errors import AudioError

MIN_SAMPLE_RATE = 8000
MAX_SAMPLE_RATE = 384000  # the highest rate audio hardware records; beyond it a header is damaged
MAX_CHANNELS = 64
_MAX_FMT_BYTES = 4096  # a 'fmt ' chunk is 16 to 40 bytes
_PCM = 1
_FLOAT = 3
_EXTENSIBLE = 0xFFFE
_STREAMING_SIZES = (0, 0xFFFFFFFF)


@dataclass(frozen=True)
class WavInfo:
    """What a WAV file held before conversion (for messages and reports)."""

    sample_rate: int
    channels: int
    sample_format: str  # "pcm8", "pcm16", "pcm24", "pcm32", "float32", "float64"
    frames: int  # as the header declares; 0 for a stream of unknown length

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def describe(self) -> str:
        chans = "mono" if self.channels == 1 else f"{self.channels} channels"
        return f"{self.sample_rate} Hz {chans} {self.sample_format}"


def _parse_fmt(body: bytes, where: str) -> tuple[int, int, int, int]:
    if len(body) < 16:
        raise AudioError(f"{where}: 'fmt ' chunk is {len(body)} bytes, expected at least 16")
    fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", body, 0)
    if fmt == _EXTENSIBLE and len(body) >= 26:
        fmt = struct.unpack_from("<H", body, 24)[0]
    return fmt, channels, rate, bits


def _decode_samples(raw: bytes, fmt: int, bits: int, where: str) -> tuple[np.ndarray, str]:
    """Raw interleaved sample bytes -> float32 in [-1, 1] and a format name."""
    if fmt == _PCM and bits == 16:
        return np.frombuffer(raw, "<i2").astype(np.float32) / 32768.0, "pcm16"
    if fmt == _PCM and bits == 8:
        return (np.frombuffer(raw, np.uint8).astype(np.float32) - 128.0) / 128.0, "pcm8"
    if fmt == _PCM and bits == 24:
        b = np.frombuffer(raw, np.uint8).reshape(-1, 3).astype(np.int32)
        v = b[:, 0] | (b[:, 1] << 8) | (b[:, 2] << 16)
        v = np.where(v >= 1 << 23, v - (1 << 24), v)
        return v.astype(np.float32) / float(1 << 23), "pcm24"
    if fmt == _PCM and bits == 32:
        return np.frombuffer(raw, "<i4").astype(np.float32) / float(1 << 31), "pcm32"
    if fmt == _FLOAT and bits in (32, 64):
        x = np.frombuffer(raw, "<f4" if bits == 32 else "<f8").astype(np.float32)
        return np.clip(np.nan_to_num(x), -1.0, 1.0), f"float{bits}"
    kind = {1: "PCM", 3: "float", 6: "A-law", 7: "mu-law", 2: "ADPCM"}.get(fmt, f"format {fmt}")
    raise AudioError(
        f"{where}: unsupported WAV encoding ({kind}, {bits} bits); "
        "convert it to 16-bit PCM, e.g. `sox in.wav -b 16 -e signed out.wav`"
    )


class WavReader:
    """Streams a WAV file as mono float32 in [-1, 1], whatever its PCM/float format and
    channels, without loading it whole. The file is read front to back, so a stream works as
    well as a file: a pipe, a FIFO, `/dev/stdin`, `<(sox ... -t wav -)`. The header is checked
    on open: errors (not a WAV, empty, truncated, unsupported encoding, a rate no recorder
    makes) raise AudioError naming the file. Opening a FIFO waits for its writer."""

    def __init__(self, path: str | Path) -> None:
        self.where = where = str(path)
        try:
            # Unbuffered: a pipe's short reads are joined here, and a capture thread blocked
            # in read() holds no buffer lock that closing the file would wait on.
            self._f = open(path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        except FileNotFoundError:
            raise AudioError(f"{where}: no such file") from None
        except OSError as exc:
            raise AudioError(f"{where}: cannot read ({exc.strerror})") from None
        try:
            self._open()
        except BaseException:
            self._f.close()
            raise

    def _open(self) -> None:
        f, where = self._f, self.where
        size: int | None = None  # unknown for a stream
        if f.seekable():
            size = f.seek(0, 2)
            f.seek(0)
        head = self._read_exact(12)
        if not head:
            raise AudioError(f"{where}: file is empty")
        if len(head) < 12 or head[:4] not in (b"RIFF", b"RF64") or head[8:12] != b"WAVE":
            raise AudioError(f"{where}: not a WAV file (no RIFF/WAVE header)")
        fmt_info: tuple[int, int, int, int] | None = None
        pos = 12
        while len(chunk := self._read_exact(8)) == 8:
            cid, csize = struct.unpack("<4sI", chunk)
            body = pos + 8
            if cid == b"data":
                if fmt_info is None:
                    raise AudioError(f"{where}: 'data' chunk comes before any 'fmt ' chunk")
                nbytes: int | None = csize
                if csize in _STREAMING_SIZES:  # written by a streaming recorder: read to the end
                    nbytes = None if size is None else size - body
                elif size is not None and body + csize > size:
                    raise AudioError(f"{where}: truncated: header declares {csize} bytes of "
                                     f"audio, file holds {size - body}")
                self._setup(fmt_info, nbytes)
                return
            if cid == b"fmt ":
                if csize > _MAX_FMT_BYTES:
                    raise AudioError(f"{where}: 'fmt ' chunk claims {csize} bytes: not a WAV "
                                     "header (damaged?)")
                fmt_body = self._read_exact(csize)
                if len(fmt_body) < csize:
                    raise AudioError(f"{where}: truncated inside the 'fmt ' chunk")
                fmt_info = _parse_fmt(fmt_body, where)
                self._skip(csize & 1)
            else:
                self._skip(csize + (csize & 1))
            pos = body + csize + (csize & 1)
        if fmt_info is None:
            raise AudioError(f"{where}: WAV file has no 'fmt ' chunk")
        raise AudioError(f"{where}: WAV file has no 'data' chunk (truncated?)")

    def _setup(self, fmt_info: tuple[int, int, int, int], nbytes: int | None) -> None:
        fmt, channels, rate, bits = fmt_info
        where = self.where
        if not 1 <= channels <= MAX_CHANNELS:
            raise AudioError(f"{where}: WAV header says {channels} channels; edgevoice reads "
                             f"1 to {MAX_CHANNELS} (damaged header?)")
        if rate < MIN_SAMPLE_RATE:
            raise AudioError(
                f"{where}: sample rate {rate} Hz is below the {MIN_SAMPLE_RATE} Hz speech needs")
        if rate > MAX_SAMPLE_RATE:
            raise AudioError(f"{where}: sample rate {rate} Hz is above the {MAX_SAMPLE_RATE} Hz "
                             "any recorder makes: the WAV header is damaged")
        self._fmt, self._bits, self._width = fmt, bits, max(bits // 8, 1) * channels
        name = _decode_samples(b"", fmt, bits, where)[1]  # unsupported encodings fail now
        frames = 0 if nbytes is None else nbytes // self._width
        if nbytes is not None and frames == 0:
            raise AudioError(f"{where}: WAV file holds no audio samples")
        self._left = None if nbytes is None else frames * self._width
        self.info = WavInfo(rate, channels, name, frames)

    def read(self, frames: int) -> np.ndarray:
        """Up to `frames` mono samples; an empty array at the end of the data."""
        samples, _ = _decode_samples(self._read_raw(frames), self._fmt, self._bits, self.where)
        channels = self.info.channels
        if channels > 1:
            samples = samples.reshape(-1, channels).mean(axis=1, dtype=np.float32)
        return samples

    def read_int16(self, frames: int) -> np.ndarray:
        """Up to `frames` mono int16 samples; a 16-bit mono file's bytes are used as they are,
        without a round trip through float."""
        if self._fmt == _PCM and self._bits == 16 and self.info.channels == 1:
            return np.frombuffer(self._read_raw(frames), "<i2")
        return to_int16(self.read(frames))

    def _read_raw(self, frames: int) -> bytes:
        n = frames * self._width if self._left is None else min(frames * self._width,
                                                                 self._left)
        raw = self._read_exact(n)
        if self._left is not None:
            self._left -= len(raw)
        return raw[: len(raw) - len(raw) % self._width]

    def _read_exact(self, n: int) -> bytes:
        """`n` bytes, fewer only at the end: a pipe hands over what its writer wrote so far."""
        try:
            data = self._f.read(n) or b""
            if len(data) == n or not data:
                return data
            parts = [data]
            got = len(data)
            while got < n and (more := self._f.read(n - got)):
                parts.append(more)
                got += len(more)
        except OSError as exc:  # EIO from a failing disk, say
            raise AudioError(f"{self.where}: read failed ({exc.strerror or exc})") from None
        return b"".join(parts)

    def _skip(self, n: int) -> None:
        if self._f.seekable():
            self._f.seek(n, 1)
            return
        while n > 0 and (got := len(self._read_exact(min(n, 1 << 16)))):
            n -= got

    def close(self) -> None:
        self._f.close()

    def __enter__(self) -> WavReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_wav(path: str | Path) -> tuple[np.ndarray, WavInfo]:
    """Read a whole WAV file (or stream) as mono float32 in [-1, 1] (see WavReader)."""
    with WavReader(path) as reader:
        info = reader.info
        blocks = [reader.read(info.frames or info.sample_rate)]
        while len(blocks[-1]):  # a stream of unknown length
            blocks.append(reader.read(info.sample_rate * 10))
        samples = np.concatenate(blocks) if len(blocks) > 2 else blocks[0]
        return np.ascontiguousarray(samples, dtype=np.float32), info


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM; float input is taken as [-1, 1]."""
    Path(path).write_bytes(wav_bytes(samples, sample_rate))


def wav_bytes(samples: np.ndarray, sample_rate: int) -> bytes:
    """A whole mono 16-bit PCM WAV file; float input is taken as [-1, 1]."""
    raw = to_int16(samples).astype("<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(raw), b"WAVE", b"fmt ", 16, _PCM, 1,
        sample_rate, sample_rate * 2, 2, 16, b"data", len(raw),
    )
    return header + raw


def to_int16(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768.0).astype(np.int16)


def to_float(samples: np.ndarray) -> np.ndarray:
    if samples.dtype == np.int16:
        return samples.astype(np.float32) / 32768.0
    return samples.astype(np.float32, copy=False)


def resample(samples: np.ndarray, rate_in: int, rate_out: int) -> np.ndarray:
    """Resample a whole float32 signal (high quality, soxr)."""
    if rate_in == rate_out:
        return samples.astype(np.float32, copy=False)
    import soxr

    return soxr.resample(samples.astype(np.float32), rate_in, rate_out, quality="HQ")


class StreamResampler:
    """Streaming resampler for live sources; identity when the rates match."""

    def __init__(self, rate_in: int, rate_out: int) -> None:
        self.rate_in, self.rate_out = rate_in, rate_out
        self._stream = None
        if rate_in != rate_out:
            import soxr

            self._stream = soxr.ResampleStream(rate_in, rate_out, 1, dtype="float32")

    def process(self, samples: np.ndarray, last: bool = False) -> np.ndarray:
        if self._stream is None:  # the same rate: the samples as they are, int16 or float
            return samples
        return self._stream.resample_chunk(to_float(samples), last=last)


class Framer:
    """Cuts a stream of 1-D blocks of any length into frames of exactly `size` samples; what
    is left over waits for the next block. The one place audio is cut into frames."""

    def __init__(self, size: int, dtype: Any = np.int16) -> None:
        self.size = size
        self._rest = np.zeros(0, dtype)

    @property
    def pending(self) -> int:
        return len(self._rest)

    def push(self, block: np.ndarray) -> np.ndarray:
        """Every whole frame the stream now allows, as a [frames, size] view."""
        x = np.concatenate((self._rest, block)) if len(self._rest) else block
        n = len(x) // self.size
        self._rest = x[n * self.size :]
        return x[: n * self.size].reshape(n, self.size)

    def pad(self) -> np.ndarray:
        """End of stream: the leftover samples as one frame padded with zeros (or no frame)."""
        if not len(self._rest):
            return self._rest.reshape(0, self.size)
        rest = self._rest
        self._rest = rest[:0]
        return np.concatenate((rest, np.zeros(self.size - len(rest), rest.dtype)))[None]

    def clear(self) -> None:
        self._rest = self._rest[:0]


def rechunk(blocks: Iterable[np.ndarray], size: int, pad_last: bool = True) -> Iterator[np.ndarray]:
    """Re-cut a stream of 1-D blocks into blocks of exactly `size` samples."""
    framer: Framer | None = None
    for block in blocks:
        framer = framer or Framer(size, block.dtype)
        yield from framer.push(block)
    if framer is not None and pad_last:
        yield from framer.pad()
