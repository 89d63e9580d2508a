"""Second-language accents for synthetic speech: consistent pronunciation habits per speaker.

Four real speakers cannot cover the ways people say a word; an unheard speaker with an accent
moves vowels and consonants the model never heard in those words. An accented synthetic speaker
gets habits drawn once and applied to everything it says: each vowel of English may move to a
neighbour (tense/lax, monophthong for diphthong, a full vowel for schwa), and consonant habits
common across learners of English (th-stopping, w as v, h-dropping, final devoicing) are on or
off. The habits rewrite espeak-ng's own phonemes for the phrase (`espeak-ng -x`), which are
then spoken as phoneme input (`[[...]]`), so any vocabulary can be accented.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

# espeak-ng English vowel phonemes -> the vowels a speaker may say instead.
VOWEL_NEIGHBOURS: dict[str, tuple[str, ...]] = {
    "i:": ("i", "I"),
    "I": ("i", "i:", "e"),
    "E": ("e", "a"),
    "eI": ("e", "e:", "E"),
    "aI": ("a", "A:"),
    "0": ("O", "o", "A:"),
    "O:": ("o", "o:", "O"),
    "o@": ("o:", "O", "u:"),
    "O@": ("o:", "O", "u:"),
    "oU": ("o", "o:", "O"),
    "@U": ("o", "o:", "O"),
    "u:": ("u", "U"),
    "U": ("u", "u:"),
    "V": ("a", "O", "@"),
    "@": ("e", "E", "a"),
    "i@": ("e", "i:", "E"),
    "3:": ("E", "e", "@"),
}
# Consonant habits: each is one choice among alternatives (or none) per speaker.
TH_HABITS = ({"T": "t", "D": "d"}, {"T": "s", "D": "z"}, {"T": "f", "D": "v"})
FINAL_DEVOICING = {"v": "f", "z": "s", "d": "t", "b": "p", "g": "k", "dZ": "tS"}
# Multi-character phonemes and marks, matched longest first when a word is split.
_SYMBOLS = sorted({*VOWEL_NEIGHBOURS, "aI@", "aU@", "aU", "OI", "e@", "U@", "A:", "A@", "@L",
                   "tS", "dZ", "t[", "I2", "I#", "0#", "e:", "o:", "3"}, key=len, reverse=True)
_MARKS = ("'", ",", "%", "=", "_", ":")


@dataclass(frozen=True)
class Accent:
    """One speaker's habits; `apply` rewrites an espeak-ng phoneme string."""

    vowels: tuple[tuple[str, str], ...] = ()
    consonants: tuple[tuple[str, str], ...] = ()
    final_devoicing: bool = False

    @property
    def name(self) -> str:
        """Short stable tag for file names: which habits, not their details."""
        bits = len(self.vowels), len(self.consonants), int(self.final_devoicing)
        return "acc{}{}{}".format(*bits)

    def apply(self, phonemes: str) -> str:
        vowels, consonants = dict(self.vowels), dict(self.consonants)
        words = []
        for word in phonemes.split():
            units = split_phonemes(word)
            out = [vowels.get(u, consonants.get(u, u)) for u in units]
            if self.final_devoicing:
                last = max((i for i, u in enumerate(out) if u not in _MARKS), default=None)
                if last is not None:
                    out[last] = FINAL_DEVOICING.get(out[last], out[last])
            words.append("".join(out))
        return " ".join(words)


def split_phonemes(word: str) -> list[str]:
    """espeak-ng phoneme mnemonics of one word, longest symbol first, marks kept as units."""
    units, i = [], 0
    while i < len(word):
        for sym in _SYMBOLS:
            if word.startswith(sym, i):
                units.append(sym)
                i += len(sym)
                break
        else:
            units.append(word[i])
            i += 1
    return units


def draw_accent(rng: np.random.Generator, strength: float) -> Accent:
    """A speaker's habits: each vowel moves with probability `strength`; each consonant habit
    is taken with probability `strength` too (th: one of its three forms)."""
    vowels = tuple((v, str(rng.choice(n))) for v, n in VOWEL_NEIGHBOURS.items()
                   if rng.random() < strength)
    consonants: dict[str, str] = {}
    if rng.random() < strength:
        consonants.update(TH_HABITS[int(rng.integers(len(TH_HABITS)))])
    if rng.random() < strength:
        consonants["w"] = "v"
    if rng.random() < strength:
        consonants["h"] = ""
    return Accent(vowels, tuple(sorted(consonants.items())), bool(rng.random() < strength))
