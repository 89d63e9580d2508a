"""Recipes: one YAML file that says how to build a model, read into frozen dataclasses.

Unknown keys and wrong types are errors that name the file, line and YAML path, with a
"did you mean"; every problem is reported at once. Only `yaml.safe_load`-level constructs.
"""

from __future__ import annotations

import dataclasses
import difflib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgevoice.errors import BuildError
from edgevoice.training.data import DIGIT_WORDS

DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "digits.yaml"


@dataclass(frozen=True)
class DataSettings:
    fsdd: str = "../shared/data/fsdd"  # FSDD-style folder, relative to the working directory
    manifests: tuple[str, ...] = ()  # extra JSONL/CSV manifests (audio, text, speaker)
    test_speakers: tuple[str, ...] = ("nicolas",)  # held out for evaluation, never trained on
    p_synth: float = 0.3  # share of training utterances spoken by synthetic voices
    min_words: int = 1  # words per composed training utterance
    max_words: int = 7
    gap: tuple[float, float] = (0.03, 0.4)  # seconds of pause between words
    # Single words by many speakers, each with their own microphone and room: a Speech
    # Commands-style folder (words/<word>/<speaker id>_nohash_<n>.wav), "" = none. Words of
    # synth.phrases are learnt; the other words are negatives, speech that yields nothing.
    speech_commands: str = ""
    sc_heldout: float = 0.3  # share of its speakers held out for evaluation, drawn by id hash
    sc_test_speakers: tuple[str, ...] = ()  # more held-out speakers ("sc-<id>")
    p_clips: float = 0.0  # share of training utterances that are whole real clips (onsets,
                          # room and microphone as recorded) of a vocabulary word
    p_negative: float = 0.0  # share with no vocabulary word (other words, noise, clicks)
    p_context: float = 0.0  # share of composed utterances with another word before or after
    # Seconds of faint room noise before and after each whole clip, as the daemon's pre-roll
    # and hang-over frame an utterance ([0, 0] = the clip as it is).
    clip_edge: tuple[float, float] = (0.0, 0.0)
    noise_dir: str = ""  # noise recordings, for the "file:<name>" noise kinds


@dataclass(frozen=True)
class SynthSettings:
    enabled: bool = True
    phrases: tuple[str, ...] = DIGIT_WORDS  # what to render (words or whole phrases)
    engines: tuple[str, ...] = ("espeak-ng", "flite")
    # espeak-ng accents. Plain British English is "en": "en-gb" resolves to an MBROLA alias on
    # Debian and silently ignores the variant, so every en-gb+<variant> sounded the same.
    espeak_voices: tuple[str, ...] = ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029",
                                      "en-us-nyc", "en-gb-x-gbclan", "en-gb-x-gbcwmd")
    # espeak-ng variants: each sets its own formants, pitch range and voicing, i.e. a different
    # vocal tract. The novelty ones (robots, whisper, croak, demonic) are left out. (caleb sounds
    # exactly like klatt; it stays so that the shipped model's synthetic voices are reproduced.)
    espeak_variants: tuple[str, ...] = (
        "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
        "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Alicia", "Andrea", "Andy", "Annie",
        "Denis", "Diogo", "Gene", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael",
        "Mike", "Nguyen", "Storm", "adam", "antonio", "aunty", "belinda", "benjamin", "boris",
        "caleb", "david", "ed", "edward", "grandma", "grandpa", "gustave", "iven", "john",
        "linda", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro",
        "quincy", "rob", "robert", "sandro", "shelby", "steph", "travis", "victor")
    flite_voices: tuple[str, ...] = ("kal", "awb", "rms", "slt", "kal16")
    # Festival voices (Debian: festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts).
    festival_voices: tuple[str, ...] = ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts")
    # MBROLA voices, spoken through espeak-ng's mb-<name> voices (Debian non-free: mbrola-us1,
    # ...); "de4-en" and the like are English with a foreign voice (mbrola-de4).
    mbrola_voices: tuple[str, ...] = ("us1", "us2", "us3", "en1")
    pico_voices: tuple[str, ...] = ("en-US", "en-GB")  # SVOX Pico (Debian non-free)
    speakers: int = 40  # synthetic "speakers": random voice/variant/pitch combinations
    # Share of espeak-ng speakers given a second-language accent (edgevoice.training.accent), and
    # how strong: the chance that each vowel moves and each consonant habit is taken.
    accented: float = 0.0
    accent_strength: float = 0.35
    rates: tuple[float, float] = (0.8, 1.25)  # speaking-rate factor range
    pitches: tuple[float, float] = (0.7, 1.4)  # pitch factor range
    takes: int = 2  # renderings of each phrase per synthetic speaker
    band_limit: int = 8000  # render at this rate (like the recordings), 0 = engine's own
    seed: int = 7


