"""Training data: clips from FSDD folders and manifests, speaker splits, connected utterances.

Data preparation is a chain of generators (clips -> composed utterances -> augmentation ->
features), and every feature goes through the daemon's own frontend (`edgevoice.features.LogMel`).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevoice.audio import read_wav, resample
from edgevoice.errors import AudioError, BuildError
from edgevoice.features import LogMel, LogMelSettings

log = logging.getLogger("edgevoice.training")

TOKENS: tuple[str, ...] = ("<blank>", " ", "'", *"abcdefghijklmnopqrstuvwxyz")
BLANK = 0
DIGIT_WORDS: tuple[str, ...] = (
    "zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
)
FSDD_NAME = re.compile(r"^(\d)_([A-Za-z0-9-]+)_(\d+)\.wav$")
# Speech Commands: words/<word>/<8-hex-digit speaker id>_nohash_<take>.wav
SC_NAME = re.compile(r"^([0-9a-f]{8})_nohash_(\d+)\.wav$")
SC_PREFIX = "sc-"  # speaker names from Speech Commands, so they never collide with FSDD's
SILENCE_PEAK = 1e-3  # peak amplitude (full scale 1.0) below which a clip counts as silent
AUDIO_KEYS = ("audio", "path", "audio_path", "file")
TEXT_KEYS = ("text", "transcript", "sentence")


@dataclass(frozen=True)
class Clip:
    """One recording: an audio file, its lowercase transcript and who spoke it."""

    path: Path
    text: str
    speaker: str
    where: str = ""  # "file:line" the transcript came from, for error messages


def encode_text(text: str, where: str = "transcript") -> list[int]:
    """Transcript -> token ids; a character outside the token set is a BuildError naming `where`."""
    index = {t: i for i, t in enumerate(TOKENS)}
    ids = []
    for pos, ch in enumerate(text):
        if ch not in index or ch == TOKENS[BLANK]:
            raise BuildError(
                f"{where}: character {ch!r} (position {pos + 1} of {text!r}) is not in the token "
                "set (lowercase a-z, apostrophe, space); spell numbers and symbols out as words"
            )
        ids.append(index[ch])
    return ids


def normalise_text(text: str) -> str:
    """Lowercase and squeeze whitespace; other characters are left for `encode_text` to judge."""
    return " ".join(text.lower().split())


def read_fsdd(folder: str | Path) -> list[Clip]:
    """Clips from an FSDD-style folder of `{digit}_{speaker}_{take}.wav` files."""
    root = Path(folder)
    if not root.is_dir():
        what = "is a file, not a folder" if root.exists() else "does not exist"
        raise BuildError(
            f"data folder {root} {what}; point the recipe's data.fsdd (or --fsdd) at a "
            "folder of {digit}_{speaker}_{take}.wav files"
        )
    clips = []
    for path in sorted(root.iterdir()):
        m = FSDD_NAME.match(path.name)
        if m:
            clips.append(Clip(path, DIGIT_WORDS[int(m.group(1))], m.group(2), str(path)))
    if not clips:
        raise BuildError(f"{root}: no {{digit}}_{{speaker}}_{{take}}.wav files in this folder")
    return clips


def read_speech_commands(folder: str | Path) -> list[Clip]:
    """Clips from a Speech Commands folder (`words/<word>/<speaker>_nohash_<n>.wav`), every
    word of it; the speaker is `sc-<id>`. Which words are vocabulary is the caller's choice."""
    root = Path(folder)
    words = root / "words"
    if not words.is_dir():
        what = "does not exist" if not root.exists() else "has no words/ folder"
        raise BuildError(
            f"Speech Commands folder {root} {what}; point the recipe's data.speech_commands at a "
            "folder with words/<word>/<speaker>_nohash_<n>.wav (or set it to \"\" to go without)")
    clips = []
    for word_dir in sorted(p for p in words.iterdir() if p.is_dir()):
        text = normalise_text(word_dir.name.replace("_", " "))
        for path in sorted(word_dir.iterdir()):
            m = SC_NAME.match(path.name)
            if m:
                clips.append(Clip(path, text, SC_PREFIX + m.group(1), str(path)))
    if not clips:
        raise BuildError(f"{words}: no <word>/<speaker>_nohash_<n>.wav files in this folder")
    return clips


