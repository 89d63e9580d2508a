"""bundle.yaml is read by the one validator: each problem names the file, the line and the path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support import DEFAULT_BUNDLE, digit_clip, edgevoice

from edgevoice.audio import write_wav
from edgevoice.bundle import load_bundle
from edgevoice.errors import BundleError


def edited(tmp_path: Path, *swaps: tuple[str, str]) -> tuple[Path, Path]:
    """A copy of the shipped bundle with lines of its bundle.yaml replaced (structure problems
    are found before the values' digest is checked)."""
    bundle = tmp_path / "bundle"
    shutil.copytree(DEFAULT_BUNDLE, bundle)
    manifest = bundle / "bundle.yaml"
    lines = manifest.read_text(encoding="utf-8").splitlines()
    for old, new in swaps:
        assert lines.count(old) == 1, old
        lines[lines.index(old)] = new
    manifest.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return bundle, manifest


def line_of(manifest: Path, text: str) -> int:
    return manifest.read_text(encoding="utf-8").splitlines().index(text) + 1


def test_a_wrong_typed_field_names_the_file_the_path_and_the_line(tmp_path: Path) -> None:
    bundle, manifest = edited(tmp_path, ("  window: 148", "  window: wide"))
    with pytest.raises(BundleError) as err:
        load_bundle(bundle)
    line = line_of(manifest, "  window: wide")
    assert str(err.value) == f"{manifest}: line {line}: model.window: expected int, got str 'wide'"


def test_every_problem_is_reported_at_once(tmp_path: Path) -> None:
    bundle, manifest = edited(tmp_path, ("blank: 0", "blnak: 0"),
                              ("  stride: 2", "  stride: 0"), ("  n_mels: 40", "  n_mels: [40]"))
    with pytest.raises(BundleError) as err:
        load_bundle(bundle)
    msg = str(err.value)
    assert msg.startswith(f"{manifest}: 4 problems:")
    assert f'line {line_of(manifest, "blnak: 0")}: blnak: unknown option (did you mean "blank"?)' \
        in msg
    assert "blank: required option is missing" in msg
    assert f"line {line_of(manifest, '  stride: 0')}: model.stride: 0 is outside the allowed " \
           "range 1..inf" in msg
    assert f"line {line_of(manifest, '  n_mels: [40]')}: frontend.n_mels: expected int, got a " \
           "list" in msg


def test_a_negative_running_mean_window_is_named_with_its_line(tmp_path: Path) -> None:
    bundle, manifest = edited(tmp_path, ("  norm_window_s: 1.0", "  norm_window_s: -1"))
    with pytest.raises(BundleError) as err:
        load_bundle(bundle)
    line = line_of(manifest, "  norm_window_s: -1")
    assert str(err.value) == f"{manifest}: line {line}: frontend.norm_window_s: -1.0 is " \
        "outside the allowed range 0..inf"


def test_the_daemon_runs_the_running_mean_of_a_bundle_and_restarts_it_per_utterance(
        tmp_path: Path) -> None:
    """The shipped bundle sets frontend.norm_window_s; one from before the option (no key)
    loads with it off. The daemon's chain runs it and starts it afresh for every utterance."""
    from edgevoice.bundle import write_manifest
    from edgevoice.config import load_settings
    from edgevoice.features import LogMel
    from edgevoice.recognizer import Recognizer

    bundle, _ = edited(tmp_path)
    loaded = load_bundle(bundle)
    assert loaded.frontend.norm_window_s == 1.0
    meta = dict(loaded.raw)
    meta.pop("files")
    older = {k: v for k, v in meta["frontend"].items() if k != "norm_window_s"}
    write_manifest(bundle, {**meta, "frontend": older})
    off_settings = load_bundle(bundle).frontend
    assert off_settings.norm_window_s == 0.0
    write_manifest(bundle, {**meta, "frontend": {**older, "norm_window_s": 0.5}})
    loaded = load_bundle(bundle)
    assert loaded.frontend.norm_window_s == 0.5
    rec = Recognizer.open(*load_settings({"bundle": str(bundle)}, "test"), loaded)
    first, second = digit_clip("3_george_1"), digit_clip("7_jackson_2")
    rec.accept((first * 32767).astype(np.int16))
    rec.finish()
    features = rec.frontend.process(second)
    assert np.array_equal(features, LogMel(loaded.frontend).compute(second))
    off = LogMel(off_settings).compute(second)
    assert features.shape == off.shape and np.abs(features - off)[-10:].mean() > 0.2


def test_sections_that_disagree_are_named_with_their_lines(tmp_path: Path) -> None:
    bundle, manifest = edited(tmp_path, ("blank: 0", "blank: 29"),
                              ("  file: lm.arpa", "  file: other.arpa"))
    with pytest.raises(BundleError) as err:
        load_bundle(bundle)
    msg = str(err.value)
    assert f"line {line_of(manifest, 'blank: 29')}: blank: blank index 29 is outside the 29 " \
           "tokens" in msg
    assert f"line {line_of(manifest, '  file: other.arpa')}: lm.file: LM file " \
           "other.arpa has no sha256 under 'files'" in msg


def test_the_cli_prints_the_problem_in_one_line(tmp_path: Path) -> None:
    bundle, manifest = edited(tmp_path, ("  window: 148", "  window: wide"))
    wav = tmp_path / "quiet.wav"
    write_wav(wav, np.zeros(16000, np.float32), 16000)
    out = edgevoice("transcribe", "--bundle", str(bundle), str(wav))
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = line_of(manifest, "  window: wide")
    assert f"{manifest}: line {line}: model.window: expected int, got str 'wide'" in out.stderr


# -- integrity: everything the daemon reads from a bundle is verified --------------------------

def test_an_edited_value_does_not_load_silently(tmp_path: Path) -> None:
    """Swapped tokens or frontend values used to load: only the files had hashes."""
    bundle, manifest = edited(tmp_path, ("  fmax: 4000.0", "  fmax: 3900.0"))
    with pytest.raises(BundleError, match="its values were edited"):
        load_bundle(bundle)
    load_bundle(bundle, verify=False)  # the structure itself is sound


@pytest.mark.parametrize("where", ["../evil/model.tflite", "/tmp/evil/model.tflite",
                                   "sub/model.tflite"])
def test_files_stay_inside_the_bundle(tmp_path: Path, where: str) -> None:
    """`model.file: ../evil/model.tflite` loaded another model while `sha256 verified` was
    printed (only the basename was checked)."""
    evil = tmp_path / "evil"
    evil.mkdir()
    shutil.copy(DEFAULT_BUNDLE / "model.tflite", evil / "model.tflite")
    bundle, manifest = edited(tmp_path, ("  file: model.tflite", f"  file: {where}"))
    text = manifest.read_text(encoding="utf-8")
    digest = text.split("  model.tflite: ")[1].split()[0]
    manifest.write_text(text.replace(f"  model.tflite: {digest}", f"  {where}: {digest}"),
                        encoding="utf-8")
    with pytest.raises(BundleError, match="not a file name in the bundle's folder"):
        load_bundle(bundle, verify=False)


def test_a_link_out_of_the_bundle_is_refused(tmp_path: Path) -> None:
    bundle, _ = edited(tmp_path)
    outside = tmp_path / "elsewhere.tflite"
    shutil.move(bundle / "model.tflite", outside)
    (bundle / "model.tflite").symlink_to(outside)
    with pytest.raises(BundleError, match="outside the bundle"):
        load_bundle(bundle)


def test_a_rebuilt_manifest_verifies(tmp_path: Path) -> None:
    from edgevoice.bundle import write_manifest

    bundle, manifest = edited(tmp_path)
    meta = load_bundle(bundle).raw
    meta.pop("files")
    write_manifest(bundle, {**meta, "version": "1.1"})
    assert load_bundle(bundle).version == "1.1"


def test_the_figures_live_beside_bundle_yaml_and_are_read_when_asked_for(tmp_path: Path) -> None:
    import json

    from edgevoice.bundle import METRICS_FILE

    bundle, manifest = edited(tmp_path)
    assert "metrics" not in load_bundle(bundle).raw  # the daemon's start does not parse them
    figures = json.loads((bundle / METRICS_FILE).read_text(encoding="utf-8"))
    assert load_bundle(bundle).metrics == figures
    assert figures["strangers"]  # the held-out strangers' figures are among them
    (bundle / METRICS_FILE).write_text(json.dumps({**figures, "test_utterances": 1}))
    with pytest.raises(BundleError, match=f"{METRICS_FILE}: sha256 mismatch"):
        load_bundle(bundle)  # hashed under `files` like the model


def test_a_bundle_with_its_figures_in_bundle_yaml_still_reads_them(tmp_path: Path) -> None:
    """Bundles exported before the figures moved to metrics.json keep them in bundle.yaml."""
    from edgevoice.bundle import METRICS_FILE, write_manifest

    bundle, _ = edited(tmp_path)
    old = load_bundle(bundle)
    figures = old.metrics
    (bundle / METRICS_FILE).unlink()
    meta = dict(old.raw)
    meta.pop("files")
    write_manifest(bundle, {**meta, "metrics": figures})
    legacy = load_bundle(bundle)
    assert legacy.metrics_file is None and legacy.metrics == figures


@pytest.mark.parametrize("text, problem", [("{\"wer\": ", "cannot read the evaluation figures"),
                                           ("[1, 2]", "expected a JSON object of figures")])
def test_unreadable_figures_are_named_when_asked_for(tmp_path: Path, text: str,
                                                     problem: str) -> None:
    """Without verification (the sha256 would catch it first) a broken metrics.json does not
    stop the model loading, and asking for the figures says which file and what to do."""
    from edgevoice.bundle import METRICS_FILE

    bundle, _ = edited(tmp_path)
    (bundle / METRICS_FILE).write_text(text)
    loaded = load_bundle(bundle, verify=False)
    with pytest.raises(BundleError, match=f"{METRICS_FILE}: {problem}.*rebuild it"):
        _ = loaded.metrics
