"""`edgevoice-build lm`: word n-gram language models in ARPA format, built without a toolkit.

Smoothing is interpolated modified Kneser-Ney (Chen & Goodman 1998, as KenLM's lmplz does it)
or interpolated Witten-Bell. Either way the ARPA backoff weight of a context is exactly the
interpolation weight, so every conditional distribution in the file sums to one.
Input is a text corpus, a phrase list, or a small grammar of the domain expanded to phrases.
"""

from __future__ import annotations

import argparse
import math
import shutil
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from pathlib import Path

from edgevoice.errors import LMError
from edgevoice.lm import BOS, EOS, UNK, iter_text_lines
from edgevoice.options import short

SMOOTHING = ("kneser-ney", "witten-bell")
MAX_EXPANSIONS = 200_000
MAX_NESTING = 32  # brackets inside brackets
FALLBACK_DISCOUNTS = (0.5, 1.0, 1.5)  # when the data is too small to estimate them

Ngram = tuple[str, ...]


def normalise(sentence: str) -> list[str]:
    """Lowercase words of one sentence (the models' tokens are lower case)."""
    return sentence.lower().split()


def count_ngrams(sentences: Iterable[Sequence[str]], order: int) -> list[Counter[Ngram]]:
    """Raw counts of 1..order-grams over sentences padded with <s> and </s>."""
    counts: list[Counter[Ngram]] = [Counter() for _ in range(order)]
    for words in sentences:
        if not words:
            continue
        padded = (BOS, *words, EOS)
        for n in range(1, order + 1):
            c = counts[n - 1]
            for i in range(len(padded) - n + 1):
                c[padded[i : i + n]] += 1
    return counts


def _adjusted(counts: list[Counter[Ngram]]) -> list[Counter[Ngram]]:
    """Kneser-Ney counts: continuation counts below the top order, except after <s>."""
    adj = [Counter() for _ in counts]  # type: list[Counter[Ngram]]
    adj[-1] = Counter(counts[-1])
    for n in range(len(counts) - 1):
        for gram in counts[n + 1]:
            adj[n][gram[1:]] += 1
        for gram, c in counts[n].items():
            if gram[0] == BOS:
                adj[n][gram] = c
    return adj


def _discounts(counts: Counter[Ngram]) -> tuple[float, float, float]:
    """Modified KN discounts D1, D2, D3+ from counts of counts; a fallback for tiny data."""
    t = Counter(min(c, 4) for c in counts.values())
    n1, n2, n3, n4 = (t[k] for k in (1, 2, 3, 4))
    try:
        y = n1 / (n1 + 2 * n2)
        d = (1 - 2 * y * n2 / n1, 2 - 3 * y * n3 / n2, 3 - 4 * y * n4 / n3)
    except ZeroDivisionError:
        return FALLBACK_DISCOUNTS
    if all(0 < dk < k for k, dk in enumerate(d, 1)):
        return d
    return FALLBACK_DISCOUNTS


def _estimate(counts: list[Counter[Ngram]], smoothing: str
              ) -> tuple[list[dict[Ngram, float]], dict[Ngram, float]]:
    """Interpolated probabilities per order and the interpolation weight of each context."""
    kn = smoothing == "kneser-ney"
    use = _adjusted(counts) if kn else counts
    vocab = {g[0] for g in counts[0] if g[0] != BOS} | {UNK}
    probs: list[dict[Ngram, float]] = []
    gamma: dict[Ngram, float] = {}
    lower: dict[Ngram, float] = {}
    for n, c in enumerate(use, 1):
        disc = _discounts(c) if kn else (0.0, 0.0, 0.0)
        totals: dict[Ngram, float] = defaultdict(float)
        mass: dict[Ngram, float] = defaultdict(float)
        for gram, k in c.items():
            if gram == (BOS,):
                continue
            totals[gram[:-1]] += k
            mass[gram[:-1]] += disc[min(k, 3) - 1] if kn else 1.0  # WB: one per type
        weights = {}
        for h, total in totals.items():
            weights[h] = mass[h] / total if kn else mass[h] / (total + mass[h])
        p: dict[Ngram, float] = {}
        for gram, k in c.items():
            if gram == (BOS,):
                continue
            h = gram[:-1]
            base = lower[gram[1:]] if n > 1 else 1.0 / len(vocab)
            if kn:
                p[gram] = (k - disc[min(k, 3) - 1]) / totals[h] + weights[h] * base
            else:
                p[gram] = (k + mass[h] * base) / (totals[h] + mass[h])
        if n == 1:
            p[(UNK,)] = p.get((UNK,), weights[()] / len(vocab))
        probs.append(p)
        gamma.update(weights)
        lower = p
    return probs, gamma


