from __future__ import annotations

import numpy as np
import pytest

from edgevoice.training.data import BLANK, TOKENS
from edgevoice.training.evaluate import (
    cer,
    edit_distance,
    edit_operations,
    greedy_texts,
    score,
    wer,
)


def test_edit_distance_counts_each_kind_of_error() -> None:
    assert edit_distance("kitten", "sitting") == 3
    assert edit_distance([], ["a"]) == 1
    assert edit_distance(["a", "b"], []) == 2


def test_wer_known_case() -> None:
    refs = ["three five seven", "one two"]
    # one substitution, one deletion, one insertion over 5 reference words
    hyps = ["three nine", "one two two"]
    assert wer(refs, hyps) == pytest.approx(3 / 5)
    assert wer(refs, refs) == 0.0


def test_edit_operations_count_each_kind_of_error() -> None:
    ref, hyp = "one two three four five six".split(), "one too three five six nine".split()
    assert edit_operations(ref, hyp) == (1, 1, 1)  # two -> too, four lost, nine added
    assert edit_operations([], ["a"]) == (0, 0, 1) and edit_operations(["a"], []) == (0, 1, 0)
    assert edit_distance(ref, hyp) == 3


def test_a_string_is_right_only_with_every_word_right() -> None:
    refs = ["three five seven", "one two", "nine", "four four"]
    hyps = ["three five seven", "one two two", " nine ", "four"]
    s = score(refs, hyps)
    assert s["string_right"] == 0.5  # one word added or lost makes the whole string wrong
    assert s["wer"] == round(2 / 8, 4)


def test_cer_counts_characters_including_spaces() -> None:
    assert cer(["one two"], ["one tw"]) == pytest.approx(1 / 7)


def test_greedy_texts_collapse_repeats_and_blanks() -> None:
    ids = [TOKENS.index(c) if c != "_" else BLANK for c in "tt_w_oo  _o_n_e"]
    logp = np.full((len(ids), len(TOKENS)), -20.0, np.float32)
    logp[np.arange(len(ids)), ids] = 0.0
    assert greedy_texts([logp], TOKENS, BLANK) == ["two one"]


def test_greedy_gives_a_blank_token_tie_to_the_token() -> None:
    """INT8 outputs tie often (steps of 1/16): a tie must not delete the character."""
    text = "two"
    logp = np.full((2 * len(text) + 1, len(TOKENS)), -16.0, np.float32)
    logp[:, BLANK] = 0.0
    for i, c in enumerate(text):
        logp[2 * i + 1, [BLANK, TOKENS.index(c)]] = -0.6875  # both 0.5, to int8 resolution
    assert greedy_texts([logp], TOKENS, BLANK) == ["two"]
    logp[3, BLANK] = -0.625  # one step more likely: blank, and the 'w' is gone
    assert greedy_texts([logp], TOKENS, BLANK) == ["to"]
    logp[3] = -np.inf  # nothing possible (or NaN, from a broken model): no token either
    assert greedy_texts([logp], TOKENS, BLANK) == ["to"]
    logp[3, TOKENS.index("w")] = np.nan
    assert greedy_texts([logp], TOKENS, BLANK) == ["to"]
