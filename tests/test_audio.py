"""WAV reading in every format a user may hand us, and the errors for what we cannot read."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest

from edgevoice.audio import StreamResampler, read_wav, rechunk, resample, write_wav
from edgevoice.errors import AudioError


def wav_bytes(raw: bytes, *, fmt: int = 1, channels: int = 1, rate: int = 16000,
              bits: int = 16, data_size: int | None = None) -> bytes:
    block = channels * bits // 8
    fmt_chunk = struct.pack("<HHIIHH", fmt, channels, rate, rate * block, block, bits)
    size = len(raw) if data_size is None else data_size
    body = b"WAVE" + b"fmt " + struct.pack("<I", 16) + fmt_chunk + b"data" + \
        struct.pack("<I", size) + raw
    return b"RIFF" + struct.pack("<I", len(body)) + body


def tone(n: int = 1600, amp: float = 0.5) -> np.ndarray:
    return (amp * np.sin(np.arange(n) * 2 * np.pi * 440 / 16000)).astype(np.float32)


def test_pcm16_round_trip(tmp_path: Path) -> None:
    x = tone()
    write_wav(tmp_path / "a.wav", x, 16000)
    y, info = read_wav(tmp_path / "a.wav")
    assert (info.sample_rate, info.channels, info.sample_format) == (16000, 1, "pcm16")
    assert np.abs(x - y).max() < 1e-4


@pytest.mark.parametrize("bits,fmt,name,encode", [
    (8, 1, "pcm8", lambda x: (x * 127 + 128).astype(np.uint8).tobytes()),
    (32, 3, "float32", lambda x: x.astype("<f4").tobytes()),
    (64, 3, "float64", lambda x: x.astype("<f8").tobytes()),
    (32, 1, "pcm32", lambda x: (x * 2**31).astype("<i4").tobytes()),
])
def test_other_encodings_are_converted(tmp_path: Path, bits, fmt, name, encode) -> None:
    x = tone()
    p = tmp_path / "x.wav"
    p.write_bytes(wav_bytes(encode(x), fmt=fmt, bits=bits))
    y, info = read_wav(p)
    assert info.sample_format == name
    assert np.abs(x - y).max() < 0.02


def test_stereo_is_downmixed(tmp_path: Path) -> None:
    x = tone()
    inter = np.stack([x, 0.5 * x[::-1]], axis=1)  # different channels: the mean is heard
    p = tmp_path / "s.wav"
    p.write_bytes(wav_bytes((inter * 32767).astype("<i2").tobytes(), channels=2))
    y, info = read_wav(p)
    assert info.channels == 2 and len(y) == len(x)
    assert np.abs((x + 0.5 * x[::-1]) / 2 - y).max() < 1e-3


@pytest.mark.parametrize("content,message", [
    (b"", "file is empty"),
    (b"hello, this is not audio at all", "not a WAV file"),
    (wav_bytes(b"\x00\x01" * 100, data_size=10_000), "truncated"),
    (wav_bytes(b"", data_size=0)[:-8], "no 'data' chunk"),
    (wav_bytes(b"\x00\x00" * 100, rate=4000), "below the 8000 Hz"),
    (wav_bytes(b"\x00\x00" * 100, fmt=2, bits=4), "unsupported WAV encoding (ADPCM"),
    (wav_bytes(b""), "holds no audio"),
])
def test_bad_files_name_the_file_and_the_problem(tmp_path: Path, content, message) -> None:
    p = tmp_path / "bad.wav"
    p.write_bytes(content)
    with pytest.raises(AudioError) as err:
        read_wav(p)
    assert str(p) in str(err.value) and message in str(err.value)


def test_extensible_24bit_and_odd_chunks(tmp_path: Path) -> None:
    """WAVE_FORMAT_EXTENSIBLE, 24-bit samples and an odd-sized chunk before the data."""
    x = tone()
    pcm = (x * (2**23 - 1)).astype("<i4")
    raw = pcm.view(np.uint8).reshape(-1, 4)[:, :3].tobytes()
    ext = struct.pack("<HHIIHHHHIH14s", 0xFFFE, 1, 16000, 48000, 3, 24, 22, 24, 4, 1,
                      b"\x00\x00\x00\x00\x10\x00\x80\x00\x00\xaa\x008\x9bq")
    odd = b"LIST" + struct.pack("<I", 3) + b"abc" + b"\x00"  # padded to an even size
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(ext)) + ext + odd + b"data" + \
        struct.pack("<I", len(raw)) + raw
    p = tmp_path / "ext.wav"
    p.write_bytes(b"RIFF" + struct.pack("<I", len(body)) + body)
    y, info = read_wav(p)
    assert info.sample_format == "pcm24" and len(y) == len(x)
    assert np.abs(x - y).max() < 1e-5


def test_missing_file() -> None:
    with pytest.raises(AudioError, match="nowhere.wav: no such file"):
        read_wav("nowhere.wav")


def test_streaming_recorder_header_reads_to_end(tmp_path: Path) -> None:
    raw = (tone() * 32767).astype("<i2").tobytes()
    p = tmp_path / "live.wav"
    p.write_bytes(wav_bytes(raw, data_size=0xFFFFFFFF))
    y, _ = read_wav(p)
    assert len(y) == 1600


def test_rechunk_exact_sizes_and_padding() -> None:
    blocks = [np.arange(7), np.arange(5), np.arange(9)]
    out = list(rechunk(blocks, 4))
    assert [len(b) for b in out] == [4] * 6
    assert np.array_equal(np.concatenate(out)[:21], np.concatenate(blocks))
    assert out[-1][-3:].tolist() == [0, 0, 0]


def test_resample_keeps_duration_and_pitch() -> None:
    x = tone(8000)[::2].copy()  # 440 Hz at 8 kHz for 0.5 s
    y = resample(x, 8000, 16000)
    assert abs(len(y) - 8000) <= 1
    spectrum = np.abs(np.fft.rfft(y))
    peak_hz = np.argmax(spectrum) * 16000 / len(y)
    assert abs(peak_hz - 440) < 5


def test_stream_resampler_matches_length() -> None:
    r = StreamResampler(48000, 16000)
    x = np.random.default_rng(0).standard_normal(48000).astype(np.float32) * 0.1
    out = [r.process(x[i : i + 960]) for i in range(0, 48000, 960)]
    out.append(r.process(np.zeros(0, np.float32), last=True))
    assert abs(sum(len(o) for o in out) - 16000) <= 2
