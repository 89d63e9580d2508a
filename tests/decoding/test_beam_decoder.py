"""Beam search: agreement with greedy, LM corrections, vocabulary, hot words, details."""

from __future__ import annotations

import numpy as np
import pytest
from ctc_frames import logprobs, noisy, spell

from edgevoice.beam import BeamDecoder, BeamOptions, HotWord
from edgevoice.decoding import GreedyDecoder, GreedyOptions
from edgevoice.errors import ConfigError, LMError
from edgevoice.lm import kenlm_available
from edgevoice.options import validate
from edgevoice.training.lm import build_arpa, expand_grammar

DIGITS = "zero one two three four five six seven eight nine".split()
COMMANDS = "turn (on|off) the (kitchen|bedroom) light"


@pytest.fixture(scope="module")
def commands_lm(tmp_path_factory):
    path = tmp_path_factory.mktemp("lm") / "commands.arpa"
    return build_arpa(expand_grammar(COMMANDS), path)


@pytest.fixture(scope="module")
def digits_lm(tmp_path_factory):
    rng = np.random.default_rng(0)
    corpus = [" ".join(rng.choice(DIGITS, size=rng.integers(1, 8))) for _ in range(2000)]
    return build_arpa(corpus, tmp_path_factory.mktemp("lm") / "digits.arpa")


def decode(ctx, lp, chunks: int = 1, **options):
    dec = BeamDecoder(BeamOptions(**options), ctx)
    for part in np.array_split(lp, chunks):
        dec.process(part)
    return dec.finalize()


def greedy(ctx, lp):
    dec = GreedyDecoder(GreedyOptions(), ctx)
    dec.process(lp)
    return dec.finalize()


@pytest.mark.parametrize("text", ["one two three", "seven", "turn off the kitchen light",
                                  "eleven", "hello world", "a b c", ""])
def test_beam_equals_greedy_on_peaky_posteriors(ctx, digits_lm, text):
    lp = logprobs(spell(text))
    want = greedy(ctx, lp).text
    assert want == text
    assert decode(ctx, lp, lm="none").text == want
    assert decode(ctx, lp, chunks=5, lm="none", beam=4).text == want
    if all(w in DIGITS for w in text.split()):
        assert decode(ctx, lp, lm=str(digits_lm)).text == want


def test_lm_resolves_acoustic_ambiguity(ctx, commands_lm):
    # "in" is acoustically a little more likely than "on"; the command LM knows better
    frames = spell("turn ") + [{"o": 0.4, "i": 0.6}] * 2 + ["-"] + spell("n the kitchen light")
    lp = logprobs(frames)
    assert greedy(ctx, lp).text == "turn in the kitchen light"
    assert decode(ctx, lp, lm="none").text == "turn in the kitchen light"
    assert decode(ctx, lp, lm=str(commands_lm)).text == "turn on the kitchen light"


def _wer(pairs) -> float:
    edits = words = 0
    for ref, hyp in pairs:
        r, h = ref.split(), hyp.split()
        d = list(range(len(h) + 1))
        for i, rw in enumerate(r, 1):
            prev, d[0] = d[0], i
            for j, hw in enumerate(h, 1):
                prev, d[j] = d[j], min(d[j] + 1, d[j - 1] + 1, prev + (rw != hw))
        edits, words = edits + d[-1], words + len(r)
    return edits / words


def test_lm_lowers_wer_of_a_weak_model(ctx, digits_lm):
    """Noisy posteriors with misspellings everywhere: the open-vocabulary LM search must
    still end words (the lookahead charges LM cost as words are spelled) and fix them."""
    rng = np.random.default_rng(7)
    refs = [" ".join(rng.choice(DIGITS, size=5)) for _ in range(15)]
    lps = [noisy(r, rng) for r in refs]
    g = _wer([(r, greedy(ctx, lp).text) for r, lp in zip(refs, lps, strict=True)])
    b = _wer([(r, decode(ctx, lp, lm=str(digits_lm)).text) for r, lp in zip(refs, lps,
                                                                            strict=True)])
    assert g > 0.3 and b < g / 3, (g, b)


