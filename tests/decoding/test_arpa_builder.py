"""The LM builder: normalised Kneser-Ney / Witten-Bell models, grammars, the `lm` subcommand."""

from __future__ import annotations

import argparse
import math
import random

import pytest
import yaml

from edgevoice.bundle import load_bundle, write_manifest
from edgevoice.errors import BundleError, LMError
from edgevoice.lm import EOS, UNK, load_lm
from edgevoice.training.lm import (
    add_parser,
    build_arpa,
    expand_grammar,
    expand_phrases,
    read_sentences,
)

DIGITS = "zero one two three four five six seven eight nine".split()


def _contexts(lm, rng: random.Random, n: int = 30) -> list:
    """LM states after seen and unseen histories, plus the sentence start and no context."""
    states = [lm.begin(), lm.null()]
    vocab = sorted(lm.vocabulary) + ["unseen"]
    for _ in range(n):
        state = lm.begin()
        for _ in range(rng.randint(1, 4)):
            _, state = lm.score(state, rng.choice(vocab))
        states.append(state)
    return states


@pytest.mark.parametrize("smoothing", ["kneser-ney", "witten-bell"])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_built_model_is_normalised(tmp_path, smoothing, order):
    rng = random.Random(order)
    corpus = [" ".join(rng.choice(DIGITS[: rng.randint(2, 10)]) for _ in range(rng.randint(1, 6)))
              for _ in range(300)]
    path = build_arpa(corpus, tmp_path / "lm.arpa", order=order, smoothing=smoothing)
    lm = load_lm(path, prefer_kenlm=False)
    assert lm.order == order
    assert lm.vocabulary == set(DIGITS)
    predicted = sorted(lm.vocabulary) + [EOS, UNK]
    for state in _contexts(lm, rng):
        total = sum(math.exp(lm.score(state, w)[0]) for w in predicted)
        assert total == pytest.approx(1.0, abs=1e-5)
    # the model prefers what it saw: a frequent bigram beats a never-seen one
    assert lm.sentence_score(corpus[0].split()) > lm.sentence_score(["unseen"] * 3)


def test_tiny_phrase_list_still_normalised(tmp_path):
    """Two phrases: too little data for discount estimates; the fallback must stay valid."""
    path = build_arpa(["turn on the light", "turn off the light"], tmp_path / "lm.arpa")
    lm = load_lm(path, prefer_kenlm=False)
    predicted = sorted(lm.vocabulary) + [EOS, UNK]
    for state in _contexts(lm, random.Random(1)):
        assert sum(math.exp(lm.score(state, w)[0]) for w in predicted) == pytest.approx(1, 1e-5)
    on = lm.sentence_score("turn on the light".split())
    assert on > lm.sentence_score("turn the on light".split()) + 3


def test_grammar_expansion():
    assert expand_grammar("turn (on|off) the (kitchen|bedroom) light") == [
        "turn on the kitchen light", "turn on the bedroom light",
        "turn off the kitchen light", "turn off the bedroom light"]
    assert expand_grammar("[please] stop") == ["stop", "please stop"]
    assert sorted(expand_grammar("(call|ring) (mum|dad [at work])")) == sorted([
        "call mum", "call dad", "call dad at work", "ring mum", "ring dad", "ring dad at work"])
    assert expand_grammar("a|b c") == ["a", "b c"]


@pytest.mark.parametrize("bad", ["turn (on|off the light", "turn on] the light", "x [y",
                                 "(" * 600 + "a" + ")" * 600])  # not a RecursionError
def test_grammar_errors(bad):
    with pytest.raises(LMError, match=r"g\.txt:7: "):
        expand_grammar(bad, "g.txt:7")


def test_a_phrase_list_may_hold_grammar_lines():
    assert expand_phrases(["Turn (on|off) the light", "stop", "STOP", "[please] stop"]) == (
        "turn on the light", "turn off the light", "stop", "please stop")
    with pytest.raises(LMError, match=r"^synth\.phrases\[1\]: missing '\)'"):
        expand_phrases(["stop", "turn (on the light"], "synth.phrases")


def _recipe(**sets):
    from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe

    return load_recipe(DEFAULT_RECIPE, sets)


def test_digit_strings_lm_sentences_are_random_strings_of_1_to_10_words():
    from edgevoice.training.stages import lm_sentences

    sentences = lm_sentences(_recipe())
    assert len(sentences) == 3000 and sentences == lm_sentences(_recipe())  # fixed seed
    assert {len(s.split()) for s in sentences} == set(range(1, 11))
    assert {w for s in sentences for w in s.split()} == set(DIGITS)