def build_arpa(sentences: Iterable[str | Sequence[str]], path: str | Path, order: int = 3,
               smoothing: str = "kneser-ney") -> Path:
    """Write an ARPA LM (with <s>, </s>, <unk> and backoff weights) estimated from sentences."""
    if order < 1:
        raise LMError(f"LM order must be >= 1, got {order}")
    if smoothing not in SMOOTHING:
        raise LMError(f"unknown smoothing {smoothing!r}; choose {' or '.join(SMOOTHING)}")
    words = [normalise(s) if isinstance(s, str) else list(s) for s in sentences]
    words = [w for w in words if w]
    if not words:
        raise LMError("no sentences to build a language model from")
    counts = count_ngrams(words, order)
    probs, gamma = _estimate(counts, smoothing)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        _write(f, probs, gamma, order)
    tmp.replace(path)
    return path


def _write(f, probs: list[dict[Ngram, float]], gamma: dict[Ngram, float], order: int) -> None:
    unigrams = dict(probs[0])
    unigrams[(BOS,)] = 0.0  # written as -99: <s> is never predicted
    tables = [unigrams, *probs[1:]]
    f.write("\\data\\\n")
    for n, table in enumerate(tables, 1):
        f.write(f"ngram {n}={len(table)}\n")
    for n, table in enumerate(tables, 1):
        f.write(f"\n\\{n}-grams:\n")
        for gram in sorted(table):
            p = table[gram]
            lp = -99.0 if p <= 0 else math.log10(p)
            line = f"{lp:.7f}\t{' '.join(gram)}"
            if n < order and gram in gamma:
                line += f"\t{math.log10(gamma[gram]) if gamma[gram] > 0 else -99.0:.7f}"
            f.write(line + "\n")
    f.write("\n\\end\\\n")


# -- grammars ------------------------------------------------------------------------------


def expand_grammar(grammar: str, where: str = "grammar") -> list[str]:
    """All phrases of a grammar line: (a|b) alternatives, [optional words], nesting allowed.

    "turn (on|off) the (kitchen|bedroom) light" gives four phrases.
    """
    tokens = _tokenise(grammar)
    depth = 0
    for tok in tokens:  # the parser recurses per bracket: bound it before it starts
        depth += (tok in "([") - (tok in ")]")
        if depth > MAX_NESTING:
            raise LMError(f"{where}: brackets nested more than {MAX_NESTING} deep in "
                          f"{short(grammar)}")
    pos, alts = _parse_alternatives(tokens, 0, grammar, where)
    if pos != len(tokens):
        raise LMError(f"{where}: unexpected {tokens[pos]!r} in {grammar!r} (unbalanced brackets?)")
    phrases = [" ".join(p) for p in alts]
    seen: dict[str, None] = dict.fromkeys(p for p in phrases if p)
    return list(seen)


def expand_phrases(entries: Sequence[str], where: str = "phrases") -> tuple[str, ...]:
    """Every phrase of a list whose entries may be grammar lines: lower case, each once, in
    order; a plain entry is its own only phrase. LMError names `where[i]` of a bad entry."""
    out: dict[str, None] = {}
    for i, entry in enumerate(entries):
        for phrase in expand_grammar(entry, f"{where}[{i}]"):
            out[" ".join(normalise(phrase))] = None
    return tuple(out)


def _tokenise(text: str) -> list[str]:
    for ch in "()[]|":
        text = text.replace(ch, f" {ch} ")
    return text.split()


def _parse_alternatives(tokens: list[str], pos: int, text: str, where: str
                        ) -> tuple[int, list[tuple[str, ...]]]:
    out: list[tuple[str, ...]] = []
    while True:
        pos, seq = _parse_sequence(tokens, pos, text, where)
        out.extend(seq)
        if pos < len(tokens) and tokens[pos] == "|":
            pos += 1
            continue
        return pos, out