@pytest.mark.skipif(not kenlm_available(), reason="kenlm is not installed (pip install kenlm)")
def test_kenlm_and_python_backends_decode_alike(ctx, digits_lm):
    rng = np.random.default_rng(11)
    for ref in ("one two three four", "nine nine eight", "zero"):
        lp = noisy(ref, rng)
        a = decode(ctx, lp, lm=str(digits_lm), prefer_kenlm=True)
        b = decode(ctx, lp, lm=str(digits_lm), prefer_kenlm=False)
        assert [h.text for h in a.nbest] == [h.text for h in b.nbest]
        assert [h.score for h in a.nbest] == pytest.approx([h.score for h in b.nbest], abs=1e-3)


def test_bundle_lm_is_the_default(ctx, commands_lm):
    frames = spell("turn ") + [{"o": 0.4, "i": 0.6}] * 2 + ["-"] + spell("n the kitchen light")
    with_lm = type(ctx).create(ctx.tokens, ctx.blank, ctx.frame_seconds, lm_file=commands_lm)
    dec = BeamDecoder(BeamOptions(), with_lm)
    assert dec.lm is not None
    dec.process(logprobs(frames))
    assert dec.finalize().text == "turn on the kitchen light"
    assert BeamDecoder(BeamOptions(lm="none"), with_lm).lm is None
    assert BeamDecoder(BeamOptions(), ctx).lm is None  # no LM in the bundle: plain search


def test_closed_vocabulary_forbids_other_words(ctx):
    # the final "e" of "five" is weak: greedy writes "fiv"; closed vocabulary restores "five"
    frames = spell("one fiv") + [{"e": 0.3, "-": 0.7}] + ["-"] * 3
    lp = logprobs(frames)
    assert greedy(ctx, lp).text == "one fiv"
    assert decode(ctx, lp, lm="none").text == "one fiv"
    result = decode(ctx, lp, lm="none", vocabulary=DIGITS)
    assert result.text == "one five"
    assert all(w in DIGITS for h in result.nbest for w in h.text.split())


def test_vocabulary_from_lm_and_from_file(ctx, digits_lm, tmp_path):
    frames = spell("one fiv") + [{"e": 0.3, "-": 0.7}] + ["-"] * 3
    assert decode(ctx, logprobs(frames), lm=str(digits_lm), vocabulary="lm").text == "one five"
    words = tmp_path / "words.txt"
    words.write_text("# digits\n" + "\n".join(DIGITS) + "\n")
    assert decode(ctx, logprobs(frames), lm="none", vocabulary=str(words)).text == "one five"
    words.write_text("one\ntwo\nthrée\n")
    with pytest.raises(ConfigError, match=rf"{words}:3: vocabulary entry 'thrée' uses 'é'"):
        decode(ctx, logprobs(frames), lm="none", vocabulary=str(words))
    with pytest.raises(ConfigError, match=r'"lm" needs a language model'):
        decode(ctx, logprobs(frames), lm="none", vocabulary="lm")


def test_hot_word_flips_a_close_decision(ctx):
    frames = spell("call t") + [{"o": 0.45, "i": 0.55}] * 2 + ["-"] + spell("m")
    lp = logprobs(frames)
    assert decode(ctx, lp, lm="none").text == "call tim"
    boosted = decode(ctx, lp, lm="none", hotwords=[HotWord("tom", 2.0)])
    assert boosted.text == "call tom"
    # a hot phrase that is only partly spoken gives nothing: its boost is taken back
    assert decode(ctx, lp, lm="none", hotwords=["tommy"]).text == "call tim"
    dec = BeamDecoder(BeamOptions(lm="none"), ctx)
    dec.process(lp[:10])
    dec.set_hotwords([("Tom", 2.0)])  # at run time, normalised to the model's lower case
    dec.process(lp[10:])
    assert dec.finalize().text == "call tim"  # the utterance under way is left alone
    dec.process(lp)
    assert dec.finalize().text == "call tom"
    dec.set_hotwords([])
    dec.process(lp)
    assert dec.finalize().text == "call tim"


