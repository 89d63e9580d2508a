"""The one recognition chain: the same text and times whichever way audio is handed to it, and
the pipeline's times stay the stream's across mutes and reloads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from support import compose, digit_clip

from edgevoice.audio import Framer, rechunk, to_int16
from edgevoice.bundle import load_bundle
from edgevoice.config import load_settings
from edgevoice.pipeline import Pipeline
from edgevoice.recognizer import Recognizer
from edgevoice.stages.sinks import FileOptions, FileSink
from edgevoice.transcribe import Transcriber


def settings_for(bundle_dir: Path, **extra):  # type: ignore[no-untyped-def]
    return load_settings({"bundle": str(bundle_dir), **extra}, "test")


def digits(bundle_dir: Path) -> np.ndarray:
    clips = [digit_clip(n) for n in ("3_george_1", "7_jackson_2", "0_nicolas_4")]
    gap = np.zeros(4000, np.float32)
    lead = np.zeros(4800, np.float32)
    return to_int16(np.concatenate([lead, clips[0], gap, clips[1], gap, clips[2], lead]))


def old_chain(rec: Recognizer, audio: np.ndarray) -> tuple[str, list]:
    """The chain as it was before the recognizer batched its work: frontend and model on
    every 20 ms frame."""
    rec.reset()
    for frame in rechunk([audio], rec.frame_samples):
        logprobs = rec.model.process(rec.frontend.process(rec.clean(frame)))
        if len(logprobs):
            rec.decoder.process(logprobs)
    tail = rec.model.flush()
    if len(tail):
        rec.decoder.process(tail)
    result = rec.decoder.finalize()
    rec.reset()
    return result.text, [(w.word, round(w.start, 3), round(w.end, 3)) for w in result.words]


@pytest.mark.parametrize("decoder", ["greedy", "beam"])
@pytest.mark.parametrize("block", [1, 320, 777, 16000, None])
def test_any_block_size_gives_the_frame_by_frame_result(bundle_dir, decoder, block) -> None:
    settings = settings_for(bundle_dir, decoder={"name": decoder})
    rec = Recognizer.open(*settings, load_bundle(bundle_dir))
    audio = digits(bundle_dir)
    want = old_chain(rec, audio)
    blocks = [audio] if block is None else [audio[i : i + block]
                                            for i in range(0, len(audio), block)]
    for b in blocks:
        rec.accept(b)
    result = rec.finish()
    assert want[0]  # the model hears something: the comparison below is not of two blanks
    assert (result.text, [(w.word, round(w.start, 3), round(w.end, 3))
                          for w in result.words]) == want


def test_a_denoiser_sees_whole_frames_and_the_tail_is_padded(bundle_dir) -> None:
    settings = settings_for(bundle_dir, denoise={"name": "webrtc"})
    rec = Recognizer.open(*settings, load_bundle(bundle_dir))
    audio = digits(bundle_dir)[:-123]  # not a whole number of frames
    want = old_chain(rec, audio)
    for i in range(0, len(audio), 1000):
        rec.accept(audio[i : i + 1000])
    assert rec.finish().text == want[0]


def test_transcribe_takes_paths_arrays_and_streams_alike(tmp_path, bundle_dir) -> None:
    wav = compose(tmp_path / "a.wav", ["3_george_1", "7_jackson_2"], groups=[2], rate=8000)
    transcriber = Transcriber(*settings_for(bundle_dir))
    from edgevoice.audio import read_wav

    samples, info = read_wav(wav)
    by_path = transcriber.transcribe(wav).to_payload()
    by_array = transcriber.transcribe_samples(samples, info.sample_rate).to_payload()
    by_blocks = transcriber.transcribe_blocks(
        [samples[i : i + 999] for i in range(0, len(samples), 999)], 8000, "x").to_payload()
    for out in (by_array, by_blocks):
        assert out["text"] == by_path["text"] and out["words"] == by_path["words"]
        assert out["duration"] == by_path["duration"]
    assert by_path["converted_from"].startswith("8000 Hz") and "converted_from" not in by_array
    assert all(0 <= w["start"] <= w["end"] <= by_path["duration"] for w in by_path["words"])


def run_pipeline(tmp_path: Path, bundle_dir: Path, audio: np.ndarray,
                 mute: tuple[int, float] | None = None) -> list[dict]:
    """Frames through a Pipeline into a real file sink; `mute` = (after frame, seconds skipped)."""
    settings, registry = settings_for(bundle_dir, partial_interval_ms=0)
    out = tmp_path / f"out{np.random.randint(1 << 30)}.jsonl"
    sink = FileSink(FileOptions(topics=("transcript", "vad"), path=str(out)), None)  # type: ignore[arg-type]
    sink.open()
    pipeline = Pipeline(settings, registry, load_bundle(bundle_dir), [sink])
    framer = Framer(pipeline.frame_samples)
    for i, frame in enumerate(framer.push(audio)):
        if mute is not None and i == mute[0]:
            pipeline.skip(mute[1], "listen_off")
        pipeline.feed(frame)
    pipeline.finish()
    pipeline.close()
    sink.close()
    return [json.loads(line) for line in out.read_text().splitlines()]


def test_times_stay_stream_times_after_a_mute(tmp_path, bundle_dir) -> None:
    audio = digits(bundle_dir)
    plain = run_pipeline(tmp_path, bundle_dir, audio)
    # 2.5 s skipped before the first frame (listening off, or audio dropped): everything
    # happens 2.5 s later on the stream's clock, words included
    muted = run_pipeline(tmp_path, bundle_dir, audio, mute=(0, 2.5))
    assert [m.get("event") for m in plain] == [m.get("event") for m in muted]
    for a, b in zip(plain, muted, strict=True):
        assert b["start"] == pytest.approx(a["start"] + 2.5, abs=1e-3)
        for wa, wb in zip(a.get("words", []), b.get("words", []), strict=True):
            assert wb["start"] == pytest.approx(wa["start"] + 2.5, abs=1e-3)
    transcript = [m for m in plain if "text" in m]
    assert transcript and transcript[0]["words"]


def test_word_times_follow_one_another(tmp_path, bundle_dir) -> None:
    """The beam search keeps alignment on prefixes that hypotheses share: before words were
    put in order, 9 of 40 such files had a word ending after the next one started."""
    import os
    import random

    from support import need_fsdd

    names = sorted(p[:-4] for p in os.listdir(need_fsdd()))
    rng = random.Random(0)
    transcriber = Transcriber(*settings_for(bundle_dir, decoder={"name": "beam"}))
    for k in range(20):
        wav = compose(tmp_path / f"{k}.wav", rng.sample(names, 3),
                      gap_s=rng.choice([0.05, 0.1, 0.25]), groups=[3])
        words = transcriber.transcribe(wav).to_payload()["words"]
        for a, b in zip(words, words[1:], strict=False):
            assert a["start"] <= a["end"] <= b["start"] <= b["end"], words