def heldout_by_hash(speakers: Sequence[str], share: float, salt: str = "edgevoice") -> set[str]:
    """A fixed share of `speakers`, picked by a hash of each id: the same speakers whatever
    else is in the data, never chosen by looking at how a model does on them."""
    def draw(s: str) -> float:
        digest = hashlib.sha256(f"{salt}:{s}".encode()).digest()
        return int.from_bytes(digest[:8], "big") / 2**64

    return {s for s in speakers if draw(s) < share}


@dataclass(frozen=True)
class WordClips:
    """Single-word recordings by many speakers, split by speaker: vocabulary words to learn
    and other words, which must produce nothing."""

    train: list[Clip]
    test: list[Clip]
    other_train: list[Clip]
    other_test: list[Clip]

    @property
    def test_speakers(self) -> set[str]:
        return {c.speaker for c in (*self.test, *self.other_test)}


def split_words(clips: Sequence[Clip], vocabulary: Sequence[str], heldout_share: float,
                test_speakers: Sequence[str] = ()) -> WordClips:
    """Hold out `heldout_share` of the speakers (by hash) plus `test_speakers`, every clip of
    a held-out speaker on the test side; words outside `vocabulary` become the negatives,
    except a word of a vocabulary phrase ("on" of "turn on the light"): said alone it must
    yield nothing, said in the phrase its letters; it is left out. A vocabulary of phrases
    may have no clips here at all: the data then gives negatives only."""
    speakers = sorted({c.speaker for c in clips})
    missing = [s for s in test_speakers if s not in speakers]
    if missing:
        raise BuildError(
            f"recipe data.sc_test_speakers: speaker(s) {', '.join(missing)} not in the Speech "
            f"Commands data ({len(speakers)} speakers, e.g. {', '.join(speakers[:3])})")
    held = heldout_by_hash(speakers, heldout_share) | set(test_speakers)
    vocab = set(vocabulary)
    inside = {w for phrase in vocab for w in phrase.split()} - vocab
    parts: dict[tuple[bool, bool], list[Clip]] = {
        (t, v): [] for t in (False, True) for v in (False, True)}
    for c in clips:
        if c.text not in inside:
            parts[(c.speaker in held, c.text in vocab)].append(c)
    if bool(parts[(True, True)]) != bool(parts[(False, True)]):
        raise BuildError(
            f"Speech Commands data: {len(parts[(False, True)])} training and "
            f"{len(parts[(True, True)])} held-out clips of the vocabulary; data.sc_heldout "
            f"{heldout_share} must leave some on both sides")
    return WordClips(parts[(False, True)], parts[(True, True)], parts[(False, False)],
                     parts[(True, False)])


def read_noise_dir(folder: str | Path, names: Sequence[str], sample_rate: int
                   ) -> dict[str, np.ndarray]:
    """The noise recordings `names` (file stems) of `folder`, at `sample_rate`."""
    if not names:
        return {}
    root = Path(folder) if folder else None
    if root is None or not root.is_dir():
        raise BuildError(
            f"noise kind(s) file:{', file:'.join(names)} need the recipe's data.noise_dir, "
            "a folder of noise WAV files "
            f"({'unset' if root is None else f'{root} does not exist'})")
    have = sorted(p.stem for p in root.glob("*.wav"))
    unknown = [n for n in names if n not in have]
    if unknown:
        raise BuildError(f"noise kind(s) file:{', file:'.join(unknown)}: no such WAV in {root} "
                         f"(have: {', '.join(have) or 'none'})")
    return {n: load_audio(root / f"{n}.wav", sample_rate) for n in names}


