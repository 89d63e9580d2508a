"""The frontend gives the same features however the audio is split (streaming parity)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from edgevoice.features import LogMel, LogMelSettings, RunningMean, mel_filterbank

# Statistics near the real ones (digits bundle: means -11 to -5, stds 2 to 4).
STATS = LogMelSettings(mean=tuple(np.linspace(-11, -5, 40)), std=tuple(np.linspace(2, 4, 40)))


def _speech_like(seconds: float, seed: int = 1) -> np.ndarray:
    """Pink noise (well above the frontend's floor in every band), its loudness swelling and
    fading four times a second."""
    rng = np.random.default_rng(seed)
    n = int(16000 * seconds)
    spectrum = np.fft.rfft(rng.standard_normal(n)) / np.sqrt(np.maximum(np.arange(n // 2 + 1),
                                                                         n / 16000 * 20))
    noise = np.fft.irfft(spectrum, n)
    swell = 0.2 + np.sin(np.arange(n) * np.pi * 4 / 16000) ** 2
    return (noise / np.abs(noise).max() * swell * 0.2).astype(np.float32)


@pytest.mark.parametrize("settings", [LogMelSettings(), replace(STATS, norm_window_s=0.3)],
                         ids=["plain", "running-mean"])
def test_streaming_equals_whole_signal(settings: LogMelSettings) -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(16000) * 3000).astype(np.int16)
    mel = LogMel(settings)
    whole = mel.compute(x)
    pieces = []
    for size in (1, 17, 160, 333, 999, 4000):
        mel.reset()
        pieces.append(np.concatenate([mel.process(x[i : i + size])
                                      for i in range(0, len(x), size)]))
    assert whole.shape == (98, 40)
    for p in pieces:
        assert p.shape == whole.shape
        assert np.allclose(p, whole, atol=1e-4)


def test_normalisation_is_applied() -> None:
    s = LogMelSettings(mean=tuple([1.0] * 40), std=tuple([2.0] * 40))
    raw = LogMel(LogMelSettings()).compute(np.ones(4000, np.float32) * 0.1)
    norm = LogMel(s).compute(np.ones(4000, np.float32) * 0.1)
    assert np.allclose(norm, (raw - 1.0) / 2.0, atol=1e-5)


def test_filterbank_covers_band_only() -> None:
    s = LogMelSettings(fmax=4000)
    fb = mel_filterbank(s)
    bins = np.fft.rfftfreq(s.n_fft, 1 / s.sample_rate)
    assert fb.shape == (257, 40)
    assert fb[bins > 4000].sum() == 0
    assert (fb.sum(axis=0) > 0).all()


def test_settings_round_trip_through_dict() -> None:
    s = LogMelSettings(mean=(0.5,) * 40, std=(1.5,) * 40)
    assert LogMelSettings.from_dict(s.to_dict()) == s
    on = replace(s, norm_window_s=2.0)
    assert on.to_dict()["norm_window_s"] == 2.0
    assert LogMelSettings.from_dict(on.to_dict()) == on


def test_settings_from_before_the_running_mean_load_and_default_ones_are_written_alike() -> None:
    """A bundle's frontend block from before norm_window_s loads with it off; one that leaves
    it off is written without it, as before, so older daemons still read new bundles."""
    old = {"name": "logmel", "sample_rate": 16000, "win_ms": 25.0, "hop_ms": 10.0,
           "n_fft": 512, "n_mels": 40, "fmin": 20.0, "fmax": 4000.0, "preemphasis": 0.97,
           "floor": 1e-06, "mean": [0.5] * 40, "std": [1.5] * 40}
    s = LogMelSettings.from_dict(old)
    assert s.norm_window_s == 0.0
    assert s.to_dict() == {k: v for k, v in old.items() if k != "name"}


def test_with_the_running_mean_off_features_are_the_global_normalisation_exactly() -> None:
    x = _speech_like(1.0)
    raw = LogMel(LogMelSettings()).compute(x)
    mean, std = np.asarray(STATS.mean, np.float32), np.asarray(STATS.std, np.float32)
    expected = (raw - mean) * (1.0 / np.maximum(std, 1e-3))
    for settings in (STATS, replace(STATS, norm_window_s=0.0)):
        assert np.array_equal(LogMel(settings).compute(x), expected)  # bit for bit
    assert not np.allclose(LogMel(replace(STATS, norm_window_s=0.3)).compute(x), expected,
                           atol=0.1)


def test_the_running_mean_removes_a_gain_after_a_few_windows() -> None:
    """4 x louder is log(16) more in every band: the first frame shows all of it (the running
    mean starts at the training mean), five windows later little of it is left."""
    window, x = 0.3, _speech_like(3.0)
    for settings in (replace(STATS, norm_window_s=window), STATS):
        mel = LogMel(settings)
        offset = (mel.compute(4 * x) - mel.compute(x)) * np.asarray(STATS.std, np.float32)
        assert np.allclose(offset[0], np.log(16.0), atol=0.05)
        late = offset[int(5 * window * 100):]  # e^-5 of it, 0.02, is left
        if settings.norm_window_s:
            assert np.abs(late).max() < 0.05
        else:  # without the running mean the gain stays
            assert np.allclose(late, np.log(16.0), atol=0.05)


def test_the_running_mean_follows_an_exponential_of_its_time_constant() -> None:
    """A band that steps from the training mean to 1 above it: frame t, measured against the
    frames before it, is exp(-t hop / window) above their running mean."""
    feats = np.ones((200, 40), np.float32)
    settings = LogMelSettings(norm_window_s=0.5)
    RunningMean(40, settings.norm_alpha)(feats)
    t = np.arange(200)
    assert np.allclose(feats[:, 7], np.exp(-t * 0.01 / 0.5), atol=1e-5)
    assert feats[0, 7] == 1.0  # the first frame is not measured against itself


def test_reset_starts_the_running_mean_afresh() -> None:
    a, b = 4 * _speech_like(1.0, seed=2), _speech_like(1.0, seed=3)
    mel = LogMel(replace(STATS, norm_window_s=0.3))
    fresh = mel.compute(b)
    mel.process(a)
    carried = mel.process(b)
    mel.reset()
    assert np.array_equal(mel.process(b), fresh)
    assert not np.allclose(carried[5:20], fresh[5:20], atol=0.1)  # the state did carry over


def test_a_negative_running_mean_window_is_refused() -> None:
    with pytest.raises(ValueError, match="norm_window_s -1.0 is negative"):
        LogMel(LogMelSettings(norm_window_s=-1.0))
