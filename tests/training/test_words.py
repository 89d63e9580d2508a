"""Single words by many speakers: reading, the speaker split, negatives, noise recordings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from edgevoice.errors import BuildError
from edgevoice.training.data import (
    DIGIT_WORDS,
    heldout_by_hash,
    read_noise_dir,
    read_speech_commands,
    split_words,
)


def test_every_word_is_read_with_its_speaker(small_speech_commands: Path) -> None:
    clips = read_speech_commands(small_speech_commands)
    assert {c.text for c in clips} == {"zero", "one", "two", "nine", "bed", "cat", "yes"}
    assert all(c.speaker.startswith("sc-") and len(c.speaker) == 11 for c in clips)
    one = next(c for c in clips if c.text == "one")
    assert one.speaker == "sc-" + one.path.name.split("_")[0]


def test_a_missing_folder_says_which_setting(tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="data.speech_commands"):
        read_speech_commands(tmp_path / "nowhere")
    with pytest.raises(BuildError, match="no words/ folder"):
        read_speech_commands(tmp_path)


def test_the_held_out_share_is_fixed_by_id_and_close_to_the_share() -> None:
    speakers = [f"sc-{i:08x}" for i in range(2000)]
    held = heldout_by_hash(speakers, 0.3)
    assert 0.27 < len(held) / len(speakers) < 0.33
    # the same speakers whatever else is in the data
    assert heldout_by_hash(speakers[:500], 0.3) == held & set(speakers[:500])
    assert heldout_by_hash(speakers, 0.0) == set()


def test_speakers_never_cross_and_other_words_are_negatives(
        small_speech_commands: Path) -> None:
    clips = read_speech_commands(small_speech_commands)
    split = split_words(clips, DIGIT_WORDS, 0.5)
    train = {c.speaker for c in (*split.train, *split.other_train)}
    assert train.isdisjoint(split.test_speakers)
    assert {c.text for c in (*split.train, *split.test)} <= set(DIGIT_WORDS)
    assert {c.text for c in (*split.other_train, *split.other_test)} == {"bed", "cat", "yes"}
    assert len(split.train) + len(split.test) + len(split.other_train) + \
        len(split.other_test) == len(clips)


def test_named_held_out_speakers_must_exist(small_speech_commands: Path) -> None:
    clips = read_speech_commands(small_speech_commands)
    some = next(c.speaker for c in clips if c.text == "zero")
    split = split_words(clips, DIGIT_WORDS, 0.0, [some])
    assert split.test_speakers == {some}
    with pytest.raises(BuildError, match="data.sc_test_speakers: speaker.* sc-nobody not in"):
        split_words(clips, DIGIT_WORDS, 0.3, ["sc-nobody"])


def test_noise_recordings_are_read_and_a_missing_one_is_named(
        small_speech_commands: Path, tmp_path: Path) -> None:
    noise = small_speech_commands / "background_noise"
    files = read_noise_dir(noise, ["exercise_bike"], 16000)
    assert files["exercise_bike"].dtype == np.float32 and len(files["exercise_bike"]) > 16000 * 30
    with pytest.raises(BuildError, match="file:kitchen: no such WAV .*have: .*exercise_bike"):
        read_noise_dir(noise, ["kitchen"], 16000)
    with pytest.raises(BuildError, match="data.noise_dir.*does not exist"):
        read_noise_dir(tmp_path / "none", ["kitchen"], 16000)
    assert read_noise_dir("", [], 16000) == {}


def test_a_clip_in_a_room_keeps_its_samples_between_faint_edges() -> None:
    from edgevoice.training.data import in_room

    x = np.ones(1000, np.float32) * 0.5
    y = in_room(x, np.random.default_rng(0), 16000, (0.1, 0.1), (0.2, 0.2), (-60.0, -60.0))
    assert len(y) == 1600 + 1000 + 3200
    np.testing.assert_array_equal(y[1600:2600], x)
    edges = np.concatenate((y[:1600], y[2600:]))
    assert 0.0 < np.sqrt(np.mean(edges**2)) < 2e-3  # room noise, never digital silence


def test_for_phrases_the_words_are_negatives_but_those_inside_a_phrase(
        small_speech_commands: Path) -> None:
    """Nobody in the data says "turn on the light": its words give negatives only, and a word
    of a phrase ("one" in "one more time") is neither a phrase nor a negative."""
    clips = read_speech_commands(small_speech_commands)
    split = split_words(clips, ("one more time", "turn on the light", "yes"), 0.5)
    assert {c.text for c in (*split.train, *split.test)} == {"yes"}
    assert {c.text for c in (*split.other_train, *split.other_test)} == {
        "zero", "two", "nine", "bed", "cat"}
    none = split_words(clips, ("one more time",), 0.5)
    assert not none.train and not none.test and none.other_train and none.other_test
    with pytest.raises(BuildError, match="must leave some on both sides"):
        split_words(clips, DIGIT_WORDS, 0.0)  # the vocabulary is here: hold some of it out
