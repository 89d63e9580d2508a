"""The model card and credits follow the recipe's data, not the digits default."""

from __future__ import annotations

from edgevoice.training.export import FSDD_CREDIT, SC_CREDIT, credits_for, model_card
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe


def _card(overrides: dict) -> tuple[str, list[str]]:
    recipe = load_recipe(DEFAULT_RECIPE, overrides).to_dict()
    meta = {"name": "lights", "version": "1.0", "metrics": {"train_speakers": ["anna", "ben"]},
            "credits": credits_for(recipe)}
    return model_card(meta, recipe, "edgevoice-build recipe lights.yaml"), meta["credits"]


def test_own_phrases_card_does_not_claim_digits_or_fsdd() -> None:
    card, credits = _card({"data.fsdd": "", "data.manifests": ["my/manifest.jsonl"],
                           "data.test_speakers": ["cara"], "data.speech_commands": "",
                           "synth.phrases": ["turn on the lights", "stop"],
                           "synth.engines": ["flite"], "synth.accented": 0.0,
                           "export.description": "lights"})
    described = card.split("## Reproduce")[0]  # the resolved recipe follows, defaults and all
    assert "digit" not in described.lower() and "Free Spoken Digit" not in card
    assert "`my/manifest.jsonl`" in card and "anna, ben" in card
    assert "2 phrases of the recipe rendered with flite (BSD-like)" in card
    assert credits == ["Synthetic speech: flite (BSD-like)"]


def test_digits_card_credits_fsdd_and_names_the_accents() -> None:
    card, credits = _card({})
    assert FSDD_CREDIT in credits and FSDD_CREDIT in card
    assert SC_CREDIT in credits and SC_CREDIT in card
    assert "Recognises connected English digit words" in card
    assert "50 % of the espeak-ng speakers with a second-language accent" in card
    assert "Other words, noise and clicks were trained to yield nothing" in card
    card, _ = _card({"data.speech_commands": "", "data.p_negative": 0.0})
    assert "Words outside zero-nine are not rejected" in card


def test_synthetic_speech_is_only_claimed_when_it_was_trained_on() -> None:
    card, credits = _card({"data.p_synth": 0})
    assert "Synthetic speech" not in card.split("## Reproduce")[0]
    assert credits == [FSDD_CREDIT, SC_CREDIT]
    card, _ = _card({"synth.engines": ["flite"]})  # accented applies to espeak-ng voices only
    assert "second-language accent" not in card.split("## Reproduce")[0]


def test_the_card_says_how_the_model_was_pruned() -> None:
    card, _ = _card({"train.steps": 300, "prune.branch": 0.5})
    assert "pruned during training: branched from the training run at step 150 of 300" in card
    card, _ = _card({"prune.branch": 0.0, "prune.steps": 700})
    assert "pruned by fine-tuning the trained model for 700 steps" in card
    card, _ = _card({"prune.enabled": False})
    assert "pruned during" not in card and "pruned by" not in card


def test_a_phrase_card_measured_on_synthetic_voices_says_what_that_is_worth() -> None:
    from edgevoice.training.realdata import count

    recipe = load_recipe(DEFAULT_RECIPE.parent / "phrases.yaml").to_dict()
    voices = [f"espeak-{i}" for i in range(8)]
    real_data = count({}, [], None, [], [])
    meta = {"name": "phrases", "version": "1.0", "credits": credits_for(recipe),
            "metrics": {"heldout": "synthetic", "heldout_speakers": voices, "train_speakers": []},
            "training": {"real_data": real_data}}
    card = model_card(meta, recipe, "edgevoice-build recipe phrases.yaml")
    assert "Held-out synthetic voices: **8** (20 % of the synthetic speakers" in card
    assert "read these figures as an upper bound" in card and "never heard those voices" in card
    assert 'Recognises 10 phrases, each said whole:\n"turn on the kitchen light"' in card
    assert "200 single phrases composed from those voices' renderings" in card
    assert "word LM lm.arpa (built from the vocabulary's phrases, each a sentence)" in card
    assert "## Real speech and strangers" in card and "No real speaker said the" in card
    assert "Trained on 0 real speakers of the vocabulary, plus synthetic voices" in card
    assert "digit" not in card.split("## Reproduce")[0].lower()
