"""Word n-gram language models in ARPA format, queried state by state for beam search.

`load_lm` returns a model with one small API, whichever backend answers:
`begin()` is the state after <s>, `score(state, word)` gives the natural-log probability of
`word` and the next state, `end(state)` the natural-log probability of </s>. ARPA files store
log10 with backoff weights; scores are converted to natural log once, at load time (pure
Python) or per query (kenlm). kenlm answers the queries when installed (a compact C++ model);
the pure-Python reader gives the same scores and is the fallback.

Every file is first read line by line in Python, so a malformed or truncated file is an
LMError naming the file and line whichever backend then answers; when kenlm answers, that pass
keeps only the unigrams (the vocabulary), not a dict of every n-gram.
"""

from __future__ import annotations

import gzip
import logging
import math
import re
import resource
import time
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from edgevoice.errors import LMError
from edgevoice.options import short

log = logging.getLogger("edgevoice.lm")

LN10 = math.log(10.0)  # ARPA log10 -> natural log
BOS, EOS, UNK = "<s>", "</s>", "<unk>"
SPECIAL = frozenset((BOS, EOS, UNK))
MISSING_UNK_LOG10 = -100.0  # what kenlm substitutes when an ARPA file has no <unk>

# digits bounded: int() of 5,000 digits raises ValueError
_COUNT = re.compile(r"ngram\s+(\d{1,3})\s*=\s*(\d{1,15})$")
_HEADER = re.compile(r"\\(\d+)-grams:$")
# The pure-Python model costs about 0.13 s and 25 MiB per MB of ARPA text (measured on a 10 MB
# trigram model); from this size on, a load says what it cost and how to avoid it.
LARGE_LM_BYTES = 2_000_000


@dataclass
class ArpaData:
    """The parsed content of an ARPA file (log10 values, as stored)."""

    path: Path
    order: int
    counts: list[int]
    # n-gram -> (log10 probability, log10 backoff)
    ngrams: dict[tuple[str, ...], tuple[float, float]] = field(default_factory=dict)
    word_lines: dict[str, int] = field(default_factory=dict)  # unigram -> its line number


class _Lines:
    """Numbered, stripped lines of a text file, with one line of look-ahead."""

    def __init__(self, path: Path) -> None:
        self.path = path
        opener: Any = gzip.open if path.suffix == ".gz" else open
        try:
            self._f = opener(path, "rt", encoding="utf-8")
        except OSError as exc:
            raise LMError(f"{path}: cannot open language model ({exc.strerror or exc})") from None
        self._it = enumerate(self._f, 1)
        self.lineno = 0
        self._peeked: tuple[int, str] | None = None

    def close(self) -> None:
        self._f.close()

    def peek(self) -> tuple[int, str] | None:
        if self._peeked is None:
            try:
                n, line = next(self._it)
            except StopIteration:
                return None
            except (UnicodeDecodeError, EOFError, OSError) as exc:
                raise LMError(f"{self.path}:{self.lineno + 1}: unreadable ({exc})") from None
            self._peeked = (n, line.strip())
        return self._peeked

    def next(self) -> tuple[int, str] | None:
        item = self.peek()
        self._peeked = None
        if item is not None:
            self.lineno = item[0]
        return item

    def next_nonblank(self) -> tuple[int, str] | None:
        while (item := self.next()) is not None and not item[1]:
            pass
        return item

    def error(self, message: str, lineno: int | None = None) -> LMError:
        return LMError(f"{self.path}:{lineno or self.lineno}: {message}")


def read_arpa(path: str | Path, ngrams: bool = True) -> ArpaData:
    """Parse and validate an ARPA file (plain or .gz); LMError names file and line.

    `ngrams=False` keeps only the unigrams (for kenlm, which reads the file itself) and
    finds duplicate n-grams by their hashes.
    """
    lines = _Lines(Path(path))
    try:
        return _parse(lines, ngrams)
    finally:
        lines.close()


