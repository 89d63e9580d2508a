"""Log-mel filterbank features, streaming, in numpy.

The build tool and the daemon both compute features with `LogMel`, so a model sees at run time
exactly what it was trained on (train/serve parity). Settings travel in the bundle.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import numpy as np

from edgevoice.audio import to_float
from edgevoice.options import opt


@dataclass(frozen=True)
class LogMelSettings:
    """Frontend settings; stored in bundle.yaml under `frontend`."""

    sample_rate: int = 16000  # Hz
    win_ms: float = 25.0  # analysis window length, ms
    hop_ms: float = 10.0  # frame shift, ms
    n_fft: int = 512  # FFT size, samples (>= window)
    n_mels: int = 40  # mel bands
    fmin: float = 20.0  # lowest band edge, Hz
    fmax: float = 4000.0  # highest band edge, Hz (<= sample_rate / 2)
    preemphasis: float = 0.97  # first-order high-pass coefficient, 0 disables
    floor: float = 1e-6  # added before log, avoids log(0) on digital silence
    # Per-band normalisation; empty means none. Computed over training data by the build tool.
    mean: tuple[float, ...] = field(default_factory=tuple)
    std: tuple[float, ...] = field(default_factory=tuple)
    # After the global normalisation, each band's causal running mean is subtracted (see
    # RunningMean): an experiment against speaker and channel colouring. `to_dict` leaves it
    # out while it is off, so such bundles read as before, by older daemons too.
    norm_window_s: float = opt(0.0, "time constant of the per-band running mean subtracted "
                               "from each frame, seconds; 0 = off", min=0)

    @property
    def win(self) -> int:
        return int(round(self.sample_rate * self.win_ms / 1000))

    @property
    def hop(self) -> int:
        return int(round(self.sample_rate * self.hop_ms / 1000))

    @property
    def norm_alpha(self) -> float:
        """Weight of each new frame in the running mean, so that it forgets its past by a
        factor e every norm_window_s seconds whatever the frame shift (0 when it is off)."""
        if self.norm_window_s <= 0:
            return 0.0
        return -math.expm1(-self.hop / self.sample_rate / self.norm_window_s)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["mean"] = [round(float(v), 6) for v in self.mean]
        d["std"] = [round(float(v), 6) for v in self.std]
        if not self.norm_window_s:
            del d["norm_window_s"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> LogMelSettings:
        d = dict(d)
        d.pop("name", None)
        d["mean"] = tuple(float(v) for v in d.get("mean", ()))
        d["std"] = tuple(float(v) for v in d.get("std", ()))
        return cls(**d)


def hz_to_mel(f: np.ndarray | float) -> np.ndarray:
    """HTK mel scale."""
    return 2595.0 * np.log10(1.0 + np.asarray(f) / 700.0)


def mel_to_hz(m: np.ndarray | float) -> np.ndarray:
    return 700.0 * (10.0 ** (np.asarray(m) / 2595.0) - 1.0)


def mel_filterbank(s: LogMelSettings) -> np.ndarray:
    """Triangular mel filters (HTK mel scale), shape [n_fft // 2 + 1, n_mels]."""
    edges = mel_to_hz(np.linspace(hz_to_mel(s.fmin), hz_to_mel(s.fmax), s.n_mels + 2))
    bins = np.fft.rfftfreq(s.n_fft, 1.0 / s.sample_rate)
    fb = np.zeros((len(bins), s.n_mels), dtype=np.float32)
    for m in range(s.n_mels):
        lo, mid, hi = edges[m], edges[m + 1], edges[m + 2]
        up = (bins - lo) / max(mid - lo, 1e-9)
        down = (hi - bins) / max(hi - mid, 1e-9)
        fb[:, m] = np.maximum(0.0, np.minimum(up, down))
    return fb


class RunningMean:
    """Subtracts from each frame, in place, the running mean (an exponential moving average,
    weight `alpha` per frame) of the frames before it, per band; `reset` starts it at 0.

    Frame t is measured against frames up to t-1, not t: a frame's own energy is not taken
    off itself, so an onset keeps its full contrast however short the window, and the first
    frame after a reset is the globally normalised frame as it is. Starting at 0, the
    training data's mean, is right for features already normalised globally.
    """

    def __init__(self, bands: int, alpha: float) -> None:
        self.alpha = np.float32(alpha)
        self._mean = np.zeros(bands, np.float32)
        self._step = np.zeros(bands, np.float32)

    def reset(self) -> None:
        self._mean.fill(0.0)

    def __call__(self, feats: np.ndarray) -> None:
        """`feats` [frames, bands] float32, changed in place (no allocation per frame)."""
        mean, step = self._mean, self._step
        for frame in feats:
            frame -= mean
            np.multiply(frame, self.alpha, out=step)
            mean += step  # mean + alpha * (x - mean), x - mean being the frame now


def start_weight(alpha: float, frames: int) -> np.ndarray:
    """[frames] float32: how much of its start value RunningMean's mean still holds when
    each frame is measured against it, (1 - alpha) ** t."""
    return ((1.0 - alpha) ** np.arange(frames)).astype(np.float32)


class LogMel:
    """Streaming log-mel frontend: feed samples in any block sizes, get the same frames.

    `process` returns every complete frame the samples so far allow; `reset` starts a new
    utterance. Feeding a signal whole or in pieces gives identical features.
    """

    def __init__(self, settings: LogMelSettings) -> None:
        s = settings
        if s.fmax > s.sample_rate / 2 or s.fmin >= s.fmax:
            raise ValueError(f"frontend band {s.fmin}-{s.fmax} Hz does not fit {s.sample_rate} Hz")
        if s.n_fft < s.win:
            raise ValueError(f"n_fft {s.n_fft} is shorter than the window ({s.win} samples)")
        if s.norm_window_s < 0:
            raise ValueError(f"norm_window_s {s.norm_window_s} is negative (0 = off)")
        self.settings = s
        self._fb = mel_filterbank(s)
        self._window = np.hanning(s.win + 2)[1:-1].astype(np.float32)
        self._mean = np.asarray(s.mean, np.float32) if s.mean else None
        self._inv_std = 1.0 / np.maximum(np.asarray(s.std, np.float32), 1e-3) if s.std else None
        self._running = RunningMean(s.n_mels, s.norm_alpha) if s.norm_window_s else None
        self.reset()

    @property
    def n_features(self) -> int:
        return self.settings.n_mels

    def reset(self) -> None:
        """A new utterance (the daemon's, or one training clip in `compute`)."""
        self._buf = np.zeros(0, np.float32)
        self._last = 0.0
        if self._running is not None:
            self._running.reset()

    def process(self, samples: np.ndarray) -> np.ndarray:
        """Float or int16 samples at settings.sample_rate -> features [frames, n_mels] float32."""
        x = to_float(samples)
        s = self.settings
        if s.preemphasis and len(x):
            prev = np.concatenate(([self._last], x[:-1])).astype(np.float32)
            self._last = float(x[-1])
            x = x - s.preemphasis * prev
        buf = np.concatenate((self._buf, x)) if len(self._buf) else x
        win, hop = s.win, s.hop
        n = 0 if len(buf) < win else 1 + (len(buf) - win) // hop
        self._buf = buf[n * hop :].copy() if n else buf.copy()
        if n == 0:
            return np.zeros((0, s.n_mels), np.float32)
        frames = np.lib.stride_tricks.sliding_window_view(buf, win)[::hop][:n] * self._window
        power = np.abs(np.fft.rfft(frames, n=s.n_fft, axis=1)) ** 2
        feats = np.log(power.astype(np.float32) @ self._fb + s.floor)
        if self._mean is not None:
            feats -= self._mean
        if self._inv_std is not None:
            feats *= self._inv_std
        if self._running is not None:
            self._running(feats)
        return feats.astype(np.float32, copy=False)

    def compute(self, samples: np.ndarray) -> np.ndarray:
        """Features of one whole signal (resets state before and after)."""
        self.reset()
        out = self.process(samples)
        self.reset()
        return out
