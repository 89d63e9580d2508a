"""Audio formats, WAV reading, resampling and re-chunking. Pure functions, no devices."""

from __future__ import annotations

import struct
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevoice.errors import AudioError

MIN_SAMPLE_RATE = 8000
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
    frames: int

    @property
    def duration(self) -> float:
        return self.frames / self.sample_rate if self.sample_rate else 0.0

    def describe(self) -> str:
        chans = "mono" if self.channels == 1 else f"{self.channels} channels"
        return f"{self.sample_rate} Hz {chans} {self.sample_format}"


def _chunks(data: bytes, where: str) -> Iterator[tuple[bytes, int, int, bool]]:
    """Yield (chunk id, offset of body, declared size, truncated) for each RIFF chunk."""
    pos = 12
    while pos + 8 <= len(data):
        cid, size = struct.unpack_from("<4sI", data, pos)
        body = pos + 8
        truncated = body + size > len(data)
        yield cid, body, size, truncated
        pos = body + size + (size & 1)


def _parse_fmt(data: bytes, body: int, size: int, where: str) -> tuple[int, int, int, int]:
    if size < 16:
        raise AudioError(f"{where}: 'fmt ' chunk is {size} bytes, expected at least 16")
    fmt, channels, rate, _, _, bits = struct.unpack_from("<HHIIHH", data, body)
    if fmt == _EXTENSIBLE and size >= 26:
        fmt = struct.unpack_from("<H", data, body + 24)[0]
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


def read_wav(path: str | Path) -> tuple[np.ndarray, WavInfo]:
    """Read a WAV file as mono float32 in [-1, 1], whatever its PCM/float format and channels.

    Errors (not a WAV, empty, truncated, unsupported encoding) raise AudioError naming the file.
    """
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise AudioError(f"{where}: no such file") from None
    except OSError as exc:
        raise AudioError(f"{where}: cannot read ({exc.strerror})") from None
    if not data:
        raise AudioError(f"{where}: file is empty")
    if len(data) < 12 or data[:4] not in (b"RIFF", b"RF64") or data[8:12] != b"WAVE":
        raise AudioError(f"{where}: not a WAV file (no RIFF/WAVE header)")
    fmt_info: tuple[int, int, int, int] | None = None
    for cid, body, size, truncated in _chunks(data, where):
        if cid == b"fmt ":
            if truncated:
                raise AudioError(f"{where}: truncated inside the 'fmt ' chunk")
            fmt_info = _parse_fmt(data, body, size, where)
        elif cid == b"data":
            if fmt_info is None:
                raise AudioError(f"{where}: 'data' chunk comes before any 'fmt ' chunk")
            fmt, channels, rate, bits = fmt_info
            if size in _STREAMING_SIZES:
                size = len(data) - body  # written by a streaming recorder: read to the end
            elif truncated:
                raise AudioError(
                    f"{where}: truncated: header declares {size} bytes of audio, "
                    f"file holds {len(data) - body}"
                )
            return _to_mono(data[body : body + size], fmt, channels, rate, bits, where)
    if fmt_info is None:
        raise AudioError(f"{where}: WAV file has no 'fmt ' chunk")
    raise AudioError(f"{where}: WAV file has no 'data' chunk (truncated?)")


def _to_mono(
    raw: bytes, fmt: int, channels: int, rate: int, bits: int, where: str
) -> tuple[np.ndarray, WavInfo]:
    if channels < 1:
        raise AudioError(f"{where}: WAV header says {channels} channels")
    if rate < MIN_SAMPLE_RATE:
        raise AudioError(
            f"{where}: sample rate {rate} Hz is below the {MIN_SAMPLE_RATE} Hz speech needs"
        )
    width = max(bits // 8, 1) * channels
    raw = raw[: len(raw) - len(raw) % width]
    samples, name = _decode_samples(raw, fmt, bits, where)
    if channels > 1:
        samples = samples.reshape(-1, channels).mean(axis=1)
    info = WavInfo(rate, channels, name, len(samples))
    if len(samples) == 0:
        raise AudioError(f"{where}: WAV file holds no audio samples")
    return np.ascontiguousarray(samples, dtype=np.float32), info


def write_wav(path: str | Path, samples: np.ndarray, sample_rate: int) -> None:
    """Write mono 16-bit PCM; float input is taken as [-1, 1]."""
    pcm = to_int16(samples)
    raw = pcm.astype("<i2").tobytes()
    header = struct.pack(
        "<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(raw), b"WAVE", b"fmt ", 16, _PCM, 1,
        sample_rate, sample_rate * 2, 2, 16, b"data", len(raw),
    )
    Path(path).write_bytes(header + raw)


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
        x = to_float(samples)
        if self._stream is None:
            return x
        return self._stream.resample_chunk(x, last=last)


def rechunk(blocks: Iterable[np.ndarray], size: int, pad_last: bool = True) -> Iterator[np.ndarray]:
    """Re-cut a stream of 1-D blocks into blocks of exactly `size` samples."""
    pending: list[np.ndarray] = []
    have = 0
    for block in blocks:
        pending.append(block)
        have += len(block)
        if have < size:
            continue
        buf = np.concatenate(pending)
        n = len(buf) // size * size
        for start in range(0, n, size):
            yield buf[start : start + size]
        rest = buf[n:]
        pending, have = [rest], len(rest)
    if have and pad_last:
        buf = np.concatenate(pending)
        yield np.concatenate([buf, np.zeros(size - len(buf), dtype=buf.dtype)])
