"""Decoding cost in ms per second of audio: greedy vs CTC prefix beam search with a trigram LM.

Target: beam 16 + trigram <= 10 ms per second of audio on one core. Posteriors come from the
default model on held-out FSDD speakers (clean and 5 dB pink noise, where a weak model's
posteriors are flattest and the search does the most work); without the bundle, synthetic.

    python benchmarks/decoder_speed.py [--utterances 60] [--chunk 25]
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).parent))

from decoder_data import (  # noqa: E402
    digits_lm,
    heldout_posteriors,
    load_default_bundle,
    synthetic_posteriors,
)

from edgevoice.beam import BeamDecoder, BeamOptions  # noqa: E402
from edgevoice.decoding import DecoderContext, GreedyDecoder, GreedyOptions  # noqa: E402
from edgevoice.lm import kenlm_available  # noqa: E402


def ms_per_second(decoder, utterances, chunk: int, repeat: int = 3) -> float:
    """Best of `repeat` runs; the model's frames arrive `chunk` at a time, as in the daemon."""
    seconds = sum(s for _, _, s in utterances)
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        for lp, _, _ in utterances:
            for i in range(0, len(lp), chunk):
                decoder.process(lp[i : i + chunk])
                decoder.partial()
            decoder.finalize()
        best = min(best, time.perf_counter() - start)
    return best / seconds * 1000


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="builtin:digits")
    ap.add_argument("--utterances", type=int, default=60)
    ap.add_argument("--chunk", type=int, default=25, help="model frames per process() call")
    args = ap.parse_args()

    bundle = load_default_bundle(args.bundle)
    lm = bundle.lm_file if bundle is not None and bundle.lm_file else digits_lm(order=3)
    sets: dict[str, list] = {}
    if bundle is not None:
        ctx = DecoderContext.create(bundle.tokens, bundle.blank,
                                    bundle.frontend.hop_ms * bundle.streaming.stride / 1000)
        sets["held-out clean"] = heldout_posteriors(bundle, args.utterances, 11, None)
        sets["held-out 5 dB"] = heldout_posteriors(bundle, args.utterances, 12, 5.0)
    else:
        from edgevoice.training.data import BLANK, TOKENS

        ctx = DecoderContext.create(TOKENS, BLANK, 0.02)
        sets["synthetic"] = synthetic_posteriors(args.utterances, 11, TOKENS, BLANK)
    decoders = {
        "greedy": lambda: GreedyDecoder(GreedyOptions(), ctx),
        "beam 16, no LM": lambda: BeamDecoder(BeamOptions(lm="none"), ctx),
        "beam 16 + trigram (python)": lambda: BeamDecoder(
            BeamOptions(lm=str(lm), prefer_kenlm=False), ctx),
        "beam 16 + trigram (kenlm)": lambda: BeamDecoder(BeamOptions(lm=str(lm)), ctx)
        if kenlm_available() else None,
        "beam 16 + trigram + closed vocab": lambda: BeamDecoder(
            BeamOptions(lm=str(lm), vocabulary="lm"), ctx),
        "beam 64 + trigram": lambda: BeamDecoder(BeamOptions(lm=str(lm), beam=64), ctx),
    }
    print(f"LM: {lm}; frame {ctx.frame_seconds * 1000:.0f} ms; chunks of {args.chunk} frames; "
          f"numpy {np.__version__}; one thread")
    names = list(sets)
    print(f"{'decoder':36s}" + "".join(f"{n:>18s}" for n in names) + "   (ms per s of audio)")
    for label, make in decoders.items():
        dec = make()
        if dec is None:
            print(f"{label:36s}  skipped: kenlm not installed")
            continue
        cells = [ms_per_second(dec, sets[n], args.chunk) for n in names]
        print(f"{label:36s}" + "".join(f"{c:18.2f}" for c in cells))
    frames = sum(len(lp) for s in sets.values() for lp, _, _ in s)
    audio = sum(s for v in sets.values() for _, _, s in v)
    print(f"{frames} frames, {audio:.0f} s of audio; target: beam 16 + trigram <= 10 ms/s")


if __name__ == "__main__":
    main()
