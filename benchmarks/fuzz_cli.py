"""Fuzz the real command line: mutated WAV files through `edgevoice transcribe`, mutated
configs through `edgevoice check-config`, mutated model bundles (hashes re-recorded, so the
parsers behind the verifier see the damage) through `edgevoice model` and, for the LM, through
`check-config`. Each case is a subprocess; outcomes are counted by command:

    ok      exit 0
    clean   exit 1 or 2 with a message and no traceback (a user mistake, reported as one)
    crash   a traceback, a signal, or any other exit code
    hang    no exit within --timeout

    python benchmarks/fuzz_cli.py [--cases 240] [--jobs 2] [--budget 300] [--seed 1]
                                  [--keep DIR]     # inputs that crashed or hung are copied here

Bounded: --budget seconds in all (cases not started by then are skipped and counted), and
each process is limited to --timeout seconds and 4 GiB of address space.
"""

from __future__ import annotations

import argparse
import random
import re
import resource
import shutil
import struct
import subprocess
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from hashlib import sha256
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
FSDD = REPO.parent / "shared" / "data" / "fsdd"
BUNDLE = REPO / "edgevoice" / "models" / "digits"
CONFIGS = [REPO / "config" / "edgevoice.yaml", *sorted((REPO / "config" / "examples").glob("*"))]
EDGE = [0, 1, 2, 8, 16, 24, 0xFFFF, 8000, 0x7FFFFFFF, 0xFFFFFFFF]
ADDRESS_SPACE = 4 << 30


def mutate(data: bytes, rng: random.Random, fields: tuple[int, ...] = ()) -> bytes:
    """1-4 random edits: byte flips, insertions, deletions, truncation, and 32-bit edge values
    written at `fields` (header offsets). Text stays mostly text, so parsers past the decoder
    are reached too."""
    text = data.isascii()
    alphabet = b" -:.,[]{}#&*!'\"\n\t0123456789abcnrsuxy_=\\<>" if text else bytes(range(256))
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        kind = rng.choice(["flip", "flip", "insert", "insert", "delete", "truncate",
                           "edge" if fields else "delete"])
        pos = rng.randrange(max(len(out), 1))
        if kind == "flip" and out:
            out[pos] = rng.choice(alphabet if rng.random() < 0.95 else bytes(range(256)))
        elif kind == "insert":
            out[pos:pos] = rng.choice([bytes(rng.choices(alphabet, k=rng.randint(1, 16))),
                                       b"\n", b": ", b"- ", b"[", b"{", b"&a", b"*a", b"!!int x",
                                       b"\x00", b"\xff" * 4, b"9" * 5000, b"-inf", b"nan"])
        elif kind == "delete":
            del out[pos:pos + rng.randint(1, 64)]
        elif kind == "truncate":
            del out[pos:]
        elif kind == "edge":
            at = rng.choice(fields)
            out[at:at + 4] = struct.pack("<I", rng.choice(EDGE))
    return bytes(out)


def wav(samples: np.ndarray, rate: int, fmt: str, channels: int) -> bytes:
    """A WAV file of `samples` (float, -1..1) in one of the formats edgevoice reads."""
    x = np.repeat(samples[:, None], channels, axis=1).ravel()
    code, bits, raw = {
        "pcm16": (1, 16, (x * 32767).astype("<i2").tobytes()),
        "pcm24": (1, 24, b"".join(int(v * 8388607).to_bytes(3, "little", signed=True)
                                  for v in x)),
        "float32": (3, 32, x.astype("<f4").tobytes()),
        "pcm8": (1, 8, (x * 127 + 128).astype(np.uint8).tobytes()),
    }[fmt]
    width = bits // 8 * channels
    body = struct.pack("<HHIIHH", code, channels, rate, rate * width, width, bits)
    chunks = b"fmt " + struct.pack("<I", len(body)) + body + b"data" + struct.pack("<I", len(raw))
    return b"RIFF" + struct.pack("<I", 4 + len(chunks) + len(raw)) + b"WAVE" + chunks + raw


def base_wavs() -> list[bytes]:
    clip = sorted(FSDD.glob("*.wav"))[:1]
    if clip:
        speech = clip[0].read_bytes()
        pcm = np.frombuffer(speech[44:], "<i2").astype(np.float32) / 32768
    else:  # no FSDD: a tone stands in for speech
        speech = b""
        pcm = (0.3 * np.sin(np.arange(8000) * 0.2)).astype(np.float32)
    out = [wav(pcm, 8000, "pcm24", 2), wav(pcm[::2], 44100, "float32", 1),
           wav(pcm[:2000], 16000, "pcm8", 1), wav(pcm, 8000, "pcm16", 1)]
    return ([speech] if speech else []) + out


