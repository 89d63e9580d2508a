"""The daemon's denoiser in training and evaluation: same component, same frames."""

from __future__ import annotations

import dataclasses
import logging
import pickle

import numpy as np
import pytest

from edgevoice.bundle import load_bundle
from edgevoice.config import Choice
from edgevoice.errors import BuildError
from edgevoice.recognizer import warn_denoise_mismatch
from edgevoice.stages.denoise import NoOptions, WebRtcOptions
from edgevoice.training.augment import Augmenter
from edgevoice.training.denoising import make_denoiser
from edgevoice.training.recipe import AugmentSettings

RATE = 16000


def _tone_in_noise(seconds: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    t = np.arange(int(seconds * RATE)) / RATE
    rng = np.random.default_rng(0)
    noise = (0.03 * rng.standard_normal(len(t))).astype(np.float32)
    voice = (0.3 * np.sin(2 * np.pi * 220 * t) * (t > 0.5)).astype(np.float32)
    return voice + noise, noise


def test_none_is_no_denoiser_and_an_unknown_one_names_the_setting() -> None:
    assert make_denoiser({"name": "none"}, RATE) is None
    with pytest.raises(BuildError, match="augment.denoise.name: unknown denoise 'rnnoize'"):
        make_denoiser({"name": "rnnoize"}, RATE)
    with pytest.raises(BuildError, match="augment.denoise"):
        make_denoiser({"name": "webrtc", "noise_suppression": 9}, RATE)


def test_webrtc_in_the_build_suppresses_noise_and_keeps_the_length() -> None:
    pytest.importorskip("webrtc_noise_gain")
    x, _ = _tone_in_noise()
    denoise = make_denoiser({"name": "webrtc", "noise_suppression": 3}, RATE)
    assert denoise is not None
    y = denoise(x[:15_999])  # not a whole number of frames
    assert len(y) == 15_999 and y.dtype == np.float32
    quiet = slice(4000, 8000)  # noise only, once the suppressor has adapted
    assert np.sqrt(np.mean(y[quiet] ** 2)) < 0.5 * np.sqrt(np.mean(x[quiet] ** 2))
    np.testing.assert_array_equal(denoise(x[:15_999]), y)  # each call a fresh stream


def test_an_augmenter_with_a_denoiser_goes_to_worker_processes() -> None:
    pytest.importorskip("webrtc_noise_gain")
    s = dataclasses.replace(AugmentSettings(), denoise={"name": "webrtc"})
    aug = Augmenter(s, RATE)
    x, _ = _tone_in_noise()
    first = aug.denoise(x)
    copy = pickle.loads(pickle.dumps(aug))  # as multiprocessing's spawn sends it
    np.testing.assert_array_equal(copy.denoise(x), first)


def test_the_daemon_warns_when_its_denoiser_is_not_the_models(
        caplog: pytest.LogCaptureFixture) -> None:
    bundle = load_bundle("builtin:digits")
    trained = dataclasses.replace(bundle, raw={**bundle.raw, "denoise": {
        "name": "webrtc", "noise_suppression": 2}})
    caplog.set_level(logging.WARNING, logger="edgevoice.recognizer")
    warn_denoise_mismatch(Choice("denoise", "webrtc", WebRtcOptions(), "denoise"), trained)
    assert not caplog.records
    warn_denoise_mismatch(Choice("denoise", "none", NoOptions(), "denoise"), trained)
    warn_denoise_mismatch(Choice("denoise", "webrtc", WebRtcOptions(noise_suppression=4),
                                 "denoise"), trained)
    assert len(caplog.records) == 2
    assert "trained behind denoise {name: webrtc, noise_suppression: 2}" in caplog.text
