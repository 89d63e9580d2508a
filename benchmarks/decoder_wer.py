"""WER of greedy decoding vs CTC prefix beam search with the digits LM, side by side.

Same acoustic model (the default bundle), held-out FSDD speakers composed into connected digit
strings with edgevoice-build's composer, clean and with pink noise at 15/10/5 dB SNR. Also
shows how well the utterance confidence separates right from wrong results (rejection).

    python benchmarks/decoder_wer.py [--utterances 200] [--alpha A --beta B]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))

from decoder_data import digits_lm, heldout_posteriors, heldout_speakers, wer_counts  # noqa: E402

from edgevoice.beam import BeamDecoder, BeamOptions  # noqa: E402
from edgevoice.bundle import load_bundle  # noqa: E402
from edgevoice.decoding import DecoderContext, GreedyDecoder, GreedyOptions  # noqa: E402

CONDITIONS = (("clean", None), ("15 dB", 15.0), ("10 dB", 10.0), ("5 dB", 5.0))
THRESHOLDS = (0.3, 0.5, 0.7)


def decode_all(decoder, utterances) -> list:
    results = []
    for lp, _, _ in utterances:
        decoder.process(lp)
        results.append(decoder.finalize())
    return results


def wer(results, utterances) -> float:
    edits = words = 0
    for r, (_, ref, _) in zip(results, utterances, strict=True):
        e, n = wer_counts(ref, r.text)
        edits, words = edits + e, words + n
    return 100.0 * edits / max(words, 1)


def rejection(results, utterances, threshold: float) -> tuple[float, float]:
    """(% of wrong results flagged, % of right results flagged) at `threshold`."""
    flags: dict[bool, list[bool]] = {True: [], False: []}
    for r, (_, ref, _) in zip(results, utterances, strict=True):
        flags[r.text == ref].append(r.confidence < threshold)

    def pct(xs: list[bool]) -> float:
        return 100.0 * sum(xs) / len(xs) if xs else float("nan")

    return pct(flags[False]), pct(flags[True])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--bundle", default="builtin:digits")
    ap.add_argument("--utterances", type=int, default=200)
    ap.add_argument("--seed", type=int, default=2024)
    ap.add_argument("--alpha", type=float, default=None)
    ap.add_argument("--beta", type=float, default=None)
    args = ap.parse_args()

    bundle = load_bundle(args.bundle)
    lm = bundle.lm_file or digits_lm(order=3)
    ctx = DecoderContext.create(bundle.tokens, bundle.blank,
                                bundle.frontend.hop_ms * bundle.streaming.stride / 1000)
    tuned = {k: v for k, v in (("alpha", args.alpha), ("beta", args.beta)) if v is not None}
    decoders = {
        "greedy": GreedyDecoder(GreedyOptions(), ctx),
        "beam 16, no LM": BeamDecoder(BeamOptions(lm="none"), ctx),
        "beam 16 + LM": BeamDecoder(BeamOptions(lm=str(lm), **tuned), ctx),
        "beam 16 + LM, closed vocab": BeamDecoder(
            BeamOptions(lm=str(lm), vocabulary="lm", **tuned), ctx),
    }
    o = BeamOptions(**tuned)
    print(f"bundle {bundle.name} {bundle.version}; held-out speakers "
          f"{', '.join(heldout_speakers(bundle))}; {args.utterances} digit strings per condition")
    print(f"LM {lm} (alpha {o.alpha}, beta {o.beta}, unk_penalty {o.unk_penalty})")
    print(f"\n{'WER %':28s}" + "".join(f"{name:>10s}" for name, _ in CONDITIONS))
    table: dict[str, list[float]] = {name: [] for name in decoders}
    kept: dict[str, list] = {}
    for k, (cond, snr) in enumerate(CONDITIONS):
        utts = heldout_posteriors(bundle, args.utterances, args.seed + k, snr)
        for name, dec in decoders.items():
            results = decode_all(dec, utts)
            table[name].append(wer(results, utts))
            if name == "beam 16 + LM, closed vocab":
                kept[cond] = (results, utts)
    for name, row in table.items():
        print(f"{name:28s}" + "".join(f"{v:10.1f}" for v in row))
    print("\nrejection with beam 16 + LM, closed vocab: % of wrong / % of right utterances "
          "flagged")
    print(f"{'reject_threshold':28s}" + "".join(f"{name:>14s}" for name, _ in CONDITIONS))
    for th in THRESHOLDS:
        cells = [rejection(*kept[name], th) for name, _ in CONDITIONS]
        print(f"{th:<28}" + "".join(f"{w:6.0f} / {r:4.0f} " for w, r in cells))


if __name__ == "__main__":
    main()
