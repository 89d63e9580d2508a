"""The rnnoise plugin, installed as a package: real RNNoise on real speech in real noise, fed
frame by frame as the pipeline does."""

from __future__ import annotations

import sys

import numpy as np
import pytest
import yaml
from edgevoice_rnnoise import RnnoiseDenoise, RnnoiseOptions
from support import REPO

from edgevoice.audio import read_wav
from edgevoice.components import StageContext, build
from edgevoice.config import load_settings
from edgevoice.errors import ConfigError, PluginError
from edgevoice.plugins import create_registry

DATA = (REPO / ".." / "shared" / "data" / "speech-commands").resolve()
RATE = 16000
FRAME = 320  # 20 ms, the pipeline's default
SNR_DB = 5.0  # speech to added noise


@pytest.fixture(scope="module")
def speech() -> tuple[np.ndarray, np.ndarray]:
    """(clean, noisy) as whole int16 values in float64: five speakers' words, and the same
    with an exercise bike recording mixed in at 5 dB."""
    words = sorted(DATA.glob("words/*/*.wav"))
    bike = DATA / "background_noise" / "exercise_bike.wav"
    if len(words) < 5 or not bike.is_file():
        pytest.skip(f"Speech Commands sample not found at {DATA} (it lives in "
                    "../shared/data/speech-commands)")
    clean = np.concatenate([read_wav(p)[0] for p in words[:: len(words) // 5][:5]]) * 32768.0
    noise = read_wav(bike)[0][RATE : RATE + len(clean)] * 32768.0
    speaking = frame_energy(clean) > frame_energy(clean).max() / 10**2.5
    gain = np.sqrt(frame_energy(clean)[speaking].mean() / frame_energy(noise)[speaking].mean())
    noisy = clean + gain * 10 ** (-SNR_DB / 20) * noise
    return clean.astype(np.float64), np.clip(np.round(noisy), -32768, 32767).astype(np.float64)


def frame_energy(x: np.ndarray) -> np.ndarray:
    n = len(x) // 160 * 160
    return (x[:n].astype(np.float64).reshape(-1, 160) ** 2).mean(axis=1)


def denoiser(frame: int = FRAME, **options: object) -> RnnoiseDenoise:
    """Chosen by config and built through the installed entry point, as the daemon does."""
    settings, registry = load_settings({"denoise": {"name": "rnnoise", **options}}, "t.yaml")
    built = build(settings.stages["denoise"], registry, StageContext("t", RATE, frame))
    assert isinstance(built, RnnoiseDenoise)
    return built


def stream(d: RnnoiseDenoise, x: np.ndarray, frame: int = FRAME) -> np.ndarray:
    """Frame by frame, as the pipeline calls it; the input is padded to whole frames plus the
    delay, and the output is returned aligned with the input (the delay cut off)."""
    pcm = np.concatenate([x, np.zeros(d.delay_samples + frame)]).astype(np.int16)
    pcm = pcm[: len(pcm) // frame * frame]
    out = []
    for k in range(0, len(pcm), frame):
        y = d.process(pcm[k : k + frame])
        assert y.dtype == np.int16 and y.shape == (frame,)
        out.append(y)
    y = np.concatenate(out)
    assert len(y) == len(pcm)
    return y[d.delay_samples : d.delay_samples + len(x)].astype(np.float64)


def sdr_db(y: np.ndarray, clean: np.ndarray) -> float:
    """Clean speech against everything else (noise and distortion), in dB."""
    return float(10 * np.log10((clean**2).sum() / ((y - clean) ** 2).sum()))


def test_found_through_the_entry_point_and_chosen_in_yaml() -> None:
    assert create_registry().components["denoise"]["rnnoise"].provider == "rnnoise"
    settings, _ = load_settings(yaml.safe_load("denoise: {name: rnnoise, mix: 0.1}"), "t.yaml")
    assert settings.stages["denoise"].options == RnnoiseOptions(mix=0.1)


def test_options_are_validated_with_their_yaml_path() -> None:
    with pytest.raises(ConfigError) as err:
        load_settings({"denoise": {"name": "rnnoise", "mixx": 0.1, "mix": 1.5}}, "t.yaml")
    assert err.value.problems == ['denoise.mixx: unknown option (did you mean "mix"?)',
                                  "denoise.mix: 1.5 is outside the allowed range 0.0..1.0"]


def test_denoising_improves_snr(speech: tuple[np.ndarray, np.ndarray]) -> None:
    clean, noisy = speech
    silent = frame_energy(clean) < frame_energy(clean).max() / 10**4.5  # between the words
    assert silent.sum() > 100  # over a second of it

    def noise_drop_db(y: np.ndarray) -> float:
        return float(10 * np.log10(frame_energy(noisy)[silent].mean()
                                   / frame_energy(y)[silent].mean()))

    before = sdr_db(noisy, clean)  # measured: 0.3 dB
    full = stream(denoiser(mix=0.0), noisy)
    assert sdr_db(full, clean) > before + 7.0  # measured: 10.1 dB
    assert noise_drop_db(full) > 25.0  # measured: 35 dB
    # the default mixes 20 % of the input back: the noise cannot fall below 20*log10(0.2) dB
    default = stream(denoiser(), noisy)
    assert sdr_db(default, clean) > before + 7.0  # measured: 9.3 dB
    assert 12.0 < noise_drop_db(default) < 14.5  # measured: 13.9 dB


def test_the_delay_is_fixed_and_reported(speech: tuple[np.ndarray, np.ndarray]) -> None:
    clean, _ = speech
    untouched = denoiser(mix=1.0)
    assert untouched.delay_samples == 480  # 30 ms at 16 kHz
    assert np.array_equal(stream(untouched, clean), np.round(clean))
    # RNNoise's own share of it: denoised speech lines up with the input at the same delay
    y = stream(denoiser(mix=0.0), clean)
    n = 2 * len(y)  # corr[k] = sum of y[i + k] * clean[i]; negative lags wrap to the end
    corr = np.fft.irfft(np.fft.rfft(y, n) * np.conj(np.fft.rfft(clean, n)), n)
    assert int(np.argmax(np.r_[corr[-200:], corr[:201]])) - 200 == 0


def test_frame_length_does_not_change_the_output(speech: tuple[np.ndarray, np.ndarray]
                                                 ) -> None:
    _, noisy = speech
    a, b = denoiser(320), denoiser(480)
    assert a.delay_samples == b.delay_samples
    assert np.array_equal(stream(a, noisy, 320), stream(b, noisy, 480))


def test_reset_starts_a_new_stream(speech: tuple[np.ndarray, np.ndarray]) -> None:
    _, noisy = speech
    d = denoiser()
    first = stream(d, noisy)
    d.reset()
    assert np.array_equal(stream(d, noisy), first)
    d.close()


def test_refusals_are_one_line_and_say_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(PluginError, match=r"^denoise rnnoise: .*not 44100 Hz; use `denoise: "
                                          r"\{name: none\}` with this model$"):
        RnnoiseDenoise(RnnoiseOptions(), StageContext("t", 44100, 882))
    # an environment without pyrnnoise: Python's documented way to make an import fail
    monkeypatch.setitem(sys.modules, "pyrnnoise", None)
    monkeypatch.setitem(sys.modules, "pyrnnoise.rnnoise", None)
    with pytest.raises(PluginError, match=r"^denoise rnnoise: cannot load pyrnnoise .*; "
                                          r"`pip install 'pyrnnoise>=0.4.5,<0.5'`$"):
        denoiser()