def _parse_sequence(tokens: list[str], pos: int, text: str, where: str
                    ) -> tuple[int, list[tuple[str, ...]]]:
    phrases: list[tuple[str, ...]] = [()]
    while pos < len(tokens) and tokens[pos] not in ("|", ")", "]"):
        tok = tokens[pos]
        if tok in ("(", "["):
            close = ")" if tok == "(" else "]"
            pos, inner = _parse_alternatives(tokens, pos + 1, text, where)
            if pos >= len(tokens) or tokens[pos] != close:
                raise LMError(f"{where}: missing {close!r} in {text!r}")
            pos += 1
            if tok == "[":
                inner = [(), *inner]
        else:
            inner, pos = [(tok,)], pos + 1
        phrases = [p + q for p in phrases for q in inner]
        if len(phrases) > MAX_EXPANSIONS:
            raise LMError(f"{where}: {text!r} expands to more than {MAX_EXPANSIONS} phrases; "
                          "split it or use a corpus")
    return pos, phrases


# -- inputs --------------------------------------------------------------------------------


def read_sentences(path: Path, kind: str) -> list[str]:
    """Sentences from a corpus (one per line), a phrase list, or a grammar file (expanded)."""
    out: list[str] = []
    for n, text in iter_text_lines(path):
        if kind == "grammar":
            out.extend(expand_grammar(text, f"{path}:{n}"))
        else:
            out.append(text)
    if not out:
        what = {"corpus": "sentences", "phrases": "phrases", "grammar": "grammar lines"}[kind]
        raise LMError(f"{path}: no {what}: the file is empty or has only blank and # comment "
                      "lines; put one per line")
    return out


def check_corpus_spelling(path: Path, kind: str, tokens: Sequence[str]) -> None:
    """LMError at the first line using a character the bundle's model cannot emit."""
    chars = {t for t in tokens if len(t) == 1}
    for n, text in iter_text_lines(path):
        phrases = expand_grammar(text, f"{path}:{n}") if kind == "grammar" else [text]
        for phrase in phrases:
            bad = sorted(set(" ".join(normalise(phrase))) - chars)
            if bad:
                raise LMError(f"{path}:{n}: {phrase!r} uses {''.join(bad)!r}, which the bundle's "
                              "model cannot spell; write numbers and symbols as words")


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """The `lm` subcommand of edgevoice-build."""
    p = subparsers.add_parser(
        "lm", help="build a word n-gram language model (ARPA) and place it in a bundle",
        description="Build an ARPA language model from a corpus, a phrase list or a grammar.")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--corpus", type=Path, metavar="FILE", help="text, one sentence per line")
    src.add_argument("--phrases", type=Path, metavar="FILE", help="one phrase per line")
    src.add_argument("--grammar", type=Path, metavar="FILE",
                     help="one grammar per line: (a|b) alternatives, [optional] words")
    p.add_argument("--order", type=int, default=3, help="n-gram order (default 3)")
    p.add_argument("--smoothing", choices=SMOOTHING, default="kneser-ney")
    p.add_argument("--bundle", type=Path, metavar="DIR",
                   help="model bundle to receive lm.arpa (its manifest is rewritten)")
    p.add_argument("--output", type=Path, metavar="FILE", help="where to write the ARPA file")
    p.set_defaults(func=run)
    return p


def run(args: argparse.Namespace) -> int:
    if args.output is None and args.bundle is None:
        raise LMError("say where the LM goes: --output FILE and/or --bundle DIR")
    kind = "corpus" if args.corpus else "phrases" if args.phrases else "grammar"
    source: Path = args.corpus or args.phrases or args.grammar
    bundle = None
    if args.bundle is not None:
        from edgevoice.bundle import load_bundle

        bundle = load_bundle(args.bundle)  # verified: never re-bless a corrupt bundle
        check_corpus_spelling(source, kind, bundle.tokens)
    sentences = read_sentences(source, kind)
    out = args.output or (args.bundle / "lm.arpa")
    build_arpa(sentences, out, order=args.order, smoothing=args.smoothing)
    print(f"wrote {out} ({args.order}-gram {args.smoothing}, {len(sentences)} sentences)")
    if bundle is not None:
        install_in_bundle(out, bundle.path, args.order, args.smoothing, bundle.raw)
        print(f"installed as {bundle.path / 'lm.arpa'}; manifest rewritten")
    return 0


def install_in_bundle(arpa: Path, bundle_dir: Path, order: int, smoothing: str,
                      meta: dict) -> None:
    """Copy an ARPA file into a bundle as lm.arpa and record it (with its hash) in the manifest."""
    from edgevoice.bundle import write_manifest

    target = bundle_dir / "lm.arpa"
    if arpa.resolve() != target.resolve():
        shutil.copyfile(arpa, target)
    meta = dict(meta)
    meta.pop("files", None)
    meta["lm"] = {"file": "lm.arpa", "order": order, "smoothing": smoothing}
    write_manifest(bundle_dir, meta)
