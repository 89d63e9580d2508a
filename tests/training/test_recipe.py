from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from edgevoice.errors import BuildError
from edgevoice.training.recipe import DEFAULT_RECIPE, Recipe, load_recipe


def _refused(tmp_path: Path, text: str) -> tuple[Path, str]:
    """A recipe file of `text` and the error message loading it gives."""
    f = tmp_path / "r.yaml"
    f.write_text(text)
    with pytest.raises(BuildError) as err:
        load_recipe(f)
    return f, str(err.value)


def test_default_recipe_loads() -> None:
    r = load_recipe(DEFAULT_RECIPE)
    assert r.data.test_speakers == ("nicolas",)
    assert r.frontend.n_mels == 40 and r.frontend.fmax == 4000.0


def test_unknown_key_names_file_line_path_and_suggestion(tmp_path: Path) -> None:
    f, msg = _refused(tmp_path, "name: x\ntrain:\n  stepz: 10\n")
    assert str(f) in msg
    assert 'line 3: train.stepz: unknown option (did you mean "steps"?)' in msg


def test_wrong_type_and_several_problems_reported_at_once(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "model:\n  channels: many\naugment:\n  speed: [0.9]\nbogus: 1\n")
    assert "3 problems" in msg
    assert "model.channels: expected int" in msg and "augment.speed" in msg


def test_overrides_are_validated_too() -> None:
    r = load_recipe(DEFAULT_RECIPE, {"train.steps": 5, "model.channels": 8})
    assert r.train.steps == 5 and r.model.channels == 8
    with pytest.raises(BuildError, match="train.stpes"):
        load_recipe(DEFAULT_RECIPE, {"train.stpes": 5})


def test_an_empty_set_value_clears_an_option_and_bad_ones_are_named() -> None:
    import argparse

    from edgevoice.training.cli import _overrides

    args = argparse.Namespace(set=["train.init_from=", "train.steps= 7"], fsdd=None, out=None,
                              work_dir=None)
    over = _overrides(args)
    assert over == {"train.init_from": "", "train.steps": 7}
    commands = DEFAULT_RECIPE.parent / "commands.yaml"
    assert load_recipe(commands, over).train.init_from == ""  # from scratch, as its comment says
    with pytest.raises(BuildError, match="KEY=VALUE"):
        _overrides(argparse.Namespace(set=["train.steps"], fsdd=None, out=None, work_dir=None))


def test_invalid_yaml_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("train: [unclosed\n")
    with pytest.raises(BuildError, match="not valid YAML"):
        load_recipe(f)


def test_unknown_noise_kind_is_named_with_its_line(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "augment:\n  p_noise: 0.5\n  noise_kinds: [pink, babel]\n")
    assert "line 3: augment.noise_kinds" in msg and "babel" in msg and "babble" in msg
    weighted = tmp_path / "w.yaml"
    weighted.write_text("augment:\n  noise_kinds: [pink, babble, babble]\n")
    assert load_recipe(weighted).augment.noise_kinds == ("pink", "babble", "babble")


def test_no_noise_kinds_is_fine_only_when_no_noise_is_used() -> None:
    quiet = load_recipe(DEFAULT_RECIPE, {"augment.noise_kinds": [], "augment.p_noise": 0,
                                         "evaluate.noise_kinds": [], "evaluate.snrs": []})
    assert quiet.augment.noise_kinds == () and quiet.evaluate.snrs == ()
    with pytest.raises(BuildError, match="augment.noise_kinds: needs at least one"):
        load_recipe(DEFAULT_RECIPE, {"augment.noise_kinds": [], "augment.p_noise": 0.5})


def test_shares_and_probabilities_must_lie_between_0_and_1(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "synth:\n  accented: 1.5\naugment:\n  p_noise: -0.1\n")
    assert "line 2: synth.accented: 1.5 is outside the allowed range 0..1" in msg
    assert "line 4: augment.p_noise: -0.1 is outside the allowed range 0..1" in msg
    assert load_recipe(DEFAULT_RECIPE, {"synth.accented": 1.0}).synth.accented == 1.0


def test_averaging_decay_and_distillation_weight_are_checked() -> None:
    with pytest.raises(BuildError, match="train.ema: 1.0 must be at least 0 and below 1"):
        load_recipe(DEFAULT_RECIPE, {"train.ema": 1.0})
    with pytest.raises(BuildError, match=r"prune.distill: -1.0 is outside the allowed range "
                                         r"0\.\.inf"):
        load_recipe(DEFAULT_RECIPE, {"prune.distill": -1.0})
    with pytest.raises(BuildError, match="prune.branch: 1.0 must be at least 0 and below 1"):
        load_recipe(DEFAULT_RECIPE, {"prune.branch": 1.0})


