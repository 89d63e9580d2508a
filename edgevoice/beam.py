"""CTC prefix beam search with a word n-gram LM, closed vocabulary and hot phrases.

The search (Hannun et al. 2014) keeps, per distinct output prefix, the probability of all
alignments ending in blank (pb) and in its last token (pnb). A prefix's score is
    log(pb + pnb) + alpha * log P_lm(words) + beta * |words| + hot-phrase boosts.
The LM scores a word when it ends (a space, or the end of the utterance); while it is being
spelled, a lookahead charges the best unigram score of the LM words it could still become
(or the unknown-word penalty once it can become none), so prefixes that put off ending a word
gain nothing and words are compared fairly with half-spelled ones.

Speed, so that beam 16 with a trigram costs a few ms per second of audio in pure Python:
frames where no non-blank token clears `token_prune` take a fast path (no new prefixes); new
children are scored before they are made and only the few that enter the beam are made, then
cached on their parent; LM scores are cached per (state, word).

Confidence and n-best: see edgevoice.nbest.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from edgevoice.decoding import DecoderContext, DecodeResult
from edgevoice.errors import ConfigError
from edgevoice.lexicon import (
    MAX_BOOST,
    Alphabet,
    HotNode,
    TrieNode,
    build_hot_trie,
    build_vocab_trie,
    check_hotwords,
    read_hotwords_file,
    read_words,
)
from edgevoice.lm import UNK, check_spellable, load_lm
from edgevoice.nbest import rank_hypotheses
from edgevoice.options import opt

NEG = -math.inf
_UNSEEN: Any = object()  # marks a child not made yet (None marks one the vocabulary forbids)
DEFAULT_BOOST = 5.0
CACHE_LIMIT = 200_000  # LM cache entries before it is cleared


@dataclass(frozen=True)
class HotWord:
    """A phrase to favour at run time, without retraining (a name, a command)."""

    phrase: str  # words to favour, spelled with the model's characters
    boost: float = opt(DEFAULT_BOOST, "natural-log score added when the whole phrase is recognised",
                       min=-MAX_BOOST, max=MAX_BOOST)


@dataclass(frozen=True)
class BeamOptions:
    """Options of the `beam` decoder. Scores are natural logs."""

    beam: int = opt(16, "prefixes kept after each frame", min=1)
    token_prune: float = opt(-8.0, "a token whose log posterior in a frame is below this is not "
                             "tried there", max=0)
    max_tokens: int = opt(8, "at most this many tokens (the likeliest) tried per frame", min=1)
    beam_prune: float = opt(12.0, "drop prefixes scoring this far below the best", min=0)
    alpha: float = opt(0.8, "language model weight", min=0)
    beta: float = opt(1.5, "word insertion bonus, per word")
    unk_penalty: float = opt(-10.0, "LM log-probability of a word the LM does not know", max=0)
    lm: str = opt("bundle", '"bundle" (its lm.arpa, if any), "none", or an ARPA file path')
    prefer_kenlm: bool = opt(True, "query the LM with kenlm when it is installed")
    vocabulary: str | list[str] | None = opt(
        None, 'closed vocabulary: null (any spelling), "lm" (the LM\'s words), a list of words '
        "or a word-list file; hot phrase words are always allowed")
    hotwords: list[HotWord | str] = opt([], "phrases to favour: {phrase, boost} or a phrase")
    hotwords_file: str | None = opt(None, "file of hot phrases, one per line, boost last")
    nbest: int = opt(5, "hypotheses in the n-best list", min=1)
    reject_threshold: float = opt(0.0, "results with a confidence below this are marked "
                                  "rejected", min=0, max=1)
    utterance_confidence: Literal["least", "mean"] = opt(
        "least", 'a result\'s confidence: "least" (its least sure word, and its posterior: '
        'one doubtful word makes the whole doubtful, as a command should) or "mean" (the '
        "geometric mean of its words' confidences, without the posterior: a long digit string "
        "is not rejected for one unsure digit, an unknown word still is)")


class _Prefix:
    """One output prefix: its text, word state, LM state, and alignment probabilities."""

    __slots__ = ("parent", "token", "text", "word", "lm", "lmnode", "la", "bonus", "vnode",
                 "hnode", "hacc", "hdone", "words", "enter", "t_first", "t_last", "tok_lp", "kids",
                 "pb", "pnb", "npb", "npnb", "stamp", "score")

    def __init__(self, parent: _Prefix | None, token: int, text: str, word: str,
                 lm: tuple[Any, TrieNode | None, float], bonus: float, vnode: TrieNode | None,
                 hot: tuple[HotNode | None, float, float], words: tuple) -> None:
        self.parent, self.token, self.text, self.word = parent, token, text, word
        # LM state after the completed words; position of the current word in the LM's
        # vocabulary trie (None once it has left it); the lookahead score charged for it so far
        self.lm, self.lmnode, self.la = lm
        self.bonus, self.vnode = bonus, vnode
        self.hnode, self.hacc, self.hdone = hot
        self.words = words  # completed words: (word, prefix ending with its last character)
        # Alignment of this prefix's last token, read when the result is built: the frame of
        # the likeliest entry into it, the last frame it was still being emitted, and its
        # peak posterior there. Updated in place, so cached children see the final values.
        self.enter = NEG
        self.t_first = self.t_last = 0
        self.tok_lp = 0.0
        self.kids: dict[int, _Prefix | None] | None = None
        self.pb = self.pnb = self.npb = self.npnb = NEG
        self.stamp = -1
        self.score = NEG


def hot_pair(h: Any) -> tuple[str, float]:
    """A hot word option (a phrase, a HotWord, or a {phrase, boost} mapping) as a pair."""
    if isinstance(h, str):
        return h, DEFAULT_BOOST
    if isinstance(h, dict):
        return str(h.get("phrase", "")), h.get("boost", DEFAULT_BOOST)
    return h.phrase, h.boost


def _first(item: tuple[float, Any]) -> float:
    return item[0]


def _lse(a: float, b: float) -> float:
    if a < b:
        a, b = b, a
    if b == NEG:
        return a
    return a + math.log1p(math.exp(b - a))


class BeamDecoder:
    """Streaming CTC prefix beam search; `partial()` reads the best prefix, never re-decodes."""

    name = "beam"
    kind = "decoder"
    Options = BeamOptions

    def __init__(self, options: BeamOptions, ctx: DecoderContext) -> None:
        self.options = options
        self.ctx = ctx
        self._alphabet = Alphabet(ctx.tokens, ctx.blank)
        self._space = ctx.space
        self.lm = self._load_lm()
        self._cache: dict[tuple[Any, str], tuple[float, Any]] = {}
        self._lm_root: TrieNode | None = None
        if self.lm is not None:
            null = self.lm.null()
            unigrams = {w: self.lm.score(null, w)[0] for w in self.lm.vocabulary}
            self._lm_root = build_vocab_trie(unigrams, self._alphabet, unigrams)
            self._unk_lm = self.lm.score(null, UNK)[0]  # for hot words the LM does not know
        self._vocab: set[str] | None = self._load_vocabulary()
        hot = [hot_pair(h) for h in options.hotwords]
        if options.hotwords_file:
            hot += read_hotwords_file(Path(options.hotwords_file).expanduser(), self._alphabet,
                                      DEFAULT_BOOST)
        self.set_hotwords(hot)
        self.reset()

    def _load_lm(self) -> Any:
        o = self.options
        if o.lm == "none":
            return None
        if o.lm == "bundle":
            if self.ctx.lm_file is None:
                return None
            path = Path(str(self.ctx.lm_file))
        else:
            path = Path(o.lm).expanduser()
        lm = load_lm(path, prefer_kenlm=o.prefer_kenlm, unk_logprob=o.unk_penalty)
        check_spellable(lm, self.ctx.tokens)
        return lm

    def _load_vocabulary(self) -> set[str] | None:
        spec = self.options.vocabulary
        if spec is None:
            return None
        if spec == "lm":
            if self.lm is None:
                raise ConfigError(['vocabulary: "lm" needs a language model, and this decoder '
                                   'has none (lm: "none", or the bundle has no lm.arpa)'],
                                  "beam decoder")
            return set(self.lm.vocabulary)
        return read_words(spec, self._alphabet, "vocabulary")

    def set_hotwords(self, hotwords: list[tuple[str, float]], where: str = "hotwords") -> None:
        """Replace the hot phrases from the next utterance on. Safe to call from another thread:
        the decoding thread swaps the new tries in when an utterance starts."""
        hot = check_hotwords(hotwords, self._alphabet, where)
        words = {w for phrase, _ in hot for w in phrase.split()}
        allowed = None if self._vocab is None else self._vocab | words
        self._pending = (
            hot,
            build_hot_trie(hot, self._alphabet) if hot else None,
            words,
            None if allowed is None else build_vocab_trie(allowed, self._alphabet),
        )
        self.hotwords = hot

    def reset(self) -> None:
        self._active = self._pending
        _, self._hot_root, self._hot_words, self._vocab_root = self._active
        begin = self.lm.begin() if self.lm is not None else None
        root = _Prefix(None, -1, "", "", (begin, self._lm_root, 0.0), 0.0, self._vocab_root,
                       (None, 0.0, 0.0), ())
        root.pb = 0.0
        self._beam = [root]
        self._t = 0
        if len(self._cache) > CACHE_LIMIT:
            self._cache.clear()

    # -- search --------------------------------------------------------------------------

    def process(self, logprobs: np.ndarray) -> None:
        if not len(logprobs):
            return
        if self._t == 0 and self._pending is not self._active:
            self.reset()  # hot words changed between utterances
        o = self.options
        mask = np.asarray(logprobs) > o.token_prune
        mask[:, self.ctx.blank] = False
        active = np.count_nonzero(mask, axis=1).tolist()  # candidates per frame
        rows: list[list[float]] = logprobs.tolist()
        for i, row in enumerate(rows):
            t = self._t + i
            if active[i]:
                cands = np.flatnonzero(mask[i]).tolist()
                if len(cands) > o.max_tokens:
                    cands = sorted(cands, key=row.__getitem__, reverse=True)[: o.max_tokens]
                self._step(t, row, cands)
            else:
                self._blank_step(t, row)
        self._t += len(rows)

    def _blank_step(self, t: int, row: list[float]) -> None:
        """A frame where only blank (or the current tokens' repeats) can be emitted."""
        lpb = row[self.ctx.blank]
        for n in self._beam:
            b, nb = n.pb, n.pnb
            n.pb = _lse(b, nb) + lpb
            if n.token >= 0:
                n.pnb = nb + row[n.token]
                if n.pnb > n.pb:
                    n.t_last = t

    def _step(self, t: int, row: list[float], cands: list[int]) -> None:
        """A frame with candidate tokens: extend every prefix, keep the best `beam`."""
        lpb = row[self.ctx.blank]
        beam = self._beam
        for n in beam:
            n.stamp, n.npb, n.npnb = t, NEG, NEG
        fresh: list[_Prefix] = []
        # Children never made before are only scored here (exactly: path + bonus) and made
        # after selection, as most never enter the beam. A space ends a word, which needs the
        # LM, so those children are made at once (and cached).
        pending: list[tuple[float, _Prefix, int, float, float]] = []
        slow = self._hot_root is not None or self.lm is not None  # bonus changes per character
        space = self._space
        for n in beam:
            b, nb, tok = n.pb, n.pnb, n.token
            tot = _lse(b, nb)
            n.npb = _lse(n.npb, tot + lpb)
            if tok >= 0:
                lp = row[tok]
                n.npnb = _lse(n.npnb, nb + lp)
                if nb >= b and lp > n.tok_lp:
                    n.tok_lp = lp
            kids = n.kids
            if kids is None:
                kids = n.kids = {}
            vnode = n.vnode
            for c in cands:
                lc = row[c]
                p = (b if c == tok else tot) + lc
                if p == NEG:
                    continue
                child = kids.get(c, _UNSEEN)
                if child is _UNSEEN:
                    if c != space:
                        if vnode is not None and c not in vnode.children:
                            kids[c] = None
                        else:
                            bonus = self._char(n, c)[0] if slow else n.bonus
                            pending.append((p + bonus, n, c, p, lc))
                        continue
                    child = kids[c] = self._extend(n, c)
                if child is None:
                    continue
                if p > child.enter:
                    child.enter, child.t_first, child.tok_lp = p, t, lc
                    if t > child.t_last:
                        child.t_last = t
                if child.stamp != t:
                    child.stamp, child.npb, child.npnb = t, NEG, p
                    fresh.append(child)
                else:
                    child.npnb = _lse(child.npnb, p)
        ranked: list[tuple[float, Any]] = []
        for n in beam + fresh:
            n.pb, n.pnb = n.npb, n.npnb
            n.score = _lse(n.pb, n.pnb) + n.bonus
            if n.pnb > n.pb and n.token >= 0:
                n.t_last = t
            ranked.append((n.score, n))
        ranked.extend((item[0], item) for item in pending)
        ranked.sort(key=_first, reverse=True)
        floor = ranked[0][0] - self.options.beam_prune
        width = self.options.beam
        kept: list[_Prefix] = []
        for score, item in ranked:
            if score < floor or len(kept) == width:
                break
            if type(item) is tuple:
                _, parent, c, p, lc = item
                child = self._extend(parent, c)
                assert child is not None and parent.kids is not None  # vocabulary checked above
                parent.kids[c] = child
                child.stamp, child.pb, child.pnb, child.score = t, NEG, p, score
                child.enter, child.t_first, child.t_last, child.tok_lp = p, t, t, lc
                item = child
            kept.append(item)
        self._beam = kept

    def _extend(self, n: _Prefix, c: int) -> _Prefix | None:
        """The prefix n + token c, or None when the vocabulary forbids it."""
        if c == self._space:
            if not n.word:
                return None  # leading or doubled space: no text of its own
            end = self._word_end(n, self._space)
            if end is None:
                return None
            bonus, state, hot, words = end
            return _Prefix(n, c, n.text + " ", "", (state, self._lm_root, 0.0), bonus,
                           self._vocab_root, hot, words)
        vnode = n.vnode
        if vnode is not None:
            vnode = vnode.children.get(c)
            if vnode is None:
                return None
        bonus, hot, lmnode, la = self._char(n, c)
        ch = self.ctx.tokens[c]
        return _Prefix(n, c, n.text + ch, n.word + ch, (n.lm, lmnode, la), bonus, vnode, hot,
                       n.words)

    def _char(self, n: _Prefix, c: int
              ) -> tuple[float, tuple[HotNode | None, float, float], TrieNode | None, float]:
        """Bonus, hot-phrase state and LM lookahead after appending character c to prefix n.

        The lookahead charges a word's LM cost as it is spelled (the best unigram score of
        the LM words it could still become, or the unknown-word score once it can become
        none), so a prefix cannot dodge the LM by putting off the end of a word.
        """
        bonus, hot = self._hot_char(n, c)
        node = n.lmnode
        if node is None:  # no LM, or the word has already left the LM's vocabulary
            return bonus, hot, None, n.la
        nxt = node.children.get(c)
        if nxt is not None:
            la = nxt.best
        else:
            la = self._unk_lm if hot[0] is not None else self.options.unk_penalty
        return bonus + self.options.alpha * (la - n.la), hot, nxt, la

    def _hot_char(self, n: _Prefix, c: int) -> tuple[float, tuple[HotNode | None, float, float]]:
        """Bonus and hot-phrase state after appending character c to prefix n."""
        hnode = n.hnode
        if hnode is not None:
            nxt = hnode.children.get(c)
            if nxt is None:  # the phrase broke off: take back what it had been given
                return n.bonus + n.hdone - n.hacc, (None, 0.0, 0.0)
            return n.bonus + nxt.step, (nxt, n.hacc + nxt.step, n.hdone)
        if not n.word and self._hot_root is not None:
            nxt = self._hot_root.children.get(c)
            if nxt is not None:
                return n.bonus + nxt.step, (nxt, nxt.step, 0.0)
        return n.bonus, (None, 0.0, 0.0)

    def _word_end(self, n: _Prefix, next_token: int
                  ) -> tuple[float, Any, tuple[HotNode | None, float, float], tuple] | None:
        """Close n's current word: vocabulary check, LM score, hot phrase bookkeeping."""
        word = n.word
        if self._vocab_root is not None and (n.vnode is None or not n.vnode.is_word):
            return None
        o = self.options
        bonus, state = n.bonus, n.lm
        if self.lm is not None:
            key = (state, word)
            hit = self._cache.get(key)
            if hit is None:
                query = UNK if word in self._hot_words and not self.lm.known(word) else word
                hit = self._cache[key] = self.lm.score(state, query)
            bonus += o.beta + o.alpha * (hit[0] - n.la)  # the real score replaces the lookahead
            state = hit[1]
        hnode, hacc, hdone = n.hnode, n.hacc, n.hdone
        if hnode is not None:
            nxt = hnode.children.get(next_token) if next_token >= 0 else None
            if nxt is not None:  # the phrase goes on into the next word
                hdone = hnode.final if hnode.final is not None else hdone
                hnode, hacc, bonus = nxt, hacc + nxt.step, bonus + nxt.step
            else:
                bonus += (hnode.final if hnode.final is not None else hdone) - hacc
                hnode, hacc, hdone = None, 0.0, 0.0
        return bonus, state, (hnode, hacc, hdone), (*n.words, (word, n))

    # -- results -------------------------------------------------------------------------

    def partial(self) -> str:
        best = max(self._beam, key=lambda n: _lse(n.pb, n.pnb) + n.bonus)
        return " ".join(best.text.split())

    def finalize(self) -> DecodeResult:
        finals = []
        for n in self._beam:
            score = _lse(n.pb, n.pnb)
            bonus, state, words = n.bonus, n.lm, n.words
            if n.word:
                end = self._word_end(n, -1)
                if end is None:
                    continue
                bonus, state, _, words = end
            elif n.hnode is not None:
                bonus += n.hdone - n.hacc
            if self.lm is not None:
                bonus += self.options.alpha * self.lm.end(state)
            finals.append((score + bonus, tuple(_span(w, last) for w, last in words)))
        result = rank_hypotheses(finals, self.ctx.frame_seconds, self.options.nbest,
                                 self.options.reject_threshold,
                                 mean=self.options.utterance_confidence == "mean")
        self.reset()
        return result


def _span(word: str, last: _Prefix) -> tuple[str, int, int, float]:
    """(word, first frame, last frame, mean log posterior of its tokens)."""
    node, total, count = last, last.tok_lp, 1
    while node.parent is not None and node.parent.token >= 0 and node.parent.word:
        node = node.parent
        total += node.tok_lp
        count += 1
    return word, node.t_first, last.t_last, total / count
