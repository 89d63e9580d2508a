"""Synthetic speech for a vocabulary or phrase list, across Debian's speech engines and voices.

Each synthetic "speaker" is one engine/voice/variant with its own pitch and speaking rate; it
says every phrase `takes` times with a little rate jitter. Engines: espeak-ng, flite, festival
(text2wave), MBROLA (through espeak-ng's mb-* voices) and SVOX Pico (pico2wave). Output: WAVs
plus manifest.jsonl (audio, text, speaker), readable by `data.read_manifest`, written atomically.
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
from edgevoice.errors import AudioError, BuildError
from edgevoice.training.accent import Accent, draw_accent
from edgevoice.training.data import encode_text
from edgevoice.training.lm import expand_phrases
from edgevoice.training.recipe import SynthSettings

# A fresh Debian lists only its main component; mbrola is in contrib, its voices and pico2wave in
# non-free.
NON_FREE = (" (from Debian's contrib and non-free: add them to the Components in "
            "/etc/apt/sources.list.d/debian.sources and `sudo apt-get update`)")


@dataclass(frozen=True)
class Engine:
    programs: tuple[str, ...]  # what it runs
    packages: str  # the Debian packages that install them
    where: str = ""  # where Debian keeps them, when not in its main component


ENGINES = {
    "espeak-ng": Engine(("espeak-ng",), "espeak-ng"),
    "flite": Engine(("flite",), "flite"),
    "festival": Engine(("text2wave", "festival"), "festival"),
    "mbrola": Engine(("espeak-ng", "mbrola"), "espeak-ng mbrola", NON_FREE),
    "pico": Engine(("pico2wave",), "libttspico-utils", NON_FREE),
}
FESTIVAL_PACKAGES = {"kal_diphone": "festvox-kallpc16k", "ked_diphone": "festvox-kdlpc16k",
                     "cmu_us_slt_arctic_hts": "festvox-us-slt-hts"}
PICO_VOICES = ("en-US", "en-GB", "de-DE", "es-ES", "fr-FR", "it-IT")  # built into pico2wave
MBROLA_DIR = Path("/usr/share/mbrola")  # where espeak-ng looks for MBROLA voices on Linux


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


def install_hint(engine: str) -> str:
    e = ENGINES[engine]
    return f"install it with `sudo apt-get install {e.packages}`{e.where}"


def check_engine(engine: str) -> None:
    """`engine` is known and its programs are installed, else one line saying what to install."""
    if engine not in ENGINES:
        raise BuildError(f"synth engine {engine!r} unknown (known: {', '.join(ENGINES)})")
    missing = [p for p in ENGINES[engine].programs if shutil.which(p) is None]
    if missing:
        raise BuildError(f"synthetic speech needs {engine}, which is not installed "
                         f"({', '.join(missing)} not found): {install_hint(engine)}")


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
        raise BuildError(f"espeak-ng is not installed: {install_hint('espeak-ng')}") from None
    except subprocess.TimeoutExpired:
        raise BuildError(f"espeak-ng {stuck} within 60 s") from None
    if done.returncode != 0 or not done.stdout.strip():
        msg = done.stderr.decode(errors="replace").strip().splitlines()
        raise BuildError(f"{failed}: {msg[-1] if msg else 'exit code ' + str(done.returncode)}")
    return done.stdout


def check_voices(s: SynthSettings) -> None:
    """Every configured festival, MBROLA and pico voice is installed and speaks, else one line
    saying what to install. Checked before anything is rendered, by saying "one" with each
    festival and MBROLA voice (festival: about 0.3 s a voice)."""
    if "pico" in s.engines:
        unknown = [v for v in s.pico_voices if v not in PICO_VOICES]
        if unknown:
            raise BuildError(f"recipe synth.pico_voices: {', '.join(unknown)} unknown to pico2wave "
                             f"(it has {', '.join(PICO_VOICES)})")
    if "mbrola" in s.engines:
        missing = [v for v in s.mbrola_voices if not _mbrola_installed(v)]
        if missing:
            packages = " ".join(sorted({f"mbrola-{v.split('-')[0]}" for v in missing}))
            raise BuildError(f"recipe synth.mbrola_voices: {', '.join(missing)} not installed: "
                             f"install with `sudo apt-get install {packages}`{NON_FREE}")
    with tempfile.TemporaryDirectory() as tmp:
        for engine, voices in (("festival", s.festival_voices), ("mbrola", s.mbrola_voices)):
            if engine not in s.engines:
                continue
            failed: dict[str, str] = {}
            for v in voices:
                try:
                    render(Voice(engine, v, 1.0, 1.0), "one", Path(tmp) / f"{engine}-{v}.wav")
                except BuildError as exc:
                    failed[v] = str(exc)
            if failed:
                raise BuildError(
                    f"recipe synth.{engine}_voices: {engine} cannot speak with "
                    f"{', '.join(map(repr, failed))} ({next(iter(failed.values()))}): "
                    f"{_voices_hint(engine, list(failed))}")


def _mbrola_installed(voice: str) -> bool:
    """The MBROLA database of `voice` ("us1", or "de4" for "de4-en") is where espeak-ng looks."""
    db = voice.split("-")[0]
    return any(p.is_file() for p in (MBROLA_DIR / db, MBROLA_DIR / db / db,
                                     MBROLA_DIR / "voices" / db))


def _voices_hint(engine: str, voices: list[str]) -> str:
    """What to do about festival or MBROLA `voices` that do not speak."""
    if engine == "mbrola":
        return "`espeak-ng --voices=mb` lists the MBROLA voices espeak-ng speaks (mb-<name>)"
    packages = [FESTIVAL_PACKAGES[v] for v in voices if v in FESTIVAL_PACKAGES]
    fix = f"install with `sudo apt-get install {' '.join(packages)}`; " if packages else ""
    return fix + "`apt-cache search festvox` lists festival's voices"


def pick_voices(s: SynthSettings) -> list[Voice]:
    """`s.speakers` random voices, spread over the engines, reproducible from `s.seed`."""
    rng = np.random.default_rng(s.seed)
    pools: dict[str, list[str]] = {
        "espeak-ng": [f"{v}+{var}" for v in s.espeak_voices for var in s.espeak_variants]
        or list(s.espeak_voices),
        "flite": list(s.flite_voices),
        "festival": list(s.festival_voices),
        "mbrola": list(s.mbrola_voices),
        "pico": list(s.pico_voices),
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
    stdin = None
    if voice.engine in ("espeak-ng", "mbrola"):
        name = voice.voice if voice.engine == "espeak-ng" else f"mb-{voice.voice}"
        if voice.accent is not None:
            text = f"[[{voice.accent.apply(espeak_phonemes(name, text))}]]"
        cmd = ["espeak-ng", "-v", name, "-s", str(int(175 * rate)),
               "-p", str(int(min(max(50 * voice.pitch, 0), 99))), "-w", str(out), text]
    elif voice.engine == "flite":
        cmd = ["flite", "-voice", voice.voice, "--setf", f"duration_stretch={1 / rate:.3f}",
               "--setf", f"int_f0_target_mean={int(110 * voice.pitch)}", "-t", text,
               "-o", str(out)]
    elif voice.engine == "festival":
        cmd = ["text2wave", "-o", str(out)]
        for expr in _festival_settings(voice.voice, rate, voice.pitch):
            cmd += ["-eval", expr]
        stdin = text
    else:  # pico: speed and pitch in percent, within its limits
        speed, pitch = min(max(int(100 * rate), 20), 500), min(max(int(100 * voice.pitch), 50), 200)
        cmd = ["pico2wave", "-l", voice.voice, "-w", str(out),
               f"<speed level='{speed}'><pitch level='{pitch}'>{text}</pitch></speed>"]
    try:
        done = subprocess.run(cmd, input=stdin, capture_output=True, text=True, timeout=60)
    except FileNotFoundError:
        raise BuildError(f"{voice.engine} is not installed: {install_hint(voice.engine)}") from None
    if done.returncode != 0 or not out.exists():
        msg = (done.stderr or done.stdout).strip().splitlines()
        raise BuildError(f"{voice.engine} failed on {text!r} with voice {voice.voice}: "
                         f"{msg[-1] if msg else 'exit code ' + str(done.returncode)}")
    if voice.engine == "festival" and _is_hts(voice.voice):
        _play_faster(out, voice.pitch)


def _is_hts(festival_voice: str) -> bool:
    return festival_voice.endswith("_hts")  # Debian's HTS voices say so in their names


def _festival_settings(voice: str, rate: float, pitch: float) -> list[str]:
    """Scheme that selects `voice` at `rate` and `pitch` (factors of its defaults)."""
    if _is_hts(voice):
        # Festival's hts_engine module takes only the model and the speed from
        # hts_engine_params, so the pitch is moved afterwards by playing the wave faster
        # (_play_faster), which shortens it too: ask for it that much slower.
        return [f"(voice_{voice})", "(set! hts_engine_params (cons (list \"-r\" "
                f"{rate / pitch:.4f}) hts_engine_params))"]
    # Diphone voices: their duration model's stretch, and the mean and range of the F0 targets.
    return [f"(voice_{voice})",
            f"(Parameter.set 'Duration_Stretch (/ (or (Parameter.get 'Duration_Stretch) 1) "
            f"{rate:.4f}))",
            "(set! int_lr_params (mapcar (lambda (p) (if (member (car p) '(target_f0_mean "
            f"target_f0_std)) (list (car p) (* {pitch:.4f} (cadr p))) p)) int_lr_params))"]


def _play_faster(path: Path, factor: float) -> None:
    """Relabel `path`'s sample rate: pitch, formants and speed all move by `factor`."""
    if factor == 1.0:
        return
    try:
        x, info = read_wav(path)
    except AudioError as exc:
        raise BuildError(f"synthesized audio unusable: {exc}") from None
    write_wav(path, x, round(info.sample_rate * factor))


def synthesize(s: SynthSettings, out_dir: str | Path, phrases: tuple[str, ...] | None = None,
               jobs: int = 2) -> Path:
    """Render every phrase (grammar lines expanded) with every voice into `out_dir`; returns
    the manifest path."""
    out_dir = Path(out_dir)
    texts = expand_phrases(phrases or s.phrases, "--phrases" if phrases else "synth.phrases")
    for i, t in enumerate(texts):
        encode_text(t, f"synth phrase {i + 1}")
    for engine in s.engines:
        check_engine(engine)
    check_espeak_voices(s)
    check_voices(s)
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
