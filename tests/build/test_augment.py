from __future__ import annotations

import numpy as np
import pytest

from edgevoice.build import augment as A

RATE = 16000


def _tone(seconds: float = 1.0, hz: float = 200.0) -> np.ndarray:
    t = np.arange(int(RATE * seconds)) / RATE
    return (0.5 * np.sin(2 * np.pi * hz * t)).astype(np.float32)


def _peak_hz(x: np.ndarray) -> float:
    spec = np.abs(np.fft.rfft(x * np.hanning(len(x))))
    return float(np.argmax(spec) * RATE / len(x))


def test_speed_tempo_pitch() -> None:
    x = _tone()
    assert len(A.speed(x, 1.25, RATE)) == pytest.approx(RATE / 1.25, rel=0.01)
    y = A.tempo(x, 1.25, RATE)
    assert len(y) == pytest.approx(RATE / 1.25, rel=0.01)
    assert _peak_hz(y) == pytest.approx(200, abs=5)  # tempo keeps the pitch
    z = A.pitch(x, 3.0, RATE)
    assert len(z) == pytest.approx(RATE, rel=0.02)
    assert _peak_hz(z) == pytest.approx(200 * 2 ** 0.25, abs=6)


@pytest.mark.parametrize("snr", [0.0, 10.0])
def test_noise_is_mixed_at_the_requested_snr(snr: float) -> None:
    x = _tone()
    noise = A.coloured_noise("pink", len(x), np.random.default_rng(1))
    y = A.add_noise(x, noise, snr)
    measured = 10 * np.log10(np.mean(x**2) / np.mean((y - x) ** 2))
    assert measured == pytest.approx(snr, abs=0.5)


def test_reverb_babble_specaugment_shapes() -> None:
    rng = np.random.default_rng(0)
    x = _tone()
    assert A.reverb(x, rng, RATE).shape == x.shape
    b = A.babble(RATE, rng, [_tone(0.3, 150), _tone(0.4, 250)])
    assert b.shape == (RATE,) and np.sqrt(np.mean(b**2)) == pytest.approx(1.0, rel=0.01)
    feats = rng.standard_normal((100, 40)).astype(np.float32)
    masked = A.spec_augment(feats, rng, 2, 8, 2, 10)
    assert masked.shape == feats.shape and (masked == 0).sum() > 0