def mutated_bundle(where: Path, rng: random.Random) -> tuple[Path, str]:
    """A copy of the digits bundle with one file mutated and its sha256 re-recorded."""
    shutil.copytree(BUNDLE, where)
    name = rng.choice(["bundle.yaml", "model.tflite", "lm.arpa", "metrics.json"])
    target = where / name
    old = target.read_bytes()
    new = mutate(old, rng)
    target.write_bytes(new)
    if name != "bundle.yaml":
        meta = where / "bundle.yaml"
        meta.write_text(meta.read_text().replace(sha256(old).hexdigest(),
                                                 sha256(new).hexdigest()))
    return where, name


def make_cases(n: int, work: Path, rng: random.Random) -> list[tuple[str, list[str], Path]]:
    """(label, argv after `edgevoice`, input to keep) for n cases, a third per command."""
    wavs, configs = base_wavs(), [p.read_bytes() for p in CONFIGS]
    cases = []
    for i in range(n):
        case = work / f"case{i:04}"
        case.mkdir()
        kind = ("transcribe", "check-config", "model")[i % 3]
        if kind == "transcribe":
            path = case / "in.wav"
            path.write_bytes(mutate(rng.choice(wavs), rng, (4, 16, 22, 24, 28, 34, 40)))
            cases.append(("transcribe", ["transcribe", str(path)], path))
        elif kind == "check-config":
            path = case / "edgevoice.yaml"
            path.write_bytes(mutate(rng.choice(configs), rng))
            cases.append(("check-config", ["check-config", str(path)], path))
        else:
            bundle, name = mutated_bundle(case / "bundle", rng)
            if name == "lm.arpa":  # `model` does not read the LM; a config using it does
                config = case / "lm.yaml"
                config.write_text(f"bundle: {bundle}\nsinks: [{{name: stdout}}]\n")
                cases.append(("check-config (bundle LM)", ["check-config", str(config)], bundle))
            else:
                cases.append((f"model ({name})", ["model", str(bundle)], bundle))
    return cases


def limit_memory() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (ADDRESS_SPACE, ADDRESS_SPACE))


def outcome(argv: list[str], cwd: Path, timeout: float) -> tuple[str, str]:
    """(category, first line of what went wrong) for one run of the CLI."""
    try:
        run = subprocess.run([sys.executable, "-m", "edgevoice", *argv], cwd=cwd,
                             capture_output=True, text=True, errors="replace",
                             timeout=timeout, preexec_fn=limit_memory)
    except subprocess.TimeoutExpired:
        return "hang", f"no exit within {timeout:g} s"
    if "Traceback (most recent call last)" in run.stderr:
        last = [line for line in run.stderr.splitlines() if line.strip()][-1]
        return "crash", last[:200]
    if run.returncode < 0:
        return "crash", f"signal {-run.returncode}"
    if run.returncode == 0:
        return "ok", ""
    if run.returncode in (1, 2) and (run.stderr.strip() or '"error"' in run.stdout):
        return "clean", (run.stderr.strip() or run.stdout.strip()).splitlines()[0][:200]
    return "crash", f"exit {run.returncode}: {run.stderr.strip()[:200]}"


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--cases", type=int, default=240)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--budget", type=float, default=300.0, help="seconds in all")
    ap.add_argument("--timeout", type=float, default=30.0, help="seconds per process")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keep", type=Path, help="copy inputs that crashed or hung here")
    args = ap.parse_args()

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="edgevoice-fuzz-") as tmp:
        work = Path(tmp)
        cases = make_cases(args.cases, work, rng)
        deadline = time.monotonic() + args.budget
        start = time.monotonic()

        def one(case: tuple[str, list[str], Path]) -> tuple[str, str, str, Path]:
            label, argv, path = case
            if time.monotonic() > deadline:
                return label, "skipped", "", path
            category, detail = outcome(argv, path.parent, args.timeout)
            return label, category, detail, path

        with ThreadPoolExecutor(args.jobs) as pool:
            results = list(pool.map(one, cases))
        elapsed = time.monotonic() - start

        counts: Counter[tuple[str, str]] = Counter((r[0], r[1]) for r in results)
        labels = sorted({r[0] for r in results})
        columns = ["ok", "clean", "crash", "hang", "skipped"]
        print(f"{len(results)} cases, seed {args.seed}, {elapsed:.0f} s, {args.jobs} jobs\n")
        print(f"| {'command':<26} | " + " | ".join(f"{c:>7}" for c in columns) + " |")
        print(f"|{'-' * 28}|" + "|".join("-" * 9 for _ in columns) + "|")
        for label in labels:
            print(f"| {label:<26} | "
                  + " | ".join(f"{counts[(label, c)]:>7}" for c in columns) + " |")
        bad = [r for r in results if r[1] in ("crash", "hang")]
        if bad:
            print("\ncrashes and hangs:")
            for label, category, detail, path in bad:
                print(f"  {category:<5} {label}: {detail}")
                if args.keep:
                    dest = args.keep / path.parent.name
                    shutil.copytree(path.parent, dest, dirs_exist_ok=True)
        clean = Counter(re.sub(r"/tmp/\S+", "FILE", r[2])[:70] for r in results
                        if r[1] == "clean")
        print("\nmost common clean errors:")
        for message, n in clean.most_common(8):
            print(f"  {n:4}  {message}")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
