"""Compare two recipe variants over paired training seeds, e.g. a wider model:

    python benchmarks/paired_seeds.py --b model.channels=80 --b quantize.per_channel=false \
        --seeds 1 2 3

builds the recipe (default: the shipped digits recipe) once per seed as variant A (the recipe as
it is, plus any --a overrides) and once as variant B (plus the --b overrides), each with that
`train.seed`, and prints the mean WER of each, the mean paired difference B - A and its spread,
and the difference per seed, for the float, pruned and INT8 models and every decoder evaluated.
Runs go to `--work-dir` (one folder per variant and seed, each with its bundle) and resume like
any recipe, so an interrupted comparison picks up where it stopped and a finished one only
prints. A full digits build takes about 24 minutes on 2 cores: three seeds of two variants is
about 2.5 hours.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgevoice.bundle import load_bundle
from edgevoice.errors import EdgevoiceError
from edgevoice.training.cli import main as build_main
from edgevoice.training.compare import pair, report
from edgevoice.training.recipe import DEFAULT_RECIPE


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--recipe", default=str(DEFAULT_RECIPE))
    p.add_argument("--a", action="append", default=[], metavar="KEY=VALUE",
                   help="override for variant A (repeatable; default: the recipe as it is)")
    p.add_argument("--b", action="append", default=[], metavar="KEY=VALUE",
                   help="override for variant B (repeatable)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--work-dir", type=Path, default=Path("runs/paired"))
    args = p.parse_args()
    if not args.a and not args.b:
        p.error("give the variant to compare with --b KEY=VALUE (and --a for the baseline)")
    if any(item.split("=", 1)[0].strip() == "train.seed" for item in args.a + args.b):
        p.error("train.seed is set per run by --seeds; do not override it in a variant")
    metrics: dict[str, list[dict]] = {"A": [], "B": []}
    for seed in args.seeds:  # seed-major: an interrupted comparison leaves whole pairs
        for name, sets in (("A", args.a), ("B", args.b)):
            work = args.work_dir / f"{name}_seed{seed}"
            print(f"--- variant {name}, train.seed {seed}: {work}", flush=True)
            words = ["recipe", args.recipe, "--work-dir", str(work), "--out", str(work / "bundle"),
                     "--set", f"train.seed={seed}"]
            for item in sets:
                words += ["--set", item]
            code = build_main(words)
            if code:
                sys.exit(code)
            metrics[name].append(load_bundle(work / "bundle").metrics)
    try:
        pairs = pair(metrics["A"], metrics["B"])
    except EdgevoiceError as e:
        sys.exit(f"paired_seeds: {e}")
    print(f"\nA: {' '.join(args.a) or '(the recipe)'}\nB: {' '.join(args.b)}\n"
          f"{args.recipe}, train.seed {', '.join(map(str, args.seeds))}; WER in %, costs in "
          f"WER points (pruning: pruned - float; INT8: int8 - pruned)\n")
    print(report(pairs, args.seeds))


if __name__ == "__main__":
    main()
