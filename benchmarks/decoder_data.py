"""Shared by the decoder benchmarks: held-out digit strings, their posteriors, a digits LM.

Posteriors come from the real default model on FSDD speakers it never trained on, composed
into connected digit strings with the build tool's own composer, optionally with pink noise.
Without a bundle, `synthetic_posteriors` stands in (speed only: it says nothing about WER).
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np

DIGITS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
FSDD = Path("/work/shared/data/fsdd")


def load_default_bundle(spec: str = "builtin:digits"):
    from edgevoice.bundle import load_bundle
    from edgevoice.errors import BundleError

    try:
        return load_bundle(spec)
    except BundleError as exc:
        print(f"(no usable bundle: {exc})")
        return None


def heldout_speakers(bundle) -> tuple[str, ...]:
    """The speakers the bundle was not trained on (from its manifest, else the recipe)."""
    raw = bundle.raw if bundle is not None else {}
    metrics = bundle.metrics if bundle is not None else {}
    for key in ("test_speakers", "heldout_speakers"):
        for section in (raw, raw.get("training") or {}, metrics):
            if isinstance(section, dict) and section.get(key):
                return tuple(section[key])
    from edgevoice.training.recipe import DataSettings

    return DataSettings().test_speakers


def heldout_posteriors(bundle, n: int, seed: int, snr_db: float | None, fsdd: Path = FSDD
                       ) -> list[tuple[np.ndarray, str, float]]:
    """(log posteriors, reference text, seconds of audio) for n held-out digit strings."""
    from edgevoice.features import LogMel
    from edgevoice.runtime import open_acoustic_model
    from edgevoice.training.augment import add_noise, coloured_noise
    from edgevoice.training.data import WordBank, heldout_utterances, read_fsdd

    speakers = heldout_speakers(bundle)
    clips = [c for c in read_fsdd(fsdd) if c.speaker in speakers]
    rate = bundle.sample_rate
    bank = WordBank.from_clips(clips, rate)
    model = open_acoustic_model(bundle)
    frontend = LogMel(bundle.frontend)
    rng = np.random.default_rng(seed + 1)
    out = []
    for x, text in heldout_utterances(bank, n, seed, rate):
        if snr_db is not None:
            x = add_noise(x, coloured_noise("pink", len(x), rng), snr_db)
        frontend.reset()
        lp = model.run_utterance(frontend.compute(x))
        out.append((lp, text, len(x) / rate))
    return out


def digits_lm(order: int = 3, sentences: int = 5000, seed: int = 0) -> Path:
    """A digit-string LM built with edgevoice-build's builder from random digit strings."""
    from edgevoice.training.lm import build_arpa

    rng = np.random.default_rng(seed)
    corpus = [" ".join(rng.choice(DIGITS, size=int(rng.integers(1, 8))))
              for _ in range(sentences)]
    path = Path(tempfile.gettempdir()) / "edgevoice-bench" / f"digits{order}.arpa"
    return build_arpa(corpus, path, order=order)


def synthetic_posteriors(n: int, seed: int, tokens: tuple[str, ...], blank: int,
                         noise: float = 1.5) -> list[tuple[np.ndarray, str, float]]:
    """CTC-like posteriors for random digit strings: 1-2 frame spikes, noisy elsewhere."""
    rng = np.random.default_rng(seed)
    index = {t: i for i, t in enumerate(tokens)}
    out = []
    for _ in range(n):
        text = " ".join(rng.choice(DIGITS, size=int(rng.integers(3, 8))))
        ids = [blank] * 15
        for ch in text:
            ids += [index[ch]] * int(rng.integers(1, 3)) + [blank] * int(rng.integers(2, 7))
        ids += [blank] * 15
        logits = rng.normal(0.0, noise, (len(ids), len(tokens)))
        logits[np.arange(len(ids)), ids] += 6.0 + rng.normal(0.0, 1.5, len(ids))
        logits[:, blank] += 2.0
        lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
        out.append((lp.astype(np.float32), text, len(ids) * 0.02))
    return out


def wer_counts(ref: str, hyp: str) -> tuple[int, int]:
    """(word edits, reference words), with the build tool's edit distance."""
    from edgevoice.training.evaluate import edit_distance

    r = ref.split()
    return edit_distance(r, hyp.split()), len(r)
