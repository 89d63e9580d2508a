"""Evaluation: WER/CER by edit distance, string accuracy, held-out test sets (clean and
noisy), cost and latency.

The INT8 model is always run through `edgevoice.runtime.AcousticModel` and decoded with the
daemon's GreedyDecoder, so the figures are what the daemon will do.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.decoding import DecoderContext, DecodeResult, GreedyDecoder, GreedyOptions
from edgevoice.errors import BuildError
from edgevoice.training.augment import add_noise, make_noise
from edgevoice.training.data import WordBank, heldout_utterances
from edgevoice.training.recipe import EvaluateSettings

Decode = Callable[[list[np.ndarray]], list[str]]


def edit_operations(ref: Sequence, hyp: Sequence) -> tuple[int, int, int]:
    """(substitutions, deletions, insertions) along a minimum edit alignment of `hyp` to
    `ref` (each costs 1; their sum is the Levenshtein distance)."""
    n, m = len(ref), len(hyp)
    d = [[i + j if i == 0 or j == 0 else 0 for j in range(m + 1)] for i in range(n + 1)]
    for i in range(1, n + 1):
        for j in range(1, m + 1):
            d[i][j] = min(d[i - 1][j] + 1, d[i][j - 1] + 1,
                          d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]))
    i, j, sub, dele, ins = n, m, 0, 0, 0
    while i or j:
        if i and j and d[i][j] == d[i - 1][j - 1] + (ref[i - 1] != hyp[j - 1]):
            sub += ref[i - 1] != hyp[j - 1]
            i, j = i - 1, j - 1
        elif i and d[i][j] == d[i - 1][j] + 1:
            dele, i = dele + 1, i - 1
        else:
            ins, j = ins + 1, j - 1
    return sub, dele, ins


def edit_distance(ref: Sequence, hyp: Sequence) -> int:
    """Levenshtein distance (substitutions, insertions, deletions all cost 1)."""
    return sum(edit_operations(ref, hyp))


def wer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Word error rate over a corpus: total word edits / total reference words."""
    edits = sum(edit_distance(r.split(), h.split()) for r, h in zip(refs, hyps, strict=True))
    return edits / max(sum(len(r.split()) for r in refs), 1)