@dataclass(frozen=True)
class AugmentSettings:
    p_speed: float = 0.8
    speed: tuple[float, float] = (0.85, 1.2)
    p_tempo: float = 0.3
    tempo: tuple[float, float] = (0.8, 1.25)
    p_pitch: float = 0.3
    pitch: tuple[float, float] = (-3.0, 3.0)  # semitones
    p_tilt: float = 0.5
    tilt: tuple[float, float] = (-0.7, 0.9)
    p_reverb: float = 0.3
    rt60: tuple[float, float] = (0.15, 0.6)  # seconds
    p_noise: float = 0.6
    # Generated kinds (white, pink, brown, babble, impulsive, music) and recordings in
    # data.noise_dir as "file:<name>"; list one twice to use it more.
    noise_kinds: tuple[str, ...] = ("white", "pink", "brown", "babble")
    snr: tuple[float, float] = (0.0, 30.0)  # dB
    # A click, breath, lip smack or mic bump just before the speech, as browser recordings
    # have (level relative to the speech peak, dB): the model must not hear a digit in it.
    p_onset: float = 0.0
    onset_db: tuple[float, float] = (-30.0, -6.0)
    # Microphone and channel colouring after the room: band limits, EQ, clipping, codecs.
    p_channel: float = 0.0
    gain_db: tuple[float, float] = (-20.0, 6.0)
    # The daemon's denoiser the model will run behind (its YAML `denoise:` block, e.g.
    # {name: webrtc, noise_suppression: 2}): training and evaluation audio go through it too.
    denoise: dict[str, Any] = field(default_factory=lambda: {"name": "none"})
    p_warp: float = 0.0  # vocal-tract-length warp of the mel axis (VTLP), per utterance
    warp: tuple[float, float] = (0.88, 1.12)  # frequency factor: > 1 moves formants up
    p_specaugment: float = 0.8
    freq_masks: int = 2
    freq_width: int = 7  # bands
    time_masks: int = 2
    time_width: int = 10  # frames


@dataclass(frozen=True)
class FrontendSettings:
    """LogMelSettings without the normalisation, which `prepare` computes from training data."""

    sample_rate: int = 16000
    win_ms: float = 25.0
    hop_ms: float = 10.0
    n_fft: int = 512
    n_mels: int = 40
    fmin: float = 20.0
    fmax: float = 4000.0
    preemphasis: float = 0.97
    floor: float = 1e-6


@dataclass(frozen=True)
class ModelSettings:
    arch: str = "dscnn"
    channels: int = 64
    first_kernel: int = 5  # stride-2 input layer, input frames
    kernel: int = 5  # depthwise kernel of each block, output frames
    dilations: tuple[int, ...] = (1, 2, 4, 1, 2, 4)
    residual: bool = True
    dropout: float = 0.1
    chunk: int = 32  # new input frames per streaming call (window - context)


@dataclass(frozen=True)
class TrainSettings:
    steps: int = 4000
    batch: int = 32
    learning_rate: float = 3e-3
    warmup: int = 200
    workers: int = 2  # processes composing and augmenting batches next to training
    threads: int = 1  # TensorFlow threads (0 = all cores); leave cores to the workers
    seed: int = 1
    # Keep an exponential moving average of the weights (this decay per step) and export it
    # instead of the last step's weights; 0 = off. Averages out the noise of the last steps.
    ema: float = 0.0


@dataclass(frozen=True)
class PruneSettings:
    enabled: bool = True
    sparsity: float = 0.5  # final share of zero weights in pointwise convolutions and Dense
    steps: int = 800  # fine-tuning steps; sparsity ramps up over the first 2/3
    frequency: int = 50
    learning_rate: float = 5e-4
    # 0: fine-tune the trained model (steps, learning_rate above). Between 0 and 1: prune
    # during training instead: branch from the training run at this share of train.steps
    # and follow its schedule (learning rate, batches, weight averaging) to the end, the
    # sparsity ramping up over the first half of the branch; steps and learning_rate unused.
    branch: float = 0.0
    # Weight of distillation from the unpruned model: the pruned one also learns its frame
    # posteriors (KL divergence), not only the transcripts; 0 = off.
    distill: float = 0.0


@dataclass(frozen=True)
class QuantizeSettings:
    calibration: int = 200  # utterances for the representative dataset (through the frontend)
    # One weight scale per output channel (TFLite's default) or one per tensor: per-tensor
    # saves 12 bytes per channel of every layer (about 21 KiB for the digits model) for a
    # measured +0.4-0.9 WER points, room for a wider model under the same size budget.
    per_channel: bool = True


