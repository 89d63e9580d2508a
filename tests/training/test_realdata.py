"""The account of real speech a build gives at its end and in the model card."""

from __future__ import annotations

from pathlib import Path

from edgevoice.training.data import Clip, WordClips
from edgevoice.training.realdata import FEW, MANY, count, meaning, summary


def _clips(text: str, *speakers: str, takes: int = 2) -> list[Clip]:
    return [Clip(Path(f"{s}_{i}.wav"), text, s) for s in speakers for i in range(takes)]


def test_real_speakers_and_clips_are_counted_per_source_training_side_only() -> None:
    recordings = {"fsdd": _clips("one", "george", "lucas"),
                  "me/manifest.jsonl": _clips("stop", "anna", "ben", "lucas", takes=3)}
    words = WordClips(_clips("one", "sc-1", "sc-2"), _clips("one", "sc-9"),
                      _clips("cat", "sc-1", "sc-3"), [])
    synth = _clips("stop", "espeak-a", "flite-b")
    counts = count(recordings, ["ben"], words, synth, [])
    assert counts["sources"] == {"fsdd": {"speakers": 2, "clips": 4},
                                 "me/manifest.jsonl": {"speakers": 2, "clips": 6},
                                 "Speech Commands": {"speakers": 2, "clips": 4}}
    assert counts["speakers"] == 5 and counts["clips"] == 14  # lucas is one person
    assert counts["negatives"] == {"speakers": 2, "clips": 4}
    assert counts["synthetic"] == {"voices": 2, "clips": 4}
    assert counts["heldout"] == {"kind": "recorded", "speakers": 1}


def test_synthetic_only_says_so_and_what_to_do() -> None:
    counts = count({}, [], None, _clips("stop", "a", "b", "c"), _clips("stop", "d"))
    assert counts["speakers"] == 0 and counts["heldout"] == {"kind": "synthetic", "speakers": 1}
    text = summary(counts)
    assert text.startswith("Real speech of the vocabulary in training: 0 speakers, 0 clips; "
                           "3 synthetic voices (6 clips). No real speaker said the vocabulary")
    assert "held-out figures (synthetic voices)" in text and "data.manifests" in text


def test_what_the_number_of_real_speakers_means() -> None:
    assert "well below" in meaning(1, "recorded") and "well below" in meaning(FEW - 1, "recorded")
    assert "somewhat worse" in meaning(FEW, "recorded")
    assert "somewhat worse" in meaning(MANY - 1, "recorded")
    assert "come close" in meaning(MANY, "recorded")
