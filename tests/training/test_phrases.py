"""The phrase template built end to end, tiny: synthetic voices only, negatives from Speech
Commands, a phrase LM in the bundle and the account of real speech at the end (~25 s)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from edgevoice.bundle import load_bundle
from edgevoice.training.recipe import DEFAULT_RECIPE

pytestmark = pytest.mark.build
pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_model_optimization")
if not shutil.which("espeak-ng"):
    pytest.skip("needs espeak-ng: `sudo apt-get install espeak-ng`", allow_module_level=True)

TEMPLATE = DEFAULT_RECIPE.parent / "phrases.yaml"
PHRASES = ("turn on the light", "turn off the light")
# Two phrases from one grammar line, three espeak-ng voices (one held out by
# data.synth_heldout), a tiny model trained for a few steps.
TINY = [
    'synth.phrases=["turn (on|off) the light"]', "synth.engines=[espeak-ng]",
    "synth.speakers=3", "synth.takes=1", "synth.accented=0",
    "model.channels=8", "model.dilations=[1,2]", "model.chunk=16",
    "train.steps=8", "train.batch=4", "train.workers=0", "train.warmup=2",
    "prune.branch=0.5", "quantize.calibration=4",
    "evaluate.utterances=4", "evaluate.snrs=[10]", "evaluate.noise_clips=4",
]


def _trigrams(arpa: Path) -> set[str]:
    text = arpa.read_text()
    section = text.split("\\3-grams:\n")[1].split("\n\n")[0]
    return {" ".join(line.split("\t")[1].split()) for line in section.splitlines()}


def test_the_phrase_template_builds_from_synthetic_voices_alone(
        tmp_path: Path, small_speech_commands: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from edgevoice.training.cli import main

    out = tmp_path / "bundle"
    sets = [a for s in (*TINY, f"data.speech_commands={small_speech_commands}")
            for a in ("--set", s)]
    assert main(["recipe", str(TEMPLATE), "--work-dir", str(tmp_path / "work"), "--out",
                 str(out), *sets]) == 0

    printed = capsys.readouterr().out
    assert ("Real speech of the vocabulary in training: 0 speakers, 0 clips; " in printed
            and "2 synthetic voices (4 clips). No real speaker said the vocabulary" in printed)

    bundle = load_bundle(out)
    assert bundle.decoder == {"name": "beam", "vocabulary": "lm"}
    trigrams = _trigrams(out / "lm.arpa")  # each phrase a sentence, from <s> to </s>
    for phrase in PHRASES:
        first, second, *_ = phrase.split()
        assert f"<s> {first} {second}" in trigrams and "the light </s>" in trigrams
    m = bundle.metrics
    assert m["heldout"] == "synthetic" and len(m["heldout_speakers"]) == 1
    assert m["train_speakers"] == []
    # No vocabulary word in Speech Commands: its held-out speakers measure false outputs only.
    assert set(m["strangers"]["int8_beam_lm"]) == {"neg_words", "neg_noise"}
    assert m["strangers_info"]["words"] == 0 and m["strangers_info"]["other_words"] > 0
    assert bundle.raw["training"]["real_data"]["synthetic"]["voices"] == 2
    card = (out / "MODEL_CARD.md").read_text()
    assert "Held-out synthetic voices: **1**" in card and "## On strangers: false outputs" in card
    assert "No real speaker said the vocabulary" in card.split("## Real speech and strangers")[1]
