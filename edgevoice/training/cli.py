"""edgevoice-build: thin command line over the build stages."""

from __future__ import annotations

import argparse
import json
import logging
import shlex
import sys
import traceback
from pathlib import Path
from typing import Any

import yaml

from edgevoice.errors import BuildError, EdgevoiceError
from edgevoice.startup import BUILD_POOLS, limit_blas_threads

STAGE_HELP = {
    "synth": "render the recipe's phrases with Debian's speech engines (or --phrases to --out)",
    "prepare": "read and split the data, compute the frontend normalisation",
    "train": "train the float CTC model (resumes from its checkpoint)",
    "prune": "prune to the target sparsity with fine-tuning",
    "quantize": "convert to a full-INT8 TFLite model",
    "evaluate": "WER/CER, phrase accuracy and wrong commands of float, pruned and INT8 models, "
                "size, MACs, latency",
    "export": "write the bundle (model.tflite, bundle.yaml, metrics.json, lm.arpa, MODEL_CARD.md)",
}


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("recipe", nargs="?", help="recipe YAML (default: the built-in digits recipe)")
    p.add_argument("--work-dir", help="where stage outputs go (default: the recipe's work_dir)")
    p.add_argument("--fsdd", help="FSDD-style data folder (overrides data.fsdd)")
    p.add_argument("--out", help="bundle output directory (overrides export.out)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="override a recipe value, e.g. --set train.steps=100 (repeatable)")
    p.add_argument("--force", action="store_true", help="re-run even if up to date")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="edgevoice-build",
        description="Train, prune and quantize edgevoice model bundles from recordings and "
                    "synthetic speech.")
    parser.add_argument("--debug", action="store_true", help="show tracebacks")
    parser.add_argument("-q", "--quiet", action="store_true", help="only warnings and errors")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, text in STAGE_HELP.items():
        p = sub.add_parser(name, help=text, description=text)
        _common(p)
        if name == "synth":
            p.add_argument("--phrases", nargs="+", help="words or phrases to render")
    p = sub.add_parser("recipe", help="run every stage of a recipe (resumable)",
                       description="Run synth, prepare, train, prune, quantize, evaluate and "
                                   "export; finished stages are skipped.")
    _common(p)
    try:
        from edgevoice.training import lm
    except ImportError:
        lm = None  # type: ignore[assignment]
    if lm is not None and hasattr(lm, "add_parser"):
        lm.add_parser(sub)
    return parser


def _overrides(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise BuildError(f"--set {item!r}: expected KEY=VALUE, e.g. train.steps=100")
        if not value.strip():  # `--set train.init_from=` clears an option: an empty string
            out[key.strip()] = ""
            continue
        try:
            out[key.strip()] = yaml.safe_load(value)
        except yaml.YAMLError:
            raise BuildError(f"--set {item!r}: value is not valid YAML") from None
    if args.fsdd:
        out["data.fsdd"] = args.fsdd
    if args.out:
        out["export.out"] = args.out
    if args.work_dir:
        out["work_dir"] = args.work_dir
    return out


def _reproduce(args: argparse.Namespace) -> str:
    """The one command that rebuilds this bundle from scratch (for the model card)."""
    words = ["edgevoice-build", "recipe"]
    if args.recipe:
        words.append(args.recipe)
    for flag in ("fsdd", "out"):
        if getattr(args, flag):
            words += [f"--{flag}", getattr(args, flag)]
    for item in args.set:
        words += ["--set", item]
    return shlex.join(words)


def _run(args: argparse.Namespace) -> None:
    from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
    from edgevoice.training.stages import STAGES, Work, card_appendix, run, run_all

    recipe = load_recipe(args.recipe or DEFAULT_RECIPE, _overrides(args))
    if args.command == "synth" and args.phrases:
        from edgevoice.training.synth import synthesize

        if not args.out:
            raise BuildError("synth --phrases needs --out DIR for the WAVs and manifest.jsonl")
        manifest = synthesize(recipe.synth, args.out, tuple(args.phrases))
        print(f"wrote {manifest}")
        return
    work = Work(recipe, Path(recipe.work_dir), _reproduce(args))
    # A missing or unusable bundle or card file is one line, before any stage runs.
    if recipe.train.init_from:
        work.init_bundle()
    card_appendix(recipe)
    if args.command == "recipe":
        run_all(work, args.force)
    elif args.command in STAGES:
        run(work, args.command, force=args.force)
    if args.command in ("recipe", "evaluate"):
        from edgevoice.training.report import summary

        # Also when the stage was up to date: the figures of the run that is there.
        print(summary(json.loads((work.root / "evaluate" / "metrics.json").read_text())))
    if args.command in ("recipe", "export"):
        from edgevoice.training.realdata import summary as real_data_summary

        print(f"bundle written to {recipe.export.out}")
        print(real_data_summary(work.real_data()))  # what the figures are worth on strangers


def main(argv: list[str] | None = None) -> int:
    limit_blas_threads(BUILD_POOLS)  # first: numpy is not loaded yet
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING if args.quiet else logging.INFO,
                        format="%(asctime)s %(message)s", datefmt="%H:%M:%S")
    try:
        if hasattr(args, "func"):  # subcommands contributed by other modules (lm)
            args.func(args)
        else:
            _run(args)
    except (EdgevoiceError, KeyboardInterrupt) as exc:
        if args.debug:
            traceback.print_exc()
        message = str(exc) if isinstance(exc, EdgevoiceError) else "interrupted"
        print(f"edgevoice-build: error: {message}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
