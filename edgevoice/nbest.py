"""From the beam search's final hypotheses to a DecodeResult: n-best, posteriors, confidences.

Hypotheses with the same text (different alignments) are merged by adding their
probabilities. Posteriors are a softmax over the merged scores. A word's posterior is the sum
of the posteriors of hypotheses holding the same word at about the same time (an n-best
approximation of a lattice word posterior); its confidence is the smaller of that and its
acoustic score (geometric mean of its characters' peak posteriors), which catches doubt the
beam never saw because the alternatives were pruned. A hypothesis' confidence is the smaller
of its posterior and its least confident word, or (`mean`) the geometric mean of its words'
confidences, without the posterior: the posterior of a long string spreads over the strings
that differ from it in one word, and the least sure of many words is low, so a threshold that
rejects unknown words said alone rejected a quarter of the connected digit strings said in
quiet. A word's posterior sums every hypothesis holding it, so a single word's `mean`
confidence can be higher than its `least` one (doubt between "five" and "five five" is
not seen).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from edgevoice.decoding import DecodeResult, Hypothesis, Word

TIME_SLACK = 2  # frames: the same word in two hypotheses may sit this far apart

# a completed word as the search records it: (word, first frame, last frame, mean log posterior)
Span = tuple[str, int, int, float]


def rank_hypotheses(finals: Sequence[tuple[float, tuple[Span, ...]]], frame_seconds: float,
                    nbest: int, reject_threshold: float, *, mean: bool = False
                    ) -> DecodeResult:
    merged: dict[str, tuple[float, tuple[Span, ...]]] = {}
    for score, spans_ in finals:
        words = _in_order(spans_)
        text = " ".join(w[0] for w in words)
        old = merged.get(text)
        if old is None:
            merged[text] = (score, words)
        else:
            hi, lo = max(old[0], score), min(old[0], score)
            best_words = old[1] if old[0] >= score else words
            merged[text] = (hi + math.log1p(math.exp(lo - hi)), best_words)
    if not merged:
        return DecodeResult("", 0.0, (), (), rejected=reject_threshold > 0)
    ranked = sorted(merged.items(), key=lambda kv: kv[1][0], reverse=True)
    top = ranked[0][1][0]
    weights = [math.exp(s - top) for _, (s, _) in ranked]
    total = sum(weights)
    post = [w / total for w in weights]
    spans = [words for _, (_, words) in ranked]
    hyps = []
    for i, (text, (score, words)) in enumerate(ranked[:nbest]):
        ws = tuple(_word(w, spans, post, frame_seconds) for w in words)
        conf = _mean_confidence(ws) if mean and ws else min([post[i], *(w.confidence for w in ws)])
        hyps.append(Hypothesis(text, conf, score, ws))
    best = hyps[0]
    return DecodeResult(best.text, best.confidence, best.words, tuple(hyps),
                        rejected=best.confidence < reject_threshold)


def _mean_confidence(words: Sequence[Word]) -> float:
    """Geometric mean of the words' confidences (0 if any is 0)."""
    if min(w.confidence for w in words) <= 0.0:
        return 0.0
    return math.exp(sum(math.log(w.confidence) for w in words) / len(words))


def _in_order(words: tuple[Span, ...]) -> tuple[Span, ...]:
    """Words one after another: the search keeps alignment statistics on prefixes that many
    hypotheses share, so a word's last frame can come from a path where the next word had
    not started. A word ends before the next one starts (and never before it starts itself)."""
    out = list(words)
    for i in range(len(out) - 1):
        w, start, end, lp = out[i]
        nxt = out[i + 1]
        if nxt[1] <= start:  # the next word cannot start before this one
            out[i + 1] = (nxt[0], start + 1, max(nxt[2], start + 1), nxt[3])
            nxt = out[i + 1]
        if end >= nxt[1]:
            out[i] = (w, start, max(start, nxt[1] - 1), lp)
    return tuple(out)


def _word(span: Span, spans: list[tuple[Span, ...]], post: list[float], fs: float) -> Word:
    word, start, end, mean_lp = span
    p = 0.0
    for k, words in enumerate(spans):
        for w, s, e, _ in words:
            if w == word and s <= end + TIME_SLACK and e >= start - TIME_SLACK:
                p += post[k]
                break
    conf = min(p, math.exp(mean_lp), 1.0)
    return Word(word, start * fs, (end + 1) * fs, conf)
