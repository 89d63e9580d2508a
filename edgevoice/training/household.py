"""Household sounds for training: dishes, knocks, doors, steps, clicks, breaths, a TV, cheap mics.

A digits model in a kitchen hears more than digits over fan noise: cutlery dropped in a sink, a
cupboard knocked shut, the mouse click that started the recording, a breath before the word, a
radio in the next room, all through a laptop microphone with a telephone band or a clipping
preamp. Trained on clean speech and stationary noise only, a CTC model invents digits in such
sounds (a click starts as abruptly as a plosive, clatter hisses like an "s", a chord has the
harmonics of a vowel). These generators let it hear them, labelled as nothing.

- `impulsive`: sparse events over a faint room tone: dish and cutlery clatter, knocks, door
  slams, footsteps (`EVENTS`).
- `onset`: one sound of the kind that precedes a word into a browser mic: a mouse or key click,
  a breath, a lip smack, a bump or pop on the mic, a chair creak (`ONSETS`).
- `music`: a TV or radio: harmonic notes in changing chords, a bass, sometimes a melody and drums.
- `channel`: the microphone and line: band limits, EQ, clipping, a low-bit-rate codec, AGC.
- `place_onset`: one `onset` sound just before the speech of an utterance.

Struck objects are modal: each sound is a table of exponentially decaying sinusoids (and white
noise grains) rendered in one vectorised pass; music reads wavetables. A second of `impulsive` or
`music` takes about 1-1.5 ms, an onset or a channel well under 1 ms, so they run per utterance.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import fft, signal

from edgevoice.audio import resample

Sound = Callable[[np.random.Generator, int], np.ndarray]

TAU = 2 * np.pi
NOISE = 0.0  # the frequency of a mode row that is a white-noise grain instead of a sinusoid
LN_1000 = 6.9078  # a T60 decay is exp(-LN_1000 * t / t60): -60 dB at t60
_TABLE = 2048  # samples in one period of a music wavetable


def _log_uniform(rng: np.random.Generator, lo: float, hi: float,
                 size: int | None = None) -> np.ndarray:
    return np.exp(rng.uniform(np.log(lo), np.log(hi), size))


def _rows(start: float | np.ndarray, freq: np.ndarray | float, t60: np.ndarray | float,
          amp: np.ndarray | float) -> np.ndarray:
    """Mode rows (start s, frequency Hz or NOISE, T60 s, amplitude), broadcast together."""
    out = np.empty((*np.broadcast(start, freq, t60, amp).shape, 4))
    out[..., 0], out[..., 1], out[..., 2], out[..., 3] = start, freq, t60, amp
    return out.reshape(-1, 4)


def _render(rows: np.ndarray, n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Sum of decaying sinusoids and noise grains, all at once, in n samples.

    A mode starts at sine phase, as a struck resonator does: a cosine start would be a step,
    a click that a dull thud does not have. Each row is computed only over its own T60, in one
    flat ragged array, then added in place.
    """
    start = (rows[:, 0] * sample_rate).astype(np.int64)
    length = np.minimum((rows[:, 2] * sample_rate).astype(np.int64) + 1, n - start)
    keep = (length > 0) & (start >= 0)
    rows, start, length = rows[keep], start[keep], length[keep]
    out = np.zeros(n, np.float32)
    if not len(rows):
        return out
    offset = np.cumsum(length) - length
    t = np.arange(int(length.sum()), dtype=np.float32)
    t -= np.repeat(offset.astype(np.float32), length)
    t /= np.float32(sample_rate)
    env = np.repeat((-LN_1000 / rows[:, 2]).astype(np.float32), length)
    env *= t
    np.exp(env, out=env)
    env *= np.repeat(rows[:, 3].astype(np.float32), length)
    wave = np.repeat((TAU * rows[:, 1]).astype(np.float32), length)
    wave *= t
    np.sin(wave, out=wave)
    noisy = np.repeat(rows[:, 1] == NOISE, length)
    wave[noisy] = _white(int(noisy.sum()), rng)
    wave *= env
    for s, o, m in zip(start.tolist(), offset.tolist(), length.tolist(), strict=True):
        out[s : s + m] += wave[o : o + m]
    return out


