"""On-the-fly augmentation: speed, tempo, pitch, gain, tilt, noise, babble, reverb, SpecAugment.

Waveform functions take float32 samples and a numpy Generator and return new float32 samples;
`Augmenter` chains them with the probabilities and ranges of a recipe's `augment` section.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from edgevoice.audio import resample
from edgevoice.errors import BuildError
from edgevoice.features import LogMelSettings, hz_to_mel, mel_to_hz, start_weight
from edgevoice.training.recipe import FILE_KIND, AugmentSettings

# Mapping of recording name (file stem) -> samples at the model's rate.
NoiseFiles = dict[str, np.ndarray]


def speed(x: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Play faster (factor > 1) or slower: tempo, pitch and formants move together (like VTLP)."""
    return resample(x, int(round(sample_rate * factor)), sample_rate)


def tempo(x: np.ndarray, factor: float, sample_rate: int) -> np.ndarray:
    """Change duration by 1/factor keeping pitch (WSOLA: overlap-add with waveform alignment)."""
    win = int(0.03 * sample_rate)
    hop_out = win // 2
    hop_in = hop_out * factor
    tol = win // 4
    window = np.hanning(win).astype(np.float32)
    n_out = int(len(x) / factor)
    if len(x) < 2 * win or n_out < win:
        return x
    out = np.zeros(n_out + win, np.float32)
    norm = np.zeros(n_out + win, np.float32)
    xp = np.concatenate((np.zeros(tol, np.float32), x, np.zeros(win + tol, np.float32)))
    prev_next = xp[tol : tol + win]
    k = 0
    while k * hop_out + win <= len(out):
        centre = int(k * hop_in) + tol
        if centre + win + tol > len(xp):
            break
        if k:
            # Shift by the offset whose segment best continues the previous one.
            region = xp[centre - tol : centre + tol + win // 2]
            scores = np.correlate(region, prev_next[: win // 2], mode="valid")
            centre += int(np.argmax(scores)) - tol
        prev_next = xp[centre + hop_out : centre + hop_out + win]
        out[k * hop_out : k * hop_out + win] += xp[centre : centre + win] * window
        norm[k * hop_out : k * hop_out + win] += window
        k += 1
    return (out / np.maximum(norm, 1e-3))[:n_out]


def pitch(x: np.ndarray, semitones: float, sample_rate: int) -> np.ndarray:
    """Shift pitch (and formants) by `semitones`, keeping the duration."""
    factor = 2 ** (semitones / 12)
    return speed(tempo(x, 1 / factor, sample_rate), factor, sample_rate)


def gain(x: np.ndarray, db: float) -> np.ndarray:
    return (x * 10 ** (db / 20)).astype(np.float32)


def tilt(x: np.ndarray, coef: float) -> np.ndarray:
    """First-order spectral tilt (coef > 0 brightens, < 0 darkens): a cheap microphone/channel."""
    y = np.empty_like(x)
    y[0] = x[0]
    y[1:] = x[1:] - coef * x[:-1]
    peak_in, peak_out = np.max(np.abs(x)) + 1e-9, np.max(np.abs(y)) + 1e-9
    return (y * (peak_in / peak_out)).astype(np.float32)


def coloured_noise(kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
    """White, pink (1/f) or brown (1/f^2) noise with unit RMS."""
    white = rng.standard_normal(n).astype(np.float32)
    if kind != "white":
        spec = np.fft.rfft(white)
        f = np.arange(len(spec), dtype=np.float32)
        f[0] = 1.0
        spec /= f ** (0.5 if kind == "pink" else 1.0)
        white = np.fft.irfft(spec, n).astype(np.float32)
    return white / (np.sqrt(np.mean(white**2)) + 1e-9)


def babble(n: int, rng: np.random.Generator, sources: Sequence[np.ndarray], talkers: int = 3
           ) -> np.ndarray:
    """Several overlapping voices, each a chain of random word recordings; unit RMS."""
    out = np.zeros(n, np.float32)
    for _ in range(talkers):
        pos = int(rng.integers(0, max(n // 4, 1)))
        while pos < n:
            word = sources[int(rng.integers(len(sources)))]
            end = min(pos + len(word), n)
            out[pos:end] += word[: end - pos] / (np.sqrt(np.mean(word**2)) + 1e-9)
            pos = end + int(rng.integers(0, n // 8 + 1))
    return out / (np.sqrt(np.mean(out**2)) + 1e-9)


def add_noise(x: np.ndarray, noise: np.ndarray, snr_db: float) -> np.ndarray:
    """Mix unit-RMS-or-any `noise` into `x` at `snr_db`, measured on the active part of `x`."""
    active = x[np.abs(x) > 0.1 * np.max(np.abs(x))] if np.any(x) else x
    p_sig = float(np.mean(active**2)) if len(active) else 0.0
    p_noise = float(np.mean(noise**2)) + 1e-12
    scale = np.sqrt(p_sig / (p_noise * 10 ** (snr_db / 10)))
    return (x + scale * noise[: len(x)]).astype(np.float32)


def make_noise(kind: str, n: int, rng: np.random.Generator,
               babble_sources: Sequence[np.ndarray] = (), sample_rate: int = 16000,
               files: NoiseFiles | None = None) -> np.ndarray:
    """`n` samples of noise of `kind` (recipe.NOISE_KINDS or "file:<name>" of `files`), unit RMS."""
    from edgevoice.training import household

    if kind.startswith(FILE_KIND):
        return cut_recording((files or {})[kind[len(FILE_KIND):]], n, rng)
    if kind == "impulsive":
        return household.impulsive(n, rng, sample_rate)
    if kind == "music":
        return household.music(n, rng, sample_rate)
    if kind == "babble" and babble_sources:
        return babble(n, rng, babble_sources)
    return coloured_noise("pink" if kind == "babble" else kind, n, rng)


def cut_recording(recording: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """A random stretch of `n` samples of a noise recording (looped if shorter), unit RMS."""
    if len(recording) < n:
        recording = np.tile(recording, -(-n // len(recording)))
    start = int(rng.integers(0, len(recording) - n + 1))
    piece = recording[start : start + n].astype(np.float32)
    return piece / (np.sqrt(np.mean(piece**2)) + 1e-9)


class NoiseBank:
    """Long stretches of generated noise, cut at random offsets: as random as fresh noise for
    a training utterance, without an FFT of odd length per utterance."""

    def __init__(self, seconds: float, sample_rate: int, seed: int = 0) -> None:
        self._n = int(seconds * sample_rate)
        self._seed = seed
        self._cache: dict[str, np.ndarray] = {}

    def get(self, kind: str, n: int, rng: np.random.Generator,
            babble_sources: Sequence[np.ndarray] = (), sample_rate: int = 16000,
            files: NoiseFiles | None = None) -> np.ndarray:
        if kind not in ("white", "pink", "brown") or n > self._n:
            return make_noise(kind, n, rng, babble_sources, sample_rate, files)
        if kind not in self._cache:
            self._cache[kind] = coloured_noise(kind, 1 << int(np.ceil(np.log2(self._n))),
                                               np.random.default_rng(self._seed))
        bank = self._cache[kind]
        start = int(rng.integers(0, len(bank) - n))
        return bank[start : start + n]


def reverb(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
           rt60: tuple[float, float] = (0.15, 0.6)) -> np.ndarray:
    """Convolve with a synthetic room response: direct path + exponentially decaying noise tail."""
    t60 = rng.uniform(*rt60)
    n = int(t60 * sample_rate)
    t = np.arange(n, dtype=np.float32) / sample_rate
    rir = rng.standard_normal(n).astype(np.float32) * np.exp(-6.9 * t / t60).astype(np.float32)
    rir[: int(0.002 * sample_rate)] = 0.0
    rir *= rng.uniform(0.1, 0.5) / (np.sqrt(np.sum(rir**2)) + 1e-9)
    rir[0] = 1.0
    size = 1 << int(np.ceil(np.log2(len(x) + n)))
    y = np.fft.irfft(np.fft.rfft(x, size) * np.fft.rfft(rir, size), size)[: len(x)]
    peak_in, peak_out = np.max(np.abs(x)) + 1e-9, np.max(np.abs(y)) + 1e-9
    return (y * (peak_in / peak_out)).astype(np.float32)


def warp_indices(settings: LogMelSettings, factor: float) -> tuple[np.ndarray, np.ndarray]:
    """Where each mel band reads from when frequencies are scaled by `factor` (VTLP).

    Returns (lower band index, weight of the upper neighbour) per band: band i of the warped
    spectrum takes the original spectrum at frequency centre_i / factor, interpolated between
    band centres and held at the edges.
    """
    lo_mel, hi_mel = hz_to_mel(settings.fmin), hz_to_mel(settings.fmax)
    centres = np.linspace(lo_mel, hi_mel, settings.n_mels + 2)[1:-1]
    source = hz_to_mel(mel_to_hz(centres) / factor)
    pos = np.clip(np.interp(source, centres, np.arange(settings.n_mels)), 0, settings.n_mels - 1)
    lower = np.minimum(np.floor(pos).astype(np.int64), settings.n_mels - 2)
    return lower, (pos - lower).astype(np.float32)


def vtlp(feats: np.ndarray, settings: LogMelSettings, factor: float) -> np.ndarray:
    """Vocal-tract-length perturbation of log-mel features [frames, bands] made by `settings`.

    The warp is applied to the log-mel energies before the frontend's per-band normalisation
    (undone and redone here), so each band keeps its own statistics. factor > 1 moves formants
    up, as a shorter vocal tract would; tempo and pitch are untouched.
    """
    lower, frac = warp_indices(settings, factor)
    mean = np.asarray(settings.mean or (0.0,) * settings.n_mels, np.float32)
    std = np.maximum(np.asarray(settings.std, np.float32), 1e-3) if settings.std else \
        np.float32(1.0)

    def warp(raw: np.ndarray) -> np.ndarray:
        return raw[..., lower] * (1.0 - frac) + raw[..., lower + 1] * frac

    if not settings.norm_window_s:
        return ((warp(feats * std + mean) - mean) / std).astype(np.float32)
    # After the running mean (features.RunningMean), feats * std is the energies less their
    # running mean. Both the warp and the running mean are linear, so warping that is exact
    # but for where the running mean starts: at the global mean for the warped voice too, not
    # at its warp. The difference fades as the running mean forgets its start.
    fade = start_weight(settings.norm_alpha, len(feats))[:, None]
    return ((warp(feats * std) + fade * (warp(mean) - mean)) / std).astype(np.float32)


def spec_augment(feats: np.ndarray, rng: np.random.Generator, freq_masks: int, freq_width: int,
                 time_masks: int, time_width: int) -> np.ndarray:
    """Zero (the normalised mean) random bands and stretches of a [frames, bands] array."""
    out = feats.copy()
    bands = out.shape[1]
    for _ in range(freq_masks):
        w = int(rng.integers(0, freq_width + 1))
        f0 = int(rng.integers(0, max(bands - w, 1)))
        out[:, f0 : f0 + w] = 0.0
    for _ in range(time_masks):
        w = int(rng.integers(0, time_width + 1))
        t0 = int(rng.integers(0, max(len(out) - w, 1)))
        out[t0 : t0 + w] = 0.0
    return out


class Augmenter:
    """Applies a recipe's waveform augmentation chain to one utterance at a time.

    The order follows the sound: the voice (speed, tempo, pitch, tilt), a click or breath
    before it, the room (reverberation), the room's noise, then the microphone and channel
    (band limits, EQ, clipping, codecs) and the level.
    """

    def __init__(self, settings: AugmentSettings, sample_rate: int,
                 babble_sources: Sequence[np.ndarray] = (),
                 frontend: LogMelSettings | None = None,
                 noise_files: NoiseFiles | None = None) -> None:
        self.s = settings
        self.frontend = frontend  # needed for the mel-axis warp (VTLP)
        self.rate = sample_rate
        self.babble_sources = list(babble_sources)
        self.files = dict(noise_files or {})
        self.noise = NoiseBank(30.0, sample_rate)
        self._denoiser: Callable[[np.ndarray], np.ndarray] | None = None
        absent = [k for k in settings.noise_kinds
                  if k.startswith(FILE_KIND) and k[len(FILE_KIND):] not in self.files]
        if absent and settings.p_noise:
            raise BuildError(f"augment.noise_kinds: {', '.join(absent)} given no recording "
                             "(data.noise_dir is read by the build stages)")

    def __call__(self, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        from edgevoice.training import household

        s, rate = self.s, self.rate
        if rng.random() < s.p_speed:
            x = speed(x, rng.uniform(*s.speed), rate)
        if rng.random() < s.p_tempo:
            x = tempo(x, rng.uniform(*s.tempo), rate)
        if rng.random() < s.p_pitch:
            x = pitch(x, rng.uniform(*s.pitch), rate)
        if rng.random() < s.p_tilt:
            x = tilt(x, rng.uniform(*s.tilt))
        if s.p_onset and rng.random() < s.p_onset:
            x = household.place_onset(x, rng, rate, s.onset_db)
        if rng.random() < s.p_reverb:
            x = reverb(x, rng, rate, s.rt60)
        if rng.random() < s.p_noise:
            x = self.add_noise(x, rng, rng.uniform(*s.snr))
        if s.p_channel and rng.random() < s.p_channel:
            x = household.channel(x, rng, rate)
        x = gain(x, rng.uniform(*s.gain_db))
        return self.denoise(np.clip(x, -1.0, 1.0))

    def denoise(self, x: np.ndarray) -> np.ndarray:
        """`x` through the recipe's denoiser (made on first use: each worker process has its
        own, and the stage's native state never has to be pickled)."""
        if self._denoiser is None:
            from edgevoice.training.denoising import make_denoiser

            self._denoiser = make_denoiser(self.s.denoise, self.rate) or (lambda x: x)
        return self._denoiser(x)

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_denoiser": None}

    def noise_kinds(self) -> list[str]:
        """The recipe's noise kinds this augmenter can make (babble needs recordings)."""
        return [k for k in self.s.noise_kinds if k != "babble" or self.babble_sources]

    def make(self, kind: str, n: int, rng: np.random.Generator) -> np.ndarray:
        return self.noise.get(kind, n, rng, self.babble_sources, self.rate, self.files)

    def add_noise(self, x: np.ndarray, rng: np.random.Generator, snr_db: float) -> np.ndarray:
        kinds = self.noise_kinds()
        kind = kinds[int(rng.integers(len(kinds)))]
        return add_noise(x, self.make(kind, len(x), rng), snr_db)

    def features(self, feats: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Feature-domain augmentation of one utterance: VTLP warp, then SpecAugment."""
        s = self.s
        if s.p_warp and self.frontend is not None and rng.random() < s.p_warp:
            feats = vtlp(feats, self.frontend, rng.uniform(*s.warp))
        if rng.random() >= s.p_specaugment:
            return feats
        return spec_augment(feats, rng, s.freq_masks, s.freq_width, s.time_masks, s.time_width)
