"""Compare two recipe variants over paired training seeds.

On one held-out speaker, two trainings that differ only in their seed can differ by several WER
points, so a recipe change is judged by the mean of paired differences (same seed, same test
set) and their spread, not by one run of each.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any

from edgevoice.errors import BuildError

# Decoders the evaluate stage reports, by the suffix of their accuracy keys: greedy ("float",
# "pruned", "int8") and beam variants ("float_beam_lm", ...). Dict order is report order.
_DECODERS = {"": "greedy", "_beam": "beam", "_beam_lm": "beam_lm"}
_STAGES = ("float", "pruned", "int8")
# cost name -> (model, the model it is measured against)
_COSTS = {"pruning cost": ("pruned", "float"), "INT8 cost": ("int8", "pruned")}


@dataclass(frozen=True)
class Paired:
    """One figure (WER %, or a cost in WER points) of variants A and B, one value per seed."""

    decoder: str
    quantity: str
    condition: str
    a: tuple[float, ...]
    b: tuple[float, ...]

    @property
    def diffs(self) -> tuple[float, ...]:
        return tuple(y - x for x, y in zip(self.a, self.b, strict=True))

    @property
    def mean_a(self) -> float:
        return sum(self.a) / len(self.a)

    @property
    def mean_b(self) -> float:
        return sum(self.b) / len(self.b)

    @property
    def mean_diff(self) -> float:
        return sum(self.diffs) / len(self.diffs)

    @property
    def sd_diff(self) -> float:
        """Sample standard deviation of the paired differences (nan with one seed)."""
        d = self.diffs
        if len(d) < 2:
            return math.nan
        m = self.mean_diff
        return math.sqrt(sum((x - m) ** 2 for x in d) / (len(d) - 1))


def figures(metrics: dict[str, Any]) -> dict[tuple[str, str, str], float]:
    """(decoder, quantity, condition) -> value from a bundle's metrics: WER % of the float,
    pruned and INT8 models, and the pruning cost (pruned - float) and INT8 cost (int8 - pruned)
    in WER points, for every decoder the evaluation ran."""
    acc = metrics.get("accuracy") or {}
    out: dict[tuple[str, str, str], float] = {}
    for suffix, decoder in _DECODERS.items():
        wer = {stage: {c: 100.0 * v["wer"] for c, v in acc[stage + suffix].items()}
               for stage in _STAGES if stage + suffix in acc}
        for stage, by_condition in wer.items():
            for condition, value in by_condition.items():
                out[(decoder, stage, condition)] = value
        for quantity, (hi, lo) in _COSTS.items():
            if hi in wer and lo in wer:
                for condition in wer[hi].keys() & wer[lo].keys():
                    out[(decoder, quantity, condition)] = wer[hi][condition] - wer[lo][condition]
        for stage in _STAGES:
            by_set = (metrics.get("strangers") or {}).get(stage + suffix)
            for condition, value in stranger_figures(by_set or {}).items():
                out[(decoder, stage, condition)] = value
    return out


# The held-out Speech Commands figures a recipe change is judged by (% of words or clips).
STRANGERS = ("strangers clean", "strangers reverberant", "strangers impulsive+babble 5-15 dB",
             "strangers unheard noise 5-15 dB", "other words -> output", "noise -> output")


def stranger_figures(by_set: dict[str, Any]) -> dict[str, float]:
    """STRANGERS from one model and decoder's strangers scores ({} if it has none); the noisy
    figures average the kinds' WER at 5, 10 and 15 dB (unheard: the kinds held out of training,
    every words_* set that is not clean, reverberant, pink, impulsive or babble)."""
    if "words_clean" not in by_set:
        return {}
    def mean_wer(kinds: list[str]) -> float | None:
        sets = [f"words_{k}_{snr}dB" for k in kinds for snr in (5, 10, 15)]
        values = [by_set[s]["wer"] for s in sets if s in by_set]
        return 100.0 * sum(values) / len(values) if values else None

    seen = {"clean", "reverb", "pink", "impulsive", "babble"}
    unheard = sorted({m.group(1) for name in by_set
                      if (m := re.fullmatch(r"words_(.+)_\d+dB", name)) and m.group(1) not in seen})
    values = [100.0 * by_set["words_clean"]["wer"],
              100.0 * by_set["words_reverb"]["wer"] if "words_reverb" in by_set else None,
              mean_wer(["impulsive", "babble"]), mean_wer(unheard),
              100.0 * by_set["neg_words"]["false_output"] if "neg_words" in by_set else None,
              100.0 * by_set["neg_noise"]["false_output"] if "neg_noise" in by_set else None]
    return {k: v for k, v in zip(STRANGERS, values, strict=True) if v is not None}


def _condition_order(condition: str) -> tuple[int, float, str]:
    """clean first, then SNRs from the highest down, then anything else by name."""
    if condition == "clean":
        return (0, 0.0, condition)
    m = re.fullmatch(r"snr(-?\d+(?:\.\d+)?)", condition)
    if m:
        return (1, -float(m.group(1)), condition)
    if condition in STRANGERS:
        return (2, float(STRANGERS.index(condition)), condition)
    return (3, 0.0, condition)


def pair(runs_a: list[dict[str, Any]], runs_b: list[dict[str, Any]]) -> list[Paired]:
    """Pair run i of A with run i of B (the same seed) over the figures both report."""
    if len(runs_a) != len(runs_b) or not runs_a:
        raise BuildError(f"paired comparison needs the same number of runs of A and B, at least "
                         f"one (got {len(runs_a)} and {len(runs_b)})")
    fa = [figures(m) for m in runs_a]
    fb = [figures(m) for m in runs_b]
    common = set.intersection(*(set(f) for f in fa + fb))
    if not common:
        raise BuildError("variants A and B have no accuracy figures in common: do their recipes "
                         "evaluate the same test sets?")
    decoders = {d: i for i, d in enumerate(_DECODERS.values())}
    quantities = {q: i for i, q in enumerate((*_STAGES, *_COSTS))}
    keys = sorted(common, key=lambda k: (decoders[k[0]], quantities[k[1]], _condition_order(k[2])))
    return [Paired(d, q, c, tuple(f[(d, q, c)] for f in fa), tuple(f[(d, q, c)] for f in fb))
            for d, q, c in keys]


def report(pairs: list[Paired], seeds: list[int]) -> str:
    """Markdown table: means of A and B, the mean paired difference B - A with its spread, and
    the difference per seed."""
    head = ("| decoder | figure | test set | A mean | B mean | B - A mean | sd | "
            + " | ".join(f"seed {s}" for s in seeds) + " |")
    rule = "|---" * (7 + len(seeds)) + "|"
    rows = []
    for p in pairs:
        sd = "" if math.isnan(p.sd_diff) else f"{p.sd_diff:.2f}"
        per_seed = " | ".join(f"{d:+.1f}" for d in p.diffs)
        rows.append(f"| {p.decoder} | {p.quantity} | {p.condition} | {p.mean_a:.2f} | "
                    f"{p.mean_b:.2f} | {p.mean_diff:+.2f} | {sd} | {per_seed} |")
    return "\n".join([head, rule, *rows])


FRONTIER_COLUMNS = ("strangers clean", "strangers impulsive+babble 5-15 dB",
                    "strangers unheard noise 5-15 dB", "other words -> output", "noise -> output")


def frontier_table(variants: list[tuple[str, list[dict[str, Any]]]]) -> str:
    """Markdown: per variant (label, the metrics of its runs over seeds), the INT8 model's size
    and its figures with the bundle's default decoder, each the mean over the runs."""
    head = ("| model | INT8 KiB | parameters | seeds | " + " | ".join(FRONTIER_COLUMNS)
            + " | FSDD strings clean | ms per audio s |")
    rows = [head, "|---" * (len(FRONTIER_COLUMNS) + 6) + "|"]
    for label, runs in variants:
        if not runs:
            raise BuildError(f"frontier: variant {label!r} has no runs")
        name = "int8" + _default_suffix(runs[0])
        values = [stranger_figures(m.get("strangers", {}).get(name, {})) for m in runs]
        cells = [_mean([v.get(c) for v in values]) for c in FRONTIER_COLUMNS]
        strings = _mean([100.0 * m["accuracy"][name]["clean"]["wer"] for m in runs])
        ms = _mean([m["latency"]["ms_per_audio_second"] for m in runs], "{:.2f}")
        cost = runs[0]["cost"]
        rows.append(f"| {label} | {cost['model_bytes'] / 1024:.0f} | {cost['params']:,} | "
                    f"{len(runs)} | " + " | ".join(cells) + f" | {strings} | {ms} |")
    return "\n".join(rows)


def _default_suffix(metrics: dict[str, Any]) -> str:
    decoder = metrics.get("decoder") or {}
    if decoder.get("name") != "beam":
        return ""
    return "_beam_lm" if "int8_beam_lm" in metrics.get("accuracy", {}) else "_beam"


def _mean(values: list[float | None], fmt: str = "{:.1f} %") -> str:
    known = [v for v in values if v is not None]
    return fmt.format(sum(known) / len(known)) if known else "n/a"
