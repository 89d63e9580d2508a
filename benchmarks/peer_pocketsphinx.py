"""Peer comparison: the default edgevoice bundle (INT8, greedy and beam+LM) vs PocketSphinx.

Both recognisers get the recipe's held-out test set: connected digit strings composed from a
speaker the edgevoice model never heard (fixed seed), clean and with noise at 5/10/15 dB SNR
(fixed seed). PocketSphinx uses its bundled en-us acoustic model restricted by a digits JSGF
grammar. Prints WER and real-time factor side by side, then the whole-process CPU time of
`edgevoice transcribe` and of PocketSphinx on the same files (start-up included, as a user pays
it; --files, default 200), as medians of paired runs.

    pip install pocketsphinx   # or: pip install 'edgevoice[peer]'
    python benchmarks/peer_pocketsphinx.py [--bundle edgevoice/models/digits] [--fsdd DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from edgevoice.audio import to_int16, write_wav
from edgevoice.bundle import load_bundle
from edgevoice.features import LogMel
from edgevoice.runtime import open_acoustic_model
from edgevoice.training.data import DIGIT_WORDS, WordBank, read_fsdd, split_by_speaker
from edgevoice.training.evaluate import TestSet, beam_decode, greedy_texts, heldout_sets, wer
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe

RATE = 16000
GRAMMAR = ("#JSGF V1.0;\ngrammar digits;\npublic <digits> = ( "
           + " | ".join((*DIGIT_WORDS, "oh")) + " )+ ;\n")


def run_edgevoice(bundle_dir: str, sets: list[TestSet], beam: bool
                  ) -> dict[str, tuple[float, float]]:
    """WER and real-time factor (frontend + model + decoder) of the INT8 bundle per test set."""
    bundle = load_bundle(bundle_dir)
    am = open_acoustic_model(bundle)
    frontend = LogMel(bundle.frontend)
    if beam:
        decode = beam_decode(bundle.decoder, bundle.tokens, bundle.blank, bundle.lm_file)
    else:
        def decode(logp: list[np.ndarray]) -> list[str]:
            return greedy_texts(logp, bundle.tokens, bundle.blank)
    out = {}
    for ts in sets:
        t0 = time.perf_counter()
        hyps = decode([am.run_utterance(frontend.compute(x)) for x in ts.audio])
        elapsed = time.perf_counter() - t0
        out[ts.name] = (wer(ts.texts, hyps), elapsed / _seconds(ts))
    return out


def run_pocketsphinx(sets: list[TestSet], options: dict[str, Any] | None = None
                     ) -> dict[str, tuple[float, float]]:
    try:
        from pocketsphinx import Decoder
    except ImportError:
        sys.exit("peer benchmark needs PocketSphinx: pip install pocketsphinx")
    with tempfile.NamedTemporaryFile("w", suffix=".gram", delete=False) as f:
        f.write(GRAMMAR)
    decoder = Decoder(samprate=RATE, jsgf=f.name, loglevel="FATAL", **(options or {}))
    out = {}
    for ts in sets:
        hyps = []
        t0 = time.perf_counter()
        for x in ts.audio:
            decoder.start_utt()
            decoder.process_raw(to_int16(x).tobytes(), full_utt=True)
            decoder.end_utt()
            hyp = decoder.hyp()
            words = hyp.hypstr.split() if hyp is not None else []
            hyps.append(" ".join("zero" if w == "oh" else w for w in words))
        elapsed = time.perf_counter() - t0
        out[ts.name] = (wer(ts.texts, hyps), elapsed / _seconds(ts))
    Path(f.name).unlink()
    return out


PS_SCRIPT = """
import sys, tempfile
from pocketsphinx import Decoder
from edgevoice.audio import read_wav, to_int16
grammar, files = sys.argv[1], sys.argv[2:]
decoder = Decoder(samprate=16000, jsgf=grammar, loglevel="FATAL")
for path in files:
    decoder.start_utt()
    decoder.process_raw(to_int16(read_wav(path)[0]).tobytes(), full_utt=True)
    decoder.end_utt()
    print(decoder.hyp().hypstr if decoder.hyp() is not None else "")