def read_manifest(path: str | Path) -> list[Clip]:
    """Clips from a JSON-lines or CSV manifest with an audio path and a transcript per row.

    Columns: audio (or path/file), text (or transcript/sentence), optional speaker; others are
    ignored. Relative audio paths are taken relative to the manifest's folder. A row whose text
    is empty, or marked `rejected` (as the daemon's capture marks what it doubted), is skipped
    until someone has checked it: written the text, or set `rejected` to false.
    """
    path = Path(path)
    if not path.is_file():
        raise BuildError(f"manifest {path} does not exist")
    rows = _json_rows(path) if path.suffix in (".jsonl", ".json") else _csv_rows(path)
    clips = []
    empty, doubted = 0, 0
    for where, row in rows:
        audio = next((row[k] for k in AUDIO_KEYS if row.get(k)), None)
        text = next((row[k] for k in TEXT_KEYS if k in row), None)
        if audio is None or text is None:
            raise BuildError(
                f"{where}: expected columns audio and text (have: {', '.join(row) or 'none'}); "
                f"audio may also be called {', '.join(AUDIO_KEYS[1:])}, text "
                f"{', '.join(TEXT_KEYS[1:])}"
            )
        text = normalise_text(str(text))
        if not text:
            empty += 1
            continue
        if str(row.get("rejected", "")).lower() in ("true", "1", "yes"):
            doubted += 1
            continue
        encode_text(text, where)
        audio_path = Path(str(audio))
        if not audio_path.is_absolute():
            audio_path = path.parent / audio_path
        speaker = str(row.get("speaker") or audio_path.parent.name or "unknown")
        clips.append(Clip(audio_path, text, speaker, where))
    parts = [f"{empty} row(s) with empty text"] if empty else []
    parts += [f'{doubted} row(s) marked "rejected": true'] if doubted else []
    skipped = (f"skipped {' and '.join(parts)} (write what was said, or set rejected to false "
               "once checked)")
    if not clips:
        raise BuildError(f"{path}: manifest has no usable rows: {skipped}" if empty + doubted
                         else f"{path}: manifest has no rows")
    if empty + doubted:
        log.warning("%s: %s", path, skipped)
    return clips


def _json_rows(path: Path) -> Iterator[tuple[str, dict]]:
    for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise BuildError(f"{path}:{n}: not valid JSON ({exc.msg})") from None
        if not isinstance(row, dict):
            raise BuildError(f"{path}:{n}: expected a JSON object with audio and text")
        yield f"{path}:{n}", row


def _csv_rows(path: Path) -> Iterator[tuple[str, dict]]:
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.DictReader(f)
        for n, row in enumerate(reader, 2):
            yield f"{path}:{n}", {k.strip(): v for k, v in row.items() if k}


def split_by_speaker(
    clips: Sequence[Clip], test_speakers: Sequence[str], need_train: bool = True
) -> tuple[list[Clip], list[Clip]]:
    """(train, test): whole speakers go to one side, never single files; `need_train`: an
    empty training side is an error (it is not when synthetic voices train the model)."""
    speakers = {c.speaker for c in clips}
    missing = [s for s in test_speakers if s not in speakers]
    if missing:
        raise BuildError(
            f"held-out speaker(s) {', '.join(missing)} not in the data "
            f"(speakers: {', '.join(sorted(speakers))})"
        )
    test = [c for c in clips if c.speaker in test_speakers]
    train = [c for c in clips if c.speaker not in test_speakers]
    if not train and need_train:
        raise BuildError("every speaker is held out: nothing left to train on")
    return train, test


def load_audio(clip: Clip | Path, sample_rate: int) -> np.ndarray:
    """A clip's samples at `sample_rate`; unreadable or silent audio is a BuildError."""
    path = clip.path if isinstance(clip, Clip) else Path(clip)
    try:
        samples, info = read_wav(path)
    except AudioError as exc:
        raise BuildError(str(exc)) from None
    if not len(samples) or float(np.max(np.abs(samples))) < SILENCE_PEAK:
        raise BuildError(f"{path}: audio is silent (peak below {SILENCE_PEAK}); remove the file "
                         "from the data or the manifest")
    return resample(samples, info.sample_rate, sample_rate)


def wav_features(path: str | Path, settings: LogMelSettings) -> np.ndarray:
    """Features of a WAV file exactly as the daemon computes them (read, resample, LogMel)."""
    return LogMel(settings).compute(load_audio(Path(path), settings.sample_rate))


def trim(x: np.ndarray, sample_rate: int, floor_db: float = 35.0, margin: float = 0.04
         ) -> np.ndarray:
    """Cut leading/trailing stretches more than `floor_db` below the clip's loudest 10 ms."""
    hop = sample_rate // 100
    n = len(x) // hop
    if n < 3:
        return x
    energy = 10 * np.log10(np.mean(x[: n * hop].reshape(n, hop) ** 2, axis=1) + 1e-12)
    loud = np.flatnonzero(energy > energy.max() - floor_db)
    pad = int(margin * sample_rate)
    return x[max(loud[0] * hop - pad, 0) : min((loud[-1] + 1) * hop + pad, len(x))]