def test_a_phrase_lm_holds_each_phrase_as_a_sentence(tmp_path):
    """With export.lm_sentences: phrases the LM scores whole phrases far above pieces of
    them, run-ons or other orders: the beam search with `vocabulary: lm` says a phrase."""
    from edgevoice.training.stages import lm_sentences

    recipe = _recipe(**{"synth.phrases": ["turn (on|off) the (kitchen|bedroom) light",
                                          "what time is it"],
                        "export.lm_sentences": "phrases"})
    sentences = lm_sentences(recipe)
    assert sentences == list(recipe.synth.vocabulary()) and len(sentences) == 5
    lm = load_lm(build_arpa(sentences, tmp_path / "lm.arpa"), prefer_kenlm=False)
    assert lm.vocabulary == {"turn", "on", "off", "the", "kitchen", "bedroom", "light", "what",
                             "time", "is", "it"}
    whole = lm.sentence_score("turn off the kitchen light".split())
    for worse in ("turn off the", "the kitchen light", "turn off the light",
                  "turn off the kitchen light what time is it", "what time is it the light"):
        assert whole > lm.sentence_score(worse.split()) + 1.0, worse


def test_inputs_and_their_errors(tmp_path):
    grammar = tmp_path / "commands.txt"
    grammar.write_text("# lights\nturn (on|off) the light\n\n(open|close) the door\n")
    assert len(read_sentences(grammar, "grammar")) == 4
    grammar.write_text("# lights\nturn (on|off) the light\nopen (the door\n")
    with pytest.raises(LMError, match=rf"{grammar}:3: missing '\)'"):
        read_sentences(grammar, "grammar")
    empty = tmp_path / "phrases.txt"
    empty.write_text("# nothing here yet\n\n   \n")
    with pytest.raises(LMError, match=rf"{empty}: no phrases: the file is empty"):
        read_sentences(empty, "phrases")
    with pytest.raises(LMError, match="no such file"):
        read_sentences(tmp_path / "missing.txt", "corpus")
    with pytest.raises(LMError, match="no sentences"):
        build_arpa(["", "  "], tmp_path / "x.arpa")


def _bundle(tmp_path):
    """A minimal valid bundle directory (the model file is never opened here)."""
    d = tmp_path / "bundle"
    d.mkdir()
    (d / "model.tflite").write_bytes(b"not really a model")
    write_manifest(d, {
        "name": "test", "version": "1", "sample_rate": 16000,
        "frontend": {"sample_rate": 16000},
        "tokens": ["<blank>", " ", *"abcdefghijklmnopqrstuvwxyz"],
        "blank": 0, "model": {"file": "model.tflite", "window": 40, "context": 20, "stride": 2},
    })
    return d


def _run(argv):
    parser = argparse.ArgumentParser(prog="edgevoice-build")
    add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(argv)
    return args.func(args)


def test_subcommand_installs_lm_in_bundle(tmp_path, capsys):
    bundle = _bundle(tmp_path)
    grammar = tmp_path / "g.txt"
    grammar.write_text("turn (on|off) the (kitchen|bedroom) light\n")
    assert _run(["lm", "--grammar", str(grammar), "--order", "2", "--bundle", str(bundle)]) == 0
    meta = yaml.safe_load((bundle / "bundle.yaml").read_text())
    assert meta["lm"]["file"] == "lm.arpa" and meta["lm"]["order"] == 2
    loaded = load_bundle(bundle)  # hashes verified, lm.arpa among them
    assert loaded.lm_file == bundle / "lm.arpa" and "lm.arpa" in meta["files"]
    assert load_lm(loaded.lm_file).vocabulary == {"turn", "on", "off", "the", "kitchen",
                                                  "bedroom", "light"}
    assert "installed" in capsys.readouterr().out


def test_subcommand_errors(tmp_path):
    bundle = _bundle(tmp_path)
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("call mum\ncall dad at 5\n")
    with pytest.raises(LMError, match=rf"{corpus}:2: 'call dad at 5' uses '5'"):
        _run(["lm", "--corpus", str(corpus), "--bundle", str(bundle)])
    with pytest.raises(LMError, match="--output FILE and/or --bundle DIR"):
        _run(["lm", "--corpus", str(corpus)])
    (bundle / "model.tflite").write_bytes(b"tampered")
    with pytest.raises(BundleError, match="sha256 mismatch"):
        _run(["lm", "--phrases", str(corpus), "--bundle", str(bundle)])
    out = tmp_path / "out.arpa"
    assert _run(["lm", "--phrases", str(corpus), "--output", str(out)]) == 0
    assert load_lm(out).order == 3