def test_the_pruning_branch_point_is_part_of_the_training_fingerprint(tmp_path: Path) -> None:
    """Training keeps the weights a pruning branch starts from, so moving the branch point
    retrains; other pruning settings do not."""
    from edgevoice.training.stages import Work

    def prints(**sets: object) -> tuple[str, str]:
        work = Work(load_recipe(DEFAULT_RECIPE, dict(sets)), tmp_path)
        return work.fingerprint("train"), work.fingerprint("prune")

    base = prints()
    assert prints(**{"prune.branch": 0.5})[0] != base[0]
    steps = prints(**{"prune.steps": 17})
    assert steps[0] == base[0] and steps[1] != base[1]


def test_a_new_bundle_folder_re_exports_without_re_evaluating(tmp_path: Path) -> None:
    """The figures depend on the bundle's decoder and LM, not on where it is written."""
    from edgevoice.training.stages import Work

    def prints(**sets: object) -> tuple[str, str]:
        work = Work(load_recipe(DEFAULT_RECIPE, dict(sets)), tmp_path)
        return work.fingerprint("evaluate"), work.fingerprint("export")

    base = prints()
    moved = prints(**{"export.out": str(tmp_path / "elsewhere"), "export.version": "9"})
    assert moved[0] == base[0] and moved[1] != base[1]
    assert prints(**{"export.decoder": {"name": "greedy"}})[0] != base[0]
    assert prints(**{"export.lm_order": 2})[0] != base[0]


def test_export_is_not_done_when_its_bundle_is_gone(tmp_path: Path) -> None:
    from edgevoice.training.stages import Work

    out = tmp_path / "bundle"
    work = Work(load_recipe(DEFAULT_RECIPE, {"export.out": str(out)}), tmp_path / "work")
    work.mark_done("export", {})
    assert not work.is_done("export")  # marker written, but no bundle there
    out.mkdir()
    (out / "bundle.yaml").write_text("name: digits\n")
    assert work.is_done("export")
    work.mark_done("evaluate", {})
    assert work.is_done("evaluate")


def test_a_stage_run_again_makes_the_stages_after_it_stale(tmp_path: Path) -> None:
    import json
    import shutil

    from edgevoice.errors import BuildError
    from edgevoice.training.stages import STAGES, Work

    out = tmp_path / "bundle"
    out.mkdir()
    (out / "bundle.yaml").write_text("name: digits\n")
    work = Work(load_recipe(DEFAULT_RECIPE, {"export.out": str(out)}), tmp_path / "work")
    for stage in STAGES:
        work.mark_done(stage, {})
    assert all(work.is_done(stage) for stage in STAGES)
    work.mark_done("evaluate", {})  # e.g. a new reject threshold: the bundle must be rewritten
    assert work.is_done("quantize") and work.is_done("evaluate")
    assert not work.is_done("export")
    work.mark_done("export", {})
    assert work.is_done("export")
    work.mark_done("train", {})  # a new model: nothing after it holds
    assert [s for s in STAGES if not work.is_done(s)] == ["prune", "quantize", "evaluate",
                                                          "export"]
    with pytest.raises(BuildError, match="stage 'quantize' .* was built before stage 'train' "
                                         "ran again: run `edgevoice-build recipe`"):
        work.need("quantize")
    for stage in ("prune", "quantize", "evaluate", "export"):
        work.mark_done(stage, {})
    # A stage that first runs after the later ones (synth, skipped until now) changes nothing.
    shutil.rmtree(work.root / "synth")
    for stage in STAGES[1:]:
        info = json.loads((work.root / stage / "done.json").read_text())
        del info["after"]["synth"]
        (work.root / stage / "done.json").write_text(json.dumps(info))
    work.mark_done("synth", {})
    assert all(work.is_done(stage) for stage in STAGES)
    # Markers of older builds carry no stamps and are all up to date, whatever their file
    # times (a copied work dir); a stage stamped since ran after them.
    for stage in STAGES:
        marker = work.root / stage / "done.json"
        info = json.loads(marker.read_text())
        del info["finished_ns"], info["after"]
        marker.write_text(json.dumps(info))
    assert all(work.is_done(stage) for stage in STAGES)
    work.mark_done("prune", {})
    assert work.is_done("train") and work.is_done("prune") and not work.is_done("quantize")


def test_a_noise_kind_held_out_and_trained_on_is_refused(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "augment:\n  noise_kinds: [pink, music]\nevaluate:\n"
                                "  heldout_noise_kinds: [music, 'file:cafe']\n")
    assert "line 4: evaluate.heldout_noise_kinds: music held out and used in training at once" \
        in msg and "line 2: augment.noise_kinds" in msg
    _, msg = _refused(tmp_path, "evaluate:\n  word_noise_kinds: [pink, 'file:']\n")
    assert "unknown noise kind(s) file:" in msg and "file:<name>" in msg


