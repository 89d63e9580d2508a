"""How much real speech a model was trained on, and what that means for strangers.

Synthetic voices are many but alike, and held-out figures come from voices like the trained
ones. What carries a model to people it never heard is the number of real people, each with
their own voice, microphone and room, who said its vocabulary in training. The thresholds are
rules of thumb, not measurements: under FEW speakers a model knows those people; from MANY on
the voices and microphones start to cover a household's.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from edgevoice.training.data import Clip, WordClips

FEW, MANY = 5, 20  # real speakers of the vocabulary in training
SC_SOURCE = "Speech Commands"


def _tally(clips: Sequence[Clip]) -> dict[str, int]:
    return {"speakers": len({c.speaker for c in clips}), "clips": len(clips)}


def count(recordings: Mapping[str, Sequence[Clip]], test_speakers: Sequence[str],
          words: WordClips | None, synth: Sequence[Clip], synth_heldout: Sequence[Clip]
          ) -> dict[str, Any]:
    """Speakers and clips of the vocabulary per real source (training side only), the other
    words trained as negatives, the synthetic voices, and who was held out."""
    train = {name: [c for c in clips if c.speaker not in test_speakers]
             for name, clips in recordings.items()}
    if words is not None:
        train[SC_SOURCE] = list(words.train)
    everyone = [c for clips in train.values() for c in clips]
    real_test = {c.speaker for clips in recordings.values() for c in clips
                 if c.speaker in test_speakers}
    return {"sources": {name: _tally(clips) for name, clips in train.items()},
            **_tally(everyone),
            "negatives": _tally(words.other_train if words is not None else []),
            "synthetic": {"voices": len({c.speaker for c in synth}), "clips": len(synth)},
            "heldout": ({"kind": "synthetic", "speakers": len({c.speaker for c in synth_heldout})}
                        if synth_heldout else {"kind": "recorded", "speakers": len(real_test)})}


def meaning(speakers: int, heldout: str) -> str:
    """What `speakers` real speakers of the vocabulary mean for accuracy on strangers."""
    figures = "the held-out figures" + (" (synthetic voices)" if heldout == "synthetic" else "")
    more = "record or capture more people saying it (data.manifests) to improve"
    if speakers == 0:
        return (f"No real speaker said the vocabulary: expect real people, strangers above all, "
                f"to do much worse than {figures}; {more}.")
    if speakers < FEW:
        return (f"Few real speakers (under {FEW}): expect accuracy on strangers well below "
                f"{figures}; {more}.")
    if speakers < MANY:
        return (f"Some real speakers ({FEW}-{MANY - 1}): expect strangers to do somewhat worse "
                f"than {figures}; {MANY} or more people cover voices and microphones better.")
    return (f"Many real speakers ({MANY} or more): strangers should come close to {figures}, "
            "unless their voices, rooms or microphones are unlike all of them.")


def summary(counts: Mapping[str, Any]) -> str:
    """One paragraph: the real data by source, negatives, synthetic voices, and what it means."""
    sources = ", ".join(f"{name} {v['speakers']} speakers/{v['clips']} clips"
                        for name, v in counts["sources"].items() if v["clips"])
    neg, syn = counts["negatives"], counts["synthetic"]
    negatives = (f"; {neg['clips']} clips of other words by {neg['speakers']} speakers as "
                 "negatives" if neg["clips"] else "")
    synthetic = (f"; {syn['voices']} synthetic voices ({syn['clips']} clips)" if syn["voices"]
                 else "")
    return (f"Real speech of the vocabulary in training: {counts['speakers']} speakers, "
            f"{counts['clips']} clips{f' ({sources})' if sources else ''}{negatives}{synthetic}. "
            + meaning(counts["speakers"], counts["heldout"]["kind"]))
