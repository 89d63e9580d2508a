"""The shipped bundles on the speakers their recipes held out, through the daemon's runtime and
each bundle's own decoder: a guard against a broken export, far below the figures of the cards
(which `edgevoice-build evaluate` measures)."""

from __future__ import annotations

from pathlib import Path

from edgevoice.bundle import load_bundle
from edgevoice.features import LogMel
from edgevoice.runtime import open_acoustic_model
from edgevoice.training.evaluate import beam_results
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
from edgevoice.training.stages import INIT_WEIGHTS, Work
from edgevoice.training.strangers import _framed, published

RECIPES = DEFAULT_RECIPE.parent


def _held_out(recipe: str, speech_commands: Path, tmp_path: Path):
    r = load_recipe(RECIPES / recipe, {"data.speech_commands": str(speech_commands),
                                       "data.noise_dir": str(speech_commands / "background_noise")})
    work = Work(r, tmp_path)  # only read from: nothing is built
    words = work.words()
    audio = work.word_audio(words.test) + work.word_audio(words.other_test)
    framed = [(_framed(x, r.frontend.sample_rate, [1, i]), t) for i, (x, t) in enumerate(audio)]
    return framed, {c.speaker for c in words.train}, {c.speaker for c in words.test}


def _published(bundle_spec: str, clips) -> list[str]:
    bundle = load_bundle(bundle_spec)
    am = open_acoustic_model(bundle)
    lm = LogMel(bundle.frontend)
    decode = beam_results(bundle.decoder, bundle.tokens, bundle.blank, bundle.lm_file)
    results = decode([am.run_utterance(lm.compute(x)) for x, _ in clips])
    return [published(r) for r in results]


def test_the_commands_bundle_hears_held_out_speakers_and_refuses_other_words(
        speech_commands_dir: Path, tmp_path: Path) -> None:
    bundle = load_bundle("builtin:commands")
    assert bundle.decoder.get("reject_threshold") is not None  # calibrated by its build
    assert (bundle.path / INIT_WEIGHTS).exists()  # a user's recipe can start from it
    clips, trained, held = _held_out("commands.yaml", speech_commands_dir, tmp_path)
    assert not trained & held and len(held) >= 15
    said = _published("builtin:commands", clips)
    words = set(bundle.raw["training"]["recipe"]["synth"]["phrases"])
    vocab = [(s, t) for s, (_, t) in zip(said, clips, strict=True) if t in words]
    other = [s for s, (_, t) in zip(said, clips, strict=True) if t not in words]
    right = sum(s == t for s, t in vocab) / len(vocab)
    wrong = sum(bool(s) and s != t for s, t in vocab) / len(vocab)
    assert right >= 0.5 and wrong <= 0.15, (right, wrong)
    assert sum(bool(s) for s in other) / len(other) <= 0.2


def test_the_digits_bundle_ships_float_weights_for_fine_tuning() -> None:
    bundle = load_bundle("builtin:digits")
    assert (bundle.path / INIT_WEIGHTS).exists()
    assert bundle.model_file.stat().st_size <= 256 * 1024
