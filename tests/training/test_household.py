"""Household sounds: levels, lengths, peakiness, where their energy lies, and seeds."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest

from edgevoice.training import augment as A
from edgevoice.training import household as H

RATE = 16000
SEEDS = range(8)


def _rms(x: np.ndarray) -> float:
    return float(np.sqrt(np.mean(x.astype(np.float64) ** 2)))


def _share(x: np.ndarray, low: float, high: float) -> float:
    """Share of the energy of `x` between `low` and `high` Hz (padded to 1 s: 1 Hz bins)."""
    size = max(len(x), RATE)
    power = np.abs(np.fft.rfft(x, size)) ** 2
    f = np.fft.rfftfreq(size, 1 / RATE)
    return float(power[(f >= low) & (f < high)].sum() / power.sum())


def _density_db(x: np.ndarray, low: float, high: float) -> float:
    """Mean power per FFT bin between `low` and `high` Hz, in dB."""
    power = np.abs(np.fft.rfft(x)) ** 2
    f = np.fft.rfftfreq(len(x), 1 / RATE)
    return float(10 * np.log10(power[(f >= low) & (f < high)].mean() + 1e-30))


def _frame_rms(x: np.ndarray, frame: int = 160) -> np.ndarray:
    return np.sqrt(np.mean(x[: len(x) // frame * frame].reshape(-1, frame) ** 2, axis=1))


def _line_share(x: np.ndarray) -> float:
    """How much a spectrum is lines: per 128 ms frame, the share of the 5 % strongest bins
    (60-4000 Hz) in a spectrum divided by its own 31-bin moving average; median over frames.
    Noise of any colour gives about 0.2, notes and chords far more."""
    frames = x[: len(x) // 2048 * 2048].reshape(-1, 2048) * np.hanning(2048)
    power = np.abs(np.fft.rfft(frames, axis=1)) ** 2
    smooth = np.stack([np.convolve(p, np.ones(31) / 31, "same") for p in power])
    f = np.fft.rfftfreq(2048, 1 / RATE)
    flat = np.sort((power / (smooth + 1e-12))[:, (f > 60) & (f < 4000)], axis=1)[:, ::-1]
    top = int(0.05 * flat.shape[1])
    return float(np.median(flat[:, :top].sum(axis=1) / flat.sum(axis=1)))


def _tone(seconds: float, hz: float = 200.0, level: float = 0.5) -> np.ndarray:
    t = np.arange(int(seconds * RATE)) / RATE
    return (level * np.sin(2 * np.pi * hz * t)).astype(np.float32)


@pytest.mark.parametrize("seed", SEEDS)
def test_impulsive_is_unit_rms_peaky_and_never_silent(seed: int) -> None:
    x = H.impulsive(3 * RATE, np.random.default_rng(seed), RATE)
    assert x.dtype == np.float32 and x.shape == (3 * RATE,)
    assert _rms(x) == pytest.approx(1.0, rel=1e-3)
    kurtosis = np.mean(x.astype(np.float64) ** 4)  # Gaussian noise: 3
    assert kurtosis > 10 and np.max(np.abs(x)) > 8  # Gaussian: peak about 4 x RMS here
    frames = _frame_rms(x)
    assert 20 * np.log10(np.percentile(frames, 90) / np.percentile(frames, 10)) > 15
    assert frames.min() > 1e-3  # the room tone between events


def test_impulsive_of_a_fraction_of_a_second_still_has_an_event() -> None:
    x = H.impulsive(800, np.random.default_rng(3), RATE)
    assert x.shape == (800,) and _rms(x) == pytest.approx(1.0, rel=1e-3)
    assert np.max(np.abs(x)) > 3


# (kind, low Hz, high Hz, least share of the energy in that band)
EVENT_BANDS = [
    ("clatter", 1000, 6500, 0.75),  # metallic partials
    ("knock", 0, 1000, 0.95),  # a low thump with a short click
    ("footsteps", 0, 1000, 0.95),  # dull thuds
    ("door_slam", 0, 200, 0.3),  # the boom ...
    ("door_slam", 2000, 8000, 0.015),  # ... and the broadband crack and rattle
]


@pytest.mark.parametrize(("kind", "low", "high", "least"), EVENT_BANDS)
def test_each_event_kind_sounds_where_it_should(kind: str, low: float, high: float,
                                                least: float) -> None:
    for seed in range(20):
        event = H.EVENTS[kind](np.random.default_rng(seed), RATE)
        assert np.max(np.abs(event)) == pytest.approx(1.0, rel=1e-4)
        assert _share(event, low, high) >= least, seed


@pytest.mark.parametrize("seed", range(40))
def test_onset_is_short_and_peak_normalised(seed: int) -> None:
    sound = H.onset(np.random.default_rng(seed), RATE)
    assert sound.dtype == np.float32
    assert 0.005 * RATE <= len(sound) <= 0.6 * RATE
    assert np.max(np.abs(sound)) == pytest.approx(1.0, rel=1e-4)


# (kind, shortest s, longest s, low Hz, high Hz, least share of the energy in that band)
ONSET_SHAPES = [
    ("click", 0.005, 0.03, 150, 8000, 0.75),
    ("lip_smack", 0.005, 0.08, 150, 8000, 0.65),
    ("breath", 0.15, 0.6, 150, 5000, 0.8),
    ("bump", 0.05, 0.26, 0, 300, 0.95),
    ("creak", 0.15, 0.6, 150, 8000, 0.75),
]


@pytest.mark.parametrize(("kind", "shortest", "longest", "low", "high", "least"), ONSET_SHAPES)
def test_each_onset_kind_has_its_length_and_band(kind: str, shortest: float, longest: float,
                                                  low: float, high: float, least: float) -> None:
    for seed in range(20):
        sound = H.ONSETS[kind](np.random.default_rng(seed), RATE)
        assert shortest * RATE <= len(sound) <= longest * RATE + 1, seed
        assert _share(sound, low, high) >= least, seed


def test_breath_rises_and_falls_smoothly() -> None:
    for seed in range(10):
        sound = H.breath(np.random.default_rng(seed), RATE)
        edge = len(sound) // 20
        middle = _rms(sound[len(sound) // 4 : -len(sound) // 4])
        assert _rms(sound[:edge]) < 0.25 * middle and _rms(sound[-edge:]) < 0.25 * middle


@pytest.mark.parametrize("seed", SEEDS)
def test_music_is_unit_rms_tonal_and_changes_chords(seed: int) -> None:
    x = H.music(5 * RATE, np.random.default_rng(seed), RATE)
    assert x.dtype == np.float32 and x.shape == (5 * RATE,)
    assert _rms(x) == pytest.approx(1.0, rel=1e-3)
    assert _line_share(x) > 0.4
    window = np.hanning(1600)
    strongest = {int(np.argmax(np.abs(np.fft.rfft(x[i : i + 1600] * window))))
                 for i in range(0, len(x) - 1600, 1600)}
    assert len(strongest) >= 4  # chords change every 0.2-1 s


def test_the_tonality_measure_tells_noise_from_music() -> None:
    for kind in ("white", "pink", "brown"):
        assert _line_share(A.coloured_noise(kind, 5 * RATE, np.random.default_rng(0))) < 0.3


def _generators() -> dict[str, Callable[[np.random.Generator], np.ndarray]]:
    speech = np.concatenate((np.zeros(RATE // 4, np.float32), _tone(0.75)))
    return {
        "impulsive": lambda rng: H.impulsive(RATE, rng, RATE),
        "music": lambda rng: H.music(RATE, rng, RATE),
        "onset": lambda rng: H.onset(rng, RATE),
        "channel": lambda rng: H.channel(speech, rng, RATE),
        "place_onset": lambda rng: H.place_onset(speech, rng, RATE),
    }


@pytest.mark.parametrize("name", list(_generators()))
def test_same_seed_same_sound_other_seed_other_sound(name: str) -> None:
    make = _generators()[name]
    a, b = make(np.random.default_rng(7)), make(np.random.default_rng(7))
    assert np.array_equal(a, b)
    others = [make(np.random.default_rng(seed)) for seed in (8, 9)]
    assert all(len(o) != len(a) or not np.allclose(o, a) for o in others)


@pytest.mark.parametrize("seed", range(60))
def test_channel_keeps_length_type_and_range(seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = (A.coloured_noise("pink", RATE, rng) * rng.uniform(0.01, 0.6)).astype(np.float32)
    y = H.channel(x, rng, RATE)
    assert y.dtype == np.float32 and y.shape == x.shape
    assert np.all(np.isfinite(y)) and np.max(np.abs(y)) <= 1.0
    assert not np.array_equal(y, x)


def test_telephone_band_removes_lows_and_highs() -> None:
    x = A.coloured_noise("white", RATE, np.random.default_rng(0)) * 0.1
    y = H.band_limit(x, np.random.default_rng(0), RATE, "telephone")
    inside = _density_db(y, 500, 3000)
    assert _density_db(y, 20, 150) < inside - 25
    assert _density_db(y, 4500, 8000) < inside - 25
    assert np.max(np.abs(y)) == pytest.approx(np.max(np.abs(x)), rel=1e-4)  # level kept


@pytest.mark.parametrize("kind", ["lowpass", "highpass"])
def test_dull_and_thin_mics_lose_their_ends(kind: str) -> None:
    x = A.coloured_noise("white", RATE, np.random.default_rng(0)) * 0.1
    for seed in range(5):
        y = H.band_limit(x, np.random.default_rng(seed), RATE, kind)
        lost = (20, 80) if kind == "highpass" else (7400, 8000)
        assert _density_db(y, *lost) < _density_db(y, 1000, 2500) - 20


def test_equaliser_colours_within_its_range() -> None:
    x = A.coloured_noise("white", 4 * RATE, np.random.default_rng(0)) * 0.1
    edges = np.geomspace(100, 6000, 13)
    coloured = 0
    for seed in range(20):
        y = H.equalise(x, np.random.default_rng(seed), RATE)
        change = [_density_db(y, lo, hi) - _density_db(x, lo, hi)
                  for lo, hi in zip(edges[:-1], edges[1:], strict=True)]
        spread = max(change) - min(change)
        assert spread < 62  # three +-10 dB filters at most, plus the level restored
        coloured += spread > 2
    assert coloured >= 15


def test_mulaw_and_coarse_quantisation_leave_few_levels() -> None:
    x = _tone(1.0, 311.0)
    for seed in range(5):
        assert len(np.unique(H.codec(x, np.random.default_rng(seed), RATE, "mulaw"))) <= 255
        assert len(np.unique(H.codec(x, np.random.default_rng(seed), RATE, "bits"))) <= 1025
    assert len(np.unique(x)) > 5000


def test_narrowband_codec_removes_everything_above_4khz() -> None:
    x = A.coloured_noise("white", RATE, np.random.default_rng(0)) * 0.1
    for kind in ("narrowband", "g711"):
        y = H.codec(x, np.random.default_rng(0), RATE, kind)
        assert y.shape == x.shape
        assert _density_db(y, 4400, 8000) < _density_db(y, 500, 3000) - 40


def test_hard_clipping_flattens_peaks_and_soft_clipping_rounds_them() -> None:
    x = _tone(0.5)
    hard = H.clip(x, np.random.default_rng(0), RATE, "hard")
    assert np.mean(np.abs(hard) >= 0.999 * np.max(np.abs(hard))) > 0.1
    soft = H.clip(x, np.random.default_rng(0), RATE, "soft")
    assert np.max(np.abs(soft)) / _rms(soft) < 1.38  # a sine's crest factor is 1.414
    assert np.max(np.abs(soft)) == pytest.approx(0.5, rel=1e-4)


@pytest.mark.parametrize("seed", SEEDS)
def test_agc_lifts_quiet_parts_and_pumps_after_loud_ones(seed: int) -> None:
    loud, quiet = _tone(0.5, level=0.5), _tone(3.0, level=0.01)
    y = H.agc(np.concatenate((loud, quiet)), np.random.default_rng(seed), RATE)
    start = len(loud)
    lift = 20 * np.log10(_rms(y[-RATE // 10 :]) / _rms(quiet)) - 20 * np.log10(
        _rms(y[RATE // 10 : start - RATE // 10]) / _rms(loud))
    assert lift > 5
    early, late = y[start + RATE // 20 : start + 3 * RATE // 20], y[-RATE // 10 :]
    assert 20 * np.log10(_rms(late) / _rms(early)) > 1  # the gain recovers slowly


def test_onset_goes_into_the_silence_before_speech() -> None:
    x = np.concatenate((np.zeros(RATE, np.float32), _tone(1.0)))
    for seed in range(10):
        y = H.place_onset(x, np.random.default_rng(seed), RATE, (-12.0, -12.0))
        assert y.dtype == np.float32 and y.shape == x.shape
        assert np.array_equal(y[RATE:], x[RATE:])
        assert np.max(np.abs(y[:RATE])) == pytest.approx(0.5 * 10 ** (-12 / 20), rel=1e-4)
        assert np.flatnonzero(y)[0] <= RATE // 2


def test_onset_is_put_in_front_of_speech_that_starts_at_once() -> None:
    x = _tone(1.0)
    for seed in range(10):
        y = H.place_onset(x, np.random.default_rng(seed), RATE)
        pad = len(y) - len(x)
        assert 0 < pad <= 0.3 * RATE
        assert np.array_equal(y[pad + int(0.6 * RATE) :], x[int(0.6 * RATE) :])
        assert np.all(y[:pad] != 0)  # quiet noise, not digital silence
        added = y.copy()
        added[pad:] -= x
        assert np.max(np.abs(added)) >= 0.999 * 0.5 * 10 ** (-30 / 20)  # the sound is there


def test_a_silent_clip_gets_its_sound_at_full_scale_and_keeps_its_length() -> None:
    for seconds in (0.3, 1.0):
        x = np.zeros(int(seconds * RATE), np.float32)
        for seed in range(10):
            y = H.place_onset(x, np.random.default_rng(seed), RATE, (-6.0, -6.0))
            assert y.shape == x.shape
            assert np.flatnonzero(y)[0] <= RATE // 2
            if seconds == 1.0:  # room for the whole sound
                assert np.max(np.abs(y)) == pytest.approx(10 ** (-6 / 20), rel=1e-4)