@dataclass(frozen=True)
class EvaluateSettings:
    utterances: int = 200  # composed held-out digit strings
    min_words: int = 3
    max_words: int = 7
    seed: int = 1234
    snrs: tuple[float, ...] = (5.0, 10.0, 15.0)
    noise_kinds: tuple[str, ...] = ("pink", "babble")  # alternating per utterance
    # Isolated words of the held-out Speech Commands speakers (data.speech_commands): clean,
    # reverberant, and each noise kind at each SNR; babble is made of held-out speakers.
    word_snrs: tuple[float, ...] = (0.0, 5.0, 10.0, 15.0, 20.0)
    word_noise_kinds: tuple[str, ...] = ("pink", "impulsive", "babble")
    # Noise kinds kept out of training (never in augment.noise_kinds), reported on their own.
    heldout_noise_kinds: tuple[str, ...] = ()
    noise_clips: int = 60  # one-second noise-only clips for the false-output rate
    # Choose the bundle decoder's reject_threshold on the held-out words and negatives: the
    # lowest that keeps false outputs at most max_false_output; the card shows the trade-off.
    calibrate_reject: bool = False
    max_false_output: float = 0.05


@dataclass(frozen=True)
class ExportSettings:
    name: str = "digits"
    version: str = "1.0"
    out: str = "edgevoice/models/digits"
    description: str = "connected spoken digits (zero to nine), English"
    decoder: dict[str, Any] = field(default_factory=lambda: {"name": "greedy"})
    lm_order: int = 3  # word n-gram order when edgevoice.training.lm is available, 0 = no LM


