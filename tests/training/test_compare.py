"""Paired comparison of recipe variants over seeds (benchmarks/paired_seeds.py)."""

from __future__ import annotations

import math

import pytest

from edgevoice.errors import BuildError
from edgevoice.training.compare import figures, pair, report


def _metrics(float_wer: dict[str, float], pruned_wer: dict[str, float],
             int8_wer: dict[str, float], suffix: str = "_beam_lm") -> dict:
    def block(w: dict[str, float]) -> dict:
        return {c: {"wer": v, "cer": v / 2} for c, v in w.items()}
    return {"accuracy": {"float" + suffix: block(float_wer), "pruned" + suffix: block(pruned_wer),
                         "int8" + suffix: block(int8_wer)}}


def test_figures_derive_pruning_and_int8_costs_in_points() -> None:
    m = _metrics({"clean": 0.10, "snr5": 0.50}, {"clean": 0.12, "snr5": 0.49},
                 {"clean": 0.125, "snr5": 0.52})
    f = figures(m)
    assert f[("beam_lm", "float", "clean")] == pytest.approx(10.0)
    assert f[("beam_lm", "pruning cost", "clean")] == pytest.approx(2.0)
    assert f[("beam_lm", "pruning cost", "snr5")] == pytest.approx(-1.0)
    assert f[("beam_lm", "INT8 cost", "snr5")] == pytest.approx(3.0)
    assert not any(k[0] == "greedy" for k in f)


def test_pair_means_paired_differences_and_spread() -> None:
    a = [_metrics({"clean": 0.10, "snr10": 0.40}, {"clean": 0.11, "snr10": 0.42},
                  {"clean": 0.11, "snr10": 0.42}),
         _metrics({"clean": 0.20, "snr10": 0.40}, {"clean": 0.22, "snr10": 0.44},
                  {"clean": 0.22, "snr10": 0.44})]
    b = [_metrics({"clean": 0.12, "snr10": 0.40}, {"clean": 0.12, "snr10": 0.40},
                  {"clean": 0.13, "snr10": 0.41}),
         _metrics({"clean": 0.16, "snr10": 0.40}, {"clean": 0.16, "snr10": 0.41},
                  {"clean": 0.16, "snr10": 0.41})]
    pairs = {(p.quantity, p.condition): p for p in pair(a, b)}
    flt = pairs[("float", "clean")]
    assert flt.a == pytest.approx((10.0, 20.0)) and flt.b == pytest.approx((12.0, 16.0))
    assert flt.diffs == pytest.approx((2.0, -4.0))
    assert flt.mean_a == pytest.approx(15.0) and flt.mean_b == pytest.approx(14.0)
    assert flt.mean_diff == pytest.approx(-1.0)
    assert flt.sd_diff == pytest.approx(math.sqrt(18.0))  # (3^2 + 3^2) / (2 - 1)
    cost = pairs[("pruning cost", "snr10")]
    assert cost.a == pytest.approx((2.0, 4.0)) and cost.b == pytest.approx((0.0, 1.0))
    assert cost.mean_diff == pytest.approx(-2.5)
    # clean before SNRs, the models in pipeline order, then the costs
    order = [(p.quantity, p.condition) for p in pair(a, b)]
    assert order[:2] == [("float", "clean"), ("float", "snr10")]
    assert order.index(("int8", "snr10")) < order.index(("pruning cost", "clean"))


def test_snr_conditions_run_from_clean_to_loudest_noise() -> None:
    w = {"snr5": 0.5, "clean": 0.1, "snr15": 0.3, "snr10": 0.4}
    m = _metrics(w, w, w, suffix="")
    conditions = [p.condition for p in pair([m], [m]) if p.quantity == "float"]
    assert conditions == ["clean", "snr15", "snr10", "snr5"]
    assert all(p.decoder == "greedy" for p in pair([m], [m]))


