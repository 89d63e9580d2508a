"""Every stage on a handful of FSDD files with a tiny model: outcomes, not just 'it ran'."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("tensorflow")
pytest.importorskip("tensorflow_model_optimization")

from edgevoice.bundle import load_bundle  # noqa: E402
from edgevoice.runtime import open_acoustic_model  # noqa: E402
from edgevoice.training.cli import main  # noqa: E402
from edgevoice.training.data import TOKENS, wav_features  # noqa: E402

TINY = [
    "data.test_speakers=[lucas]", "data.p_synth=0", "synth.enabled=false", "data.max_words=3",
    "model.channels=8", "model.dilations=[1,2]", "model.chunk=16",
    "train.steps=12", "train.batch=4", "train.workers=0", "train.warmup=2",
    "prune.sparsity=0.5", "prune.branch=0.5", "prune.distill=1.0", "quantize.calibration=4",
    "evaluate.utterances=4", "evaluate.snrs=[10]", "export.decoder={name: beam, vocabulary: lm}",
    "data.sc_heldout=0.3", "data.p_clips=0.3", "data.p_negative=0.2", "data.p_context=0.2",
    "data.clip_edge=[0.1, 0.3]",
    "augment.p_onset=0.5", "augment.p_channel=0.5",
    "augment.noise_kinds=[pink, impulsive, babble, 'file:exercise_bike']",
    "evaluate.word_snrs=[10]", "evaluate.word_noise_kinds=[impulsive]",
    "evaluate.heldout_noise_kinds=[music, 'file:dude_miaowing']", "evaluate.noise_clips=6",
    "evaluate.calibrate_reject=true",
]


@pytest.fixture(scope="module")
def data(small_fsdd: Path, small_speech_commands: Path) -> tuple[Path, Path]:
    return small_fsdd, small_speech_commands


def _args(data: tuple[Path, Path], work: Path, out: Path, *extra: str) -> list[str]:
    fsdd, words = data
    sets = [a for s in (*TINY, f"data.speech_commands={words}",
                        f"data.noise_dir={words / 'background_noise'}") for a in ("--set", s)]
    return ["recipe", "--fsdd", str(fsdd), "--work-dir", str(work), "--out", str(out),
            *sets, *extra]


@pytest.fixture(scope="module")
def built(data: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory
          ) -> tuple[Path, Path]:
    root = tmp_path_factory.mktemp("build")
    work, out = root / "work", root / "bundle"
    assert main(_args(data, work, out)) == 0
    return work, out


def test_bundle_loads_and_runs_in_the_daemon_runtime(built: tuple[Path, Path],
                                                     small_fsdd: Path) -> None:
    _, out = built
    assert out.stat().st_mode & 0o005 == 0o005  # readable by the daemon's own user
    bundle = load_bundle(out)
    assert bundle.tokens == TOKENS and bundle.blank == 0
    assert bundle.streaming.stride == 2
    assert bundle.streaming.window - bundle.streaming.context == 16
    assert bundle.streaming.context + 1 >= bundle.raw["model"]["receptive_field"]
    am = open_acoustic_model(bundle)
    assert (am.input_dtype, am.output_dtype) == ("int8", "int8")
    assert bundle.raw["input"]["shape"] == [1, bundle.streaming.window, 40]
    assert bundle.raw["output"]["shape"] == [1, bundle.streaming.window // 2, len(TOKENS)]
    feats = wav_features(small_fsdd / "3_lucas_0.wav", bundle.frontend)
    logp = am.run_utterance(feats)
    assert logp.shape == (-(-len(feats) // 2), len(TOKENS))
    assert np.all(logp <= 0.01)  # log-probabilities
    card = (out / "MODEL_CARD.md").read_text()
    assert card.count("Free Spoken Digit Dataset") >= 1
    build = bundle.raw["build_time"]
    assert set(build["stage_seconds"]) == {"synth", "prepare", "train", "prune", "quantize",
                                           "evaluate"}
    assert build["total_minutes"] == round(sum(build["stage_seconds"].values()) / 60, 1)
    assert f"{build['total_minutes']} min for all stages" in card


def test_metrics_cover_float_pruned_int8_clean_and_noisy(built: tuple[Path, Path]) -> None:
    m = load_bundle(built[1]).metrics
    for model in ("float", "pruned", "int8", "float_beam_lm", "pruned_beam_lm", "int8_beam_lm"):
        assert set(m["accuracy"][model]) == {"clean", "snr10"}
        assert 0.0 <= m["accuracy"][model]["clean"]["wer"]
    assert load_bundle(built[1]).decoder == {"name": "beam", "vocabulary": "lm",
                                             "reject_threshold": m["reject"]["threshold"]}
    assert (built[1] / "lm.arpa").exists()
    assert m["heldout_speakers"] == ["lucas"] and "lucas" not in m["train_speakers"]
    assert m["cost"]["model_bytes"] == (built[1] / "model.tflite").stat().st_size
    assert m["cost"]["params"] > 0 and m["cost"]["macs_per_second"] > 0
    assert m["latency"]["ms_per_audio_second"] > 0


def test_strangers_figures_reject_threshold_and_plot_reach_the_bundle(
        built: tuple[Path, Path]) -> None:
    bundle = load_bundle(built[1])
    m = bundle.metrics
    sets = {"words_clean", "words_reverb", "words_impulsive_10dB", "words_music_10dB",
            "words_dude_miaowing_10dB", "neg_words", "neg_noise"}
    for model in ("float", "pruned", "int8", "int8_beam_lm", "int8_beam_lm_reject"):
        assert set(m["strangers"][model]) == sets
    clean = m["strangers"]["int8_beam_lm"]["words_clean"]
    assert clean["clips"] == m["strangers_info"]["words"] > 0
    assert 0.0 <= clean["onset_ins"] <= 1.0
    assert m["strangers"]["int8"]["neg_noise"]["clips"] == 6
    chosen = m["reject"]["threshold"]
    assert chosen in [p["threshold"] for p in m["reject"]["curve"]]
    assert bundle.decoder["reject_threshold"] == chosen
    png = built[1] / "wer_by_snr.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "wer_by_snr.png" in bundle.raw["files"]  # hashed like every bundle file
    card = (built[1] / "MODEL_CARD.md").read_text()
    assert "## On strangers" in card and "Speech Commands" in card and "CC BY 4.0" in card
    assert "dude_miaowing *" in card  # held-out noise kinds are marked as never heard


def test_pruning_reaches_target_sparsity(built: tuple[Path, Path]) -> None:
    assert load_bundle(built[1]).metrics["sparsity"]["pruned"] == pytest.approx(0.5, abs=0.02)


def test_a_pruning_branch_without_its_snapshot_fails_cleanly(
        built: tuple[Path, Path], data: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    work = tmp_path / "work"
    shutil.copytree(built[0], work)
    (work / "train" / "branch.weights.h5").unlink()
    args = _args(data, work, tmp_path / "bundle", "--force")
    args[0] = "prune"
    assert main(args) == 1
    err = capsys.readouterr().err
    assert "branch.weights.h5: the training run kept no weights to branch from" in err
    assert "Traceback" not in err


def test_second_run_resumes_and_skips_finished_stages(
        built: tuple[Path, Path], data: tuple[Path, Path], caplog: pytest.LogCaptureFixture
) -> None:
    work, out = built
    caplog.set_level("INFO", logger="edgevoice.training")
    assert main(_args(data, work, out)) == 0
    assert caplog.text.count("up to date, skipped") == 7


def test_missing_data_folder_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture
                                           ) -> None:
    out = tmp_path / "bundle"
    code = main(_args((tmp_path / "no-such-fsdd", tmp_path), tmp_path / "work", out))
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err[-1].startswith("edgevoice-build: error: data folder") and "no-such-fsdd" in err[-1]
    assert "Traceback" not in "\n".join(err)
    assert not out.exists()


def test_unknown_recipe_key_fails_cleanly(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text("model:\n  chanels: 8\n")
    assert main(["train", str(recipe), "--work-dir", str(tmp_path / "w")]) == 1
    err = capsys.readouterr().err
    assert 'line 2: model.chanels: unknown option (did you mean "channels"?)' in err
    assert not (tmp_path / "w").exists()


def test_a_resumed_stage_counts_the_time_of_every_leg(data: tuple[Path, Path], tmp_path: Path
                                                      ) -> None:
    import json

    work, out = tmp_path / "work", tmp_path / "bundle"
    args = _args(data, work, out)
    args[0] = "prepare"
    assert main(["synth", *args[1:]]) == 0
    assert main(args) == 0
    first = json.loads((work / "prepare" / "done.json").read_text())["seconds"]
    # As if an earlier leg had run 100 s and been interrupted before finishing:
    (work / "prepare" / "done.json").unlink()
    (work / "prepare" / "elapsed").write_text("100.0")
    assert main(args) == 0
    second = json.loads((work / "prepare" / "done.json").read_text())["seconds"]
    assert 100.0 < second < 100.0 + first + 60
    # A finished stage run again because an earlier one ran since starts afresh: neither its
    # time nor anything it kept (a checkpoint) carries over.
    (work / "prepare" / "elapsed").write_text("100.0")
    (work / "prepare" / "checkpoint").write_text("of the old inputs")
    assert main(args) == 0  # nothing ran before it since: up to date
    assert (work / "prepare" / "checkpoint").exists()
    assert main(["synth", *args[1:], "--force"]) == 0
    assert main(args) == 0
    third = json.loads((work / "prepare" / "done.json").read_text())["seconds"]
    assert third < 60 and not (work / "prepare" / "checkpoint").exists()


def test_the_running_mean_leaves_the_global_statistics_alone(data: tuple[Path, Path],
                                                             tmp_path: Path) -> None:
    """prepare computes the global mean and std on the features before the running mean
    (which starts from them), and hands frontend.norm_window_s on to the later stages; left
    off, frontend.json is written as before it existed."""
    import json

    prepared = {}
    for window in ("0", "2"):
        work = tmp_path / f"work{window}"
        args = _args(data, work, tmp_path / "bundle", "--set", f"frontend.norm_window_s={window}")
        args[0] = "prepare"
        assert main(args) == 0
        prepared[window] = json.loads((work / "prepare" / "frontend.json").read_text())
    off, on = prepared["0"], prepared["2"]
    assert "norm_window_s" not in off and on.pop("norm_window_s") == 2.0
    assert on == off and len(on["mean"]) == 40


def test_per_tensor_quantization_is_smaller_with_one_scale_per_weight_tensor() -> None:
    from edgevoice.runtime import interpreter_class
    from edgevoice.training.model import build_model, streaming_shape
    from edgevoice.training.quantize import to_int8
    from edgevoice.training.recipe import ModelSettings

    ms = ModelSettings(channels=16, dilations=(1, 2), chunk=16)
    window, _ = streaming_shape(ms)
    model = build_model(ms, 40, len(TOKENS))
    rng = np.random.default_rng(0)
    windows = [rng.standard_normal((1, window, 40)).astype(np.float32) for _ in range(8)]

    def weight_scales(blob: bytes) -> list[int]:
        interp = interpreter_class()[0](model_content=blob)
        return [len(d["quantization_parameters"]["scales"]) for d in interp.get_tensor_details()
                if d["dtype"] == np.int8 and len(d["shape"]) == 4  # conv/depthwise weights:
                and d["shape"][2] <= ms.kernel]  # [out, 1, k, in]; activations are [1, 1, T, C]

    per_channel = to_int8(model, ms, window, windows)
    per_tensor = to_int8(model, ms, window, windows, per_channel=False)
    assert len(per_tensor) < len(per_channel)
    assert min(weight_scales(per_channel)) >= 16  # one per channel (16, or 40 at the input)
    assert weight_scales(per_tensor) and set(weight_scales(per_tensor)) == {1}


def test_bundle_ships_its_float_weights_and_a_recipe_fine_tunes_from_them(
        built: tuple[Path, Path], data: tuple[Path, Path], tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    from edgevoice.training.model import build_model, load_weight_arrays, weight_arrays
    from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
    from edgevoice.training.stages import INIT_WEIGHTS

    _, out = built
    with np.load(out / INIT_WEIGHTS) as shipped:
        arrays = dict(shipped)
    assert arrays["logits.0"].dtype == np.float16
    assert arrays["logits.0"].shape == (8, len(TOKENS))
    # They are the pruned float model: half the output layer's weights are zero.
    assert 0.4 <= np.mean(arrays["logits.0"] == 0) <= 0.6
    # Every layer with weights fits a model of the same section, and round-trips.
    tiny = load_recipe(DEFAULT_RECIPE, {"model.channels": 8, "model.dilations": [1, 2],
                                        "model.chunk": 16}).model
    model = build_model(tiny, 40, len(TOKENS))
    loaded, skipped = load_weight_arrays(model, arrays)
    assert not skipped and len(loaded) == 10  # dw, pw, bn of the input and 2 blocks; logits
    again = weight_arrays(model)
    assert all(np.array_equal(again[k], arrays[k]) for k in arrays)
    # A new vocabulary (a word the first model never learnt) starts from those weights; with
    # the frontend's running mean on, which the statistics come before (and the whole build
    # runs with it: every stage, into the bundle).
    work2, out2 = tmp_path / "work", tmp_path / "bundle"
    caplog.set_level("INFO", logger="edgevoice.training")
    assert main(_args(data, work2, out2, "--set", f"train.init_from={out}", "--set",
                      "synth.phrases=[zero, one, two, nine, 'yes']", "--set",
                      "frontend.norm_window_s=0.5")) == 0
    lines = [r.getMessage() for r in caplog.records]
    assert any(m.startswith("train: 10 layers from ") for m in lines), lines
    assert any("was trained with frontend.norm_window_s 1, this recipe uses 0.5: set "
               "frontend.norm_window_s: 1" in m for m in lines), lines  # said, not refused
    assert any(m.startswith("prepare: normalisation statistics from ") for m in lines)
    first, tuned = load_bundle(out), load_bundle(out2)
    assert tuned.frontend.mean == first.frontend.mean
    assert tuned.frontend.norm_window_s == 0.5
    assert first.frontend.norm_window_s == load_recipe(DEFAULT_RECIPE).frontend.norm_window_s
    # It was evaluated, behind the same running mean, on the held-out speaker's strings.
    clean = tuned.metrics["accuracy"]["int8"]["clean"]
    assert tuned.metrics["test_utterances"] > 0 and np.isfinite(clean["wer"])
    assert 0.0 <= clean["string_right"] <= 1.0 and tuned.metrics_file is not None


def test_init_from_a_bundle_that_cannot_serve_fails_in_one_line_before_any_stage(
        built: tuple[Path, Path], data: tuple[Path, Path], tmp_path: Path,
        capsys: pytest.CaptureFixture) -> None:
    import shutil

    from edgevoice.bundle import write_manifest
    from edgevoice.training.stages import INIT_WEIGHTS

    _, out = built
    old = tmp_path / "old"
    shutil.copytree(out, old)
    (old / INIT_WEIGHTS).unlink()
    write_manifest(old, dict(load_bundle(out).raw))  # as bundles were before float weights
    for spec, expect in ((tmp_path / "nowhere", "no such directory"),
                         (old, f"has no {INIT_WEIGHTS}")):
        work = tmp_path / f"work-{spec.name}"
        assert main(_args(data, work, tmp_path / "b", "--set", f"train.init_from={spec}")) == 1
        err = capsys.readouterr().err.strip()
        assert err.startswith("edgevoice-build: error: recipe train.init_from: ") and expect in err
        assert "\n" not in err and not (work / "synth").exists()
