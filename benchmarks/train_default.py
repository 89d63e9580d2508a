"""Reproduce the shipped default model and time it: the one recipe command, end to end.

    python benchmarks/train_default.py [--force]

is the same as `edgevoice-build recipe edgevoice/training/recipes/digits.yaml` (add --force to
rebuild every stage instead of resuming), followed by a summary of the bundle's metrics.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from edgevoice.bundle import load_bundle
from edgevoice.training.cli import main as build_main
from edgevoice.training.export import metrics_table
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--force", action="store_true", help="re-run every stage")
    # Relative to the working directory when inside it, so the model card's "reproduce" command
    # reads `edgevoice-build recipe edgevoice/training/recipes/digits.yaml`, not a host path.
    default = DEFAULT_RECIPE.resolve()
    if default.is_relative_to(Path.cwd()):
        default = default.relative_to(Path.cwd())
    p.add_argument("--recipe", default=str(default))
    args = p.parse_args()
    t0 = time.monotonic()
    code = build_main(["recipe", args.recipe, *(["--force"] if args.force else [])])
    if code:
        sys.exit(code)
    minutes = (time.monotonic() - t0) / 60
    bundle = load_bundle(load_recipe(args.recipe).export.out)
    m = bundle.metrics
    print(f"\n{bundle.describe()}\nbuilt in {minutes:.1f} min\n")
    print(metrics_table(m))
    print(f"\nparams {m['cost']['params']}, {m['cost']['model_bytes'] / 1024:.1f} KiB, "
          f"{m['cost']['macs_per_second'] / 1e6:.2f} M MAC/s, "
          f"{m['latency']['ms_per_audio_second']} ms per audio second (INT8, 1 thread)")


if __name__ == "__main__":
    main()