@dataclass(frozen=True)
class WordBank:
    """Trimmed word recordings grouped by speaker: speaker -> word -> list of sample arrays."""

    speakers: dict[str, dict[str, list[np.ndarray]]]

    @classmethod
    def from_clips(cls, clips: Sequence[Clip], sample_rate: int) -> WordBank:
        bank: dict[str, dict[str, list[np.ndarray]]] = {}
        for clip in clips:
            x = trim(load_audio(clip, sample_rate), sample_rate)
            bank.setdefault(clip.speaker, {}).setdefault(clip.text, []).append(x)
        return cls(bank)

    def __len__(self) -> int:
        return sum(len(v) for words in self.speakers.values() for v in words.values())


def spoken(recorded: WordBank, synth: WordBank | None) -> WordBank:
    """The training speech that stands for real voices (normalisation, calibration, babble):
    the recordings, or the synthetic voices while nobody has recorded the vocabulary."""
    return recorded if len(recorded) or synth is None else synth


def compose(
    bank: WordBank,
    rng: np.random.Generator,
    sample_rate: int,
    min_words: int = 1,
    max_words: int = 7,
    gap: tuple[float, float] = (0.05, 0.35),
    edge: tuple[float, float] = (0.1, 0.4),
    floor_db: tuple[float, float] = (-65.0, -45.0),
    speakers: Sequence[str] | None = None,
) -> Iterator[tuple[np.ndarray, str, str]]:
    """Endless connected utterances (samples, transcript, speaker) from one speaker's words.

    Words are joined with random gaps (seconds) and framed with leading/trailing silence; gaps and
    edges hold faint noise at `floor_db` dBFS, as a real microphone never gives digital silence.
    """
    names = list(speakers) if speakers is not None else sorted(bank.speakers)
    while True:
        speaker = names[int(rng.integers(len(names)))]
        words = bank.speakers[speaker]
        vocab = sorted(words)
        n = int(rng.integers(min_words, max_words + 1))
        chosen = [vocab[int(rng.integers(len(vocab)))] for _ in range(n)]
        pieces = [_silence(rng.uniform(*edge), sample_rate)]
        for k, word in enumerate(chosen):
            takes = words[word]
            pieces.append(takes[int(rng.integers(len(takes)))])
            if k < n - 1:
                pieces.append(_silence(rng.uniform(*gap), sample_rate))
        pieces.append(_silence(rng.uniform(*edge), sample_rate))
        x = np.concatenate(pieces).astype(np.float32)
        level = 10 ** (rng.uniform(*floor_db) / 20)
        x += (level * rng.standard_normal(len(x))).astype(np.float32)
        yield x, " ".join(chosen), speaker


def in_room(x: np.ndarray, rng: np.random.Generator, sample_rate: int,
            lead: tuple[float, float], tail: tuple[float, float],
            floor_db: tuple[float, float] = (-65.0, -45.0)) -> np.ndarray:
    """`x` with faint room noise before and after it (seconds drawn from `lead` and `tail`),
    as the daemon hands an utterance on with its pre-roll and hang-over: a one-second clip
    whose word runs to its last sample otherwise gives a causal model no frames to emit it."""
    before = np.zeros(int(rng.uniform(*lead) * sample_rate), np.float32)
    after = np.zeros(int(rng.uniform(*tail) * sample_rate), np.float32)
    level = 10 ** (rng.uniform(*floor_db) / 20)
    edges = (level * rng.standard_normal(len(before) + len(after))).astype(np.float32)
    return np.concatenate((before + edges[: len(before)], x, after + edges[len(before):]))


def _silence(seconds: float, sample_rate: int) -> np.ndarray:
    return np.zeros(int(seconds * sample_rate), np.float32)


def heldout_utterances(bank: WordBank, n: int, seed: int, sample_rate: int,
                    min_words: int = 3, max_words: int = 7) -> list[tuple[np.ndarray, str]]:
    """The fixed held-out test set: `n` connected digit strings, reproducible from `seed`."""
    gen = compose(bank, np.random.default_rng(seed), sample_rate, min_words, max_words,
                  floor_db=(-60.0, -50.0))
    return [(x, text) for x, text, _ in (next(gen) for _ in range(n))]