def test_multi_word_hot_phrase_must_be_spoken_whole(ctx):
    lp = logprobs(spell("call m") + [{"o": 0.55, "u": 0.45}] * 2 + ["-"] + spell("m now"))
    assert decode(ctx, lp, lm="none").text == "call mom now"
    assert decode(ctx, lp, lm="none", hotwords=["call mum"]).text == "call mum now"
    assert decode(ctx, lp, lm="none", hotwords=["call mum now"]).text == "call mum now"
    assert decode(ctx, lp, lm="none", hotwords=["mum now please"]).text == "call mom now"
    weak = decode(ctx, lp, lm="none", hotwords=[HotWord("call mum", 0.1)])
    assert weak.text == "call mom now"


def test_hot_phrase_of_unknown_words_passes_closed_vocabulary_and_lm(ctx, digits_lm):
    lp = logprobs(spell("one tobias"))
    assert "tobias" not in decode(ctx, lp, lm=str(digits_lm), vocabulary="lm").text
    hot = decode(ctx, lp, lm=str(digits_lm), vocabulary="lm", hotwords=["one tobias"])
    assert hot.text == "one tobias"


def test_hot_words_with_unknown_characters(ctx, tmp_path):
    with pytest.raises(ConfigError, match=r"hotwords\[1\]: hot phrase 'zoë' uses 'ë'"):
        BeamDecoder(BeamOptions(lm="none", hotwords=["tom", HotWord("zoë", 3.0)]), ctx)
    dec = BeamDecoder(BeamOptions(lm="none"), ctx)
    with pytest.raises(ConfigError, match=r"cmd/hotwords\[0\]: hot phrase 'r2d2' uses '2'"):
        dec.set_hotwords([("r2d2", 1.0)], where="cmd/hotwords")
    path = tmp_path / "hot.txt"
    path.write_text("# names\ntobias 4\ncall mum\nzoë 2.5\n")
    with pytest.raises(ConfigError, match=rf"{path}:4: hot phrase 'zoë' uses 'ë'"):
        BeamDecoder(BeamOptions(lm="none", hotwords_file=str(path)), ctx)
    path.write_text("tobias 4\ncall mum\n")
    dec = BeamDecoder(BeamOptions(lm="none", hotwords_file=str(path)), ctx)
    assert dec.hotwords == [("tobias", 4.0), ("call mum", 5.0)]


def test_lm_vocabulary_the_model_cannot_spell(ctx, tmp_path):
    path = build_arpa(["call mum", "call r2d2"], tmp_path / "lm.arpa")
    with pytest.raises(LMError, match=rf"{path}:\d+: word 'r2d2' cannot be spelled .* no '2'"):
        BeamDecoder(BeamOptions(lm=str(path)), ctx)


def test_word_timings_and_nbest(ctx, digits_lm):
    frames = spell("two six", hold=2, gap=1)  # t at frames 3-4, w 6-7, ..., x 21-22
    frames[18] = {"i": 0.6, "e": 0.4}  # 'i' of "six": some doubt, so the n-best has variety
    lp = logprobs(frames)
    result = decode(ctx, lp, lm="none", nbest=3)
    assert result.text == "two six"
    two, six = result.words
    fs = ctx.frame_seconds
    assert two.start == pytest.approx(3 * fs) and two.end == pytest.approx(11 * fs)
    assert six.start == pytest.approx(15 * fs) and six.end == pytest.approx(23 * fs)
    assert 0 < six.confidence < two.confidence <= 1
    assert 1 < len(result.nbest) <= 3
    assert result.nbest[0].text == result.text
    assert len({h.text for h in result.nbest}) == len(result.nbest)
    scores = [h.score for h in result.nbest]
    assert scores == sorted(scores, reverse=True)
    assert all(0 <= h.confidence <= 1 for h in result.nbest)
    d = result.to_dict()
    assert d["rejected"] is False and len(d["nbest"]) == len(result.nbest)
    assert [w["word"] for w in d["words"]] == ["two", "six"]
    assert decode(ctx, lp, lm="none", nbest=1).nbest[0].text == "two six"


