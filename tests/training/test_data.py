from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from edgevoice.audio import write_wav
from edgevoice.errors import BuildError
from edgevoice.training.data import (
    WordBank,
    compose,
    encode_text,
    load_audio,
    read_fsdd,
    read_manifest,
    split_by_speaker,
)


def test_fsdd_reader_and_speaker_split(small_fsdd: Path) -> None:
    clips = read_fsdd(small_fsdd)
    assert len(clips) == 60
    assert {c.text for c in clips} == {"zero", "one", "two", "three", "four", "five", "six",
                                       "seven", "eight", "nine"}
    train, test = split_by_speaker(clips, ["lucas"])
    assert {c.speaker for c in test} == {"lucas"}
    assert "lucas" not in {c.speaker for c in train}
    assert len(train) + len(test) == len(clips)


def test_unknown_held_out_speaker_is_an_error(small_fsdd: Path) -> None:
    with pytest.raises(BuildError, match="nobody.*george"):
        split_by_speaker(read_fsdd(small_fsdd), ["nobody"])


def test_missing_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="does not exist"):
        read_fsdd(tmp_path / "nope")
    with pytest.raises(BuildError, match="no .*wav files"):
        read_fsdd(tmp_path)


def test_composer_joins_words_of_one_speaker(small_fsdd: Path) -> None:
    george = [c for c in read_fsdd(small_fsdd) if c.speaker == "george"]
    bank = WordBank.from_clips(george, 16000)
    gen = compose(bank, np.random.default_rng(0), 16000, min_words=3, max_words=3)
    for _ in range(5):
        x, text, speaker = next(gen)
        assert len(text.split()) == 3 and speaker == "george"
        assert x.dtype == np.float32 and 0.5 * 16000 < len(x) < 4 * 16000


def _wav(path: Path, silent: bool = False) -> Path:
    t = np.arange(8000) / 8000
    write_wav(path, np.zeros(8000) if silent else 0.3 * np.sin(2 * np.pi * 300 * t), 8000)
    return path


def test_manifest_jsonl_and_csv(tmp_path: Path) -> None:
    _wav(tmp_path / "a.wav")
    (tmp_path / "m.jsonl").write_text(json.dumps({"audio": "a.wav", "text": "Turn ON",
                                                  "speaker": "s1"}) + "\n")
    (tmp_path / "m.csv").write_text("path,transcript\na.wav,lights off\n")
    [j] = read_manifest(tmp_path / "m.jsonl")
    [c] = read_manifest(tmp_path / "m.csv")
    assert (j.text, j.speaker, j.path) == ("turn on", "s1", tmp_path / "a.wav")
    assert c.text == "lights off"


def test_manifest_with_wrong_columns_names_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "m.csv"
    f.write_text("file_name,words\na.wav,hello\n")
    with pytest.raises(BuildError, match=rf"{f}:2: expected columns audio and text"):
        read_manifest(f)


def test_characters_outside_token_set_name_file_and_line(tmp_path: Path) -> None:
    f = tmp_path / "m.jsonl"
    f.write_text('{"audio": "a.wav", "text": "ok"}\n{"audio": "a.wav", "text": "call 911"}\n')
    with pytest.raises(BuildError, match=rf"{f}:2: character '9'"):
        read_manifest(f)
    with pytest.raises(BuildError, match="not in the token set"):
        encode_text("café")


def test_silent_and_unreadable_audio(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="silent"):
        load_audio(_wav(tmp_path / "quiet.wav", silent=True), 16000)
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not a wav at all")
    with pytest.raises(BuildError, match="bad.wav: not a WAV"):
        load_audio(bad, 16000)


@pytest.mark.parametrize("fsdd", ["missing", "file"])
def test_manifest_recipe_with_the_default_fsdd_left_in_says_how_to_go_without(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], fsdd: str) -> None:
    from edgevoice.training.cli import main

    if fsdd == "file":
        (tmp_path / "fsdd").write_text("not a folder")
    _wav(tmp_path / "a.wav")
    (tmp_path / "m.csv").write_text("audio,text,speaker\na.wav,lights off,s1\n")
    recipe = tmp_path / "r.yaml"
    recipe.write_text(f"name: mine\ndata:\n  fsdd: {tmp_path / 'fsdd'}\n  manifests: "
                      f"[{tmp_path / 'm.csv'}]\nsynth:\n  enabled: false\n")
    assert main(["prepare", str(recipe), "--work-dir", str(tmp_path / "work")]) != 0
    err = capsys.readouterr().err
    what = "is a file, not a folder" if fsdd == "file" else "does not exist"
    assert what in err and 'set data.fsdd to ""' in err and "Traceback" not in err
