"""Evaluation on strangers: single words of held-out speakers (their own microphones and rooms)
clean, reverberant and in each kind of noise by SNR, and the false-output rate on audio that
holds no vocabulary word (other words, noise, clicks), with the reject threshold's trade-off.

Each clip of a word set has one outcome, by what the daemon publishes: "right" (exactly the
word or phrase said), "wrong" (anything else: a wrong command) or "nothing" (silence, or a
result rejected by the threshold). A wrong word that is rejected is nothing, not wrong.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevoice.decoding import DecodeResult
from edgevoice.training.augment import FILE_KIND, add_noise, make_noise, reverb
from edgevoice.training.data import in_room
from edgevoice.training.evaluate import TestSet, edit_operations, same_words
from edgevoice.training.recipe import EvaluateSettings

# The daemon's default VAD keeps 300 ms before speech and ends it after 400 ms of silence;
# transcribe frames files with room noise at -55 dBFS.
PREROLL, HANGOVER, EDGE_DB = 0.3, 0.4, -55.0
WORD_RT60 = (0.3, 0.9)  # seconds: living rooms and kitchens, a little more than training's mean
# Every 0.01: the threshold chosen is the lowest that meets the false-output target, not the
# next multiple of 0.05 above it (on 60 clean words, a step of 0.05 could cost three of them).
THRESHOLDS = tuple(round(0.01 * i, 2) for i in range(100))
OUTCOMES = ("right", "wrong", "nothing")
Results = Callable[[list[np.ndarray]], list[DecodeResult]]


def kind_label(kind: str) -> str:
    return kind[len(FILE_KIND):] if kind.startswith(FILE_KIND) else kind


@dataclass(frozen=True)
class StrangerSets:
    words: list[TestSet]  # vocabulary words: "words_clean", "words_reverb", "words_<kind>_<snr>"
    negatives: list[TestSet]  # no vocabulary word: "neg_words", "neg_noise"


def stranger_sets(words: Sequence[tuple[np.ndarray, str]], others: Sequence[np.ndarray],
                  babble: Sequence[np.ndarray], files: dict[str, np.ndarray],
                  s: EvaluateSettings, rate: int) -> StrangerSets:
    """Every set is fixed by `s.seed`; babble is built from held-out speakers' words. Each
    clip is framed as the daemon frames an utterance (its default pre-roll and hang-over of
    faint room noise); the noise of a noisy set covers the whole framed clip. Without
    `words` (a vocabulary of phrases nobody here said) there are only the negatives."""
    others = [_framed(x, rate, [s.seed, 6, i]) for i, x in enumerate(others)]
    negatives = [TestSet("neg_words", list(others), [""] * len(others)),
                 noise_only(s, babble, files, rate)]
    if not words:
        return StrangerSets([], negatives)
    audio = [_framed(x, rate, [s.seed, 5, i]) for i, (x, _) in enumerate(words)]
    texts = [t for _, t in words]
    sets = [TestSet("words_clean", audio, texts)]
    rooms = [reverb(x, np.random.default_rng([s.seed, 7, i]), rate, WORD_RT60)
             for i, x in enumerate(audio)]
    sets.append(TestSet("words_reverb", rooms, texts))
    for k, kind in enumerate((*s.word_noise_kinds, *s.heldout_noise_kinds)):
        for snr in s.word_snrs:
            noisy = []
            for i, x in enumerate(audio):
                rng = np.random.default_rng([s.seed, 100 + k, int(snr * 10) + 1000, i])
                noise = make_noise(kind, len(x), rng, babble, rate, files)
                noisy.append(np.clip(add_noise(x, noise, snr), -1.0, 1.0))
            sets.append(TestSet(f"words_{kind_label(kind)}_{snr:g}dB", noisy, texts))
    return StrangerSets(sets, negatives)


def _framed(x: np.ndarray, rate: int, seed: list[int]) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return in_room(x, rng, rate, (PREROLL, PREROLL), (HANGOVER, HANGOVER), (EDGE_DB, EDGE_DB))


def noise_only(s: EvaluateSettings, babble: Sequence[np.ndarray], files: dict[str, np.ndarray],
               rate: int) -> TestSet:
    """`s.noise_clips` one-second clips of every evaluated noise kind (and a quiet room with a
    click or breath) at levels from faint to loud; nothing in them is a word to publish."""
    from edgevoice.training import household

    kinds = [*s.word_noise_kinds, *s.heldout_noise_kinds, "onset"]
    clips = []
    for i in range(s.noise_clips):
        rng = np.random.default_rng([s.seed, 99, i])
        kind = kinds[i % len(kinds)]
        floor = 10 ** (rng.uniform(-65.0, -50.0) / 20) * rng.standard_normal(rate)
        if kind == "onset":
            x = household.place_onset(np.zeros(rate, np.float32), rng, rate, (-6.0, 0.0))
            x = x * rng.uniform(0.05, 0.7)
        else:
            x = 10 ** (rng.uniform(-40.0, -12.0) / 20) * make_noise(kind, rate, rng, babble, rate,
                                                                      files)
        clips.append(np.clip(x + floor, -1.0, 1.0).astype(np.float32))
    return TestSet("neg_noise", clips, [""] * len(clips))


def published(r: DecodeResult, threshold: float | None = None) -> str:
    """What the daemon publishes as an accepted transcript ("" = nothing, or rejected)."""
    rejected = r.rejected if threshold is None else r.confidence < threshold
    return "" if rejected else r.text


def word_score(refs: Sequence[str], results: Sequence[DecodeResult],
               threshold: float | None = None) -> dict[str, float]:
    """WER of what is published (a rejected result counts as nothing said), its parts,
    insertions at the onset (clips whose text has extra words before the word said) and the
    `phrase_outcomes`."""
    sub = dele = ins = onset = rejected = 0
    for ref, r in zip(refs, results, strict=True):
        hyp = published(r, threshold).split()
        rejected += bool(r.text) and not published(r, threshold)
        s, d, i = edit_operations(ref.split(), hyp)
        sub, dele, ins = sub + s, dele + d, ins + i
        words = ref.split()
        onset += len(hyp) > len(words) and hyp[-len(words):] == words
    n = max(sum(len(r.split()) for r in refs), 1)
    clips = max(len(refs), 1)
    return {"wer": round((sub + dele + ins) / n, 4), "sub": round(sub / n, 4),
            "del": round(dele / n, 4), "ins": round(ins / n, 4),
            "onset_ins": round(onset / clips, 4), "rejected": round(rejected / clips, 4),
            **phrase_outcomes(refs, results, threshold), "clips": len(refs)}


def outcome(ref: str, said: str) -> str:
    """One of OUTCOMES for a clip whose reference is `ref` and published text `said`."""
    if not said.strip():
        return "nothing"
    return "right" if same_words(ref, said) else "wrong"


def _shares(outcomes: Sequence[str]) -> dict[str, float]:
    n = max(len(outcomes), 1)
    return {k: round(sum(o == k for o in outcomes) / n, 4) for k in OUTCOMES}


def phrase_outcomes(refs: Sequence[str], results: Sequence[DecodeResult],
                    threshold: float | None = None) -> dict[str, float]:
    """Shares of clips: "phrase_right" (phrase accuracy), "phrase_wrong" (wrong commands)
    and "phrase_nothing"; they add up to 1."""
    said = [outcome(ref, published(r, threshold)) for ref, r in zip(refs, results, strict=True)]
    return {f"phrase_{k}": v for k, v in _shares(said).items()}


def per_word(refs: Sequence[str], results: Sequence[DecodeResult],
             threshold: float | None = None, vocabulary: Sequence[str] = ()
             ) -> dict[str, dict[str, Any]]:
    """{reference phrase: {"clips", "right", "wrong", "nothing" (shares of its clips),
    "became": the wrong text published most often, or None}}, in vocabulary order, then in
    order of appearance."""
    said: dict[str, list[str]] = {}
    for ref, r in zip(refs, results, strict=True):
        said.setdefault(ref, []).append(published(r, threshold))
    return {ref: _word_entry(ref, said[ref])
            for ref in dict.fromkeys((*vocabulary, *refs)) if ref in said}


def _word_entry(ref: str, hyps: list[str]) -> dict[str, Any]:
    outcomes = [outcome(ref, h) for h in hyps]
    wrong = Counter(" ".join(h.split()) for h, o in zip(hyps, outcomes, strict=True)
                    if o == "wrong")
    return {"clips": len(hyps), **_shares(outcomes),
            "became": wrong.most_common(1)[0][0] if wrong else None}


def per_word_figures(sets: StrangerSets, results: dict[str, list[DecodeResult]], name: str,
                     threshold: float | None, vocabulary: Sequence[str]
                     ) -> dict[str, dict[str, Any]]:
    """`per_word` on the clean held-out words of one model and decoder: {name: table}, and
    {name + "_reject": table} at the threshold it ships with, if one was chosen."""
    clean = _clean(sets).texts
    out = {name: per_word(clean, results["words_clean"], None, vocabulary)}
    if threshold is not None:
        out[f"{name}_reject"] = per_word(clean, results["words_clean"], threshold, vocabulary)
    return out


def false_outputs(results: Sequence[DecodeResult], threshold: float | None = None
                  ) -> dict[str, float]:
    """Share of clips with no vocabulary word for which something is published."""
    out = sum(bool(published(r, threshold)) for r in results)
    return {"false_output": round(out / max(len(results), 1), 4), "clips": len(results)}


def score_strangers(run: Callable[[list[np.ndarray]], list[np.ndarray]],
                    feats: dict[str, list[np.ndarray]], sets: StrangerSets,
                    decoders: dict[str, Results]) -> tuple[dict[str, Any], dict[str, Any]]:
    """({decoder suffix: {set: scores}}, {decoder suffix: {set: results}}) of one model."""
    scores: dict[str, Any] = {name: {} for name in decoders}
    kept: dict[str, Any] = {name: {} for name in decoders}
    for ts in (*sets.words, *sets.negatives):
        logprobs = run(feats[ts.name])
        for name, decode in decoders.items():
            results = decode(logprobs)
            kept[name][ts.name] = results
            scores[name][ts.name] = (false_outputs(results) if ts.name.startswith("neg_")
                                     else word_score(ts.texts, results))
    return scores, kept


def reject_curve(sets: StrangerSets, results: dict[str, list[DecodeResult]]
                 ) -> list[dict[str, Any]]:
    """Per threshold: shares of clean held-out words right, wrong and lost (nothing
    published), and false outputs on all negatives together and on each negative set
    ("false_output_by": {set name: share})."""
    clean = _clean(sets)
    neg = [r for ts in sets.negatives for r in results[ts.name]]
    curve = []
    for t in THRESHOLDS:
        o = phrase_outcomes(clean.texts, results["words_clean"], t)
        curve.append({"threshold": t, "right": o["phrase_right"], "wrong": o["phrase_wrong"],
                      "lost": o["phrase_nothing"],
                      "false_output": false_outputs(neg, t)["false_output"],
                      "false_output_by": {ts.name: false_outputs(results[ts.name], t)
                                          ["false_output"] for ts in sets.negatives}})
    return curve


def _clean(sets: StrangerSets) -> TestSet:
    return next(ts for ts in sets.words if ts.name == "words_clean")


def choose_threshold(curve: Sequence[dict[str, Any]], max_false_output: float) -> float:
    """The lowest threshold whose false-output rate is at most `max_false_output` on the
    negatives together and on each kind of them (other words, noise) alone, so that a rate
    low on noise does not buy a high one on words; each word it rejects is one a user loses.
    If none reaches it, the one with the fewest false outputs (its worst kind first)."""
    def worst(p: dict[str, Any]) -> float:
        return max((p["false_output"], *p.get("false_output_by", {}).values()))

    ok = [p for p in curve if worst(p) <= max_false_output]
    if ok:
        return min(p["threshold"] for p in ok)
    return min(curve, key=lambda p: (worst(p), p["false_output"], p["threshold"]))["threshold"]


def recipe_sets(recipe: Any) -> tuple[StrangerSets, int]:
    """The stranger sets of a recipe (its data and evaluate sections) straight from the data
    folders, as `edgevoice-build evaluate` builds them: (sets, speakers of the words, or of
    the negatives when no vocabulary word is in the data)."""
    from pathlib import Path

    from edgevoice.errors import BuildError
    from edgevoice.training.data import trim
    from edgevoice.training.stages import Work

    work = Work(recipe, Path(recipe.work_dir))  # only read from: nothing is built
    words = work.words()
    if words is None:
        raise BuildError("recipe data.speech_commands is empty: no strangers to measure")
    e, rate = recipe.evaluate, recipe.frontend.sample_rate
    files = work.noise_files((*e.word_noise_kinds, *e.heldout_noise_kinds))
    others = [x for x, _ in work.word_audio(words.other_test)]
    babble = [trim(x, rate) for x in others]  # held-out speakers, saying no vocabulary word
    sets = stranger_sets(work.word_audio(words.test), others, babble, files, e, rate)
    return sets, len({c.speaker for c in words.test} or words.test_speakers)