def test_report_shows_per_seed_differences() -> None:
    a = [_metrics({"clean": 0.10}, {"clean": 0.10}, {"clean": 0.10})] * 2
    b = [_metrics({"clean": 0.12}, {"clean": 0.12}, {"clean": 0.12}),
         _metrics({"clean": 0.09}, {"clean": 0.09}, {"clean": 0.09})]
    text = report(pair(a, b), [1, 2])
    row = next(line for line in text.splitlines() if "| float | clean |" in line)
    # differences +2 and -1: mean +0.5, sd sqrt(1.5^2 + 1.5^2) = 2.12
    assert row == "| beam_lm | float | clean | 10.00 | 10.50 | +0.50 | 2.12 | +2.0 | -1.0 |"
    assert "seed 1 | seed 2" in text.splitlines()[0]
    one = report(pair(a[:1], b[:1]), [1])
    assert "| +2.00 |  | +2.0 |" in one  # no spread from one seed


def test_unpaired_or_disjoint_runs_are_refused() -> None:
    m = _metrics({"clean": 0.1}, {"clean": 0.1}, {"clean": 0.1})
    with pytest.raises(BuildError, match="same number of runs"):
        pair([m, m], [m])
    other = _metrics({"snr5": 0.1}, {"snr5": 0.1}, {"snr5": 0.1})
    with pytest.raises(BuildError, match="no accuracy figures in common"):
        pair([m], [other])


def test_strangers_figures_join_the_comparison_noisy_ones_averaged_over_5_to_15_db() -> None:
    from edgevoice.training.compare import stranger_figures

    sets = {"words_clean": {"wer": 0.2}, "words_reverb": {"wer": 0.25},
            "neg_words": {"false_output": 0.3}, "neg_noise": {"false_output": 0.05}}
    for kind, base in (("impulsive", 0.3), ("babble", 0.5), ("music", 0.6), ("pink", 0.9)):
        for snr in (0, 5, 10, 15, 20):  # 0 and 20 dB are left out of the averages
            sets[f"words_{kind}_{snr}dB"] = {"wer": base + (0.0 if 5 <= snr <= 15 else 0.3)
                                             + snr / 1000}
    f = stranger_figures(sets)
    assert f["strangers clean"] == pytest.approx(20.0)
    assert f["strangers reverberant"] == pytest.approx(25.0)
    assert f["strangers impulsive+babble 5-15 dB"] == pytest.approx(41.0)  # (30 + 50) / 2 + 1
    assert f["strangers unheard noise 5-15 dB"] == pytest.approx(61.0)  # music only: not pink
    assert f["other words -> output"] == pytest.approx(30.0)
    assert f["noise -> output"] == pytest.approx(5.0)
    m = _metrics({"clean": 0.1}, {"clean": 0.1}, {"clean": 0.1})
    m["strangers"] = {"int8_beam_lm": sets}
    keys = [k for k in figures(m) if k[1] == "int8"]
    assert ("beam_lm", "int8", "strangers clean") in keys
    assert stranger_figures({}) == {}


def test_frontier_table_means_each_size_over_its_seeds() -> None:
    from edgevoice.training.compare import frontier_table

    def run(clean: float, size: int) -> dict:
        m = _metrics({"clean": clean}, {"clean": clean}, {"clean": clean})
        m["decoder"] = {"name": "beam", "vocabulary": "lm"}
        m["strangers"] = {"int8_beam_lm": {"words_clean": {"wer": clean},
                                           "neg_words": {"false_output": 0.25}}}
        m["latency"] = {"ms_per_audio_second": 0.5}
        m["cost"] = {"model_bytes": size, "params": 171909}
        return m

    table = frontier_table([("160 channels", [run(0.18, 185352), run(0.16, 185352)])])
    row = table.splitlines()[2]
    assert row.startswith("| 160 channels | 181 | 171,909 | 2 | 17.0 % | n/a | n/a | 25.0 % |")
    assert row.endswith("| 17.0 % | 0.50 |")  # FSDD strings clean: the accuracy figure
    with pytest.raises(BuildError, match="no runs"):
        frontier_table([("empty", [])])
