"""From use to training: what the daemon captured builds a bundle as it is."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support import compose, run_capturing

from edgevoice.bundle import load_bundle
from edgevoice.runtime import open_acoustic_model

# A tiny model, trained for a few steps: this is about the data reaching the bundle.
TINY = [
    "data.test_speakers=[lucas]", "data.p_synth=0", "synth.enabled=false", "data.max_words=3",
    "data.speech_commands=''", "data.noise_dir=''", "data.p_clips=0", "data.p_negative=0",
    "data.p_context=0", "augment.noise_kinds=[pink]", "augment.p_onset=0",
    "model.channels=8", "model.dilations=[1,2]", "model.chunk=16",
    "train.steps=8", "train.batch=4", "train.workers=0", "train.warmup=2",
    "prune.sparsity=0.5", "prune.branch=0.5", "quantize.calibration=4",
    "evaluate.utterances=4", "evaluate.snrs=[10]", "evaluate.noise_kinds=[pink]",
    "evaluate.heldout_noise_kinds=[music]",
]


def test_a_captured_manifest_builds_a_bundle(tmp_path: Path, small_fsdd: Path,
                                             bundle_dir: Path) -> None:
    pytest.importorskip("tensorflow")
    pytest.importorskip("tensorflow_model_optimization")
    from edgevoice.training.cli import main

    wav = compose(tmp_path / "heard.wav", ["3_george_1", "5_jackson_2", "7_lucas_3",
                                           "1_yweweler_4", "9_nicolas_5"], groups=[3, 2])
    folder = tmp_path / "capture"
    transcripts, _ = run_capturing(tmp_path, bundle_dir, wav, dir=str(folder))
    assert len(transcripts) == 2
    manifest = folder / "manifest.jsonl"
    assert all(json.loads(x)["text"] for x in manifest.read_text().splitlines())

    out = tmp_path / "bundle"
    sets = [a for s in (*TINY, f"data.manifests=[{manifest}]") for a in ("--set", s)]
    assert main(["recipe", "--fsdd", str(small_fsdd), "--work-dir", str(tmp_path / "work"),
                 "--out", str(out), *sets]) == 0
    bundle = load_bundle(out)
    assert "kitchen" in bundle.metrics["train_speakers"]  # the captured voice was trained on
    assert str(manifest) in (out / "MODEL_CARD.md").read_text()
    open_acoustic_model(bundle)  # and the daemon's runtime takes the model
