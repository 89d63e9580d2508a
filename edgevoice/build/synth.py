"""Synthetic speech for a vocabulary or phrase list, with espeak-ng and flite across voices.

Each synthetic "speaker" is one engine/voice/variant with its own pitch and speaking rate; it
says every phrase `takes` times with a little rate jitter. Output: WAVs plus manifest.jsonl
(audio, text, speaker), readable by `data.read_manifest`, written atomically.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from edgevoice.audio import read_wav, resample, write_wav
from edgevoice.build.accent import Accent, draw_accent
from edgevoice.build.data import encode_text, normalise_text
from edgevoice.build.recipe import SynthSettings
from edgevoice.errors import AudioError, BuildError

ENGINES = ("espeak-ng", "flite")
INSTALL_HINT = "install it with `sudo apt-get install espeak-ng flite` (README: edgevoice-build)"


@dataclass(frozen=True)
class Voice:
    engine: str
    voice: str
    rate: float  # speaking-rate factor, 1 = engine default
    pitch: float  # pitch factor, 1 = engine default
    accent: Accent | None = None  # second-language habits (espeak-ng only)

    @property
    def name(self) -> str:
        name = f"{self.engine}-{self.voice}-r{self.rate:.2f}-p{self.pitch:.2f}".replace("+", "_")
        return f"{name}-{self.accent.name}" if self.accent else name


def check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise BuildError(f"synth engine {engine!r} unknown (known: {', '.join(ENGINES)})")
    exe = shutil.which(engine)
    if exe is None:
        raise BuildError(f"synthetic speech needs {engine}, which is not installed: {INSTALL_HINT}")
    return exe


def espeak_data_dir() -> Path | None:
    """espeak-ng's data folder, as `espeak-ng --version` reports it."""
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True,
                             timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    _, sep, rest = out.partition("Data at:")
    return Path(rest.strip()) if sep else None


def check_espeak_voices(s: SynthSettings) -> None:
    """Every configured espeak-ng variant exists and every voice takes variants.

    espeak-ng ignores an unknown variant without a word, and some voice names (en-gb on Debian,
    an MBROLA alias) ignore every variant: both would quietly collapse many synthetic speakers
    into one. Checked before anything is rendered (about a second).
    """
    if "espeak-ng" not in s.engines or not s.espeak_variants or not s.espeak_voices:
        return
    data = espeak_data_dir()
    variants_dir = data / "voices" / "!v" if data is not None else None
    if variants_dir is not None and variants_dir.is_dir():
        known = {p.name for p in variants_dir.iterdir()}
        unknown = [v for v in s.espeak_variants if v not in known]
        where = f"not found in {variants_dir}"
    else:  # data folder unknown: a variant that changes nothing is as good as unknown
        plain = _espeak_pcm(s.espeak_voices[0], "one")
        unknown = [v for v in s.espeak_variants
                   if _espeak_pcm(f"{s.espeak_voices[0]}+{v}", "one") == plain]
        where = f"make no difference to voice {s.espeak_voices[0]!r}"
    if unknown:
        raise BuildError(
            f"recipe synth.espeak_variants: {', '.join(unknown)} {where} (espeak-ng ignores "
            "unknown variants silently); `espeak-ng --voices=variant` lists them")
    probe = s.espeak_variants[0]
    for voice in s.espeak_voices:
        if _espeak_pcm(voice, "one") == _espeak_pcm(f"{voice}+{probe}", "one"):
            raise BuildError(
                f"recipe synth.espeak_voices: espeak-ng voice {voice!r} ignores variants "
                f"({voice}+{probe} sounds exactly like {voice}); use another name for it, "
                "e.g. 'en' for British English instead of 'en-gb'")


def _espeak_pcm(voice: str, text: str) -> bytes:
    return _espeak(["-v", voice, "--stdout", text],
                   stuck=f"did not finish speaking {text!r} with voice {voice!r}",
                   failed=f"recipe synth.espeak_voices: espeak-ng cannot speak with voice "
                          f"{voice!r}")


def _espeak(args: list[str], *, stuck: str, failed: str) -> bytes:
    """espeak-ng's standard output for `args`; a hang or failure is a BuildError saying
    "espeak-ng <stuck> within 60 s" or "<failed>: <its last error line>"."""
    try:
        done = subprocess.run(["espeak-ng", *args], capture_output=True, timeout=60)
    except FileNotFoundError:
        raise BuildError(f"espeak-ng is not installed: {INSTALL_HINT}") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"espeak-ng {stuck} within 60 s") from None
    if done.returncode != 0 or not done.stdout.strip():
        msg = done.stderr.decode(errors="replace").strip().splitlines()
        raise BuildError(f"{failed}: {msg[-1] if msg else 'exit code ' + str(done.returncode)}")
    return done.stdout


