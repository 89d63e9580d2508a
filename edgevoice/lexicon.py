"""Word lists and hot phrases for the beam decoder, as character tries over token ids.

A closed vocabulary is a trie: a prefix that leaves it can never become an allowed word, so the
decoder drops it at once. Hot phrases are a second trie whose nodes carry partial boosts, so a
phrase is favoured while it is being spoken, not only once it is complete.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from pathlib import Path

from edgevoice.errors import ConfigError
from edgevoice.lm import iter_text_lines

# A hot phrase's boost is a natural-log score: beyond this it outweighs any acoustics and
# every transcript becomes the phrase (or, negative, nothing).
MAX_BOOST = 20.0


class TrieNode:
    """One character position: children by token id, whether a word ends here, and the best
    score of any word below (the LM lookahead; 0 when the trie has no scores)."""

    __slots__ = ("children", "is_word", "best")

    def __init__(self) -> None:
        self.children: dict[int, TrieNode] = {}
        self.is_word = False
        self.best = -math.inf


class HotNode:
    """A position in a hot phrase: `step` is the boost gained on reaching it, `final` the
    whole phrase's boost if a phrase ends here (None otherwise)."""

    __slots__ = ("children", "step", "final")

    def __init__(self) -> None:
        self.children: dict[int, HotNode] = {}
        self.step = 0.0
        self.final: float | None = None


class Alphabet:
    """Maps text to the acoustic model's single-character token ids."""

    def __init__(self, tokens: Sequence[str], blank: int) -> None:
        self.index = {t: i for i, t in enumerate(tokens) if len(t) == 1 and i != blank}
        self.lower = not any(t.isupper() for t in self.index)

    def normalise(self, text: str) -> str:
        text = " ".join(text.split())
        return text.lower() if self.lower else text

    def problem(self, text: str) -> str | None:
        """Why `text` cannot be spelled, or None."""
        bad = list(dict.fromkeys(ch for ch in text if ch not in self.index and ch != " "))
        if not text:
            return "is empty"
        if bad:
            shown = ", ".join(repr(c) for c in bad)
            return (f"{text!r} uses {shown}, which the acoustic model cannot produce "
                    f"(its characters: {''.join(sorted(self.index)).strip()!r} and space)")
        return None

    def ids(self, text: str) -> list[int]:
        return [self.index[ch] for ch in text]


def build_vocab_trie(words: Iterable[str], alphabet: Alphabet,
                     scores: dict[str, float] | None = None) -> TrieNode:
    """Trie of words; with `scores`, each node's `best` is the highest score below it."""
    root = TrieNode()
    for word in words:
        score = scores[word] if scores is not None else 0.0
        node = root
        for tok in alphabet.ids(word):
            node = node.children.setdefault(tok, TrieNode())
            node.best = max(node.best, score)
        node.is_word = True
    root.best = 0.0
    return root


def build_hot_trie(phrases: Sequence[tuple[str, float]], alphabet: Alphabet) -> HotNode:
    """Trie of phrases; each edge carries the largest per-character share of a phrase boost."""
    root = HotNode()
    for phrase, boost in phrases:
        ids = alphabet.ids(phrase)
        share = boost / len(ids)
        node = root
        for tok in ids:
            child = node.children.get(tok)
            if child is None:
                child = node.children[tok] = HotNode()
                child.step = share
            elif abs(share) > abs(child.step):
                child.step = share
            node = child
        node.final = boost if node.final is None else max(node.final, boost)
    return root


def read_words(spec: str | Sequence[str], alphabet: Alphabet, where: str) -> set[str]:
    """Vocabulary words from a list (entries may hold several words) or a word-list file."""
    if isinstance(spec, str):
        path = Path(spec).expanduser()
        if not path.is_file():
            raise ConfigError([f"vocabulary file {spec} does not exist"], where)
        items = [(f"{path}:{n}", text) for n, text in iter_text_lines(path)]
        origin = str(path)
    else:
        items = [(f"{where}[{i}]", str(text)) for i, text in enumerate(spec)]
        origin = where
    words: set[str] = set()
    for place, text in items:
        text = alphabet.normalise(text)
        why = alphabet.problem(text)
        if why:
            raise ConfigError([f"vocabulary entry {why}"], place)
        words.update(text.split())
    if not words:
        raise ConfigError(["the vocabulary is empty; give at least one word"], origin)
    return words


def check_hotwords(hotwords: Iterable[tuple[str, float]], alphabet: Alphabet,
                   where: str = "hotwords", source: str = "beam decoder"
                   ) -> list[tuple[str, float]]:
    """Normalised (phrase, boost) pairs; a ConfigError lists every bad entry as where[i]."""
    out, problems = [], []
    for i, (phrase, boost) in enumerate(hotwords):
        text = alphabet.normalise(str(phrase))
        why = alphabet.problem(text)
        if why:
            problems.append(f"{where}[{i}]: hot phrase {why}")
        elif isinstance(boost, bool) or not isinstance(boost, (int, float)) \
                or not abs(boost) <= MAX_BOOST:
            problems.append(f"{where}[{i}]: boost must be a number from {-MAX_BOOST:g} to "
                            f"{MAX_BOOST:g}, got {boost!r}")
        else:
            out.append((text, float(boost)))
    if problems:
        raise ConfigError(problems, source)
    return out


def read_hotwords_file(path: Path, alphabet: Alphabet, default_boost: float
                       ) -> list[tuple[str, float]]:
    """Hot phrases from a file: one per line, an optional boost as the last field."""
    if not path.is_file():
        raise ConfigError([f"hot words file {path} does not exist"], "hotwords_file")
    out = []
    for n, text in iter_text_lines(path):
        *words, last = text.split()
        try:
            boost = float(last)
        except ValueError:
            words, boost = [*words, last], default_boost
        phrase = alphabet.normalise(" ".join(words))
        why = alphabet.problem(phrase) if words else "missing before the boost"
        if why:
            raise ConfigError([f"hot phrase {why}"], f"{path}:{n}")
        if not math.isfinite(boost):
            raise ConfigError([f"boost must be a finite number, got {last!r}"], f"{path}:{n}")
        out.append((phrase, boost))
    return out
