"""Recipes: one YAML file that says how to build a model, read into frozen dataclasses.

`edgevoice.options.validate` reads it, as it does the daemon's settings: unknown keys, wrong
types and values out of range are errors that name the file, line and YAML path, with a "did
you mean"; every problem is reported at once. Checks across sections follow in the same form.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from edgevoice.errors import BuildError, LMError, problems_message
from edgevoice.options import at, load_yaml, opt, validate
from edgevoice.training.data import DIGIT_WORDS, encode_text, normalise_text

DEFAULT_RECIPE = Path(__file__).parent / "recipes" / "digits.yaml"
# Generated noise kinds (edgevoice.training.augment makes them); a recording in the recipe's
# data.noise_dir is the kind "file:<name>".
NOISE_KINDS = ("white", "pink", "brown", "babble", "impulsive", "music")
FILE_KIND = "file:"
# Every synthetic voice renders every phrase: a grammar that makes more is a mistake.
MAX_PHRASES = 1000
GRAMMAR_MARKS = str.maketrans("()[]|", "     ")
SNR_DB = {"min": -30, "max": 100}  # signal-to-noise ratios, dB


@dataclass(frozen=True)
class DataSettings:
    fsdd: str = opt("../shared/data/fsdd", "FSDD-style folder, relative to the working "
                    "directory")
    manifests: tuple[str, ...] = opt((), "extra JSONL/CSV manifests (audio, text, speaker)")
    test_speakers: tuple[str, ...] = opt(("nicolas",), "held out for evaluation, never "
                                         "trained on")
    # For a vocabulary nobody has recorded yet. Unheard synthetic voices are still far
    # easier than real people: the card says so.
    synth_heldout: float = opt(0.0, "share of the synthetic voices held out for evaluation "
                               "(drawn by a hash of their names) when test_speakers is empty",
                               min=0, max=1)
    p_synth: float = opt(0.3, "share of training utterances spoken by synthetic voices",
                         min=0, max=1)
    min_words: int = opt(1, "words per composed training utterance, at least", min=1)
    max_words: int = opt(7, "words per composed training utterance, at most", min=1)
    gap: tuple[float, float] = opt((0.03, 0.4), "seconds of pause between words [low, high]",
                                   min=0)
    # Single words by many speakers, each with their own microphone and room. Words of
    # synth.phrases are learnt; the other words are negatives, speech that yields nothing
    # (a word inside a phrase, "on" of "turn on the light", is neither: it is left out).
    speech_commands: str = opt("", "Speech Commands-style folder (words/<word>/<speaker id>"
                               "_nohash_<n>.wav); '' = none")
    sc_heldout: float = opt(0.3, "share of its speakers held out for evaluation, drawn by id "
                            "hash", min=0, max=1)
    sc_test_speakers: tuple[str, ...] = opt((), 'more held-out speakers ("sc-<id>")')
    p_clips: float = opt(0.0, "share of training utterances that are whole real clips (onsets, "
                         "room and microphone as recorded) of a vocabulary word", min=0, max=1)
    p_negative: float = opt(0.0, "share with no vocabulary word (other words, noise, clicks)",
                            min=0, max=1)
    p_context: float = opt(0.0, "share of composed utterances with another word before or "
                           "after", min=0, max=1)
    # As the daemon's pre-roll and hang-over frame an utterance.
    clip_edge: tuple[float, float] = opt((0.0, 0.0), "seconds of faint room noise [before, "
                                         "after] each whole clip; [0, 0] = the clip as it is",
                                         min=0)
    noise_dir: str = opt("", 'noise recordings, for the "file:<name>" noise kinds')


@dataclass(frozen=True)
class SynthSettings:
    enabled: bool = opt(True, "render synthetic speakers")
    phrases: tuple[str, ...] = opt(DIGIT_WORDS, "the vocabulary: words or whole phrases; "
                                   "an entry may be a grammar line, (a|b) alternatives and "
                                   "[optional] words, standing for every phrase it makes")
    engines: tuple[str, ...] = opt(("espeak-ng", "flite"), "speech engines to use")
    # Plain British English is "en": "en-gb" resolves to an MBROLA alias on Debian and
    # silently ignores the variant, so every en-gb+<variant> sounded the same.
    espeak_voices: tuple[str, ...] = opt(
        ("en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-us-nyc", "en-gb-x-gbclan",
         "en-gb-x-gbcwmd"), "espeak-ng accents")
    # Each variant sets its own formants, pitch range and voicing, i.e. a different vocal
    # tract. The novelty ones (robots, whisper, croak, demonic) are left out. (caleb sounds
    # exactly like klatt; it stays so that the shipped model's synthetic voices are reproduced.)
    espeak_variants: tuple[str, ...] = opt((
        "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "f1", "f2", "f3", "f4", "f5",
        "klatt", "klatt2", "klatt3", "klatt4", "Alex", "Alicia", "Andrea", "Andy", "Annie",
        "Denis", "Diogo", "Gene", "Henrique", "Hugo", "Jacky", "Lee", "Marco", "Mario", "Michael",
        "Mike", "Nguyen", "Storm", "adam", "antonio", "aunty", "belinda", "benjamin", "boris",
        "caleb", "david", "ed", "edward", "grandma", "grandpa", "gustave", "iven", "john",
        "linda", "marcelo", "max", "michel", "miguel", "norbert", "pablo", "paul", "pedro",
        "quincy", "rob", "robert", "sandro", "shelby", "steph", "travis", "victor"),
        "espeak-ng variants")
    flite_voices: tuple[str, ...] = opt(("kal", "awb", "rms", "slt", "kal16"), "flite voices")
    festival_voices: tuple[str, ...] = opt(
        ("kal_diphone", "ked_diphone", "cmu_us_slt_arctic_hts"),
        "Festival voices (Debian: festvox-kallpc16k, festvox-kdlpc16k, festvox-us-slt-hts)")
    # Spoken through espeak-ng's mb-<name> voices (Debian non-free: mbrola-us1, ...).
    mbrola_voices: tuple[str, ...] = opt(("us1", "us2", "us3", "en1"), 'MBROLA voices; "de4-en" '
                                         "and the like are English with a foreign voice")
    pico_voices: tuple[str, ...] = opt(("en-US", "en-GB"), "SVOX Pico voices (Debian non-free)")
    speakers: int = opt(40, 'synthetic "speakers": random voice/variant/pitch combinations',
                        min=1)
    # See edgevoice.training.accent.
    accented: float = opt(0.0, "share of espeak-ng speakers given a second-language accent",
                          min=0, max=1)
    accent_strength: float = opt(0.35, "the chance that each vowel moves and each consonant "
                                 "habit is taken", min=0, max=1)
    rates: tuple[float, float] = opt((0.8, 1.25), "speaking-rate factor range", min=0.25, max=4)
    pitches: tuple[float, float] = opt((0.7, 1.4), "pitch factor range", min=0.25, max=4)
    takes: int = opt(2, "renderings of each phrase per synthetic speaker", min=1)
    band_limit: int = opt(8000, "render at this rate (like the recordings), Hz; 0 = engine's "
                          "own", min=0)
    seed: int = opt(7, "voice picks and renderings")

    def vocabulary(self) -> tuple[str, ...]:
        """Every phrase of `phrases`, grammar lines expanded, lower case, each once."""
        from edgevoice.training.lm import expand_phrases

        return expand_phrases(self.phrases, "synth.phrases")


@dataclass(frozen=True)
class AugmentSettings:
    p_speed: float = opt(0.8, "chance of a speed change (tempo, pitch and formants)", min=0,
                         max=1)
    speed: tuple[float, float] = opt((0.85, 1.2), "speed factor range", min=0.25, max=4)
    p_tempo: float = opt(0.3, "chance of a tempo change keeping pitch", min=0, max=1)
    tempo: tuple[float, float] = opt((0.8, 1.25), "tempo factor range", min=0.25, max=4)
    p_pitch: float = opt(0.3, "chance of a pitch shift keeping duration", min=0, max=1)
    pitch: tuple[float, float] = opt((-3.0, 3.0), "pitch shift range, semitones", min=-24,
                                     max=24)
    p_tilt: float = opt(0.5, "chance of a spectral tilt (a cheap microphone)", min=0, max=1)
    tilt: tuple[float, float] = opt((-0.7, 0.9), "tilt coefficient range (> 0 brightens)",
                                    min=-1, max=1)
    p_reverb: float = opt(0.3, "chance of a simulated room", min=0, max=1)
    rt60: tuple[float, float] = opt((0.15, 0.6), "reverberation time range, s", min=0, max=10)
    p_noise: float = opt(0.6, "chance of added noise", min=0, max=1)
    noise_kinds: tuple[str, ...] = opt(("white", "pink", "brown", "babble"), "generated kinds ("
                                       + ", ".join(NOISE_KINDS) + ') and recordings in '
                                       'data.noise_dir as "file:<name>"; list one twice to use '
                                       "it more")
    snr: tuple[float, float] = opt((0.0, 30.0), "signal-to-noise ratio range, dB", **SNR_DB)
    # Browser recordings have them: the model must not hear a digit in one.
    p_onset: float = opt(0.0, "chance of a click, breath, lip smack or mic bump just before "
                         "the speech", min=0, max=1)
    onset_db: tuple[float, float] = opt((-30.0, -6.0), "onset level range relative to the "
                                        "speech peak, dB")
    p_channel: float = opt(0.0, "chance of microphone and channel colouring after the room: "
                           "band limits, EQ, clipping, codecs", min=0, max=1)
    gain_db: tuple[float, float] = opt((-20.0, 6.0), "channel gain range, dB")
    # Training and evaluation audio go through it too.
    denoise: dict[str, Any] = opt({"name": "none"}, "the daemon's denoiser the model will run "
                                  "behind (its YAML `denoise:` block, e.g. {name: webrtc, "
                                  "noise_suppression: 2})")
    p_warp: float = opt(0.0, "chance of a vocal-tract-length warp of the mel axis (VTLP), per "
                        "utterance", min=0, max=1)
    warp: tuple[float, float] = opt((0.88, 1.12), "frequency factor range: > 1 moves formants "
                                    "up", min=0.5, max=2)
    p_specaugment: float = opt(0.8, "chance of SpecAugment masks", min=0, max=1)
    freq_masks: int = opt(2, "SpecAugment frequency masks", min=0)
    freq_width: int = opt(7, "widest frequency mask, bands", min=0)
    time_masks: int = opt(2, "SpecAugment time masks", min=0)
    time_width: int = opt(10, "widest time mask, frames", min=0)


@dataclass(frozen=True)
class FrontendSettings:
    """LogMelSettings without the normalisation, which `prepare` computes from training data."""

    sample_rate: int = opt(16000, "Hz", min=1000, max=192000)
    win_ms: float = opt(25.0, "analysis window length, ms", min=1, max=1000)
    hop_ms: float = opt(10.0, "frame shift, ms", min=1, max=1000)
    n_fft: int = opt(512, "FFT size, samples (>= window)", min=16)
    n_mels: int = opt(40, "mel bands", min=1)
    fmin: float = opt(20.0, "lowest band edge, Hz", min=0)
    fmax: float = opt(4000.0, "highest band edge, Hz (<= sample_rate / 2)", min=0)
    preemphasis: float = opt(0.97, "first-order high-pass coefficient, 0 disables", min=0,
                             max=1)
    floor: float = opt(1e-6, "added before log, avoids log(0) on digital silence", min=1e-12)
    # An experiment against speaker and channel colouring, kept only if paired seeds show it
    # helps (benchmarks/paired_seeds.py --b frontend.norm_window_s=2).
    norm_window_s: float = opt(0.0, "subtract each band's running mean over about this many "
                               "seconds of the utterance (a causal moving average); 0 = off",
                               min=0, max=30)


@dataclass(frozen=True)
class ModelSettings:
    arch: str = opt("dscnn", "architecture (registered by build plugins)")
    channels: int = opt(64, "channels of every block", min=1)
    first_kernel: int = opt(5, "stride-2 input layer kernel, input frames", min=1)
    kernel: int = opt(5, "depthwise kernel of each block, output frames", min=1)
    dilations: tuple[int, ...] = opt((1, 2, 4, 1, 2, 4), "one block per dilation", min=1)
    residual: bool = opt(True, "residual connections around blocks")
    dropout: float = opt(0.1, "share of activations dropped in training", min=0, max=0.9)
    chunk: int = opt(32, "new input frames per streaming call (window - context)", min=1)


@dataclass(frozen=True)
class TrainSettings:
    steps: int = opt(4000, "training steps", min=1)
    batch: int = opt(32, "utterances per step", min=1)
    learning_rate: float = opt(3e-3, "peak learning rate", min=0)
    warmup: int = opt(200, "steps of linear learning-rate warm-up", min=0)
    workers: int = opt(2, "processes composing and augmenting batches next to training",
                       min=0)
    threads: int = opt(1, "TensorFlow threads (0 = all cores); leave cores to the workers",
                       min=0)
    seed: int = opt(1, "initial weights and batches")
    # A bundle exported by edgevoice-build ships its float weights (float_weights.npz): a model
    # for new words starts from what the old one learnt (same tokens, so every layer fits when
    # the model section matches) and needs far fewer steps.
    init_from: str = opt("", "start from this bundle's float weights (a folder or "
                         "builtin:NAME; the layers whose shapes fit); '' = random weights")
    # Averages out the noise of the last steps. Below 1: checked with the other shares.
    ema: float = opt(0.0, "keep an exponential moving average of the weights (this decay per "
                     "step) and export it instead of the last step's weights; 0 = off", min=0)


@dataclass(frozen=True)
class PruneSettings:
    enabled: bool = opt(True, "prune the trained model")
    sparsity: float = opt(0.5, "final share of zero weights in pointwise convolutions and Dense",
                          min=0, max=0.99)
    steps: int = opt(800, "fine-tuning steps; sparsity ramps up over the first 2/3", min=1)
    frequency: int = opt(50, "steps between pruning mask updates", min=1)
    learning_rate: float = opt(5e-4, "fine-tuning learning rate", min=0)
    # Between 0 and 1, the branch follows the training run's schedule (learning rate,
    # batches, weight averaging) to the end, the sparsity ramping up over its first half.
    branch: float = opt(0.0, "0: fine-tune the trained model (steps, learning_rate above); "
                        "below 1: prune during training instead, branching at this share of "
                        "train.steps (steps and learning_rate unused)", min=0)
    distill: float = opt(0.0, "weight of distillation from the unpruned model: the pruned one "
                         "also learns its frame posteriors (KL divergence); 0 = off", min=0)


@dataclass(frozen=True)
class QuantizeSettings:
    calibration: int = opt(200, "utterances for the representative dataset (through the "
                           "frontend)", min=1)
    # Per-tensor saves 12 bytes per channel of every layer (about 21 KiB for the digits model)
    # for a measured +0.4-0.9 WER points, room for a wider model under the same size budget.
    per_channel: bool = opt(True, "one weight scale per output channel (TFLite's default) or "
                            "one per tensor")
    max_kib: int = opt(64, "size budget of the INT8 model, KiB: a bigger one is built but "
                       "warned about", min=1)


@dataclass(frozen=True)
class EvaluateSettings:
    utterances: int = opt(200, "composed held-out digit strings", min=1)
    min_words: int = opt(3, "words per held-out string, at least", min=1)
    max_words: int = opt(7, "words per held-out string, at most", min=1)
    seed: int = opt(1234, "held-out strings and their noise")
    snrs: tuple[float, ...] = opt((5.0, 10.0, 15.0), "noisy test sets, dB", **SNR_DB)
    noise_kinds: tuple[str, ...] = opt(("pink", "babble"), "noise of the noisy test sets, "
                                       "alternating per utterance")
    # Of the held-out Speech Commands speakers (data.speech_commands); babble is made of
    # held-out speakers.
    word_snrs: tuple[float, ...] = opt((0.0, 5.0, 10.0, 15.0, 20.0), "isolated words: clean, "
                                       "reverberant, and each noise kind at each SNR, dB",
                                       **SNR_DB)
    word_noise_kinds: tuple[str, ...] = opt(("pink", "impulsive", "babble"), "noise kinds for "
                                            "isolated words")
    heldout_noise_kinds: tuple[str, ...] = opt((), "noise kinds kept out of training (never in "
                                               "augment.noise_kinds), reported on their own")
    noise_clips: int = opt(60, "one-second noise-only clips for the false-output rate", min=0)
    # The card shows the trade-off.
    calibrate_reject: bool = opt(False, "choose the bundle decoder's reject_threshold on the "
                                 "held-out words and negatives: the lowest that keeps false "
                                 "outputs at most max_false_output")
    max_false_output: float = opt(0.05, "share of false outputs calibrate_reject allows, on the "
                                  "other words and on the noise clips each", min=0, max=1)


@dataclass(frozen=True)
class ExportSettings:
    name: str = opt("digits", "bundle name")
    version: str = opt("1.0", "bundle version")
    out: str = opt("edgevoice/models/digits", "bundle directory to write")
    description: str = opt("connected spoken digits (zero to nine), English", "for the card")
    decoder: dict[str, Any] = opt({"name": "greedy"}, "the daemon's default decoder block for "
                                  "this bundle")
    lm_order: int = opt(3, "word n-gram order when edgevoice.training.lm is available, 0 = no LM",
                        min=0)
    card_appendix: str = opt("", "a Markdown file appended to the model card's figures (e.g. "
                             "the size frontier of benchmarks/frontier.py), relative to the "
                             "working directory; '' = none")
    float_weights: bool = opt(True, "ship the float weights too (float16, about 2 bytes per "
                              "parameter) so that train.init_from can fine-tune from the bundle")
    lm_sentences: Literal["strings", "phrases"] = opt(
        "strings", 'what the LM learns from: "strings" of 1-10 random vocabulary entries '
        '(digit strings), or "phrases": each vocabulary entry one whole sentence (commands)')


@dataclass(frozen=True)
class Recipe:
    name: str = opt("digits", "the recipe's name")
    work_dir: str = opt("runs/digits", "where stage outputs go")
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
    where = f"recipe {path}"
    try:
        raw, lines = load_yaml(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"{where}: cannot read ({getattr(exc, 'strerror', None) or exc})"
                         ) from None
    except yaml.YAMLError as exc:
        raise BuildError(f"{where}: not valid YAML ({exc})".replace("\n", " ")) from None
    raw = {} if raw is None else raw
    if not isinstance(raw, dict):
        raise BuildError(f"{where}: expected a mapping at the top level")
    for dotted, value in (overrides or {}).items():
        node = raw
        *parents, last = dotted.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
        for key in [k for k in lines if k == dotted or k.startswith((f"{dotted}.", f"{dotted}["))]:
            del lines[key]  # the value is no longer the file's
    problems: list[str] = []
    recipe = validate(Recipe, raw, "", problems, lines=lines, partial=True)
    if recipe is not None:  # with the defaults in place of invalid values: all problems at once
        problems += _check_noise_kinds(recipe, lines)
        problems += _check_heldout_kinds(recipe, lines)
        problems += _check_shares(recipe, lines)
        problems += _check_vocabulary(recipe, lines)
        problems += _check_heldout_speakers(recipe, lines)
    if problems or recipe is None:
        raise BuildError(problems_message(where, problems))
    return recipe


def _check_noise_kinds(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """Noise kinds must be known: an unknown name would silently become some other noise."""
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
            problems.append(f"{at(path, lines)}: unknown noise kind(s) {', '.join(unknown)} "
                            f"(known: {', '.join(NOISE_KINDS)}, or file:<name> for a "
                            "recording in data.noise_dir; list one twice to use it more)")
        elif not kinds and used:
            problems.append(f"{at(path, lines)}: needs at least one noise kind (or {off})")
    return problems


def _check_heldout_kinds(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """A noise kind held out from training must not be trained on: its figures would lie."""
    both = [k for k in recipe.evaluate.heldout_noise_kinds if k in recipe.augment.noise_kinds]
    if not both:
        return []
    return [f"{at('evaluate.heldout_noise_kinds', lines)}: {', '.join(both)} held out and "
            f"used in training at once ({at('augment.noise_kinds', lines)}); take it out of "
            "one of them"]


def _check_shares(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """Shares that add up, and the two that must stay below 1 (the fields' own ranges are
    checked by `validate`)."""
    problems = []
    d = recipe.data
    if d.p_clips + d.p_negative > 1.0:
        problems.append(f"{at('data.p_clips', lines)}: p_clips {d.p_clips} + p_negative "
                        f"{d.p_negative} is more than 1")
    if recipe.train.ema >= 1.0:
        problems.append(f"{at('train.ema', lines)}: {recipe.train.ema} must be at least 0 and "
                        "below 1 (the averaging decay per step; 0 = off)")
    if recipe.prune.branch >= 1.0:
        problems.append(f"{at('prune.branch', lines)}: {recipe.prune.branch} must be at least "
                        "0 and below 1 (the share of train.steps to branch at; 0 = off)")
    return problems


def _check_vocabulary(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """Grammar lines that parse, phrases the model can spell, and not too many of them."""
    s = recipe.synth
    try:
        phrases = s.vocabulary()
    except LMError as exc:  # "synth.phrases[i]: ..."
        path, _, text = str(exc).partition(": ")
        return [f"{at(path, lines)}: {text}"]
    for i, entry in enumerate(s.phrases):
        words = normalise_text(entry.translate(GRAMMAR_MARKS))
        try:
            encode_text(words, at(f"synth.phrases[{i}]", lines))
        except BuildError as exc:
            return [str(exc)]
    where = at("synth.phrases", lines)
    if not phrases:
        return [f"{where}: no phrases: list the words or phrases the model is for"]
    if len(phrases) > MAX_PHRASES:
        return [f"{where}: {len(phrases)} phrases, at most {MAX_PHRASES} (each synthetic "
                "voice renders every one): split the grammar or drop alternatives"]
    return []


def _check_heldout_speakers(recipe: Recipe, lines: dict[str, int]) -> list[str]:
    """Something to measure the model on, and held-out synthetic voices only where they are
    the measure (real held-out speakers are the honest one)."""
    d, s = recipe.data, recipe.synth
    if d.synth_heldout and d.test_speakers:
        line = f" (line {lines['data.test_speakers']})" if "data.test_speakers" in lines else ""
        return [f"{at('data.synth_heldout', lines)}: held-out synthetic voices measure the model "
                f"only when data.test_speakers{line} names nobody: keep one of the two "
                "(synth_heldout: 0, or test_speakers: [])"]
    if d.synth_heldout and not (s.enabled and d.p_synth > 0):
        return [f"{at('data.synth_heldout', lines)}: holds out synthetic voices, but none are "
                "trained on (synth.enabled, data.p_synth)"]
    if not d.test_speakers and not d.synth_heldout:
        return [f"{at('data.test_speakers', lines)}: nobody held out to measure the model on: "
                "name a speaker of the data, or hold out synthetic voices (data.synth_heldout: "
                "0.2)"]
    return []
