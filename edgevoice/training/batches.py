"""Training batches: composed utterances -> augmentation -> the daemon's frontend -> padded arrays.

Batches are made in worker processes (spawned, so they never inherit TensorFlow) while the main
process trains; each batch is reproducible from its seed.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import threading
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection

import numpy as np

from edgevoice.errors import BuildError
from edgevoice.features import LogMel, LogMelSettings
from edgevoice.training.augment import Augmenter
from edgevoice.training.data import WordBank, compose, encode_text, in_room, spoken, trim
from edgevoice.training.recipe import Recipe


@dataclass(frozen=True)
class Batch:
    feats: np.ndarray  # [B, T, n_mels] float32, `context` zero frames first, zero-padded at end
    feat_lens: np.ndarray  # [B] int32, frames including the leading context
    labels: np.ndarray  # [B, L] int32 token ids, zero-padded
    label_lens: np.ndarray  # [B] int32


def pad_features(feats: list[np.ndarray], context: int, multiple: int = 2
                 ) -> tuple[np.ndarray, np.ndarray]:
    """Stack utterances after `context` leading zero frames (as the daemon's runner does)."""
    lens = np.array([len(f) + context for f in feats], np.int32)
    width = int(-(-lens.max() // multiple) * multiple)
    out = np.zeros((len(feats), width, feats[0].shape[1]), np.float32)
    for i, f in enumerate(feats):
        out[i, context : context + len(f)] = f
    return out, lens


class BatchMaker:
    """Makes augmented training batches from real and synthetic word banks, whole real clips
    of single words, and negatives (other words, noise, clicks) whose transcript is empty."""

    def __init__(self, recipe: Recipe, frontend: LogMelSettings, real: WordBank,
                 synth: WordBank | None, context: int,
                 words: Sequence[tuple[np.ndarray, str]] = (),
                 others: Sequence[np.ndarray] = (),
                 noise_files: dict[str, np.ndarray] | None = None) -> None:
        self.recipe = recipe
        self.frontend = LogMel(frontend)
        self.rate = frontend.sample_rate
        self.context = context
        # Without recordings of the vocabulary, the synthetic voices stand in for them.
        self.real, self.synth = spoken(real, synth), synth
        self.words = list(words)
        self.others = list(others)
        # Other words are trimmed for use inside an utterance ("say seven please").
        self.others_trimmed = [trim(x, self.rate) for x in self.others]
        sources = [x for words in self.real.speakers.values() for takes in words.values()
                   for x in takes]
        sources += [trim(x, self.rate) for x, _ in self.words] + self.others_trimmed
        self.augment = Augmenter(recipe.augment, self.rate, sources[::3], frontend, noise_files)

    def utterances(self, rng: np.random.Generator) -> Iterator[tuple[np.ndarray, str]]:
        d = self.recipe.data
        real = compose(self.real, rng, self.rate, d.min_words, d.max_words, d.gap)
        synth = (compose(self.synth, rng, self.rate, d.min_words, d.max_words, d.gap)
                 if self.synth else None)
        p_negative = d.p_negative
        p_clips = d.p_clips if self.words else 0.0
        while True:
            if p_negative or p_clips:
                u = rng.random()
                if u < p_negative:
                    yield self.augment(self.negative(rng), rng), ""
                    continue
                if u < p_negative + p_clips:
                    x, text = self.words[int(rng.integers(len(self.words)))]
                    yield self.augment(self.framed(x, rng), rng), text
                    continue
            gen = synth if synth is not None and rng.random() < d.p_synth else real
            x, text, _ = next(gen)
            if d.p_context and self.others_trimmed and rng.random() < d.p_context:
                x = self.in_context(x, rng)
            yield self.augment(x, rng), text

    def negative(self, rng: np.random.Generator) -> np.ndarray:
        """Audio with no vocabulary word in it: another word (as recorded), a stretch of
        noise, or a quiet room with a click or breath."""
        from edgevoice.training import household

        kinds = self.augment.noise_kinds()
        pick = rng.random()
        if self.others and pick < 0.5:
            return self.framed(self.others[int(rng.integers(len(self.others)))], rng)
        n = int(rng.uniform(0.5, 2.0) * self.rate)
        floor = 10 ** (rng.uniform(-70.0, -45.0) / 20)
        if kinds and pick < 0.8:
            level = 10 ** (rng.uniform(-45.0, -10.0) / 20)
            kind = kinds[int(rng.integers(len(kinds)))]
            x = level * self.augment.make(kind, n, rng)
        else:
            x = np.zeros(n, np.float32)
            x = household.place_onset(x, rng, self.rate, (-6.0, 0.0)) * rng.uniform(0.05, 0.7)
        x = x + floor * rng.standard_normal(len(x)).astype(np.float32)
        return np.clip(x, -1.0, 1.0).astype(np.float32)

    def framed(self, clip: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """A whole clip with the recipe's room-noise edges (data.clip_edge)."""
        edge = self.recipe.data.clip_edge
        if not edge[1]:
            return clip
        return in_room(clip, rng, self.rate, edge, edge)

    def in_context(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """`x` with another word before or after it (rescaled to its level), after a pause."""
        other = self.others_trimmed[int(rng.integers(len(self.others_trimmed)))]
        other = other * (np.max(np.abs(x)) / (np.max(np.abs(other)) + 1e-9))
        other = other * rng.uniform(0.5, 1.2)
        pause = np.zeros(int(rng.uniform(0.05, 0.4) * self.rate), np.float32)
        pause += 3e-4 * rng.standard_normal(len(pause)).astype(np.float32)
        parts = (other, pause, x) if rng.random() < 0.5 else (x, pause, other)
        return np.concatenate(parts).astype(np.float32)

    def batch(self, seed: int, size: int) -> Batch:
        rng = np.random.default_rng(seed)
        feats, labels = [], []
        for x, text in _take(self.utterances(rng), size):
            feats.append(self.augment.features(self.frontend.compute(x), rng))
            labels.append(encode_text(text))
        padded, lens = pad_features(feats, self.context)
        label_lens = np.array([len(t) for t in labels], np.int32)
        # An empty transcript (a negative) is a row of padding: CTC then learns blanks.
        lab = np.zeros((size, max(int(label_lens.max()), 1)), np.int32)
        for i, t in enumerate(labels):
            lab[i, : len(t)] = t
        return Batch(padded, lens, lab, label_lens)


def _take(gen: Iterator, n: int) -> list:
    return [next(gen) for _ in range(n)]


def _produce(maker: BatchMaker, seed: int, size: int, first: int, step: int,
             out: Connection, ahead: int = 2) -> None:
    """Worker process: batches first, first + step, ... sent through `out` until terminated.

    A thread sends while the next batches are made (at most `ahead` waiting)."""
    made: queue.Queue = queue.Queue(maxsize=ahead)
    parent = multiprocessing.parent_process()
    if parent is not None:  # a trainer killed outright runs no `finally`: do not outlive it
        def orphaned() -> None:
            parent.join()
            os._exit(0)

        threading.Thread(target=orphaned, daemon=True).start()

    def send() -> None:
        while True:
            out.send(made.get())

    threading.Thread(target=send, daemon=True).start()
    i = first
    try:
        while True:
            made.put(maker.batch(seed * 1_000_003 + i, size))
            i += step
    except Exception as exc:  # reported by the trainer, which owns the terminal
        made.put(f"batch {i}: {type(exc).__name__}: {exc}")
        threading.Event().wait()  # until the trainer has read it and kills this process


def batch_stream(maker: BatchMaker, seed: int, size: int, start: int, workers: int
                 ) -> Generator[Batch, None, None]:
    """Endless batches numbered from `start`; batch i always comes from the same seed.

    With `workers` > 0, worker k of n makes batches start + k, start + k + n, ... into its own
    pipe and they are read in turn, so the order is the same as without workers. Closing the
    generator kills the workers outright; a worker that dies, even half-way through sending a
    batch, is an error here rather than a hang (the pipe's only write end was the worker's).
    """
    if workers <= 0:
        i = start
        while True:
            yield maker.batch(seed * 1_000_003 + i, size)
            i += 1
    ctx = multiprocessing.get_context("spawn")
    pipes = [ctx.Pipe(duplex=False) for _ in range(workers)]
    procs = [ctx.Process(target=_produce, args=(maker, seed, size, start + k, workers, w),
                         daemon=True, name=f"edgevoice-batches-{k}")
             for k, (_, w) in enumerate(pipes)]
    try:
        for p, (_, w) in zip(procs, pipes, strict=True):
            p.start()
            w.close()
        k = 0
        while True:
            try:
                item = pipes[k][0].recv()
            except (EOFError, OSError):
                procs[k].join(timeout=5)
                item = f"worker {procs[k].name} exited with code {procs[k].exitcode}"
            if isinstance(item, str):
                raise BuildError(f"training data worker failed: {item}")
            yield item
            k = (k + 1) % workers
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
        for p in procs:
            p.join(timeout=10)
        for r, _ in pipes:
            r.close()
