"""The accuracy/size frontier of built bundles, as the model card shows it:

    python benchmarks/frontier.py \
        --variant "160 channels (shipped)=runs/paired/B_seed1/bundle,runs/paired/B_seed2/bundle" \
        --variant "80 channels=runs/paired/A_seed1/bundle,runs/paired/A_seed2/bundle" \
        --out edgevoice/training/recipes/digits_frontier.md

prints one row per variant (the INT8 model's size, and the held-out strangers and FSDD figures
of its default decoder, each the mean over the variant's bundles: one per training seed) and
writes the table to `--out`, which a recipe's `export.card_appendix` puts into the model card.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from edgevoice.bundle import load_bundle
from edgevoice.errors import EdgevoiceError
from edgevoice.training.compare import frontier_table


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variant", action="append", required=True, metavar="LABEL=DIR[,DIR...]",
                   help="a model size and its bundles, one per seed (repeatable)")
    p.add_argument("--out", type=Path, help="also write the table (Markdown) here")
    args = p.parse_args()
    try:
        variants = []
        for item in args.variant:
            label, sep, dirs = item.rpartition("=")  # a label may hold "=" (a --set)
            if not sep or not dirs.strip():
                p.error(f"--variant {item!r}: expected LABEL=DIR[,DIR...]")
            variants.append((label.strip(), [load_bundle(d.strip()).metrics
                                             for d in dirs.split(",") if d.strip()]))
        table = frontier_table(variants)
    except EdgevoiceError as e:
        sys.exit(f"frontier: {e}")
    print(table)
    if args.out:
        args.out.write_text(table + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