def _parse(lines: _Lines, keep: bool = True) -> ArpaData:
    item = lines.next_nonblank()
    if item is None:
        raise LMError(f"{lines.path}: the file is empty: not an ARPA language model")
    if item[1] != "\\data\\":
        raise lines.error(f"expected \\data\\ (the first line of an ARPA file), got "
                          f"{short(item[1])}: not an ARPA language model")
    counts: list[int] = []
    while (item := lines.peek()) is not None and not item[1].startswith("\\"):
        n, text = lines.next() or item
        if not text:
            continue
        m = _COUNT.match(text)
        if not m:
            raise lines.error("expected 'ngram N=COUNT' in the \\data\\ section, got "
                              f"{short(text)}")
        if int(m.group(1)) != len(counts) + 1:
            raise lines.error(f"expected the count of {len(counts) + 1}-grams, got {short(text)}")
        counts.append(int(m.group(2)))
    if not counts:
        raise lines.error("the \\data\\ section lists no n-gram counts", lines.lineno + 1)
    data = ArpaData(lines.path, len(counts), counts)
    for order in range(1, len(counts) + 1):
        _read_section(lines, data, order, keep or order == 1)
    item = lines.next_nonblank()
    if item is None:
        raise lines.error("file ends without \\end\\: truncated?")
    if item[1] != "\\end\\":
        raise lines.error(f"expected \\end\\ after the {len(counts)}-grams, got {short(item[1])}")
    if UNK not in data.word_lines:
        # kenlm does the same, so both backends agree on unknown words
        data.ngrams[(UNK,)] = (MISSING_UNK_LOG10, 0.0)
    return data


def _read_section(lines: _Lines, data: ArpaData, order: int, keep: bool) -> None:
    item = lines.next_nonblank()
    want = f"\\{order}-grams:"
    if item is None:
        raise lines.error(f"file ends before the {want} section: truncated?")
    if item[1] != want:
        raise lines.error(f"expected {want!r}, got {short(item[1])}")
    header = item[0]
    expected = data.counts[order - 1]
    seen = 0
    seen_hashes: set[int] = set()
    ngrams, top = data.ngrams, order == data.order
    while (item := lines.peek()) is not None and item[1] and not item[1].startswith("\\"):
        lineno, text = lines.next() or item
        parts = text.split()
        if len(parts) not in (order + 1, order + 2):
            raise lines.error(f"a {order}-gram line needs a log10 probability, {order} word(s) "
                              f"and an optional backoff; got {len(parts)} fields: {short(text)}")
        try:
            prob = float(parts[0])
            backoff = float(parts[order + 1]) if len(parts) == order + 2 else 0.0
        except ValueError:
            raise lines.error(f"not a number in {short(text)}") from None
        if prob > 0 or math.isnan(prob):
            raise lines.error(f"log10 probability {short(parts[0])} is not <= 0")
        if math.isnan(backoff):
            raise lines.error(f"log10 backoff {short(parts[-1])} is not a number")
        key = tuple(parts[1 : order + 1])
        if keep:
            if key in ngrams:
                raise lines.error(f"duplicate {order}-gram {short(' '.join(key))}")
            ngrams[key] = (prob, 0.0 if top else backoff)
            if order == 1:
                data.word_lines[key[0]] = lineno
        else:  # a hash per n-gram, not the n-gram (a false alarm: about 1 in 10^8)
            if hash(key) in seen_hashes:
                raise lines.error(f"duplicate {order}-gram {short(' '.join(key))}")
            seen_hashes.add(hash(key))
        seen += 1
    if seen != expected:
        where = lines.lineno + 1 if item is not None else lines.lineno
        ending = "file ends" if item is None else "section ends"
        raise lines.error(f"{ending} after {seen} {order}-grams, but \\data\\ says {expected} "
                          f"(section starts at line {header}); truncated or miscounted?", where)


