"""bundle.yaml is read by the one validator: each problem names the file, the line and the path."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from support import DEFAULT_BUNDLE, edgevoice

from edgevoice.audio import write_wav
from edgevoice.bundle import load_bundle
from edgevoice.errors import BundleError


def edited(tmp_path: Path, *swaps: tuple[str, str]) -> tuple[Path, Path]:
    """A copy of the shipped bundle with lines of its bundle.yaml replaced (the manifest's
    own hash is not recorded, so the files still verify)."""
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
