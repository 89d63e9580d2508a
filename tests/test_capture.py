"""Learn from use: the daemon keeps what it heard and what it made of it, privately, within
its bounds, and never at the cost of a transcript."""

from __future__ import annotations

import json
import stat
import time
from pathlib import Path

import numpy as np
import pytest
from support import compose, need_fsdd, run_capturing

from edgevoice.audio import read_wav
from edgevoice.capture import Capture
from edgevoice.config import CaptureSettings, load_settings
from edgevoice.decoding import DecodeResult
from edgevoice.errors import ConfigError
from edgevoice.messages import ModelInfo, Transcript
from edgevoice.training.data import read_manifest

HANGOVER_S = 0.4  # the default vad.hangover_ms: the captured audio runs on that long


def lines(folder: Path) -> list[dict]:
    return [json.loads(x) for x in (folder / "manifest.jsonl").read_text().splitlines()]


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.fixture
def two_utterances(tmp_path: Path) -> Path:
    need_fsdd()
    return compose(tmp_path / "two.wav", ["3_george_1", "5_jackson_2", "7_lucas_3",
                                          "1_yweweler_4", "9_nicolas_5"], groups=[3, 2])


def test_each_utterance_is_kept_as_heard_privately_and_builds_a_manifest(
        tmp_path: Path, bundle_dir: Path, two_utterances: Path) -> None:
    folder = tmp_path / "state" / "capture"
    transcripts, _ = run_capturing(tmp_path, bundle_dir, two_utterances, dir=str(folder))
    assert len(transcripts) == 2
    rows = lines(folder)
    assert [r["utterance_id"] for r in rows] == [t["utterance_id"] for t in transcripts]
    assert mode(folder) == 0o700 and mode(folder / "manifest.jsonl") == 0o600
    assert sorted(p.name for p in folder.glob("*.wav")) == sorted(r["audio"] for r in rows)

    settings, registry = load_settings({"bundle": str(bundle_dir)}, "test")
    from edgevoice.bundle import load_bundle
    from edgevoice.recognizer import Recognizer

    recognizer = Recognizer.open(settings, registry, load_bundle(str(bundle_dir)))
    for row, t in zip(rows, transcripts, strict=True):
        wav = folder / row["audio"]
        assert mode(wav) == 0o600
        assert (row["text"], row["confidence"], row["rejected"]) == (
            t["text"], t["confidence"], t["rejected"])
        assert row["speaker"] == "kitchen" and row["model"] == t["model"]
        samples, info = read_wav(wav)
        assert (info.sample_rate, info.channels) == (16000, 1)
        # pre-roll to the end of the hang-over: exactly what the recognizer heard ...
        assert info.duration == pytest.approx(t["end"] - t["start"] + HANGOVER_S, abs=0.021)
        recognizer.accept((samples * 32768).astype(np.int16))
        assert recognizer.finish().text == t["text"]  # ... so it makes the same of it again

    clips = read_manifest(folder / "manifest.jsonl")  # edgevoice-build reads it as it is
    assert [(c.path, c.text, c.speaker) for c in clips] == [
        (folder / r["audio"], r["text"], "kitchen") for r in rows]


def test_the_oldest_utterances_go_first(tmp_path: Path, bundle_dir: Path,
                                        two_utterances: Path) -> None:
    folder = tmp_path / "capture"
    run_capturing(tmp_path, bundle_dir, two_utterances, dir=str(folder), max_utterances=3)
    first = lines(folder)
    run_capturing(tmp_path, bundle_dir, two_utterances, dir=str(folder), max_utterances=3)
    kept = lines(folder)
    assert len(kept) == 3 and kept[0] == first[1]  # the very first one was dropped
    assert not (folder / first[0]["audio"]).exists()
    assert sorted(p.name for p in folder.glob("*.wav")) == sorted(r["audio"] for r in kept)


def transcript(n: int) -> Transcript:
    return Transcript.create(
        DecodeResult("one two", 0.9), offset=0.0, site_id="kitchen",
        utterance_id=f"{n:08x}" + "0" * 24, start=0.0, end=1.0, end_reason="silence",
        model=ModelInfo("digits", "1.0"), time=time.time() + n)


def test_bytes_bound_and_wavs_whose_line_was_deleted(tmp_path: Path) -> None:
    capture = Capture(CaptureSettings(dir=str(tmp_path), max_bytes=1_000_000), 16000)
    second = np.zeros(16000, np.int16)  # 32 KB a second
    for n in range(4):
        capture.write(np.tile(second, 8), transcript(n))  # 256 KB each
    rows = lines(tmp_path)
    assert [r["utterance_id"][:8] for r in rows] == ["00000001", "00000002", "00000003"]
    used = sum(p.stat().st_size for p in tmp_path.iterdir())
    assert used <= 1_000_000

    # lines deleted by hand: their WAVs go with the next utterance
    (tmp_path / "manifest.jsonl").write_text(json.dumps(rows[2]) + "\n")
    capture.write(second, transcript(9))
    assert sorted(p.name for p in tmp_path.glob("*.wav")) == sorted(
        r["audio"] for r in lines(tmp_path))
    assert len(lines(tmp_path)) == 2


def test_a_failing_disk_costs_captures_never_a_transcript(
        tmp_path: Path, bundle_dir: Path, two_utterances: Path) -> None:
    folder = tmp_path / "capture"
    folder.mkdir(mode=0o700)
    elsewhere = tmp_path / "elsewhere.jsonl"
    elsewhere.write_text("")
    (folder / "manifest.jsonl").symlink_to(elsewhere)  # refused, never followed
    transcripts, out = run_capturing(tmp_path, bundle_dir, two_utterances, dir=str(folder))
    assert len(transcripts) == 2
    assert elsewhere.read_text() == ""
    logged = [x for x in out.stderr.splitlines() if "capture: an utterance was not kept" in x]
    assert len(logged) == 1 and "symbolic link" in logged[0]  # once, not per utterance
    assert all(t["text"] not in out.stderr for t in transcripts if t["text"])  # no text logged


def test_a_folder_that_cannot_be_used_is_a_config_error_at_start(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("")
    with pytest.raises(ConfigError, match=r"capture\.dir: .* cannot be written"):
        Capture(CaptureSettings(dir=str(tmp_path / "file" / "capture")), 16000, "edgevoice.yaml")
    assert not (tmp_path / "nowhere").exists()
    Capture(CaptureSettings(dir=str(tmp_path / "nowhere" / "capture")), 16000)
    assert not (tmp_path / "nowhere").exists()  # checked, not created, until there is audio


def test_captured_rows_nobody_has_checked_are_not_trained_on(tmp_path: Path) -> None:
    from edgevoice.errors import BuildError

    (tmp_path / "a.wav").write_bytes(b"")
    rows = [{"audio": "a.wav", "text": "one two", "rejected": False, "confidence": 0.9},
            {"audio": "a.wav", "text": "", "rejected": False},
            {"audio": "a.wav", "text": "five", "rejected": True}]
    manifest = tmp_path / "manifest.jsonl"
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [c.text for c in read_manifest(manifest)] == ["one two"]
    rows[1]["text"], rows[2]["rejected"] = "nine", False  # what a user's correction does
    manifest.write_text("".join(json.dumps(r) + "\n" for r in rows))
    assert [c.text for c in read_manifest(manifest)] == ["one two", "nine", "five"]
    manifest.write_text(json.dumps({"audio": "a.wav", "text": ""}) + "\n")
    with pytest.raises(BuildError, match="1 row.* with empty text"):
        read_manifest(manifest)
