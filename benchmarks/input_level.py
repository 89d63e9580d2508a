"""A quiet microphone: strangers' isolated digits played at lower input levels.

A cheap USB microphone on a Raspberry Pi with ALSA's default capture gain, or a speaker across
the room, reaches the daemon 20-40 dB below a close browser recording. This plays the clean
held-out Speech Commands digits of `edgevoice-build evaluate` (the recipe's held-out speakers,
the same clips) at each gain, rounded to 16 bits as a sound card delivers them, through the
denoiser each bundle was trained behind (its `denoise:`), its frontend, INT8 model and its own
decoder (with its reject_threshold), and prints WER
and the share of clips with nothing published, per bundle and gain, side by side.

    python benchmarks/input_level.py [--bundle builtin:digits ...] [--gains 0 -20 -30 -40]
"""

from __future__ import annotations

import argparse
import sys

import numpy as np

from edgevoice.bundle import load_bundle
from edgevoice.errors import EdgevoiceError
from edgevoice.features import LogMel
from edgevoice.runtime import open_acoustic_model
from edgevoice.training.denoising import make_denoiser
from edgevoice.training.evaluate import bundle_results
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
from edgevoice.training.strangers import recipe_sets, word_score


def at_gain(x: np.ndarray, gain_db: float) -> np.ndarray:
    """Float samples scaled by `gain_db` and quantised to 16 bits, as int16."""
    y = np.round(np.asarray(x, np.float64) * 32768.0 * 10 ** (gain_db / 20))
    return np.clip(y, -32768, 32767).astype(np.int16)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", action="append", help="bundle (repeatable; default "
                    "builtin:digits)")
    ap.add_argument("--recipe", default=str(DEFAULT_RECIPE),
                    help="recipe whose data and evaluate sections define the held-out clips")
    ap.add_argument("--gains", type=float, nargs="+", default=[0.0, -10.0, -20.0, -30.0, -40.0],
                    help="input gains, dB, relative to the recordings")
    args = ap.parse_args()
    try:
        run(args)
    except EdgevoiceError as e:
        sys.exit(f"input_level: {e}")


def run(args: argparse.Namespace) -> None:
    recipe = load_recipe(args.recipe)
    sets, speakers = recipe_sets(recipe)
    clean = next((ts for ts in sets.words if ts.name == "words_clean"), None)
    if clean is None:
        sys.exit(f"input_level: {args.recipe} holds out no speaker saying a vocabulary word")
    peaks = [float(np.max(np.abs(x))) for x in clean.audio]
    print(f"{len(clean.texts)} clean digits by {speakers} held-out speakers; recorded peak "
          f"level median {20 * np.log10(np.median(peaks)):.1f} dBFS, lowest "
          f"{20 * np.log10(max(min(peaks), 1e-9)):.1f} dBFS")
    print(f"{'bundle':<40}{'gain dB':>8}{'WER %':>8}{'nothing %':>11}{'wrong %':>9}")
    for name in args.bundle or ["builtin:digits"]:
        bundle = load_bundle(name)
        lm, am = LogMel(bundle.frontend), open_acoustic_model(bundle)
        spec = dict(bundle.raw.get("denoise") or {"name": "none"})
        denoise = make_denoiser(spec, recipe.frontend.sample_rate, f"{name} denoise") \
            or (lambda x: x)
        _, decode = bundle_results(bundle)
        label = f"{name} ({bundle.raw.get('version')}, floor {bundle.frontend.floor:g})"
        for g in args.gains:
            logprobs = [am.run_utterance(lm.compute(denoise(at_gain(x, g) / np.float32(32768))))
                        for x in clean.audio]
            s = word_score(clean.texts, decode(logprobs))
            print(f"{label:<40}{g:>8g}{100 * s['wer']:>8.1f}{100 * s['phrase_nothing']:>11.1f}"
                  f"{100 * s['phrase_wrong']:>9.1f}", flush=True)


if __name__ == "__main__":
    main()