class LanguageModel(Protocol):
    """What the decoder needs from a language model; scores are natural log."""

    path: Path
    order: int
    backend: str
    vocabulary: frozenset[str]  # words it knows, without <s>, </s>, <unk>
    word_lines: dict[str, int]

    def begin(self) -> Any: ...
    def null(self) -> Any: ...
    def score(self, state: Any, word: str) -> tuple[float, Any]: ...
    def end(self, state: Any) -> float: ...
    def known(self, word: str) -> bool: ...


class _Common:
    """Shared by both backends: vocabulary, unknown-word override, sentence scoring."""

    path: Path
    vocabulary: frozenset[str]
    word_lines: dict[str, int]

    def __init__(self, data: ArpaData, unk_logprob: float | None) -> None:
        self.path = data.path
        self.order = data.order
        self.word_lines = data.word_lines
        self.vocabulary = frozenset(w for w in data.word_lines if w not in SPECIAL)
        self.unk_logprob = unk_logprob  # natural log for unknown words; None: the file's <unk>

    def known(self, word: str) -> bool:
        return word in self.vocabulary

    def sentence_score(self, words: Iterable[str], bos: bool = True, eos: bool = True) -> float:
        """Natural-log probability of a word sequence (tests, benchmarks, n-best rescoring)."""
        state = self.begin() if bos else self.null()
        total = 0.0
        for w in words:
            lp, state = self.score(state, w)
            total += lp
        return total + (self.end(state) if eos else 0.0)

    def begin(self) -> Any:
        raise NotImplementedError

    def null(self) -> Any:
        raise NotImplementedError

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        raise NotImplementedError

    def end(self, state: Any) -> float:
        raise NotImplementedError


class ArpaLM(_Common):
    """Pure-Python backoff n-gram model. States are tuples of word ids (the useful context)."""

    backend = "python"

    def __init__(self, data: ArpaData, unk_logprob: float | None = None) -> None:
        super().__init__(data, unk_logprob)
        words = sorted({w for key in data.ngrams for w in key})
        self._ids = {w: i for i, w in enumerate(words)}
        self._unk = self._ids[UNK]
        ids = self._ids
        self._ng: dict[tuple[int, ...], tuple[float, float]] = {
            tuple(ids[w] for w in key): (p * LN10, b * LN10) for key, (p, b) in data.ngrams.items()
        }
        self._bos = (ids[BOS],) if BOS in ids else ()
        self._eos = ids.get(EOS, self._unk)

    def begin(self) -> tuple[int, ...]:
        return self._bos

    def null(self) -> tuple[int, ...]:
        return ()

    def score(self, state: tuple[int, ...], word: str) -> tuple[float, tuple[int, ...]]:
        wid = self._ids.get(word, self._unk)
        lp, new = self._score_id(state, wid)
        if wid == self._unk and word != UNK and self.unk_logprob is not None:
            lp = self.unk_logprob
        return lp, new

    def end(self, state: tuple[int, ...]) -> float:
        return self._score_id(state, self._eos)[0]

    def _score_id(self, state: tuple[int, ...], wid: int) -> tuple[float, tuple[int, ...]]:
        ng = self._ng
        back = 0.0
        for k in range(len(state) + 1):
            ctx = state[k:]
            hit = ng.get(ctx + (wid,))
            if hit is not None:
                full = (ctx + (wid,))[-(self.order - 1) :] if self.order > 1 else ()
                while full and full not in ng:  # keep only context that can still match
                    full = full[1:]
                return back + hit[0], full
            if ctx:
                back += ng.get(ctx, (0.0, 0.0))[1]
        return back + ng[(self._unk,)][0], ()  # unreachable when <unk> has a unigram