def cer(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Character error rate over a corpus (spaces count as characters)."""
    edits = sum(edit_distance(r, h) for r, h in zip(refs, hyps, strict=True))
    return edits / max(sum(len(r) for r in refs), 1)


def same_words(ref: str, hyp: str) -> bool:
    """The whole utterance is right: the same words in the same order (spacing aside)."""
    return ref.split() == hyp.split()


def string_accuracy(refs: Sequence[str], hyps: Sequence[str]) -> float:
    """Share of utterances exactly right: a PIN with one digit wrong is a wrong PIN, however
    low the WER."""
    right = sum(same_words(r, h) for r, h in zip(refs, hyps, strict=True))
    return right / max(len(refs), 1)


@dataclass(frozen=True)
class TestSet:
    name: str  # "clean", "snr10", ...
    audio: list[np.ndarray]
    texts: list[str]

    @property
    def seconds(self) -> float:
        return sum(len(x) for x in self.audio) / 16000.0


def heldout_sets(test_bank: WordBank, babble_bank: WordBank, s: EvaluateSettings,
                 sample_rate: int) -> list[TestSet]:
    """Clean connected digit strings from held-out speakers, then noisy copies at each SNR.

    Everything is fixed by `s.seed`: the peer benchmark rebuilds exactly the same audio.
    Noise kinds alternate per utterance; babble is made of other speakers' words.
    """
    utts = heldout_utterances(test_bank, s.utterances, s.seed, sample_rate, s.min_words,
                              s.max_words)
    audio, texts = [x for x, _ in utts], [t for _, t in utts]
    sources = [x for words in babble_bank.speakers.values() for takes in words.values()
               for x in takes]
    sets = [TestSet("clean", audio, texts)]
    for snr in s.snrs:
        noisy = []
        for i, x in enumerate(audio):
            rng = np.random.default_rng([s.seed, int(snr * 10), i])
            kind = s.noise_kinds[i % len(s.noise_kinds)]
            noisy.append(np.clip(add_noise(x, make_noise(kind, len(x), rng, sources), snr),
                                 -1.0, 1.0))
        sets.append(TestSet(f"snr{snr:g}", noisy, texts))
    return sets


def greedy_results(tokens: Sequence[str], blank: int, frame_seconds: float = 0.02
                   ) -> Callable[[list[np.ndarray]], list[DecodeResult]]:
    """The daemon's greedy decoder over a list of utterances' log-probabilities."""
    decoder = GreedyDecoder(GreedyOptions(), DecoderContext.create(tokens, blank, frame_seconds))
    return lambda logprobs: _decode_all(decoder, logprobs)


def greedy_texts(logprobs: list[np.ndarray], tokens: Sequence[str], blank: int,
                 frame_seconds: float = 0.02) -> list[str]:
    return [r.text for r in greedy_results(tokens, blank, frame_seconds)(logprobs)]


def beam_results(options: dict[str, Any], tokens: Sequence[str], blank: int,
                 lm_file: Path | None, frame_seconds: float = 0.02
                 ) -> Callable[[list[np.ndarray]], list[DecodeResult]]:
    """The daemon's beam decoder (edgevoice.beam), options as in bundle.yaml `decoder`."""
    from edgevoice.beam import BeamDecoder, BeamOptions
    from edgevoice.options import validate

    errors: list[str] = []
    opts = validate(BeamOptions, {k: v for k, v in options.items() if k != "name"}, "decoder",
                    errors)
    if opts is None or errors:
        raise BuildError("recipe export.decoder: " + "; ".join(errors))
    decoder = BeamDecoder(opts, DecoderContext.create(tokens, blank, frame_seconds, lm_file))
    return lambda logprobs: _decode_all(decoder, logprobs)


def bundle_results(bundle: Any) -> tuple[dict[str, Any], Callable[[list[np.ndarray]],
                                                                  list[DecodeResult]]]:
    """A bundle's own decoder (bundle.yaml `decoder`; greedy where it names none) over a list of
    utterances' log-probabilities, and its options."""
    options = dict(bundle.raw.get("decoder") or {"name": "greedy"})
    if options.get("name") == "beam":
        return options, beam_results(options, bundle.tokens, bundle.blank, bundle.lm_file)
    return options, greedy_results(bundle.tokens, bundle.blank)


def beam_decode(options: dict[str, Any], tokens: Sequence[str], blank: int,
                lm_file: Path | None, frame_seconds: float = 0.02) -> Decode:
    run = beam_results(options, tokens, blank, lm_file, frame_seconds)
    return lambda logprobs: [r.text for r in run(logprobs)]


def _decode_all(decoder: Any, logprobs: list[np.ndarray]) -> list[DecodeResult]:
    out = []
    for lp in logprobs:
        decoder.process(lp)
        out.append(decoder.finalize())
    return out


def score(refs: list[str], hyps: list[str]) -> dict[str, float]:
    """WER, CER and "string_right": the share of utterances exactly right."""
    return {"wer": round(wer(refs, hyps), 4), "cer": round(cer(refs, hyps), 4),
            "string_right": round(string_accuracy(refs, hyps), 4)}


def score_model(run: Callable[[list[np.ndarray]], list[np.ndarray]],
                feats_by_set: dict[str, list[np.ndarray]], sets: list[TestSet],
                decoders: dict[str, Decode]) -> dict[str, dict[str, dict[str, float]]]:
    """`score` of one model (features -> log-probabilities) per decoder and test set."""
    out: dict[str, dict[str, dict[str, float]]] = {name: {} for name in decoders}
    for ts in sets:
        logprobs = run(feats_by_set[ts.name])
        for name, decode in decoders.items():
            out[name][ts.name] = score(ts.texts, decode(logprobs))
    return out


def int8_runner(acoustic_model) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """Features -> log-probabilities through the daemon's streaming TFLite runner."""
    return lambda feats: [acoustic_model.run_utterance(f) for f in feats]


def latency(acoustic_model, feats: list[np.ndarray], seconds: float) -> dict[str, float]:
    """Model time per second of audio (real-time factor x 1000 ms) and per streaming call."""
    calls = 0
    t0 = time.perf_counter()
    for f in feats:
        acoustic_model.reset()
        acoustic_model.process(f)
        acoustic_model.flush()
        calls += -(-len(f) // acoustic_model.spec.step)
    elapsed = time.perf_counter() - t0
    return {"ms_per_audio_second": round(1000 * elapsed / seconds, 3),
            "rtf": round(elapsed / seconds, 5),
            "ms_per_call": round(1000 * elapsed / max(calls, 1), 3)}
