from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgevoice.build.data import read_manifest
from edgevoice.build.recipe import SynthSettings
from edgevoice.build.synth import check_espeak_voices, synthesize
from edgevoice.errors import BuildError


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
    from edgevoice.build.synth import _espeak_pcm

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
    from edgevoice.build import synth

    if not data_dir_known:
        monkeypatch.setattr(synth, "espeak_data_dir", lambda: None)
    elif synth.espeak_data_dir() is None:
        pytest.skip("espeak-ng --version does not say where its data is")
    s = SynthSettings(espeak_variants=("m1", "m99"), engines=("espeak-ng",), speakers=1)
    with pytest.raises(BuildError, match="synth.espeak_variants: m99 (not found|make no diff)"):
        synthesize(s, tmp_path / "out", ("stop",))
    assert not (tmp_path / "out").exists()
