"""Word error rate through the whole daemon, as a user hears it: VAD segmentation, frontend,
INT8 model and decoder over a session of held-out digit strings separated by 1-2.5 s pauses,
clean and with noise over the whole session (pauses included).

WER is over the session's published words in order (a transcript marked `rejected` publishes
nothing), so a string split in two or two merged cost no words; the transcripts column and
"strings right" (one transcript, exactly the string's words, no other string in it) show what
splitting and merging cost a user. Then the same session's noise alone, at the level it had at
5 dB SNR: every transcript published there is a false output. Needs FSDD in ../shared/data/fsdd.

    python benchmarks/daemon_wer.py [--minutes 10] [--bundle builtin:digits] [--decoder beam]
                                    [--vad '{name: webrtcvad, aggressiveness: 3}']
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_perf import FSDD, RATE, compose_session  # noqa: E402

KINDS = ("pink", "babble", "impulsive")
CONDITIONS = [("clean", None, None)] + [(f"{kind} {snr:g} dB", kind, snr)
                                         for kind in KINDS for snr in (15, 10, 5)]
NOISE_ONLY_SNR = 5.0


def run_daemon(wav: Path, out: Path, bundle: str, decoder: str, vad: dict) -> list[dict]:
    """`edgevoice run --input wav` (the same Daemon, in process) with a file sink."""
    from edgevoice.config import load_settings
    from edgevoice.daemon import Daemon

    raw = {"bundle": bundle, "source": {"name": "wav", "path": str(wav)},
           "decoder": {"name": decoder}, "sinks": [{"name": "file", "path": str(out)}],
           "vad": vad, "log_level": "warning"}
    settings, registry = load_settings(raw, "benchmark")
    daemon = Daemon(settings, registry)
    daemon.start()
    daemon.run()
    lines = out.read_text().splitlines() if out.exists() else []
    return [json.loads(line) for line in lines]


def strings_right(strings: list[tuple[float, float, str]], got: list[dict]) -> int:
    """Strings heard as one transcript of exactly their words, shared with no other string:
    what a user waiting for a PIN or a phone number sees."""
    right = 0
    for start, end, text in strings:
        over = [p for p in got if p["start"] < end and p["end"] > start]
        if len(over) != 1 or over[0].get("text") != text:
            continue
        p = over[0]
        if sum(1 for s, e, _ in strings if p["start"] < e and p["end"] > s) == 1:
            right += 1
    return right


def session_noise(kind: str, n: int, rng: np.random.Generator, sources: list[np.ndarray]
                  ) -> np.ndarray:
    """Noise for the whole session, as dense as the model evaluation's: babble is made in
    4-second pieces (its gaps between words grow with the length asked for)."""
    from edgevoice.training.augment import make_noise

    if kind != "babble":
        return make_noise(kind, n, rng, sources, RATE)
    piece = 4 * RATE
    return np.concatenate([make_noise(kind, piece, rng, sources)
                           for _ in range(-(-n // piece))])[:n]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--bundle", default="builtin:digits")
    ap.add_argument("--decoder", default="beam")
    ap.add_argument("--vad", default="{name: webrtcvad}",
                    help="the daemon's vad section, YAML (default: the shipped config's)")
    args = ap.parse_args()
    import yaml

    vad = yaml.safe_load(args.vad)
    if not FSDD.is_dir():
        sys.exit(f"FSDD not found at {FSDD}: this benchmark needs ../shared/data/fsdd")
    from edgevoice.training.augment import add_noise
    from edgevoice.training.data import WordBank, read_fsdd
    from edgevoice.training.evaluate import edit_operations

    clean, ends, starts = compose_session(args.minutes)
    strings = [(s, e, text) for (s, text), e in zip(starts, ends, strict=True)]
    refs = [text for _, _, text in strings]
    # Babble: the other speakers' digits, as in the model evaluation.
    others = WordBank.from_clips([c for c in read_fsdd(FSDD) if c.speaker != "nicolas"], RATE)
    sources = [x for by_word in others.speakers.values() for takes in by_word.values()
               for x in takes]
    words = sum(len(r.split()) for r in refs)
    print(f"session: {len(clean) / RATE:.0f} s, {len(strings)} strings, {words} words "
          f"(held-out speaker nicolas), decoder {args.decoder}")
    print(f"{'condition':14} {'WER %':>6} {'sub':>5} {'del':>5} {'ins':>5} "
          f"{'transcripts':>12} {'rejected':>9} {'strings right':>14}")
    ref_words = " ".join(refs).split()
    noise_only = []
    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        for i, (name, kind, snr) in enumerate(CONDITIONS):
            audio = clean
            if kind is not None:
                rng = np.random.default_rng([11, i])
                noise = session_noise(kind, len(clean), rng, sources)
                audio = np.clip(add_noise(clean, noise, snr), -1.0, 1.0)
                if snr == NOISE_ONLY_SNR:
                    noise_only.append((kind, np.clip(audio - clean, -1.0, 1.0)))
            got = _run(tmp, i, audio, args, vad)
            published = [p for p in got if not p.get("rejected")]
            hyp_words = " ".join(p.get("text", "") for p in published).split()
            sub, dele, ins = edit_operations(ref_words, hyp_words)
            print(f"{name:14} {100 * (sub + dele + ins) / len(ref_words):6.1f} {sub:5d} "
                  f"{dele:5d} {ins:5d} {len(got):12d} {len(got) - len(published):9d} "
                  f"{strings_right(strings, published):8d} / {len(strings)}")
        minutes = len(clean) / RATE / 60
        print(f"\nnoise alone ({minutes:.0f} min each, at its level in the {NOISE_ONLY_SNR:g} dB "
              "session): transcripts published (not rejected), and their words")
        for k, (kind, audio) in enumerate(noise_only):
            got = _run(tmp, 100 + k, audio, args, vad)
            published = [p for p in got if not p.get("rejected") and p.get("text")]
            words = sum(len(p["text"].split()) for p in published)
            print(f"{kind:14} {len(published):6d} published ({len(published) / minutes:.1f} per "
                  f"minute), {words} words; {len(got) - len(published)} rejected or empty")


def _run(tmp: Path, i: int, audio: np.ndarray, args: argparse.Namespace, vad: dict
         ) -> list[dict]:
    from edgevoice.audio import write_wav

    wav = tmp / f"session{i}.wav"
    write_wav(wav, audio, RATE)
    got = run_daemon(wav, tmp / f"out{i}.jsonl", args.bundle, args.decoder, vad)
    return sorted(got, key=lambda p: p["start"])


if __name__ == "__main__":
    main()