def pick_voices(s: SynthSettings) -> list[Voice]:
    """`s.speakers` random voices, spread over the engines, reproducible from `s.seed`."""
    rng = np.random.default_rng(s.seed)
    pools: dict[str, list[str]] = {
        "espeak-ng": [f"{v}+{var}" for v in s.espeak_voices for var in s.espeak_variants]
        or list(s.espeak_voices),
        "flite": list(s.flite_voices),
    }
    engines = [e for e in s.engines if pools.get(e)]
    voices = []
    # Accents come from their own generator, so the voices, rates and pitches drawn for a
    # recipe do not change when only its accent settings do.
    accents = np.random.default_rng([s.seed, 1])
    for k in range(s.speakers):
        engine = engines[k % len(engines)]
        pool = pools[engine]
        accent = None
        if engine == "espeak-ng" and accents.random() < s.accented:
            accent = draw_accent(accents, s.accent_strength)
        voices.append(Voice(engine, pool[int(rng.integers(len(pool)))],
                            float(rng.uniform(*s.rates)), float(rng.uniform(*s.pitches)),
                            accent))
    return voices


@lru_cache(maxsize=4096)
def espeak_phonemes(voice: str, text: str) -> str:
    """espeak-ng's phonemes for `text` (its mnemonics, as `[[...]]` input takes them)."""
    out = _espeak(["-q", "-x", "-v", voice, text],
                  stuck=f"did not transcribe {text!r} with voice {voice!r}",
                  failed=f"espeak-ng cannot transcribe {text!r} with voice {voice}")
    # A word another language's rules cover comes back wrapped in "(en)...(fr)" switches,
    # which phoneme input would read as phonemes.
    return " ".join(re.sub(r"\([a-z-]+\)", "", out.decode(errors="replace")).split())


def render(voice: Voice, text: str, out: Path, rate_jitter: float = 1.0) -> None:
    """Speak `text` with `voice` into the WAV file `out`."""
    rate = voice.rate * rate_jitter
    if voice.engine == "espeak-ng":
        if voice.accent is not None:
            text = f"[[{voice.accent.apply(espeak_phonemes(voice.voice, text))}]]"
        cmd = ["espeak-ng", "-v", voice.voice, "-s", str(int(175 * rate)),
               "-p", str(int(min(max(50 * voice.pitch, 0), 99))), "-w", str(out), text]
    else:
        cmd = ["flite", "-voice", voice.voice, "--setf", f"duration_stretch={1 / rate:.3f}",
               "--setf", f"int_f0_target_mean={int(110 * voice.pitch)}", "-t", text,
               "-o", str(out)]
    try:
        done = subprocess.run(cmd, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise BuildError(f"{voice.engine} is not installed: {INSTALL_HINT}") from None
    if done.returncode != 0 or not out.exists():
        msg = (done.stderr or done.stdout).strip().splitlines()
        raise BuildError(f"{voice.engine} failed on {text!r} with voice {voice.voice}: "
                         f"{msg[-1] if msg else 'exit code ' + str(done.returncode)}")


def synthesize(s: SynthSettings, out_dir: str | Path, phrases: tuple[str, ...] | None = None,
               jobs: int = 2) -> Path:
    """Render every phrase with every voice into `out_dir`; returns the manifest path."""
    out_dir = Path(out_dir)
    texts = [normalise_text(p) for p in (phrases or s.phrases)]
    for i, t in enumerate(texts):
        encode_text(t, f"synth phrase {i + 1}")
    for engine in s.engines:
        check_engine(engine)
    check_espeak_voices(s)
    voices = pick_voices(s)
    rng = np.random.default_rng(s.seed + 1)
    jobs_list = [(v, t, j, float(rng.uniform(0.9, 1.1)))
                 for v in voices for t in texts for j in range(s.takes)]
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)
        def one(job: tuple[Voice, str, int, float]) -> dict:
            v, text, take, jitter = job
            name = f"{v.name}_{text.replace(' ', '-')}_{take}.wav"
            render(v, text, tmp / name, jitter)
            _band_limit(tmp / name, s.band_limit)
            return {"audio": name, "text": text, "speaker": v.name}

        with ThreadPoolExecutor(max(jobs, 1)) as pool:
            rows = list(pool.map(one, jobs_list))
        (tmp / "manifest.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        tmp.rename(out_dir)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out_dir / "manifest.jsonl"


def _band_limit(path: Path, rate: int) -> None:
    """Resample to `rate` in place so synthetic speech has the recordings' bandwidth."""
    try:
        x, info = read_wav(path)
    except AudioError as exc:
        raise BuildError(f"synthesized audio unusable: {exc}") from None
    if rate and info.sample_rate != rate:
        x = resample(x, info.sample_rate, rate)
    peak = float(np.max(np.abs(x))) if len(x) else 0.0
    write_wav(path, x * (0.7 / peak) if peak > 0 else x, rate or info.sample_rate)