def test_shares_of_clips_and_negatives_are_checked(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "data:\n  p_clips: 0.7\n  p_negative: 0.5\n  sc_heldout: 1.5\n")
    assert "line 4: data.sc_heldout: 1.5 is outside the allowed range 0..1" in msg
    assert "line 2: data.p_clips: p_clips 0.7 + p_negative 0.5 is more than 1" in msg


def test_range_typo_and_type_are_reported_at_once_with_paths_and_lines(tmp_path: Path) -> None:
    """The recipe is read by the daemon's validator: every problem in one message, each with
    its line and YAML path, ranges from the fields' own bounds."""
    f, msg = _refused(tmp_path, "name: x\naugment:\n  p_noise: 1.5\n  snr: [0, 30]\n"
                                "train:\n  stpes: 100\n  batch: lots\n")
    assert msg.startswith(f"recipe {f}: 3 problems:")
    assert "line 3: augment.p_noise: 1.5 is outside the allowed range 0..1" in msg
    assert 'line 6: train.stpes: unknown option (did you mean "steps"?)' in msg
    assert "line 7: train.batch: expected int, got str 'lots'" in msg


def test_ranges_of_lists_and_counts_come_from_the_fields(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "augment:\n  snr:\n    - 0\n    - 300\n  speed: [0.9]\n"
                                "train:\n  steps: 0\nmodel:\n  dilations: [1, 0]\n")
    assert "line 4: augment.snr[1]: 300.0 is outside the allowed range -30..100" in msg
    assert "line 5: augment.speed: expected a list of 2 float, got a list of 1" in msg
    assert "line 7: train.steps: 0 is outside the allowed range 1..inf" in msg
    assert "line 9: model.dilations[1]: 0 is outside the allowed range 1..inf" in msg


