"""The frontend gives the same features however the audio is split (streaming parity)."""

from __future__ import annotations

import numpy as np

from edgevoice.features import LogMel, LogMelSettings, mel_filterbank


def test_streaming_equals_whole_signal() -> None:
    rng = np.random.default_rng(1)
    x = (rng.standard_normal(16000) * 3000).astype(np.int16)
    mel = LogMel(LogMelSettings())
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
