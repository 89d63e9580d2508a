"""The ARPA reader: hand-computed backoff scores, kenlm agreement, and file:line errors."""

from __future__ import annotations

import math
import random
from pathlib import Path

import pytest
from ctc_frames import TOKENS

from edgevoice.errors import LMError
from edgevoice.lm import check_spellable, kenlm_available, load_lm
from edgevoice.training.lm import build_arpa

TINY = """\

\\data\\
ngram 1=5
ngram 2=3
ngram 3=1

\\1-grams:
-99\t<s>\t-0.5
-1.0\t</s>
-2.0\t<unk>
-0.6\ta\t-0.3
-0.7\tb\t-0.2

\\2-grams:
-0.2\t<s> a\t-0.1
-0.4\ta b\t-0.05
-0.3\tb </s>

\\3-grams:
-0.1\t<s> a b

\\end\\
"""
L10 = math.log(10)
BACKENDS = [False, pytest.param(True, marks=pytest.mark.skipif(
    not kenlm_available(), reason="kenlm is not installed (pip install kenlm)"))]


def write(tmp_path: Path, text: str, name: str = "lm.arpa") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.mark.parametrize("prefer_kenlm", BACKENDS)
def test_scores_match_hand_computed_backoff(tmp_path, prefer_kenlm):
    lm = load_lm(write(tmp_path, TINY), prefer_kenlm=prefer_kenlm)
    assert lm.backend == ("kenlm" if prefer_kenlm else "python")
    assert lm.order == 3 and lm.vocabulary == {"a", "b"}
    s0 = lm.begin()
    lp, s1 = lm.score(s0, "a")
    assert lp == pytest.approx(-0.2 * L10, abs=1e-5)  # bigram <s> a
    lp, s2 = lm.score(s1, "b")
    assert lp == pytest.approx(-0.1 * L10, abs=1e-5)  # trigram <s> a b
    assert lm.end(s2) == pytest.approx((-0.05 - 0.3) * L10, abs=1e-5)  # bo(a b) + P(</s>|b)
    assert lm.score(s1, "a")[0] == pytest.approx((-0.1 - 0.3 - 0.6) * L10, abs=1e-5)
    assert lm.score(s0, "b")[0] == pytest.approx((-0.5 - 0.7) * L10, abs=1e-5)
    assert lm.score(s0, "zebra")[0] == pytest.approx((-0.5 - 2.0) * L10, abs=1e-5)  # <unk>
    assert lm.sentence_score(["b"]) == pytest.approx((-1.2 - 0.3) * L10, abs=1e-5)
    assert lm.sentence_score(["a", "b"]) == pytest.approx(-0.65 * L10, abs=1e-5)


@pytest.mark.parametrize("prefer_kenlm", BACKENDS)
def test_unknown_word_penalty_replaces_unk_probability(tmp_path, prefer_kenlm):
    lm = load_lm(write(tmp_path, TINY), prefer_kenlm=prefer_kenlm, unk_logprob=-12.0)
    assert lm.score(lm.begin(), "zebra")[0] == -12.0
    assert lm.score(lm.begin(), "b")[0] == pytest.approx(-1.2 * L10, abs=1e-5)  # known: as is
    assert not lm.known("zebra") and lm.known("a")


@pytest.mark.parametrize("prefer_kenlm", BACKENDS)
def test_missing_unk_scores_like_kenlm(tmp_path, prefer_kenlm):
    text = TINY.replace("ngram 1=5", "ngram 1=4").replace("-2.0\t<unk>\n", "")
    lm = load_lm(write(tmp_path, text), prefer_kenlm=prefer_kenlm)
    assert lm.score(lm.null(), "zebra")[0] == pytest.approx(-100 * L10, abs=1e-3)


@pytest.mark.skipif(not kenlm_available(), reason="kenlm is not installed (pip install kenlm)")
@pytest.mark.parametrize("order,smoothing", [(2, "kneser-ney"), (3, "kneser-ney"),
                                             (4, "witten-bell")])