class KenLM(_Common):
    """The same API over the kenlm package (states are kenlm.State, which hash and compare)."""

    backend = "kenlm"

    def __init__(self, data: ArpaData, unk_logprob: float | None = None) -> None:
        import kenlm

        super().__init__(data, unk_logprob)
        from edgevoice.runtime import filtered_stderr

        config = kenlm.Config()
        config.show_progress = False
        try:
            # kenlm advises building a binary file on every ARPA load, straight to fd 2; an
            # ARPA file of a few kilobytes loads in milliseconds, so the advice is dropped.
            with filtered_stderr((b"Loading the LM will be faster if you build a binary",)):
                self._m = kenlm.Model(str(data.path), config)
        except (OSError, RuntimeError, ValueError) as exc:
            raise LMError(f"{data.path}: kenlm cannot load it: {exc}") from None
        self._state_cls = kenlm.State

    def begin(self) -> Any:
        s = self._state_cls()
        self._m.BeginSentenceWrite(s)
        return s

    def null(self) -> Any:
        s = self._state_cls()
        self._m.NullContextWrite(s)
        return s

    def score(self, state: Any, word: str) -> tuple[float, Any]:
        out = self._state_cls()
        lp = self._m.BaseScore(state, word, out) * LN10
        if self.unk_logprob is not None and word not in self.vocabulary and word not in SPECIAL:
            lp = self.unk_logprob
        return lp, out

    def end(self, state: Any) -> float:
        return self._m.BaseScore(state, EOS, self._state_cls()) * LN10


def kenlm_available() -> bool:
    try:
        import kenlm  # noqa: F401
    except ImportError:
        return False
    return True


def load_lm(path: str | Path, prefer_kenlm: bool = True,
            unk_logprob: float | None = None) -> ArpaLM | KenLM:
    """Load an ARPA model with kenlm when installed (and wanted), else in pure Python.

    `unk_logprob` (natural log) replaces the file's <unk> probability for unknown words.
    """
    path = Path(path)
    if not path.is_file():
        raise LMError(f"{path}: no such language model file")
    if prefer_kenlm and kenlm_available():
        # every line checked, so errors are the same whichever backend; kenlm holds the model
        data = read_arpa(path, ngrams=False)
        if data.order >= 2:  # kenlm needs order >= 2
            return KenLM(data, unk_logprob)
    cpu0, peak0 = time.process_time(), _peak_mib()
    lm = ArpaLM(read_arpa(path), unk_logprob)
    size = path.stat().st_size
    if size >= LARGE_LM_BYTES:
        why = "kenlm is not installed: `pip install 'edgevoice[lm]'`" if prefer_kenlm \
            else "prefer_kenlm is off"
        log.warning("%s: the pure-Python LM reader took %.1f s of CPU and about %.0f MiB for "
                    "this %.1f MB model (%s; kenlm loads it in a fraction of both)", path,
                    time.process_time() - cpu0, _peak_mib() - peak0, size / 1e6, why)
    return lm


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def check_spellable(lm: LanguageModel, tokens: Sequence[str]) -> None:
    """Raise LMError (file:line) if some LM word uses a character the model cannot emit."""
    chars = {t for t in tokens if len(t) == 1}
    bad = [(lm.word_lines.get(w, 0), w) for w in lm.vocabulary if not set(w) <= chars]
    if not bad:
        return
    bad.sort()
    line, word = bad[0]
    missing = "".join(dict.fromkeys(c for c in word if c not in chars))  # as written
    more = f" (and {len(bad) - 1} more words)" if len(bad) > 1 else ""
    hint = " (the model's tokens are lower case)" if word.lower() != word else ""
    raise LMError(f"{lm.path}:{line}: word {word!r} cannot be spelled with the acoustic model's "
                  f"tokens: no {missing!r}{more}{hint}; rebuild the LM from text normalised to "
                  "the model's alphabet")


def iter_text_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, text) of each non-blank, non-comment line of a UTF-8 text file."""
    opener: Any = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rt", encoding="utf-8") as f:
            for n, line in enumerate(f, 1):
                text = line.strip()
                if text and not text.startswith("#"):
                    yield n, text
    except FileNotFoundError:
        raise LMError(f"{path}: no such file") from None
    except UnicodeDecodeError as exc:
        raise LMError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
