"""Hand-made CTC posteriors over the digits models' character tokens, for decoder tests."""

from __future__ import annotations

import numpy as np

TOKENS = ("<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz")
INDEX = {t: i for i, t in enumerate(TOKENS)}
BLANK = "<blank>"
FRAME_SECONDS = 0.02


def logprobs(frames: list, floor: float = 1e-6) -> np.ndarray:
    """Natural-log posteriors [frames, tokens] from frames given as a token ('-' is blank) or a
    {token: probability} mapping; unnamed tokens get `floor`, named ones share the rest."""
    out = np.full((len(frames), len(TOKENS)), floor, np.float64)
    for i, f in enumerate(frames):
        probs = {f: 1.0} if isinstance(f, str) else dict(f)
        named = {INDEX[BLANK if k == "-" else k]: v for k, v in probs.items()}
        rest = 1.0 - floor * (len(TOKENS) - len(named))
        total = sum(named.values())
        for k, v in named.items():
            out[i, k] = v / total * rest
    return np.log(out).astype(np.float32)


def spell(text: str, hold: int = 2, gap: int = 1, edge: int = 3) -> list:
    """Frames for text: each character held `hold` frames, then `gap` blanks."""
    frames: list = ["-"] * edge
    for ch in text:
        frames += [ch] * hold + ["-"] * gap
    return frames + ["-"] * edge


def noisy(text: str, rng: np.random.Generator, sharpness: float = 6.0, noise: float = 1.5
          ) -> np.ndarray:
    """Posteriors of a weak model: 1-2 frame spikes of varying strength in noisy logits."""
    ids = [0] * 10
    for ch in text:
        ids += [INDEX[ch]] * int(rng.integers(1, 3)) + [0] * int(rng.integers(2, 6))
    ids += [0] * 10
    logits = rng.normal(0.0, noise, (len(ids), len(TOKENS)))
    logits[np.arange(len(ids)), ids] += sharpness + rng.normal(0.0, 1.5, len(ids))
    logits[:, 0] += 2.0
    return (logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))).astype(np.float32)
