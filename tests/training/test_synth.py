from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from edgevoice.audio import read_wav, resample
from edgevoice.errors import BuildError
from edgevoice.training.data import DIGIT_WORDS, read_manifest
from edgevoice.training.recipe import SynthSettings
from edgevoice.training.synth import Voice, check_espeak_voices, pick_voices, render, synthesize


@pytest.mark.skipif(not (shutil.which("espeak-ng") and shutil.which("flite")),
                    reason="espeak-ng and flite are not installed (apt-get install espeak-ng "
                           "flite)")
def test_synth_renders_phrases_across_engines(tmp_path: Path) -> None:
    s = SynthSettings(speakers=2, takes=1)
    manifest = synthesize(s, tmp_path / "out", ("turn on", "stop"))
    clips = read_manifest(manifest)
    assert len(clips) == 4
    assert {c.text for c in clips} == {"turn on", "stop"}
    assert {c.speaker.split("-")[0] for c in clips} == {"espeak", "flite"}
    assert all(c.path.stat().st_size > 2000 for c in clips)


def test_missing_engine_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match="needs espeak-ng, which is not installed.*apt-get"):
        synthesize(SynthSettings(speakers=1), tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()


def test_phrase_outside_token_set(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="synth phrase 1: character '4'"):
        synthesize(SynthSettings(speakers=1), tmp_path / "out", ("4 you",))


needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"),
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")


@needs_espeak
def test_default_espeak_voices_all_take_their_variants() -> None:
    """Each default voice sounds different with a variant, so the synthetic speakers differ."""
    check_espeak_voices(SynthSettings())


@needs_espeak
def test_a_voice_that_ignores_variants_is_refused(tmp_path: Path) -> None:
    from edgevoice.training.synth import _espeak_pcm

    if _espeak_pcm("en-gb", "one") != _espeak_pcm("en-gb+m3", "one"):
        pytest.skip("this espeak-ng's en-gb takes variants (the refusal is seen on Debian's)")
    s = SynthSettings(espeak_voices=("en-us", "en-gb"), engines=("espeak-ng",), speakers=1)
    with pytest.raises(BuildError, match="'en-gb' ignores variants.*'en'"):
        synthesize(s, tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()


@needs_espeak
@pytest.mark.parametrize("data_dir_known", [True, False])
def test_an_unknown_variant_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                       data_dir_known: bool) -> None:
    """By the variant files where espeak-ng says where they are, else by listening."""
    from edgevoice.training import synth

    if not data_dir_known:
        monkeypatch.setattr(synth, "espeak_data_dir", lambda: None)
    elif synth.espeak_data_dir() is None:
        pytest.skip("espeak-ng --version does not say where its data is")
    s = SynthSettings(espeak_variants=("m1", "m99"), engines=("espeak-ng",), speakers=1)
    with pytest.raises(BuildError, match="synth.espeak_variants: m99 (not found|make no diff)"):
        synthesize(s, tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()


def test_espeak_and_flite_recipes_draw_the_voices_they_always_did() -> None:
    """The shipped model's synthetic speakers do not change with the engines added since."""
    assert [v.name for v in pick_voices(SynthSettings(speakers=4))] == [
        "espeak-ng-en-gb-x-gbcwmd_aunty-r1.20-p1.24", "flite-slt-r0.90-p0.91",
        "espeak-ng-en-gb-scotland_Alicia-r0.80-p1.27", "flite-kal16-r1.16-p1.03"]


ALL_ENGINES = ("espeak-ng", "flite", "festival", "mbrola", "pico")


def test_voices_are_spread_over_every_engine() -> None:
    voices = pick_voices(SynthSettings(engines=ALL_ENGINES, speakers=10))
    assert [v.engine for v in voices] == list(ALL_ENGINES) * 2
    assert {v.voice for v in voices if v.engine == "mbrola"} <= {"us1", "us2", "us3", "en1"}


def debian_has(*packages: str) -> bool:
    try:
        done = subprocess.run(["dpkg-query", "-W", "-f=${db:Status-Status}\n", *packages],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0 and done.stdout.split() == ["installed"] * len(packages)


def needs_debian(*packages: str) -> pytest.MarkDecorator:
    packages = tuple(dict.fromkeys(packages))
    return pytest.mark.skipif(not debian_has(*packages), reason=f"needs `apt-get install "
                              f"{' '.join(packages)}` (.ci/run installs them)")


FESTIVAL = ("festival", "festvox-kallpc16k", "festvox-us-slt-hts")
MBROLA = ("espeak-ng", "mbrola", "mbrola-us1", "mbrola-us2")
PICO = ("libttspico-utils",)
# Two voices of each engine, and the packages they need.
TWO_VOICES = [
    pytest.param("festival", "kal_diphone", "cmu_us_slt_arctic_hts", marks=needs_debian(*FESTIVAL),
                 id="festival"),
    pytest.param("mbrola", "us1", "us2", marks=needs_debian(*MBROLA), id="mbrola"),
    pytest.param("pico", "en-US", "en-GB", marks=needs_debian(*PICO), id="pico"),
]


def _spectrum(path: Path) -> np.ndarray:
    """Long-term log spectrum (dB) of the speech frames, at 16 kHz, up to 6 kHz."""
    x, info = read_wav(path)
    frames = np.lib.stride_tricks.sliding_window_view(resample(x, info.sample_rate, 16000),
                                                      512)[::160]
    energy = (frames ** 2).mean(axis=1)
    power = np.abs(np.fft.rfft(frames[energy > 0.1 * energy.max()] * np.hanning(512))) ** 2
    db = 10 * np.log10(power.mean(axis=0)[:192] + 1e-12)
    return db - db.mean()


def _f0(path: Path) -> float:
    """Median pitch (Hz) of the loudest frames, by autocorrelation."""
    x, info = read_wav(path)
    sr, n = info.sample_rate, int(0.04 * info.sample_rate)
    frames = np.lib.stride_tricks.sliding_window_view(x, n)[:: n // 2]
    energy = (frames ** 2).mean(axis=1)
    lags = []
    for f in frames[energy > 0.3 * energy.max()]:
        ac = np.correlate(f - f.mean(), f - f.mean(), "full")[n - 1:]
        lags.append(sr // 400 + int(np.argmax(ac[sr // 400: sr // 60])))
    return sr / float(np.median(lags))


@pytest.mark.parametrize(("engine", "voice_a", "voice_b"), TWO_VOICES)
def test_new_engine_says_a_digit_with_voices_of_its_own(tmp_path: Path, engine: str,
                                                        voice_a: str, voice_b: str) -> None:
    a, a_faster, b = tmp_path / "a.wav", tmp_path / "a_faster.wav", tmp_path / "b.wav"
    render(Voice(engine, voice_a, 1.0, 1.0), "seven", a)
    render(Voice(engine, voice_a, 1.0, 1.0), "seven", a_faster, rate_jitter=1.08)
    render(Voice(engine, voice_b, 1.0, 1.0), "seven", b)
    for path in (a, b):
        x, info = read_wav(path)
        assert 0.4 < len(x) / info.sample_rate < 1.5  # "seven", spoken at its own pace
        assert np.sqrt(np.mean(x ** 2)) > 0.02 and np.max(np.abs(x)) > 0.2
    # Another voice is further from voice_a than voice_a is from itself a little faster.
    same = np.mean(np.abs(_spectrum(a) - _spectrum(a_faster)))
    other = np.mean(np.abs(_spectrum(a) - _spectrum(b)))
    assert other > max(2 * same, 3.0)


@pytest.mark.parametrize(("engine", "voice"), [
    pytest.param("festival", "kal_diphone", marks=needs_debian(*FESTIVAL), id="festival"),
    pytest.param("festival", "cmu_us_slt_arctic_hts", marks=needs_debian(*FESTIVAL),
                 id="festival-hts"),
    pytest.param("mbrola", "us1", marks=needs_debian(*MBROLA), id="mbrola"),
    pytest.param("pico", "en-US", marks=needs_debian(*PICO), id="pico"),
])
def test_new_engine_follows_rate_and_pitch(tmp_path: Path, engine: str, voice: str) -> None:
    def seconds_and_hz(rate: float, pitch: float) -> tuple[float, float]:
        path = tmp_path / f"r{rate}-p{pitch}.wav"
        render(Voice(engine, voice, rate, pitch), "seven", path)
        x, info = read_wav(path)
        return len(x) / info.sample_rate, _f0(path)

    (slow, _), (normal, _) = seconds_and_hz(0.7, 1.0), seconds_and_hz(1.0, 1.0)
    (low_s, low_hz), (high_s, high_hz) = seconds_and_hz(1.0, 0.75), seconds_and_hz(1.0, 1.35)
    assert slow > 1.2 * normal
    assert high_hz > 1.3 * low_hz
    assert abs(high_s / low_s - 1) < 0.1  # the pitch leaves the pace alone


@needs_debian("espeak-ng", "flite", *FESTIVAL, *MBROLA, *PICO)
def test_synth_renders_the_digits_with_every_engine(tmp_path: Path) -> None:
    s = SynthSettings(engines=ALL_ENGINES, speakers=5, takes=1, festival_voices=("kal_diphone",),
                      mbrola_voices=("us1", "us2"))
    clips = read_manifest(synthesize(s, tmp_path / "out", DIGIT_WORDS))
    assert len(clips) == 50
    assert {c.speaker.split("-")[0] for c in clips} == {"espeak", "flite", "festival", "mbrola",
                                                        "pico"}
    for c in clips:
        x, info = read_wav(c.path)
        assert info.sample_rate == 8000 and 0.2 < len(x) / 8000 < 2.0


@pytest.mark.parametrize(("engine", "package"), [
    ("festival", "festival"), ("mbrola", "espeak-ng mbrola.*non-free"),
    ("pico", "libttspico-utils.*non-free")])
def test_missing_new_engine_is_a_clear_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            engine: str, package: str) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(BuildError, match=f"needs {engine}, which is not installed .*"
                                         f"apt-get install {package}"):
        synthesize(SynthSettings(engines=(engine,), speakers=1), tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()


@needs_debian(*FESTIVAL)
def test_a_festival_voice_that_is_not_installed_is_refused(tmp_path: Path) -> None:
    s = SynthSettings(engines=("festival",), festival_voices=("kal_diphone", "cmu_us_awb_cg"),
                      speakers=1)
    with pytest.raises(BuildError, match="synth.festival_voices: festival cannot speak with "
                                         "'cmu_us_awb_cg'.*voice_cmu_us_awb_cg.*search festvox"):
        synthesize(s, tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()


@needs_debian(*MBROLA)
def test_an_mbrola_voice_that_is_not_installed_names_its_package(tmp_path: Path) -> None:
    if debian_has("mbrola-de4"):
        pytest.skip("mbrola-de4 is installed here")
    s = SynthSettings(engines=("mbrola",), mbrola_voices=("us1", "de4-en"), speakers=1)
    with pytest.raises(BuildError, match=r"synth.mbrola_voices: de4-en not installed: install "
                                         r"with `sudo apt-get install mbrola-de4` \(from Debian's "
                                         "contrib and non-free"):
        synthesize(s, tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()


@needs_debian(*PICO)
def test_an_unknown_pico_voice_is_refused(tmp_path: Path) -> None:
    s = SynthSettings(engines=("pico",), pico_voices=("en-US", "en-AU"), speakers=1)
    with pytest.raises(BuildError, match="synth.pico_voices: en-AU unknown to pico2wave .*en-GB"):
        synthesize(s, tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()