def test_pure_python_equals_kenlm(tmp_path, order, smoothing):
    import kenlm

    rng = random.Random(order)
    words = "zero one two three four five six seven eight nine oh".split()
    corpus = [" ".join(rng.choice(words[: rng.randint(2, 11)]) for _ in range(rng.randint(1, 8)))
              for _ in range(400)]
    path = build_arpa(corpus, tmp_path / "lm.arpa", order=order, smoothing=smoothing)
    py, kl = load_lm(path, prefer_kenlm=False), load_lm(path, prefer_kenlm=True)
    raw = kenlm.Model(str(path))
    tests = corpus[:60] + ["one banana two", "nine nine nine nine nine", "oh", "seven zero"]
    for sentence in tests:
        words_ = sentence.split()
        assert py.sentence_score(words_) == pytest.approx(kl.sentence_score(words_), abs=1e-4)
        assert py.sentence_score(words_) == pytest.approx(raw.score(sentence) * L10, abs=1e-4)
        s_py, s_kl = py.begin(), kl.begin()
        for w in words_:  # word by word, through the state API the decoder uses
            (a, s_py), (b, s_kl) = py.score(s_py, w), kl.score(s_kl, w)
            assert a == pytest.approx(b, abs=1e-4)


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    assert old in TINY
    return write(tmp_path, TINY.replace(old, new))


def _line_of(path: Path, needle: str) -> int:
    """The last line holding `needle`."""
    return max(n for n, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@pytest.mark.parametrize("prefer_kenlm", BACKENDS)
def test_malformed_lines_name_file_and_line(tmp_path, prefer_kenlm):
    cases = [
        ("-0.4\ta b\t-0.05", "-0.4\ta", "-0.4\ta", "fields"),
        ("-0.4\ta b\t-0.05", "x0.4\ta b", "x0.4", "not a number"),
        ("-0.7\tb\t-0.2", "-0.7\tb\tbad", "-0.7\tb\tbad", "not a number"),
        ("ngram 2=3", "ngram two=3", "ngram two", "ngram N=COUNT"),
        ("-0.3\tb </s>", "0.3\tb </s>", "0.3\tb", "<= 0"),
        ("-0.3\tb </s>", "-0.2\t<s> a", "-0.2\t<s> a", "duplicate"),
    ]
    for old, new, needle, words in cases:
        path = _broken(tmp_path, old, new)
        with pytest.raises(LMError) as err:
            load_lm(path, prefer_kenlm=prefer_kenlm)
        assert f"{path}:{_line_of(path, needle)}:" in str(err.value), (new, str(err.value))
        assert words in str(err.value)


@pytest.mark.parametrize("prefer_kenlm", BACKENDS)
def test_counts_truncation_and_missing_end(tmp_path, prefer_kenlm):
    path = _broken(tmp_path, "ngram 2=3", "ngram 2=4")
    with pytest.raises(LMError, match=r"lm\.arpa:\d+: .*after 3 2-grams, but \\data\\ says 4"):
        load_lm(path, prefer_kenlm=prefer_kenlm)

    cut = TINY[: TINY.index("-0.3\tb </s>")]
    path = write(tmp_path, cut)
    with pytest.raises(LMError, match=r"file ends after 2 2-grams.*truncated") as err:
        load_lm(path, prefer_kenlm=prefer_kenlm)
    assert f"{path}:{len(cut.splitlines())}:" in str(err.value)

    path = write(tmp_path, TINY.replace("\\end\\\n", ""))
    with pytest.raises(LMError, match=r"without \\end\\"):
        load_lm(path, prefer_kenlm=prefer_kenlm)


@pytest.mark.parametrize("text,match", [
    ("", "empty"),
    ("\nhello\n", r"lm.arpa:2: expected \\data\\"),
    ("\\data\\\n\n\\1-grams:\n", "lists no n-gram"),
])
def test_not_an_arpa_file(tmp_path, text, match):
    with pytest.raises(LMError, match=match):
        load_lm(write(tmp_path, text))


def test_missing_file(tmp_path):
    with pytest.raises(LMError, match="no such language model"):
        load_lm(tmp_path / "nope.arpa")


def test_vocabulary_that_tokens_cannot_spell(tmp_path):
    text = TINY.replace("\tb\t", "\tB\t").replace("\tb </s>", "\tB </s>").replace("a b", "a B")
    path = write(tmp_path, text.replace("\ta\t-0.3", "\t42\t-0.3").replace("<s> a", "<s> 42"))
    lm = load_lm(path, prefer_kenlm=False)
    with pytest.raises(LMError) as err:
        check_spellable(lm, TOKENS)
    msg = str(err.value)
    assert f"{path}:{_line_of(path, chr(9) + '42' + chr(9))}:" in msg
    assert "word '42'" in msg and "no '42'" in msg and "1 more" in msg  # as written, not sorted
    check_spellable(load_lm(write(tmp_path, TINY, "ok.arpa")), TOKENS)  # a and b are fine