def test_confidence_and_rejection(ctx):
    clean = logprobs(spell("call tom"))
    doubtful = logprobs(spell("call t") + [{"o": 0.5, "i": 0.5}] * 2 + ["-"] + spell("m"))
    sure = decode(ctx, clean, lm="none", reject_threshold=0.5)
    unsure = decode(ctx, doubtful, lm="none", reject_threshold=0.5)
    assert sure.confidence > 0.9 and not sure.rejected
    assert unsure.confidence < 0.5 and unsure.rejected
    assert unsure.to_dict()["rejected"] is True
    assert not decode(ctx, doubtful, lm="none").rejected  # threshold 0: never


def test_a_mean_confidence_keeps_a_string_for_one_unsure_word_but_not_that_word_alone(ctx):
    unsure_o = [{"o": 0.5, "i": 0.5}]  # "tom" or "tim"
    doubtful = logprobs(spell("call t") + unsure_o + ["-"] + spell("m"))
    least = decode(ctx, doubtful, lm="none", reject_threshold=0.6)
    mean = decode(ctx, doubtful, lm="none", reject_threshold=0.6, utterance_confidence="mean")
    assert least.rejected and not mean.rejected and mean.text == least.text
    call, name = mean.words
    assert name.confidence < 0.6 < call.confidence
    assert mean.confidence == pytest.approx((call.confidence * name.confidence) ** 0.5)
    alone = logprobs(spell("t") + unsure_o + ["-"] + spell("m"))
    assert decode(ctx, alone, lm="none", reject_threshold=0.6,
                  utterance_confidence="mean").rejected
    silence = logprobs(["-"] * 6)  # no words: its posterior, as with "least"
    assert decode(ctx, silence, lm="none", utterance_confidence="mean") == decode(
        ctx, silence, lm="none")


def test_partial_is_a_prefix_of_the_final_result(ctx, digits_lm):
    lp = logprobs(spell("three one four one five nine"))
    dec = BeamDecoder(BeamOptions(lm=str(digits_lm)), ctx)
    partials = []
    for part in np.array_split(lp, 12):
        dec.process(part)
        partials.append(dec.partial())
    final = dec.finalize().text
    assert final == "three one four one five nine"
    assert partials[-1] == final
    assert len(set(partials)) > 6  # it grows while the person speaks
    for p in partials:
        assert final.startswith(p)
    assert dec.partial() == ""  # finalize resets


def test_streaming_equals_whole(ctx, digits_lm):
    rng = np.random.default_rng(3)
    lp = logprobs(spell("eight two nine"))
    noisy = np.log(np.exp(lp) + rng.uniform(0, 0.2, lp.shape)).astype(np.float32)
    noisy -= np.log(np.exp(noisy).sum(axis=1, keepdims=True))
    whole = decode(ctx, noisy, lm=str(digits_lm))
    parts = decode(ctx, noisy, chunks=7, lm=str(digits_lm))
    assert parts.text == whole.text
    assert parts.confidence == pytest.approx(whole.confidence)


def test_options_validate_from_yaml():
    errors: list[str] = []
    opts = validate(BeamOptions, {"beam": 8, "alpha": 0.7, "vocabulary": ["one", "two"],
                                  "hotwords": ["tobias", {"phrase": "call mum", "boost": 3}]},
                    "decoder", errors)
    assert not errors
    assert opts.beam == 8 and opts.vocabulary == ("one", "two")
    assert opts.hotwords == ("tobias", HotWord("call mum", 3.0))
    validate(BeamOptions, {"beam": 0, "nbset": 3, "hotwords": [{"boost": 1}]}, "decoder", errors)
    assert any("decoder.beam" in e for e in errors)
    assert any('did you mean "nbest"' in e for e in errors)
    assert any("hotwords[0]" in e for e in errors)
