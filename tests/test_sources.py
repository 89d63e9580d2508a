"""The WAV source yields int16 blocks: a 16-bit file's samples as stored, large unpaced blocks."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
from support import digit_clip

from edgevoice.audio import to_int16, write_wav
from edgevoice.components import StageContext
from edgevoice.stages.sources import WavOptions, WavSource

RATE = 16000


def _blocks(path: Path, **options: object) -> list[np.ndarray]:
    source = WavSource(WavOptions(path=str(path), **options),  # type: ignore[arg-type]
                       StageContext("test", RATE, RATE // 50))
    source.open()
    blocks = []
    while (block := source.read()) is not None:
        blocks.append(block)
    source.close()
    return blocks


def test_pcm16_file_arrives_as_stored(tmp_path: Path) -> None:
    samples = to_int16(np.tile(digit_clip("4_jackson_8"), 4))  # about 1.6 s
    write_wav(tmp_path / "a.wav", samples, RATE)
    blocks = _blocks(tmp_path / "a.wav", tail_silence_ms=300)
    assert all(b.dtype == np.int16 for b in blocks)
    assert len(samples) > 3 * RATE // 2
    assert {len(b) for b in blocks[:3]} == {RATE // 2}  # unpaced: 500 ms blocks
    audio = np.concatenate(blocks)
    assert np.array_equal(audio[: len(samples)], samples)
    assert len(audio) == len(samples) + RATE * 3 // 10 and not audio[len(samples) :].any()


def test_paced_file_keeps_microphone_blocks(tmp_path: Path) -> None:
    write_wav(tmp_path / "a.wav", np.zeros(RATE // 10, np.float32), RATE)
    assert [len(b) for b in _blocks(tmp_path / "a.wav", realtime=True)] == [RATE // 50] * 5


def test_float_stereo_file_is_converted_once(tmp_path: Path) -> None:
    x = np.linspace(-0.5, 0.5, 1000, dtype=np.float32)
    raw = np.stack((x, x), axis=1).astype("<f4").tobytes()
    header = struct.pack("<4sI4s4sIHHIIHH4sI", b"RIFF", 36 + len(raw), b"WAVE", b"fmt ", 16, 3,
                         2, RATE, RATE * 8, 8, 32, b"data", len(raw))
    (tmp_path / "f.wav").write_bytes(header + raw)
    blocks = _blocks(tmp_path / "f.wav", block_ms=20)
    assert all(b.dtype == np.int16 for b in blocks)
    assert np.array_equal(np.concatenate(blocks), to_int16(x))