def _white(n: int, rng: np.random.Generator) -> np.ndarray:
    """Unit-variance white noise; uniform, as it is three times faster than Gaussian here and
    sounds the same."""
    return (rng.random(n, dtype=np.float32) - np.float32(0.5)) * np.float32(np.sqrt(12))


def _sound(rows: np.ndarray, rng: np.random.Generator, sample_rate: int,
           max_seconds: float = 4.0) -> np.ndarray:
    """Render mode rows into a peak-normalised sound as long as its longest row."""
    n = int(min(np.max(rows[:, 0] + rows[:, 2]), max_seconds) * sample_rate) + 1
    return _peak_normalise(_render(rows, n, rng, sample_rate))


def _peak_normalise(x: np.ndarray) -> np.ndarray:
    return (x / (np.max(np.abs(x)) + 1e-9)).astype(np.float32)


def _unit_rms(x: np.ndarray) -> np.ndarray:
    return (x / (np.sqrt(np.mean(x.astype(np.float64) ** 2)) + 1e-9)).astype(np.float32)


def _top(sample_rate: int, hz: float) -> float:
    """`hz`, or just below Nyquist at low sample rates."""
    return min(hz, 0.45 * sample_rate)


# -- impulsive events -------------------------------------------------------------------------

def clatter(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Dishes or cutlery: 2-6 hits within half a second, each a tick and 3-6 inharmonic metallic
    partials at 1-6 kHz ringing for 20-300 ms (a new object, so a new timbre, per hit)."""
    hits = int(rng.integers(2, 7))
    times = np.sort(rng.uniform(0.0, rng.uniform(0.08, 0.5), hits))
    rows = []
    for t0 in times - times[0]:
        k = int(rng.integers(3, 7))
        level = 10 ** (-rng.uniform(0, 12) / 20)
        freq = _log_uniform(rng, 1000, _top(sample_rate, 6000), k)
        rows.append(_rows(t0, freq, _log_uniform(rng, 0.02, 0.3, k),
                          level * rng.uniform(0.2, 1.0, k)))
        rows.append(_rows(t0, NOISE, rng.uniform(0.001, 0.005), level * rng.uniform(0.5, 1.5)))
    return _sound(np.concatenate(rows), rng, sample_rate)


def knock(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Knocks on a door or cupboard: 1-3 low wooden thumps (60-300 Hz and an overtone) each
    with a short click of the knuckle."""
    times = np.cumsum(np.r_[0.0, rng.uniform(0.12, 0.3, int(rng.integers(0, 3)))])
    f0 = rng.uniform(60, 300)
    rows = []
    for t0 in times:
        level = rng.uniform(0.6, 1.0)
        freq = np.array([f0, f0 * rng.uniform(1.6, 2.9), rng.uniform(600, 1800)])
        t60 = np.array([rng.uniform(0.04, 0.2), rng.uniform(0.03, 0.1), rng.uniform(0.01, 0.03)])
        amp = level * np.array([1.0, rng.uniform(0.2, 0.6), rng.uniform(0.05, 0.2)])
        rows.append(_rows(t0, freq, t60, amp))
        rows.append(_rows(t0, NOISE, rng.uniform(0.001, 0.004), level * rng.uniform(0.1, 0.5)))
    return _sound(np.concatenate(rows), rng, sample_rate)


def door_slam(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A door slammed: a broadband crack, a low boom of the door and wall (40-120 Hz), then a
    rattle of the handle and frame fading over up to 0.6 s."""
    boom = rng.uniform(40, 120)
    rows = [
        _rows(0.0, NOISE, rng.uniform(0.02, 0.08), rng.uniform(1.0, 2.0)),
        _rows(0.0, np.array([boom, boom * rng.uniform(1.5, 2.5)]),
              rng.uniform(0.2, 0.6, 2), np.array([rng.uniform(1.0, 2.0), rng.uniform(0.3, 0.8)])),
    ]
    hits = int(rng.integers(6, 25))
    rattle = rng.uniform(15, 40)
    times = 0.02 + np.cumsum(rng.uniform(0.6, 1.4, hits) / rattle)
    tail = rng.uniform(0.1, 0.6)
    level = rng.uniform(0.1, 0.4) * np.exp(-3 * times / tail)
    parts = _log_uniform(rng, 400, _top(sample_rate, 3000), 2)
    rows.append(_rows(times[:, None], parts, rng.uniform(0.005, 0.03, 2),
                      level[:, None] * rng.uniform(0.5, 1.0, (hits, 2))))
    rows.append(_rows(times, NOISE, 0.002, level * 0.5))
    return _sound(np.concatenate(rows), rng, sample_rate)


def footsteps(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Footsteps on a floor: 1-5 steps 0.35-0.7 s apart, each a dull heel-and-toe thud (a cluster
    of 3-6 low modes at 40-400 Hz) and a faint scuff."""
    steps = int(rng.integers(1, 6))
    times = np.cumsum(np.r_[0.0, rng.uniform(0.35, 0.7, steps - 1)])
    rows = []
    for t0 in times:
        level = rng.uniform(0.5, 1.0)
        for dt, part in ((0.0, 1.0), (rng.uniform(0.03, 0.08), rng.uniform(0.3, 0.7))):
            k = int(rng.integers(3, 7))
            rows.append(_rows(t0 + dt, _log_uniform(rng, 40, 400, k),
                              rng.uniform(0.02, 0.08, k), level * part * rng.uniform(0.3, 1, k)))
        rows.append(_rows(t0, NOISE, rng.uniform(0.005, 0.02), level * rng.uniform(0.03, 0.15)))
    return _sound(np.concatenate(rows), rng, sample_rate)


EVENTS: dict[str, Sound] = {
    "clatter": clatter, "knock": knock, "door_slam": door_slam, "footsteps": footsteps,
}


def room_tone(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A quiet stationary floor: darkened noise, sometimes with a fridge's mains hum; unit RMS."""
    white = _white(n, rng)
    pole = rng.uniform(0.9, 0.995)
    tone = signal.lfilter([1 - pole], [1, -pole], white).astype(np.float32)
    tone = _unit_rms(tone) + rng.uniform(0.05, 0.3) * white
    if rng.random() < 0.3:
        t = np.arange(n, dtype=np.float32) / np.float32(sample_rate)
        mains = float(rng.choice([50.0, 60.0]))
        tone += rng.uniform(0.2, 1.0) * np.sin(TAU * mains * t).astype(np.float32)
        tone += rng.uniform(0.1, 0.5) * np.sin(TAU * 2 * mains * t).astype(np.float32)
    return _unit_rms(tone)


def impulsive(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """`n` samples of kitchen or living-room events: 1-8 a second on average, of any kind in
    `EVENTS`, up to 20 dB apart, over a room tone 40-60 dB below the loudest event's peak;
    unit RMS."""
    count = max(1, int(rng.poisson(rng.uniform(1, 8) * n / sample_rate)))
    out = room_tone(n, rng, sample_rate) * np.float32(10 ** (-rng.uniform(40, 60) / 20))
    kinds = list(EVENTS.values())
    for start in np.sort(rng.integers(0, n, count)):
        event = kinds[int(rng.integers(len(kinds)))](rng, sample_rate)
        event = event[: n - start] * np.float32(10 ** (-rng.uniform(0, 20) / 20))
        out[start : start + len(event)] += event
    return _unit_rms(out)


# -- onsets -----------------------------------------------------------------------------------

def click(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A mouse or key click: 1-2 contacts a few ms apart, each a sub-millisecond tick with a
    plastic ring at 2-7 kHz; a key adds its hollow 250-1200 Hz thock. Up to 30 ms."""
    times = np.r_[0.0, rng.uniform(0.001, 0.004, int(rng.integers(0, 2)))]
    rows = [_rows(times, NOISE, rng.uniform(0.0003, 0.0015), 1.0)]
    for t0 in times:
        rows.append(_rows(t0, _log_uniform(rng, 2000, _top(sample_rate, 7000), 3),
                          rng.uniform(0.003, 0.012, 3), rng.uniform(0.2, 0.8, 3)))
    if rng.random() < 0.5:
        rows.append(_rows(0.0, rng.uniform(250, 1200), rng.uniform(0.01, 0.025),
                          rng.uniform(0.5, 1.0)))
    return _sound(np.concatenate(rows), rng, sample_rate)


def breath(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A breath in or out: noise band-passed to roughly 150-500 .. 1500-4500 Hz, with a smooth
    rise and fall, 150-600 ms."""
    n = int(rng.uniform(0.15, 0.6) * sample_rate)
    noise = _band_noise(n, rng.uniform(150, 500), _top(sample_rate, rng.uniform(1500, 4500)),
                        rng, sample_rate)
    return _peak_normalise(noise * _swell(n, rng))


def _band_noise(n: int, low: float, high: float, rng: np.random.Generator,
                sample_rate: int) -> np.ndarray:
    """White noise through a gentle (second-order-like) band-pass, shaped in the FFT domain."""
    size = fft.next_fast_len(n, real=True)
    spec = fft.rfft(_white(size, rng))
    f = fft.rfftfreq(size, 1 / sample_rate).astype(np.float32) + np.float32(1.0)
    spec *= 1 / np.sqrt((1 + (low / f) ** 4) * (1 + (f / high) ** 4))
    return _peak_normalise(fft.irfft(spec, size)[:n])


def _swell(n: int, rng: np.random.Generator) -> np.ndarray:
    """A smooth envelope from 0 up to 1 and back to 0, peaking somewhere in the middle."""
    rise = max(int(n * rng.uniform(0.25, 0.7)), 1)
    up = np.sin(np.linspace(0, np.pi / 2, rise, dtype=np.float32)) ** 2
    down = np.cos(np.linspace(0, np.pi / 2, n - rise, dtype=np.float32)) ** 2
    return np.concatenate((up, down))


def lip_smack(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Lips parting: 1-3 wet clicks within 50 ms, each a tick with a 1.2-4 kHz ring and a
    faint, short 150-400 Hz body."""
    times = np.sort(rng.uniform(0.0, rng.uniform(0.005, 0.05), int(rng.integers(1, 4))))
    times -= times[0]
    level = rng.uniform(0.3, 1.0, len(times))
    rows = [_rows(times, NOISE, rng.uniform(0.0005, 0.002), level),
            _rows(times[:, None], _log_uniform(rng, 1200, _top(sample_rate, 4000), 2),
                  rng.uniform(0.003, 0.008, 2), level[:, None] * rng.uniform(0.3, 0.7, 2)),
            _rows(times, rng.uniform(150, 400), rng.uniform(0.005, 0.015),
                  level * rng.uniform(0.1, 0.3))]
    return _sound(np.concatenate(rows), rng, sample_rate)


def bump(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A bump or pop on the mic: a one-sided pressure pulse (5-25 ms, like breath on the
    capsule) and the low ringing of the stand or desk (20-150 Hz)."""
    rows = np.concatenate([
        _rows(0.0, _log_uniform(rng, 20, 150, 2), rng.uniform(0.05, 0.25, 2),
              rng.uniform(0.2, 0.6, 2)),
        _rows(0.0, NOISE, rng.uniform(0.001, 0.003), rng.uniform(0.0, 0.05)),
    ])
    n = int(np.max(rows[:, 2]) * sample_rate) + 1
    out = _render(rows, n, rng, sample_rate)
    width = max(int(rng.uniform(0.005, 0.025) * sample_rate), 2)
    pulse = np.sin(np.linspace(0, np.pi, width, dtype=np.float32))
    out[: min(width, n)] += pulse[:n] * np.float32(rng.choice([-1.0, 1.0]))
    return _peak_normalise(out)


def creak(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A chair creak: stick-slip pulses at a rate gliding between 20 and 200 Hz, ringing the
    chair's 300-2500 Hz resonances, swelling and fading over 150-600 ms."""
    n = int(rng.uniform(0.15, 0.6) * sample_rate)
    rates = _log_uniform(rng, 20, 200, 2)
    glide = rates[0] * (rates[1] / rates[0]) ** np.linspace(0, 1, n)
    cycles = np.floor(np.cumsum(glide * rng.uniform(0.7, 1.3, n)) / sample_rate)
    pulses = np.flatnonzero(np.diff(cycles, prepend=0.0))
    excitation = np.zeros(n, np.float32)
    excitation[pulses] = _swell(n, rng)[pulses] * rng.uniform(0.4, 1.0, len(pulses))
    k = int(rng.integers(2, 5))
    body = _render(_rows(0.0, _log_uniform(rng, 300, _top(sample_rate, 2500), k),
                         rng.uniform(0.005, 0.025, k), rng.uniform(0.3, 1.0, k)),
                   int(0.025 * sample_rate), rng, sample_rate)
    return _peak_normalise(signal.oaconvolve(excitation, body)[:n])


ONSETS: dict[str, Sound] = {
    "click": click, "breath": breath, "lip_smack": lip_smack, "bump": bump, "creak": creak,
}


def onset(rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """One sound of a kind in `ONSETS`, 5-600 ms long, peak 1.0 (the caller sets the level)."""
    kinds = list(ONSETS.values())
    sound = kinds[int(rng.integers(len(kinds)))](rng, sample_rate)[: int(0.6 * sample_rate)]
    shortest = int(0.005 * sample_rate)
    if len(sound) < shortest:
        sound = np.pad(sound, (0, shortest - len(sound)))
    return _peak_normalise(sound)


# -- music ------------------------------------------------------------------------------------

MAJOR = (0, 2, 4, 5, 7, 9, 11)
MINOR = (0, 2, 3, 5, 7, 8, 10)
# A voice: one period of its waveform, attack time and T60 of its notes (s).
Voice = tuple[np.ndarray, float, float]


def _hz(midi: float) -> float:
    return 440.0 * 2 ** ((midi - 69) / 12)


def _degree(scale: tuple[int, ...], degree: int) -> int:
    """Semitones above the key of a scale degree (degree 7 is the octave)."""
    return 12 * (degree // 7) + scale[degree % 7]


def _voice(rng: np.random.Generator, sample_rate: int, highest_hz: float) -> Voice:
    """An instrument: 3-6 harmonics falling off like a string, reed or organ (fewer where they
    would pass Nyquist), plucked (fast attack, decaying) or held (slow attack)."""
    count = min(int(rng.integers(3, 7)), max(1, int(0.45 * sample_rate // highest_hz)))
    k = np.arange(1, count + 1)
    amp = k ** -rng.uniform(0.7, 2.0) * rng.uniform(0.5, 1.0, count)
    if rng.random() < 0.3:
        amp[1::2] *= 0.1  # reed-like: mostly odd harmonics
    t = np.arange(_TABLE, dtype=np.float32) * np.float32(TAU / _TABLE)
    phase = rng.uniform(0, TAU, (count, 1)).astype(np.float32)
    table = amp.astype(np.float32) @ np.sin(k[:, None].astype(np.float32) * t + phase)
    if rng.random() < 0.5:
        return _unit_rms(table), rng.uniform(0.002, 0.01), rng.uniform(0.4, 2.0)
    return _unit_rms(table), rng.uniform(0.02, 0.08), np.inf


def _play(out: np.ndarray, start: int, length: int, notes: list[int], voice: Voice,
          level: float, rng: np.random.Generator, sample_rate: int) -> None:
    """Add `notes` (MIDI numbers) played together by `voice` for `length` samples, with a short
    release so that chord changes do not click."""
    table, attack, t60 = voice
    release = int(0.03 * sample_rate)
    n = min(length + release, len(out) - start)
    if n <= 0:
        return
    i = np.arange(n)
    tone = np.zeros(n, np.float32)
    for note in notes:
        step = _hz(note) * _TABLE / sample_rate
        tone += table[(rng.uniform(0, _TABLE) + i * step).astype(np.int64) & (_TABLE - 1)]
    t = i.astype(np.float32) / np.float32(sample_rate)
    env = (1 - np.exp(-t / np.float32(attack))) * np.exp(np.float32(-LN_1000 / t60) * t)
    env *= np.clip((length + release - i) / release, 0, 1).astype(np.float32)
    out[start : start + n] += np.float32(level) * tone * env


def _drums(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """A kick, snare and hi-hat pattern at 80-150 beats a minute; unit RMS."""
    t = np.arange(int(0.3 * sample_rate), dtype=np.float32) / np.float32(sample_rate)
    low = rng.uniform(45, 65)
    sweep = low + rng.uniform(60, 140) * np.exp(-t / np.float32(rng.uniform(0.01, 0.04)))
    kick = np.sin(TAU * np.cumsum(sweep) / sample_rate) * np.exp(-LN_1000 * t / 0.25)
    snare = _sound(np.concatenate([_rows(0.0, NOISE, rng.uniform(0.1, 0.2), 1.0),
                                   _rows(0.0, rng.uniform(170, 250), 0.1, 0.7)]),
                   rng, sample_rate)
    hat = np.diff(_sound(_rows(0.0, NOISE, rng.uniform(0.02, 0.06), 1.0), rng, sample_rate), 2)
    hits = ((kick, 0.9, 0), (snare, 0.9, 1), (_peak_normalise(hat), 0.7, None))
    half_beat = 30 / rng.uniform(80, 150)
    out = np.zeros(n, np.float32)
    for i in range(int(n / sample_rate / half_beat) + 1):
        start = int(i * half_beat * sample_rate)
        for sound, p, beat in hits:
            if (beat is None or (i % 2 == 0 and (i // 2) % 2 == beat)) and rng.random() < p:
                part = sound[: n - start] * np.float32(rng.uniform(0.5, 1.0))
                out[start : start + len(part)] += part
    return _unit_rms(out)


def music(n: int, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """`n` samples of a TV or radio playing music: chords changing every 0.2-1 s over a bass,
    sometimes a melody and drums; unit RMS."""
    key = int(rng.integers(43, 55))
    scale = MAJOR if rng.random() < 0.5 else MINOR
    chords, bass = _voice(rng, sample_rate, _hz(key + 36)), _voice(rng, sample_rate, _hz(key))
    out = np.zeros(n, np.float32)
    start = 0
    while start < n:
        length = int(rng.uniform(0.2, 1.0) * sample_rate)
        root = int(rng.integers(7))
        notes = [key + 12 + _degree(scale, root + 2 * j) for j in range(int(rng.integers(3, 5)))]
        _play(out, start, length, notes, chords, 1.0, rng, sample_rate)
        _play(out, start, length, [key - 12 + _degree(scale, root)], bass, 0.8, rng, sample_rate)
        start += length
    if rng.random() < 0.6:
        melody, degree, start = _voice(rng, sample_rate, _hz(key + 41)), 4, 0
        while start < n:
            length = int(rng.uniform(0.1, 0.4) * sample_rate)
            degree = int(np.clip(degree + rng.integers(-2, 3), 0, 9))
            _play(out, start, length, [key + 24 + _degree(scale, degree)], melody, 0.7, rng,
                  sample_rate)
            start += length
    if rng.random() < 0.5:
        level = np.sqrt(np.mean(out**2)) * 10 ** (-rng.uniform(3, 12) / 20)
        out += np.float32(level) * _drums(n, rng, sample_rate)
    return _unit_rms(out)


# -- microphone and channel -------------------------------------------------------------------

def _level(x: np.ndarray, like: np.ndarray) -> np.ndarray:
    """`x` scaled to the peak of `like`: channel effects change the sound, not its level."""
    return (x * (np.max(np.abs(like)) / (np.max(np.abs(x)) + 1e-9))).astype(np.float32)


def band_limit(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
               kind: str | None = None) -> np.ndarray:
    """A telephone band (300-3400 Hz), a dull mic (low-pass at 3-7 kHz) or a thin one
    (high-pass at 100-400 Hz); `kind` "telephone", "lowpass" or "highpass", else random."""
    kind = kind or str(rng.choice(["telephone", "lowpass", "highpass"]))
    if kind == "telephone":
        sos = signal.butter(4, [300, _top(sample_rate, 3400)], "bandpass", fs=sample_rate,
                            output="sos")
    elif kind == "lowpass":
        sos = signal.butter(6, _top(sample_rate, rng.uniform(3000, 7000)), "lowpass",
                            fs=sample_rate, output="sos")
    else:
        sos = signal.butter(4, rng.uniform(100, 400), "highpass", fs=sample_rate, output="sos")
    return _level(signal.sosfilt(sos, x), x)


def equalise(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """1-3 peaking filters (RBJ biquads) at 80 Hz .. 0.4 x rate, +-10 dB, Q 0.5-4."""
    k = int(rng.integers(1, 4))
    w0 = TAU * _log_uniform(rng, 80, 0.4 * sample_rate, k) / sample_rate
    a = 10 ** (rng.uniform(-10, 10, k) / 40)
    alpha = np.sin(w0) / (2 * rng.uniform(0.5, 4.0, k))
    cos = np.cos(w0)
    b = np.stack([1 + alpha * a, -2 * cos, 1 - alpha * a], axis=1)
    den = np.stack([1 + alpha / a, -2 * cos, 1 - alpha / a], axis=1)
    sos = np.concatenate([b, den], axis=1) / den[:, :1]
    return _level(signal.sosfilt(sos, x), x)


def clip(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
         kind: str | None = None) -> np.ndarray:
    """An overdriven preamp: 3-20 dB too much gain, then a hard ("hard") or tanh ("soft")
    limit at full scale; the level is given back afterwards."""
    drive = 10 ** (rng.uniform(3, 20) / 20) / (np.max(np.abs(x)) + 1e-9)
    y = x * drive
    y = np.clip(y, -1, 1) if (kind or rng.choice(["hard", "soft"])) == "hard" else np.tanh(y)
    return _level(y, x)


def codec(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
          kind: str | None = None) -> np.ndarray:
    """A cheap codec: "mulaw" (8-bit G.711 companding), "narrowband" (through 8 kHz and back,
    at higher rates), "g711" (both) or "bits" (plain 6-10-bit quantisation); random if `kind`
    is None. The signal reaches the quantiser 0-20 dB below full scale, so quiet input gets
    fewer levels."""
    kind = kind or str(rng.choice(["mulaw", "narrowband", "g711", "bits"]))
    y = x
    if kind in ("narrowband", "g711") and sample_rate > 8000:
        y = resample(resample(y, sample_rate, 8000), 8000, sample_rate)
        y = np.pad(y, (0, max(len(x) - len(y), 0)))[: len(x)]
    if kind == "narrowband":
        return _level(y, x)
    headroom = 10 ** (-rng.uniform(0, 20) / 20)
    y = y * (headroom / (np.max(np.abs(y)) + 1e-9))
    if kind == "bits":
        step = 2.0 / 2 ** int(rng.integers(6, 11))
        return _level(np.round(y / step) * step, x)
    mu = 255.0
    u = np.round(np.sign(y) * np.log1p(mu * np.abs(y)) / np.log1p(mu) * 127) / 127
    return _level(np.sign(u) * np.expm1(np.abs(u) * np.log1p(mu)) / mu, x)


def agc(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """Automatic gain control that pumps: gain falls within 5-20 ms of a loud sound and
    recovers over 0.2-1.5 s, lifting quiet parts (and the noise) by up to 6-24 dB."""
    frame = max(sample_rate // 100, 1)
    frames = -(-len(x) // frame)
    padded = np.pad(x, (0, frames * frame - len(x))).reshape(frames, frame)
    rms = np.sqrt(np.mean(padded.astype(np.float64) ** 2, axis=1)) + 1e-9
    attack = np.exp(-0.01 / rng.uniform(0.005, 0.02))
    release = np.exp(-0.01 / rng.uniform(0.2, 1.5))
    env = np.empty(frames)
    level = rms[0]
    for i, r in enumerate(rms):
        coef = attack if r > level else release
        level = coef * level + (1 - coef) * r
        env[i] = level
    target = rms.max() * 10 ** (-rng.uniform(0, 6) / 20)
    gain = np.minimum(target / env, 10 ** (rng.uniform(6, 24) / 20))
    centres = (np.arange(frames) + 0.5) * frame
    return _level(x * np.interp(np.arange(len(x)), centres, gain).astype(np.float32), x)


# In the order of the sound's path: capsule, its band, preamp, AGC, codec.
CHANNEL_STEPS: tuple[Callable[[np.ndarray, np.random.Generator, int], np.ndarray], ...] = (
    equalise, band_limit, clip, agc, codec,
)


def channel(x: np.ndarray, rng: np.random.Generator, sample_rate: int) -> np.ndarray:
    """`x` through 1-3 random steps of `CHANNEL_STEPS`, in path order; same length, within
    [-1, 1]."""
    picks = np.sort(rng.choice(len(CHANNEL_STEPS), int(rng.integers(1, 4)), replace=False))
    y = x.astype(np.float32)
    for i in picks:
        y = CHANNEL_STEPS[i](y, rng, sample_rate)
    return np.clip(y, -1.0, 1.0).astype(np.float32)


# -- onset placement --------------------------------------------------------------------------

def _frame_rms(x: np.ndarray, frame: int) -> np.ndarray:
    frames = max(-(-len(x) // frame), 1)
    padded = np.pad(x, (0, frames * frame - len(x))).reshape(frames, frame)
    return np.sqrt(np.mean(padded.astype(np.float64) ** 2, axis=1))


def speech_start(x: np.ndarray, sample_rate: int) -> int:
    """The first sample of the first 10 ms frame within 20 dB of the loudest (len(x) if none)."""
    frame = max(sample_rate // 100, 1)
    rms = _frame_rms(x, frame)
    loud = np.flatnonzero(rms > 0.1 * rms.max())
    return min(int(loud[0]) * frame, len(x)) if len(loud) else len(x)


def place_onset(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
                level_db: tuple[float, float] = (-30.0, -6.0)) -> np.ndarray:
    """`x` with one `onset` sound at `level_db` re its peak (re full scale if x is silent) in
    its first 0.5 s, ending 20-150 ms before the speech. When the silence in front is too short
    for that, up to 0.3 s of quiet noise at x's floor level is put in front first (and a long
    breath may still overlap the speech); x without speech keeps its length."""
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    level = (peak or 1.0) * 10 ** (rng.uniform(*level_db) / 20)
    sound = onset(rng, sample_rate) * np.float32(level)
    gap = int(rng.uniform(0.02, 0.15) * sample_rate)
    begin = speech_start(x, sample_rate)
    if begin == len(x):
        latest = len(x) - len(sound)
    else:
        need = len(sound) + gap - begin
        if need > 0:
            most = int(0.3 * sample_rate)
            pad = int(rng.integers(min(need, most), most + 1))
            # x's quietest 10 ms, but never above -40 dB re its peak: a recording cut right at
            # its first word has no quiet frame of its own.
            floor = min(float(np.min(_frame_rms(x, max(sample_rate // 100, 1)))), 0.01 * peak)
            x = np.concatenate((_white(pad, rng) * np.float32(floor), x))
            begin += pad
        latest = begin - gap - len(sound)
    start = int(rng.integers(0, max(min(latest, int(0.5 * sample_rate)), 0) + 1))
    y = x.astype(np.float32)
    part = sound[: len(y) - start]
    y[start : start + len(part)] += part
    return y