def test_an_overridden_value_is_not_blamed_on_the_file(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("train:\n  steps: 10\n")
    with pytest.raises(BuildError) as err:
        load_recipe(f, {"train.steps": -1})
    assert str(err.value) == f"recipe {f}: train.steps: -1 is outside the allowed range 1..inf"


def test_the_recipe_module_does_not_import_augmentation() -> None:
    """augment uses the recipe's settings and noise kinds; the recipe needs nothing of it."""
    import subprocess
    import sys

    code = ("import sys, edgevoice.training.recipe as r; r.load_recipe(r.DEFAULT_RECIPE); "
            "print('edgevoice.training.augment' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


PHRASES_RECIPE = DEFAULT_RECIPE.parent / "phrases.yaml"


def test_a_phrase_entry_may_be_a_grammar_line(tmp_path: Path) -> None:
    f = tmp_path / "r.yaml"
    f.write_text("synth:\n  phrases:\n    - Turn (on|off) the [kitchen] light\n    - stop\n"
                 "    - stop\n")
    assert load_recipe(f).synth.vocabulary() == (
        "turn on the light", "turn on the kitchen light", "turn off the light",
        "turn off the kitchen light", "stop")
    digits = load_recipe(DEFAULT_RECIPE).synth
    assert digits.vocabulary() == digits.phrases


def test_a_bad_phrase_is_named_with_its_line(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "synth:\n  phrases:\n    - stop\n    - turn (on|off the light\n")
    assert "line 4: synth.phrases[1]: missing ')' in 'turn (on|off the light'" in msg
    _, msg = _refused(tmp_path, "synth:\n  phrases:\n    - stop\n    - (set|start) 2 timers\n")
    assert "line 4: synth.phrases[1]: character '2'" in msg and "spell numbers" in msg
    _, msg = _refused(tmp_path, "synth:\n  phrases: ['']\n")
    assert "line 2: synth.phrases: no phrases" in msg
    _, msg = _refused(tmp_path, "synth:\n  phrases: ['(a|b|c|d|e|f|g|h|i|j) (a|b|c|d|e|f|g|h|i|j) "
                                "(a|b|c|d|e|f|g|h|i|j|k)']\n")
    assert "line 2: synth.phrases: 1100 phrases, at most 1000" in msg


def test_the_lm_source_is_checked() -> None:
    assert load_recipe(DEFAULT_RECIPE).export.lm_sentences == "strings"
    with pytest.raises(BuildError, match='lm_sentences: must be one of .* "phrases"'):
        load_recipe(DEFAULT_RECIPE, {"export.lm_sentences": "phrase"})


def test_someone_must_be_held_out_and_only_one_kind(tmp_path: Path) -> None:
    _, msg = _refused(tmp_path, "data:\n  test_speakers: []\n")
    assert "line 2: data.test_speakers: nobody held out" in msg and "synth_heldout" in msg
    _, msg = _refused(tmp_path, "data:\n  test_speakers: [anna]\n  synth_heldout: 0.2\n")
    assert "line 3: data.synth_heldout: held-out synthetic voices measure the model only when " \
           "data.test_speakers (line 2) names nobody" in msg
    _, msg = _refused(tmp_path, "data:\n  test_speakers: []\n  synth_heldout: 0.2\n"
                                "synth:\n  enabled: false\n")
    assert "line 3: data.synth_heldout: holds out synthetic voices, but none are trained on" in msg


def test_options_added_later_leave_the_fingerprints_of_older_work_dirs_alone(
        tmp_path: Path) -> None:
    """At their defaults, data.synth_heldout, export.lm_sentences, train.init_from and
    frontend.norm_window_s change no fingerprint: a digits work dir made before they existed
    (the running mean off, as the recipe had it then) keeps its finished stages."""
    import hashlib
    import json

    from edgevoice.training.stages import DEPENDS, STAGES, Work

    recipe = load_recipe(DEFAULT_RECIPE, {"frontend.norm_window_s": 0.0})

    def before(stage: str) -> str:  # the fingerprint as it was computed before they existed
        d = recipe.to_dict()
        del d["data"]["synth_heldout"], d["export"]["lm_sentences"], d["train"]["init_from"]
        del d["frontend"]["norm_window_s"]
        del d["quantize"]["max_kib"]  # never hashed: it only warns
        parts = {}
        for key in DEPENDS[stage]:
            section, _, field = key.partition(".")
            if key != "export.lm_sentences":
                parts[key] = d[section][field] if field else d[section]
        return hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()[:16]

    work = Work(recipe, tmp_path)
    assert {s: work.fingerprint(s) for s in STAGES} == {s: before(s) for s in STAGES}

    def prints(**sets: object) -> dict[str, str]:
        w = Work(load_recipe(DEFAULT_RECIPE, dict(sets)), tmp_path)
        return {s: w.fingerprint(s) for s in STAGES}

    base, phrases = prints(), prints(**{"export.lm_sentences": "phrases"})
    assert [s for s in STAGES if phrases[s] != base[s]] == ["evaluate", "export"]
    held = prints(**{"data.synth_heldout": 0.2, "data.test_speakers": []})
    assert held["synth"] == base["synth"] and held["prepare"] != base["prepare"]
    normed = prints(**{"frontend.norm_window_s": 2})
    assert [s for s in STAGES if normed[s] != base[s]] == list(STAGES[1:])  # all but synth


def test_the_running_mean_window_is_set_like_any_frontend_option(tmp_path: Path) -> None:
    import argparse

    from edgevoice.training.cli import _overrides

    args = argparse.Namespace(set=["frontend.norm_window_s=2"], fsdd=None, out=None,
                              work_dir=None)
    r = load_recipe(DEFAULT_RECIPE, _overrides(args))
    assert r.frontend.norm_window_s == 2.0
    assert Recipe().frontend.norm_window_s == 0.0  # off unless a recipe asks for it
    assert load_recipe(DEFAULT_RECIPE).frontend.norm_window_s == 1.0  # as the digits one does
    _, msg = _refused(tmp_path, "frontend:\n  n_mels: 40\n  norm_window_s: -0.5\n")
    assert "line 3: frontend.norm_window_s: -0.5 is outside the allowed range 0..30" in msg
    with pytest.raises(BuildError, match="frontend.norm_window_s: 31.0 is outside the allowed"):
        load_recipe(DEFAULT_RECIPE, {"frontend.norm_window_s": 31})


def test_the_phrases_template_validates_and_fits_the_digits_build_time() -> None:
    """One command, about as long as the digits recipe's measured 30 minutes at most: no more
    training steps, model and data sizes alike."""
    r, digits = load_recipe(PHRASES_RECIPE), load_recipe(DEFAULT_RECIPE)
    assert len(r.synth.vocabulary()) == 10 and r.export.lm_sentences == "phrases"
    assert r.export.decoder == {"name": "beam", "vocabulary": "lm"}
    assert r.data.fsdd == "" and r.data.manifests == () and r.data.test_speakers == ()
    assert r.data.synth_heldout > 0 and r.data.p_negative > 0 and r.data.speech_commands
    assert r.data.max_words == r.evaluate.max_words == 1
    # the digits model's shape at 80 channels (digits 1.0's width: a faster build)
    assert r.train.steps <= digits.train.steps and r.model.channels <= digits.model.channels
    assert replace(r.model, channels=digits.model.channels) == digits.model
    assert r.train.batch == digits.train.batch and r.prune.branch == digits.prune.branch
    assert r.evaluate.utterances <= digits.evaluate.utterances
    rendered = len(r.synth.vocabulary()) * r.synth.speakers * r.synth.takes
    assert rendered <= 1.5 * len(digits.synth.vocabulary()) * digits.synth.speakers \
        * digits.synth.takes  # phrases are longer than digit words
