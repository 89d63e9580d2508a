from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from edgevoice.audio import read_wav
from edgevoice.training.accent import Accent, draw_accent, split_phonemes
from edgevoice.training.data import read_manifest
from edgevoice.training.recipe import SynthSettings
from edgevoice.training.synth import espeak_phonemes, pick_voices, synthesize

needs_espeak = pytest.mark.skipif(not shutil.which("espeak-ng"),
                                  reason="espeak-ng is not installed (apt-get install espeak-ng)")


def test_split_keeps_multi_character_phonemes_whole() -> None:
    assert split_phonemes("z'i@roU") == ["z", "'", "i@", "r", "oU"]
    assert split_phonemes("s'Ev@n") == ["s", "'", "E", "v", "@", "n"]
    assert split_phonemes("f'aIv") == ["f", "'", "aI", "v"]


def test_habits_apply_consistently_and_devoice_only_word_ends() -> None:
    a = Accent(vowels=(("i:", "I"), ("aI", "a")), consonants=(("T", "t"), ("w", "v")),
               final_devoicing=True)
    assert a.apply("Tr'i: f'aIv w'Vn") == "tr'I f'af v'Vn"
    assert a.apply("f'aIv,") == "f'af,"  # a trailing stress mark is not the last sound
    assert a.apply("v'aIv") == "v'af"  # the first v is not final
    assert Accent().apply("Tr'i: f'aIv") == "Tr'i: f'aIv"


def test_accents_are_drawn_reproducibly_and_strength_scales_them() -> None:
    def draw(seed: int, strength: float) -> list[Accent]:
        rng = np.random.default_rng(seed)
        return [draw_accent(rng, strength) for _ in range(50)]

    assert draw(3, 0.35) == draw(3, 0.35)
    assert all(a == Accent() for a in draw(3, 0.0))
    weak = sum(len(a.vowels) for a in draw(3, 0.2))
    strong = sum(len(a.vowels) for a in draw(3, 0.8))
    assert strong > 2 * weak > 0


def test_accented_share_leaves_the_other_voices_as_they_were() -> None:
    plain = pick_voices(SynthSettings(speakers=20))
    mixed = pick_voices(SynthSettings(speakers=20, accented=0.5))
    assert [(v.engine, v.voice, v.rate, v.pitch) for v in plain] == \
        [(v.engine, v.voice, v.rate, v.pitch) for v in mixed]
    accented = [v for v in mixed if v.accent is not None]
    assert accented and all(v.engine == "espeak-ng" for v in accented)
    assert len({v.name for v in mixed}) == 20


@needs_espeak
def test_accented_speaker_says_the_phrase_differently(tmp_path: Path) -> None:
    assert espeak_phonemes("en-us", "three five") == "Tr'i: f'aIv"
    s = SynthSettings(engines=("espeak-ng",), espeak_voices=("en-us",), espeak_variants=("m3",),
                      speakers=1, takes=1, rates=(1.0, 1.0), pitches=(1.0, 1.0), accented=1.0,
                      accent_strength=1.0)
    (voice,) = pick_voices(s)
    assert voice.accent is not None and dict(voice.accent.consonants).get("T") in "tsf"
    accented = read_manifest(synthesize(s, tmp_path / "acc", ("three five",)))
    plain = read_manifest(synthesize(SynthSettings(**{**s.__dict__, "accented": 0.0}),
                                     tmp_path / "plain", ("three five",)))
    assert accented[0].text == plain[0].text == "three five"
    x, _ = read_wav(accented[0].path)
    y, _ = read_wav(plain[0].path)
    assert len(x) > 4000 and (len(x) != len(y) or not np.allclose(x, y))
