"""The model card and credits follow the recipe's data, not the digits default."""

from __future__ import annotations

import pytest

from edgevoice.training.export import FSDD_CREDIT, SC_CREDIT, credits_for, model_card
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe


def _card(overrides: dict, metrics: dict | None = None) -> tuple[str, list[str]]:
    recipe = load_recipe(DEFAULT_RECIPE, overrides).to_dict()
    meta = {"name": "lights", "version": "1.0",
            "metrics": {"train_speakers": ["anna", "ben"], **(metrics or {})},
            "credits": credits_for(recipe)}
    return model_card(meta, recipe, "edgevoice-build recipe lights.yaml"), meta["credits"]


def _metrics(phrase_figures: bool) -> dict:
    """Evaluation figures of a commands model; without `phrase_figures`, as a metrics.json
    written before phrase outcomes, string accuracy and per-word tables existed."""
    clean = {"wer": 0.2, "onset_ins": 0.01, "rejected": 0.05}
    strings = {"wer": 0.1, "cer": 0.05}
    if phrase_figures:
        clean |= {"phrase_right": 0.75, "phrase_wrong": 0.05, "phrase_nothing": 0.2}
        strings |= {"string_right": 0.6}
    sets = {"words_clean": clean, "words_reverb": {"wer": 0.3},
            "neg_words": {"false_output": 0.04}, "neg_noise": {"false_output": 0.02}}
    m = {"accuracy": {"int8": {"clean": {"wer": 0.3, "cer": 0.2}},
                      "int8_beam_lm": {"clean": strings}},
         "strangers": {"int8_beam_lm": sets},
         "reject": {"curve": [], "threshold": 0.45, "decoder": "_beam_lm"}}
    if phrase_figures:
        yes = {"clips": 40, "right": 0.9, "wrong": 0.05, "nothing": 0.05, "became": "no"}
        m["strangers_per_word"] = {
            "int8_beam_lm": {"yes": yes, "stop": {**yes, "wrong": 0.0, "became": None}},
            "int8_beam_lm_reject": {"yes": {**yes, "right": 0.85, "wrong": 0.025,
                                            "nothing": 0.125}, "stop": yes}}
    return m


COMMANDS = {"synth.phrases": ["yes", "no", "stop"], "export.description": "commands"}


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


def test_the_card_shows_phrase_outcomes_per_word_and_string_accuracy() -> None:
    card, _ = _card(COMMANDS, _metrics(phrase_figures=True))
    assert ("| model | clean | reverberant | phrase right | wrong command | nothing published | "
            "insertions at onset | rejected | other words -> output | noise -> output |") in card
    assert "| int8_beam_lm | 20.0 | 30.0 | 75.0 | 5.0 | 20.0 | 1.0 | 5.0 | 4.0 | 2.0 |" in card
    assert "- wrong command: something other than the phrase said was published" in card
    assert "| yes | 40 | 90.0 | 5.0 | no | 5.0 | 85.0 | 2.5 | 12.5 |" in card
    assert "| stop | 40 | 90.0 | 0.0 | - | 5.0 | 90.0 | 5.0 | 5.0 |" in card
    assert "the last three columns with the reject threshold 0.45 the bundle ships with" in card
    assert "| int8 CER | int8_beam_lm WER | int8_beam_lm CER | int8_beam_lm strings right |" in card
    assert "| clean | 30.0 % | 20.0 % | 10.0 % | 5.0 % | 60.0 % |" in card
    assert "int8_beam_lm strings right: the share of test strings with every word right" in card


def test_a_card_from_older_metrics_leaves_out_the_figures_they_lack() -> None:
    card, _ = _card(COMMANDS, _metrics(phrase_figures=False))
    assert ("| model | clean | reverberant | insertions at onset | rejected | "
            "other words -> output | noise -> output |") in card
    assert "| int8_beam_lm | 20.0 | 30.0 | 1.0 | 5.0 | 4.0 | 2.0 |" in card
    assert "| clean | 30.0 % | 20.0 % | 10.0 % | 5.0 % |\n" in card
    assert "phrase right" not in card and "wrong command" not in card
    assert "Per word" not in card and "strings right" not in card


def test_the_card_appendix_goes_after_the_figures_and_a_missing_one_is_one_line(
        tmp_path) -> None:
    from edgevoice.errors import BuildError
    from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
    from edgevoice.training.stages import card_appendix

    table = "## Size frontier\n\n| model | INT8 KiB |\n|---|---|\n| 160 channels | 181 |\n"
    path = tmp_path / "frontier.md"
    path.write_text(table)
    recipe = load_recipe(DEFAULT_RECIPE, {"export.card_appendix": str(path)})
    text = card_appendix(recipe)
    assert text == table
    meta = {"name": "digits", "version": "1", "metrics": {}, "credits": []}
    card = model_card(meta, recipe.to_dict(), "edgevoice-build recipe", text)
    assert card.index("| 160 channels | 181 |") < card.index("## Limits")
    assert "Size frontier" not in model_card(meta, recipe.to_dict(), "edgevoice-build recipe")
    missing = load_recipe(DEFAULT_RECIPE, {"export.card_appendix": str(tmp_path / "no.md")})
    with pytest.raises(BuildError, match=r"^recipe export.card_appendix: cannot read .*no\.md "):
        card_appendix(missing)


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


def test_the_reject_table_shows_each_kind_of_false_output_and_the_shipped_threshold() -> None:
    curve = [{"threshold": t / 20, "right": 0.9 - t / 100, "wrong": 0.02, "lost": 0.08 + t / 100,
              "false_output": 0.2 - t / 100,
              "false_output_by": {"neg_words": 0.3 - t / 100, "neg_noise": 0.1 - t / 200}}
             for t in range(20)]
    m = _metrics(phrase_figures=True) | {"reject": {"curve": curve, "threshold": 0.55,
                                                      "decoder": "_beam_lm"}}
    card, _ = _card(COMMANDS, m)
    assert "| threshold | right | wrong | lost | false outputs | other words | noise |" in card
    # Every 0.1 of the curve, and the threshold the bundle ships with.
    assert "| 0.5 | 80.0 | 2.0 | 18.0 | 10.0 | 20.0 | 5.0 |" in card
    assert "| 0.55 (shipped) | 79.0 | 2.0 | 19.0 | 9.0 | 19.0 | 4.5 |" in card
    assert "| 0.65 |" not in card
    fine = [{"threshold": round(t / 100, 2), "right": 0.9, "wrong": 0.02, "lost": 0.08,
             "false_output": 0.1, "false_output_by": {"neg_words": 0.1, "neg_noise": 0.0}}
            for t in range(100)]
    m["reject"] = {"curve": fine, "threshold": 0.52, "decoder": "_beam_lm"}
    card, _ = _card(COMMANDS, m)
    table = card.split("| threshold |")[1].split("\n\n")[0]
    assert [row.split(" |")[0].strip("| ") for row in table.splitlines()[2:]] == [
        "0", "0.1", "0.2", "0.3", "0.4", "0.5", "0.52 (shipped)", "0.6", "0.7", "0.8", "0.9"]