"""


def whole_process_cpu(sets: list[TestSet], bundle: str, n_files: int, runs: int) -> None:
    """CPU seconds (user + system, start-up included) of `edgevoice transcribe` (beam and
    greedy) and of a PocketSphinx process over the same `n_files` WAVs; medians of `runs`
    paired runs."""
    clips = [x for ts in sets for x in ts.audio][:n_files]
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i, x in enumerate(clips):
            files.append(os.path.join(d, f"{i:04d}.wav"))
            write_wav(files[-1], x, RATE)
        grammar = os.path.join(d, "digits.gram")
        Path(grammar).write_text(GRAMMAR)
        commands = {
            f"edgevoice transcribe --decoder {dec}": [sys.executable, "-m", "edgevoice",
                                                      "transcribe", "--bundle", bundle,
                                                      "--decoder", dec, *files]
            for dec in ("beam", "greedy")
        }
        commands["PocketSphinx (Python process)"] = [sys.executable, "-c", PS_SCRIPT, grammar,
                                                      *files]
        cpu: dict[str, list[float]] = {name: [] for name in commands}
        for _ in range(runs):
            for name, cmd in commands.items():
                before = resource.getrusage(resource.RUSAGE_CHILDREN)
                subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
                after = resource.getrusage(resource.RUSAGE_CHILDREN)
                cpu[name].append(after.ru_utime - before.ru_utime
                                 + after.ru_stime - before.ru_stime)
    audio = sum(len(x) for x in clips) / RATE
    ps = statistics.median(cpu["PocketSphinx (Python process)"])
    print(f"whole-process CPU on {len(clips)} files ({audio:.0f} s of audio), median of {runs}:")
    for name, values in cpu.items():
        median = statistics.median(values)
        print(f"  {name:<36} {median:6.2f} s   {median / ps:5.3f} x PocketSphinx")


def _seconds(ts: TestSet) -> float:
    return sum(len(x) for x in ts.audio) / RATE


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--bundle", default="edgevoice/models/digits")
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE))
    p.add_argument("--fsdd", help="FSDD folder (default: the recipe's data.fsdd)")
    p.add_argument("--speaker", help="held-out speaker (default: the recipe's)")
    p.add_argument("--utterances", type=int, help="test utterances (default: the recipe's)")
    p.add_argument("--ps-option", action="append", default=[], metavar="NAME=VALUE",
                   help="extra PocketSphinx option, e.g. pip=0.1 (default: its own defaults)")
    p.add_argument("--files", type=int, default=200, help="files for the whole-process CPU")
    p.add_argument("--runs", type=int, default=3, help="paired runs of the whole-process CPU")
    p.add_argument("--cpu-only", action="store_true", help="only the whole-process CPU")
    args = p.parse_args()
    ps_options = {k: yaml.safe_load(v) for k, _, v in (o.partition("=") for o in args.ps_option)}
    overrides: dict = {}
    if args.fsdd:
        overrides["data.fsdd"] = args.fsdd
    if args.speaker:
        overrides["data.test_speakers"] = [args.speaker]
    if args.utterances:
        overrides["evaluate.utterances"] = args.utterances
    recipe = load_recipe(args.recipe, overrides)
    heard = load_bundle(args.bundle).metrics.get("train_speakers", [])
    overlap = set(heard) & set(recipe.data.test_speakers)
    if overlap:
        print(f"WARNING: the bundle was trained on {', '.join(sorted(overlap))}: not a fair test")
    train, test = split_by_speaker(read_fsdd(recipe.data.fsdd), recipe.data.test_speakers)
    sets = heldout_sets(WordBank.from_clips(test, RATE), WordBank.from_clips(train, RATE),
                        recipe.evaluate, RATE)
    if args.cpu_only:
        whole_process_cpu(sets, args.bundle, args.files, args.runs)
        return
    results = {"edgevoice greedy": run_edgevoice(args.bundle, sets, beam=False)}
    if load_bundle(args.bundle).decoder.get("name") == "beam":
        results["edgevoice beam+LM"] = run_edgevoice(args.bundle, sets, beam=True)
    results["PocketSphinx"] = run_pocketsphinx(sets, ps_options)
    e = recipe.evaluate
    print(f"held-out speaker(s): {', '.join(recipe.data.test_speakers)}; {len(sets[0].texts)} "
          f"utterances of {e.min_words}-{e.max_words} digits, {_seconds(sets[0]):.0f} s per "
          f"set, seed {e.seed}; noise {'/'.join(e.noise_kinds)}; PocketSphinx en-us + digits "
          f"JSGF {ps_options or '(default options)'}")
    names = list(results)
    print(f"{'WER':<10}" + "".join(f"{n:>20}" for n in names))
    for ts in sets:
        print(f"{ts.name:<10}" + "".join(f"{100 * results[n][ts.name][0]:>19.1f}%" for n in names))
    noisy = [ts.name for ts in sets[1:]]
    if noisy:
        print(f"{'noisy avg':<10}" + "".join(
            f"{100 * np.mean([results[n][k][0] for k in noisy]):>19.1f}%" for n in names))
    print(f"{'RTF':<10}" + "".join(
        f"{np.mean([results[n][ts.name][1] for ts in sets]):>20.4f}" for n in names))
    whole_process_cpu(sets, args.bundle, args.files, args.runs)


if __name__ == "__main__":
    main()