@dataclass(frozen=True)
class Recipe:
    name: str = "digits"
    work_dir: str = "runs/digits"
    data: DataSettings = field(default_factory=DataSettings)
    synth: SynthSettings = field(default_factory=SynthSettings)
    augment: AugmentSettings = field(default_factory=AugmentSettings)
    frontend: FrontendSettings = field(default_factory=FrontendSettings)
    model: ModelSettings = field(default_factory=ModelSettings)
    train: TrainSettings = field(default_factory=TrainSettings)
    prune: PruneSettings = field(default_factory=PruneSettings)
    quantize: QuantizeSettings = field(default_factory=QuantizeSettings)
    evaluate: EvaluateSettings = field(default_factory=EvaluateSettings)
    export: ExportSettings = field(default_factory=ExportSettings)

    def to_dict(self) -> dict[str, Any]:
        return _plain(dataclasses.asdict(self))


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def load_recipe(path: str | Path, overrides: dict[str, Any] | None = None) -> Recipe:
    """Read and validate a recipe file; `overrides` maps dotted paths to values (CLI flags)."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise BuildError(f"recipe {path}: cannot read ({exc.strerror or exc})") from None
    try:
        raw = yaml.safe_load(text) or {}
        lines = _line_index(yaml.compose(text, Loader=yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise BuildError(f"recipe {path}: not valid YAML ({exc})".replace("\n", " ")) from None
    if not isinstance(raw, dict):
        raise BuildError(f"recipe {path}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    problems: list[str] = []
    recipe = _build(Recipe, raw, "", problems, lines)
    problems += _check_noise_kinds(recipe, lines)
    problems += _check_heldout_kinds(recipe, lines)
    problems += _check_shares(recipe, lines)
    if problems:
        where = f"recipe {path}"
        if len(problems) == 1:
            raise BuildError(f"{where}: {problems[0]}")
        raise BuildError(f"{where}: {len(problems)} problems: " + "; ".join(problems))
    return recipe


def _check_noise_kinds(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """Noise kinds must be known: an unknown name would silently become some other noise."""
    from edgevoice.training.augment import FILE_KIND, NOISE_KINDS

    problems = []
    a, e = recipe.augment, recipe.evaluate
    for path, kinds, used, off in (
            ("augment.noise_kinds", a.noise_kinds, a.p_noise > 0, "augment.p_noise: 0"),
            ("evaluate.noise_kinds", e.noise_kinds, bool(e.snrs), "evaluate.snrs: []"),
            ("evaluate.word_noise_kinds", e.word_noise_kinds, False, ""),
            ("evaluate.heldout_noise_kinds", e.heldout_noise_kinds, False, "")):
        unknown = [k for k in kinds if k not in NOISE_KINDS
                   and not (k.startswith(FILE_KIND) and len(k) > len(FILE_KIND))]
        if unknown:
            problems.append(f"{_at(path, lines)}: unknown noise kind(s) {', '.join(unknown)} "
                            f"(known: {', '.join(NOISE_KINDS)}, or file:<name> for a "
                            "recording in data.noise_dir; list one twice to use it more)")
        elif not kinds and used:
            problems.append(f"{_at(path, lines)}: needs at least one noise kind (or {off})")
    return problems


def _check_heldout_kinds(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """A noise kind held out from training must not be trained on: its figures would lie."""
    both = [k for k in recipe.evaluate.heldout_noise_kinds if k in recipe.augment.noise_kinds]
    if not both:
        return []
    return [f"{_at('evaluate.heldout_noise_kinds', lines)}: {', '.join(both)} held out and "
            f"used in training at once ({_at('augment.noise_kinds', lines)}); take it out of "
            "one of them"]


def _check_shares(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """Probabilities and shares (p_*, accented, accent_strength) lie in [0, 1]; so do the
    averaging decay and distillation weight in theirs."""
    problems = []
    for section in ("data", "synth", "augment", "evaluate"):
        values = dataclasses.asdict(getattr(recipe, section))
        for key, value in values.items():
            share = key.startswith("p_") or key in ("accented", "accent_strength", "sc_heldout",
                                                    "max_false_output")
            if share and not 0.0 <= value <= 1.0:
                problems.append(f"{_at(f'{section}.{key}', lines)}: {value} is not between 0 "
                                "and 1")
    d = recipe.data
    if d.p_clips + d.p_negative > 1.0:
        problems.append(f"{_at('data.p_clips', lines)}: p_clips {d.p_clips} + p_negative "
                        f"{d.p_negative} is more than 1")
    if not 0.0 <= recipe.train.ema < 1.0:
        problems.append(f"{_at('train.ema', lines)}: {recipe.train.ema} must be at least 0 and "
                        "below 1 (the averaging decay per step; 0 = off)")
    if not 0.0 <= recipe.prune.branch < 1.0:
        problems.append(f"{_at('prune.branch', lines)}: {recipe.prune.branch} must be at least "
                        "0 and below 1 (the share of train.steps to branch at; 0 = off)")
    if recipe.prune.distill < 0:
        problems.append(f"{_at('prune.distill', lines)}: {recipe.prune.distill} must not be "
                        "negative")
    return problems


def _line_index(node: yaml.Node | None, prefix: str = "") -> dict[str, int]:
    """YAML path -> 1-based line number, for messages."""
    out: dict[str, int] = {}
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            p = f"{prefix}.{key.value}" if prefix else str(key.value)
            out[p] = key.start_mark.line + 1
            out.update(_line_index(value, p))
    return out


def _at(path: str, lines: dict[str, int]) -> str:
    return f"line {lines[path]}: {path}" if path in lines else path


def _build(cls: type, raw: Any, prefix: str, problems: list[str], lines: dict[str, int]) -> Any:
    if not isinstance(raw, dict):
        problems.append(f"{_at(prefix, lines)}: expected a mapping")
        return cls()
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    kwargs = {}
    for key, value in raw.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if key not in names:
            close = difflib.get_close_matches(str(key), names, n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f" (known: {', '.join(names)})"
            problems.append(f"{_at(path, lines)}: unknown key{hint}")
            continue
        kind = hints[key]
        if isinstance(kind, type) and dataclasses.is_dataclass(kind):
            kwargs[key] = _build(kind, value, path, problems, lines)
        else:
            ok, converted = _convert(kind, value)
            if ok:
                kwargs[key] = converted
            else:
                problems.append(f"{_at(path, lines)}: expected {_describe(kind)}, got {value!r}")
    return cls(**kwargs)


def _convert(kind: Any, value: Any) -> tuple[bool, Any]:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if kind is bool:
        return isinstance(value, bool), value
    if kind is int:
        return isinstance(value, int) and not isinstance(value, bool), value
    if kind is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return ok, float(value) if ok else value
    if kind is str:
        return isinstance(value, (str, int, float)) and not isinstance(value, bool), str(value)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            value = [value] if args and args[-1] is Ellipsis else value
            if not isinstance(value, list):
                return False, value
        items = args[:1] * len(value) if args[-1] is Ellipsis else args
        if len(items) != len(value):
            return False, value
        out = [_convert(k, v) for k, v in zip(items, value, strict=True)]
        return all(ok for ok, _ in out), tuple(v for _, v in out)
    if origin is dict or kind is dict:
        return isinstance(value, dict), value
    if origin in (typing.Union, types.UnionType):
        return True, value
    return True, value


def _describe(kind: Any) -> str:
    origin, args = typing.get_origin(kind), typing.get_args(kind)
    if origin is tuple:
        if args and args[-1] is Ellipsis:
            return f"a list of {args[0].__name__}"
        return f"a list of {len(args)} numbers"
    if origin is dict:
        return "a mapping"
    return getattr(kind, "__name__", str(kind))
