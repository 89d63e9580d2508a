"""Scoring on strangers: what is published, onset insertions, false outputs, reject choice."""

from __future__ import annotations

import numpy as np

from edgevoice.decoding import DecodeResult
from edgevoice.training import evaluate
from edgevoice.training.strangers import (
    StrangerSets,
    choose_threshold,
    false_outputs,
    reject_curve,
    word_score,
)


def _r(text: str, confidence: float = 0.9, rejected: bool = False) -> DecodeResult:
    return DecodeResult(text, confidence, rejected=rejected)


def test_a_word_before_the_spoken_one_is_an_onset_insertion() -> None:
    refs = ["five", "two", "nine", "one"]
    s = word_score(refs, [_r("one five"), _r("two"), _r("nine one"), _r("")])
    assert s["onset_ins"] == 0.25  # "one five"; "nine one" adds a word after, not before
    assert (s["sub"], s["del"], s["ins"]) == (0.0, 0.25, 0.5)
    assert s["wer"] == 0.75 and s["clips"] == 4


def test_a_rejected_result_counts_as_nothing_said() -> None:
    refs = ["five", "two"]
    results = [_r("five", 0.3), _r("two", 0.8)]
    assert word_score(refs, results)["wer"] == 0.0
    at = word_score(refs, results, threshold=0.5)
    assert at["del"] == 0.5 and at["rejected"] == 0.5
    assert word_score(refs, [_r("five", rejected=True), _r("two")])["del"] == 0.5


def test_false_outputs_count_published_text_only() -> None:
    results = [_r(""), _r("one", 0.2), _r("two", 0.9), _r("six", 0.1, rejected=True)]
    assert false_outputs(results)["false_output"] == 0.5
    assert false_outputs(results, threshold=0.5)["false_output"] == 0.25


def test_the_lowest_threshold_within_the_false_output_target_is_chosen() -> None:
    clean = evaluate.TestSet("words_clean", [np.zeros(1)] * 4, ["one", "two", "three", "four"])
    neg = evaluate.TestSet("neg_words", [np.zeros(1)] * 4, [""] * 4)
    sets = StrangerSets([clean], [neg])
    results = {"words_clean": [_r("one", 0.9), _r("two", 0.8), _r("six", 0.3), _r("four", 0.15)],
               "neg_words": [_r("one", 0.2), _r("two", 0.25), _r("", 0.0), _r("five", 0.12)]}
    curve = reject_curve(sets, results)
    at = {p["threshold"]: p for p in curve}
    assert at[0.0] == {"threshold": 0.0, "right": 1.0 * 3 / 4, "wrong": 0.25, "lost": 0.0,
                       "false_output": 0.75}
    assert at[0.3]["false_output"] == 0.0 and at[0.3]["lost"] == 0.25
    assert choose_threshold(curve, 0.3) == 0.25  # the lowest with at most 30 % false outputs
    assert choose_threshold(curve, 0.0) == 0.3
    never = [{**p, "false_output": 0.5 + p["threshold"] / 10} for p in curve]
    assert choose_threshold(never, 0.05) == 0.0  # none reaches it: the fewest false outputs
