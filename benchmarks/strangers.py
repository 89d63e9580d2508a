"""A bundle on strangers: isolated digits of held-out Speech Commands speakers, clean,
reverberant and in each noise kind by SNR, and false outputs on other words and noise.

The sets are exactly those of `edgevoice-build evaluate` for the default recipe (same
held-out speakers by id hash, same seeds), so any bundle, including an older one that was
built without this evaluation, is measured on the same audio. The INT8 model runs through
the daemon's runtime and the bundle's own decoder (with its reject_threshold).

    python benchmarks/strangers.py [--bundle builtin:digits] [--recipe RECIPE]
                                   [--reject-threshold 0.4] [--denoise '{name: webrtc}']

Every clip goes through the denoiser the bundle was trained behind (its `denoise:`, with a
second of the clip's own room noise heard first, as `augment.denoise` does in the build), or
through `--denoise` instead (a daemon `denoise:` block): a bundle trained without that
denoiser hears audio unlike its training there.
"""

from __future__ import annotations

import argparse
import time

import yaml

from edgevoice.bundle import load_bundle
from edgevoice.errors import EdgevoiceError
from edgevoice.features import LogMel
from edgevoice.runtime import open_acoustic_model
from edgevoice.training.denoising import make_denoiser
from edgevoice.training.evaluate import beam_results, greedy_results
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
from edgevoice.training.report import by_kind
from edgevoice.training.strangers import recipe_sets, score_strangers


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="builtin:digits")
    ap.add_argument("--recipe", default=str(DEFAULT_RECIPE),
                    help="recipe whose data and evaluate sections define the sets")
    ap.add_argument("--reject-threshold", type=float, metavar="T",
                    help="decode with this reject_threshold instead of the bundle's own")
    ap.add_argument("--denoise", metavar="YAML",
                    help="the daemon denoise: block to run every clip through first "
                         "(default: the one the bundle was trained behind)")
    args = ap.parse_args()
    r = load_recipe(args.recipe)
    e, rate = r.evaluate, r.frontend.sample_rate
    bundle = load_bundle(args.bundle)
    if args.denoise is None:
        spec = dict(bundle.raw.get("denoise") or {"name": "none"})
    else:
        try:
            spec = yaml.safe_load(args.denoise)
        except yaml.YAMLError as exc:
            ap.error(f"--denoise: not YAML: {exc}")
        if not isinstance(spec, dict):
            ap.error("--denoise: expected a mapping such as '{name: webrtc}'")
    sets, speakers = recipe_sets(r)
    lm = LogMel(bundle.frontend)
    try:
        denoise = make_denoiser(spec, rate, "--denoise") or (lambda x: x)
    except EdgevoiceError as exc:
        ap.error(str(exc).removeprefix("recipe "))
    t0 = time.process_time()
    feats = {ts.name: [lm.compute(denoise(x)) for x in ts.audio]
             for ts in (*sets.words, *sets.negatives)}
    front_cpu = time.process_time() - t0
    am = open_acoustic_model(bundle)
    decoder = dict(bundle.raw.get("decoder") or {"name": "greedy"})
    if args.reject_threshold is not None:
        decoder["reject_threshold"] = args.reject_threshold
    decoders = {"greedy": greedy_results(bundle.tokens, bundle.blank)}
    if decoder.get("name") == "beam":
        decoders[f"bundle decoder ({', '.join(f'{k}={v}' for k, v in decoder.items())})"] = \
            beam_results(decoder, bundle.tokens, bundle.blank, bundle.lm_file)
    t0 = time.process_time()
    scores, _ = score_strangers(lambda fs: [am.run_utterance(f) for f in fs], feats, sets,
                                decoders)
    cpu = time.process_time() - t0
    audio = sum(len(x) for ts in (*sets.words, *sets.negatives) for x in ts.audio) / rate
    print(f"bundle {args.bundle}: {bundle.raw.get('name')} {bundle.raw.get('version')}; "
          f"{len(sets.words[0].texts)} digits by {speakers} held-out speakers, "
          f"{len(sets.negatives[0].texts)} other words, {e.noise_clips} noise-only clips; "
          f"{cpu / audio:.4f} CPU-s per audio second (model + decoders), "
          f"{front_cpu / audio:.4f} (denoise {spec} + features)")
    held = [k.removeprefix("file:") for k in e.heldout_noise_kinds]
    for name, by_set in scores.items():
        print(f"\n{name}")
        clean, room = by_set["words_clean"], by_set["words_reverb"]
        print(f"  clean WER {100 * clean['wer']:.1f} % (sub {100 * clean['sub']:.1f}, del "
              f"{100 * clean['del']:.1f}, ins {100 * clean['ins']:.1f}; insertions at onset "
              f"{100 * clean['onset_ins']:.1f} % of clips); reverberant {100 * room['wer']:.1f} %")
        print(f"  clean clips: phrase right {100 * clean['phrase_right']:.1f} %, wrong command "
              f"{100 * clean['phrase_wrong']:.1f} %, nothing published "
              f"{100 * clean['phrase_nothing']:.1f} %")
        print(f"  false outputs: other words {100 * by_set['neg_words']['false_output']:.1f} %, "
              f"noise only {100 * by_set['neg_noise']['false_output']:.1f} %")
        kinds = by_kind(by_set)
        snrs = sorted({s for v in kinds.values() for s in v}, reverse=True)
        print("  WER %   " + "".join(f"{s:>8g}" for s in snrs) + "   (dB SNR)")
        for kind, row in kinds.items():
            label = kind + (" *" if kind in held else "")
            print(f"  {label:<16}" + "".join(f"{100 * row[s]:8.1f}" for s in snrs))
        avg = [row[s] for k, row in kinds.items() if k in ("impulsive", "babble")
               for s in snrs if 5 <= s <= 15]
        if avg:
            print(f"  impulsive + babble, 5-15 dB average: {100 * sum(avg) / len(avg):.1f} %")
    print("\n* noise kind held out from the default recipe's training")


if __name__ == "__main__":
    main()
