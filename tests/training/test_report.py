"""What `edgevoice-build evaluate` prints: the shipped model's headline figures (metrics.json)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from edgevoice.training.cli import main
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
from edgevoice.training.stages import Work

NEGATIVES = {"neg_words": {"false_output": 0.04}, "neg_noise": {"false_output": 0.02}}
METRICS = {
    "accuracy": {"int8": {"clean": {"wer": 0.3, "cer": 0.2, "string_right": 0.4}},
                 "int8_beam_lm": {"clean": {"wer": 0.1, "cer": 0.05, "string_right": 0.6}}},
    "strangers": {
        "int8_beam_lm": {"words_clean": {"wer": 0.2, "phrase_right": 0.8, "phrase_wrong": 0.08,
                                         "phrase_nothing": 0.12}, **NEGATIVES},
        "int8_beam_lm_reject": {"words_clean": {"wer": 0.25, "phrase_right": 0.75,
                                                "phrase_wrong": 0.02, "phrase_nothing": 0.23},
                                **NEGATIVES},
    },
    "strangers_per_word": {
        "int8_beam_lm": {"yes": {"clips": 40, "right": 0.9, "wrong": 0.05, "nothing": 0.05,
                                 "became": "no"}},
        "int8_beam_lm_reject": {"yes": {"clips": 40, "right": 0.85, "wrong": 0.025,
                                        "nothing": 0.125, "became": "no"},
                                "stop": {"clips": 30, "right": 1.0, "wrong": 0.0,
                                         "nothing": 0.0, "became": None}},
    },
}


def test_evaluate_prints_phrase_accuracy_and_wrong_commands_of_the_shipped_model(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # An evaluation that is up to date is not run again; its figures are printed all the same.
    Work(load_recipe(DEFAULT_RECIPE), tmp_path).mark_done("evaluate", {})
    (tmp_path / "evaluate" / "metrics.json").write_text(json.dumps(METRICS))
    assert main(["-q", "evaluate", "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out == [
        "Held-out connected strings, int8_beam_lm:",
        "  clean: WER 10.0 %, CER 5.0 %, strings right 60.0 %",
        "Held-out Speech Commands speakers, single words, int8_beam_lm_reject:",
        "  clean: WER 25.0 %, phrase accuracy 75.0 %, wrong command 2.0 %, "
        "nothing published 23.0 %",
        "  other words -> output 4.0 %, noise -> output 2.0 %",
        "Per word, clean, int8_beam_lm_reject (% right / wrong / nothing):",
        "  yes: 85.0 / 2.5 / 12.5, most often heard as 'no' (40 clips)",
        "  stop: 100.0 / 0.0 / 0.0 (30 clips)",
    ]


def test_figures_older_metrics_lack_are_left_out_of_the_summary(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    old = {"accuracy": {"int8": {"clean": {"wer": 0.3, "cer": 0.2}}},
           "strangers": {"int8": {"words_clean": {"wer": 0.2}, **NEGATIVES}}}
    Work(load_recipe(DEFAULT_RECIPE), tmp_path).mark_done("evaluate", {})
    (tmp_path / "evaluate" / "metrics.json").write_text(json.dumps(old))
    assert main(["-q", "evaluate", "--work-dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "  clean: WER 30.0 %, CER 20.0 %\n" in out and "  clean: WER 20.0 %\n" in out
    assert "Per word" not in out
