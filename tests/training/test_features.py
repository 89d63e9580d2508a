"""Train/serve parity: the build tool computes exactly the daemon's features."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevoice.audio import read_wav, rechunk, resample
from edgevoice.features import LogMel, LogMelSettings
from edgevoice.training.data import wav_features

SETTINGS = LogMelSettings(sample_rate=16000, n_mels=40, fmax=4000.0,
                          mean=tuple(np.linspace(-9, -4, 40)), std=tuple(np.full(40, 3.0)))


@pytest.fixture
def daemon_audio(fsdd_dir: Path) -> tuple[Path, np.ndarray]:
    wav = fsdd_dir / "7_jackson_3.wav"
    samples, info = read_wav(wav)
    return wav, resample(samples, info.sample_rate, SETTINGS.sample_rate)


def test_build_features_equal_daemon_features(daemon_audio: tuple[Path, np.ndarray]) -> None:
    wav, audio = daemon_audio
    build = wav_features(wav, SETTINGS)
    daemon = LogMel(SETTINGS).compute(audio)  # the daemon on a file: read, resample, LogMel
    assert build.shape == daemon.shape and build.shape[1] == 40 and len(build) > 20
    np.testing.assert_array_equal(build, daemon)


def test_streaming_blocks_match_to_float_rounding(daemon_audio: tuple[Path, np.ndarray]) -> None:
    """Live audio arrives in 10 ms blocks; only float32 summation order differs (~1e-7),
    far below the INT8 input step (~0.03)."""
    wav, audio = daemon_audio
    frontend = LogMel(SETTINGS)
    daemon = np.concatenate([frontend.process(b) for b in rechunk([audio], 160, pad_last=False)])
    build = wav_features(wav, SETTINGS)
    assert build.shape == daemon.shape
    np.testing.assert_allclose(build, daemon, rtol=0, atol=1e-5)
