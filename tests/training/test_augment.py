from __future__ import annotations

import numpy as np
import pytest

from edgevoice.training import augment as A

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


def _band_of(hz: float, settings) -> int:
    from edgevoice.features import LogMel

    return int(np.argmax(LogMel(settings).compute(_tone(0.5, hz)).mean(axis=0)))


@pytest.mark.parametrize("factor", [0.88, 1.12])
def test_vtlp_moves_a_formant_like_a_shorter_or_longer_vocal_tract(factor: float) -> None:
    """Warping the features of a 1 kHz tone by `factor` puts its energy where the frontend
    puts a tone at 1 kHz x factor, with the frontend's normalisation in place."""
    from edgevoice.features import LogMel, LogMelSettings

    settings = LogMelSettings(mean=tuple(np.linspace(-8, -2, 40)), std=tuple(np.full(40, 2.0)))
    feats = LogMel(settings).compute(_tone(0.5, 1000.0))
    warped = A.vtlp(feats, settings, factor)
    assert warped.shape == feats.shape and warped.dtype == np.float32
    assert int(np.argmax(warped.mean(axis=0))) == _band_of(1000.0 * factor, settings)
    assert np.allclose(A.vtlp(feats, settings, 1.0), feats, atol=1e-4)
    # The warp acts on the log-mel energies, not on the normalised values: warping the raw
    # features and normalising afterwards gives the same result.
    plain = LogMelSettings()
    raw = LogMel(plain).compute(_tone(0.5, 1000.0))
    mean, std = np.array(settings.mean, np.float32), np.array(settings.std, np.float32)
    assert np.allclose(warped, (A.vtlp(raw, plain, factor) - mean) / std, atol=1e-4)


@pytest.mark.parametrize("factor", [0.88, 1.12])
def test_vtlp_after_the_running_mean_is_the_running_mean_of_the_warped_voice(
        factor: float) -> None:
    """With frontend.norm_window_s on, the warped features are those the frontend would give
    the warped voice: its running mean starts at the training mean, not at a warped one."""
    from dataclasses import replace

    from edgevoice.features import LogMel, LogMelSettings, RunningMean

    off = LogMelSettings(mean=tuple(np.linspace(-11, -5, 40)), std=tuple(np.linspace(2, 4, 40)))
    on = replace(off, norm_window_s=0.5)
    x = _tone(1.0, 1000.0) + _tone(1.0, 300.0) * np.linspace(0, 1, RATE, dtype=np.float32)
    expected = A.vtlp(LogMel(off).compute(x), off, factor)
    RunningMean(40, on.norm_alpha)(expected)
    warped = A.vtlp(LogMel(on).compute(x), on, factor)
    assert warped.dtype == np.float32
    assert np.allclose(warped, expected, atol=1e-4)


def test_augmenter_warps_only_with_a_frontend_and_a_probability() -> None:
    from edgevoice.features import LogMelSettings
    from edgevoice.training.recipe import AugmentSettings

    feats = np.random.default_rng(3).standard_normal((50, 40)).astype(np.float32)
    on = AugmentSettings(p_warp=1.0, warp=(1.1, 1.1), p_specaugment=0.0)
    warped = A.Augmenter(on, RATE, frontend=LogMelSettings()).features(
        feats, np.random.default_rng(0))
    assert np.allclose(warped, A.vtlp(feats, LogMelSettings(), 1.1))
    off = AugmentSettings(p_warp=0.0, p_specaugment=0.0)
    same = A.Augmenter(off, RATE, frontend=LogMelSettings()).features(
        feats, np.random.default_rng(0))
    assert np.array_equal(same, feats)
