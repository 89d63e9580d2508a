"""Segmenter, capture queue and the streaming acoustic model, on real audio."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from support import digit_clip, need_fsdd

from edgevoice.bundle import load_bundle
from edgevoice.components import SpeechAudio, SpeechEnd, SpeechStart, StageContext
from edgevoice.daemon import AudioQueue
from edgevoice.features import LogMel
from edgevoice.runtime import open_acoustic_model
from edgevoice.stages.vad import EnergyVad, EnergyVadOptions, WebRtcVad, WebRtcVadOptions

RATE, FRAME = 16000, 320


def frames_of(x: np.ndarray) -> list[np.ndarray]:
    pcm = (np.clip(x, -1, 1) * 32767).astype(np.int16)
    pcm = np.concatenate((pcm, np.zeros(-len(pcm) % FRAME, np.int16)))
    return [pcm[i : i + FRAME] for i in range(0, len(pcm), FRAME)]


def run(vad, x):  # type: ignore[no-untyped-def]
    events = [e for f in frames_of(x) for e in vad.process(f)] + vad.flush()
    return [e for e in events if not isinstance(e, SpeechAudio)], events


def silence(s: float) -> np.ndarray:
    return np.zeros(int(s * RATE), np.float32)


CTX = StageContext("t", RATE, FRAME)


@pytest.mark.parametrize("vad_cls,opts", [(WebRtcVad, WebRtcVadOptions()),
                                          (EnergyVad, EnergyVadOptions())])
def test_segments_utterances_with_preroll_and_hangover(vad_cls, opts) -> None:
    need_fsdd()
    a, b = digit_clip("3_george_1"), digit_clip("7_lucas_3")
    x = np.concatenate([silence(1.0), a, silence(0.2), b, silence(1.5), a, silence(1.0)])
    marks, events = run(vad_cls(opts, CTX), x)
    kinds = [type(e) for e in marks]
    assert kinds == [SpeechStart, SpeechEnd, SpeechStart, SpeechEnd], marks
    first_start, first_end = marks[0].start, marks[1].end
    speech_end = 1.0 + (len(a) + len(b)) / RATE + 0.2
    assert 0.6 <= first_start <= 1.0  # pre-roll reaches back before the speech
    assert speech_end - 0.3 <= first_end <= speech_end + 0.15  # webrtcvad lags a few frames
    assert all(not e.too_short for e in marks if isinstance(e, SpeechEnd))
    audio = sum(1 for e in events if isinstance(e, SpeechAudio))
    assert audio * FRAME / RATE > 2 * len(a) / RATE  # both utterances carried their audio


def test_clicks_are_too_short_and_long_speech_is_cut() -> None:
    rng = np.random.default_rng(0)
    click = rng.standard_normal(int(0.1 * RATE)).astype(np.float32) * 0.5
    opts = EnergyVadOptions(min_utterance_ms=300, max_utterance_ms=1000)
    marks, _ = run(EnergyVad(opts, CTX), np.concatenate([silence(1), click, silence(1)]))
    assert isinstance(marks[-1], SpeechEnd) and marks[-1].too_short
    noise = rng.standard_normal(int(3.0 * RATE)).astype(np.float32) * 0.3
    marks, _ = run(EnergyVad(opts, CTX), np.concatenate([silence(1), noise, silence(1)]))
    reasons = [e.reason for e in marks if isinstance(e, SpeechEnd)]
    assert reasons.count("max_length") >= 2


@pytest.mark.parametrize("vad_cls,opts", [(WebRtcVad, WebRtcVadOptions()),
                                          (EnergyVad, EnergyVadOptions())])
def test_a_short_word_soon_after_another_utterance_keeps_its_preroll_and_is_kept(vad_cls,
                                                                              opts) -> None:
    """"eight ... eight": the first utterance ends (hangover) just before the second word
    starts. The second still gets pre-roll from the silence between, and its ~0.25 s of speech
    is not mistaken for a click (it used to be dropped, pre-roll counted as full)."""
    need_fsdd()
    word = digit_clip("8_lucas_16")  # "eight", 0.25 s
    onset = 1.0 + len(word) / RATE + 0.5
    x = np.concatenate([silence(1.0), word, silence(0.5), word, silence(1.0)])
    marks, _ = run(vad_cls(opts, CTX), x)
    assert [type(e) for e in marks] == [SpeechStart, SpeechEnd, SpeechStart, SpeechEnd], marks
    assert not marks[1].too_short and not marks[3].too_short, marks
    assert marks[2].start <= onset - 0.2, marks  # pre-roll from the silence before the word
    assert marks[2].start >= marks[1].end  # but none of the first word


def test_a_max_length_cut_in_a_short_pause_repeats_no_audio() -> None:
    """Speech, a pause shorter than the hang-over, speech: the 1 s limit falls in the pause.
    The next utterance starts where the cut one ended; no frame goes to both."""
    rng = np.random.default_rng(1)

    def noise(seconds: float) -> np.ndarray:
        return rng.standard_normal(int(seconds * RATE)).astype(np.float32) * 0.3

    x = np.concatenate([silence(1.0), noise(0.5), silence(0.3), noise(1.2), silence(1.0)])
    vad = EnergyVad(EnergyVadOptions(max_utterance_ms=1000), CTX)
    events, owner, current = [], {}, -1
    for f in frames_of(x):
        for e in vad.process(f):
            events.append(e)
            if isinstance(e, SpeechStart):
                current += 1
            elif isinstance(e, SpeechAudio):
                assert id(e.samples) not in owner, "a frame sent to two utterances"
                owner[id(e.samples)] = current
    marks = [e for e in events if not isinstance(e, SpeechAudio)]
    cut = [i for i, e in enumerate(marks) if isinstance(e, SpeechEnd)
           and e.reason == "max_length"]
    assert cut and 1.5 <= marks[cut[0]].end <= 1.8 + 0.02, marks  # the cut is in the pause
    assert isinstance(marks[cut[0] + 1], SpeechStart)


def test_live_queue_drops_oldest_and_counts() -> None:
    q = AudioQueue(max_samples=1000, live=True, overflow="drop_oldest")
    for i in range(5):
        q.put(np.full(400, i, np.int16))
    assert q.dropped_samples == 1200
    got = [q.get(0.1)[1] for _ in range(2)]
    assert [int(b[0]) for b in got] == [3, 4]  # the newest audio survived


def test_live_queue_drop_newest() -> None:
    q = AudioQueue(max_samples=1000, live=True, overflow="drop_newest")
    for i in range(5):
        q.put(np.full(400, i, np.int16))
    assert q.dropped_samples == 1200
    assert int(q.get(0.1)[1][0]) == 0


def test_file_queue_waits_instead_of_dropping() -> None:
    q = AudioQueue(max_samples=1000, live=False, overflow="drop_oldest")
    received: list[int] = []

    def consume() -> None:
        while True:
            ok, block = q.get(1.0)
            if ok and block is None:
                return
            if ok:
                received.append(int(block[0]))

    t = threading.Thread(target=consume)
    t.start()
    for i in range(50):
        q.put(np.full(400, i, np.int16))
    q.put(None)
    t.join(10)
    assert received == list(range(50)) and q.dropped_samples == 0


def test_acoustic_model_streaming_equals_whole(bundle_dir) -> None:  # type: ignore[no-untyped-def]
    need_fsdd()
    bundle = load_bundle(bundle_dir)
    feats = LogMel(bundle.frontend).compute(digit_clip("4_jackson_8"))
    model = open_acoustic_model(bundle)
    assert (model.input_dtype, model.output_dtype) == ("int8", "int8")
    whole = model.run_utterance(feats)
    assert whole.shape == (-(-len(feats) // bundle.streaming.stride), len(bundle.tokens))
    for size in (1, 7, 50):
        model.reset()
        parts = [model.process(feats[i : i + size]) for i in range(0, len(feats), size)]
        parts.append(model.flush())
        assert np.array_equal(np.concatenate(parts), whole)
    assert np.allclose(np.exp(whole).sum(axis=1), 1.0, atol=0.1)  # log-softmax output


def test_model_load_drops_the_runtime_banner_but_not_other_log_lines() -> None:
    """While a model (re)loads, only TFLite's own log lines are dropped: a line another thread
    logs meanwhile still reaches stderr."""
    import subprocess
    import sys

    model = Path(__file__).resolve().parents[1] / "edgevoice/models/digits/model.tflite"
    code = (
        "import logging, os\n"
        "from pathlib import Path\n"
        "from edgevoice.runtime import _quiet_stderr, load_interpreter\n"
        "logging.basicConfig(format='%(asctime)s %(levelname)s %(name)s: %(message)s')\n"
        f"load_interpreter(Path({str(model)!r}))\n"
        "log = logging.getLogger('edgevoice.pipeline')\n"
        "with _quiet_stderr():\n"
        "    os.write(2, b'INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\\n')\n"
        "    log.warning('published during the reload')\n"
        "    os.write(2, b'INFO: ')  # TFLite writes its lines in three pieces\n"
        "    log.warning('landed inside a runtime line')\n"
        "    os.write(2, b'Created TensorFlow Lite XNNPACK delegate for CPU.')\n"
        "    os.write(2, b'\\n')\n"
        "    os.write(2, b'W0000 00:00:1733 12 cpu_feature_guard.cc:1] absl notice\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 2, lines
    assert lines[0].endswith("WARNING edgevoice.pipeline: published during the reload"), lines
    assert lines[1].endswith("WARNING edgevoice.pipeline: landed inside a runtime line"), lines


def test_filtered_stderr_drops_only_the_listed_notices() -> None:
    """C++-level writes to fd 2 pass through the filter: known notices go, the rest stays."""
    import subprocess
    import sys

    code = (
        "import os\n"
        "from edgevoice.runtime import filtered_stderr\n"
        "with filtered_stderr((b'oneDNN custom operations',)):\n"
        "    os.write(2, b'I0000 oneDNN custom operations are on\\n')\n"
        "    os.write(2, b'Illegal instruction: this CPU lacks AVX\\n')\n"
        "os.write(2, b'after\\n')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, timeout=60)
    assert done.returncode == 0
    assert done.stderr.decode().splitlines() == ["Illegal instruction: this CPU lacks AVX",
                                                 "after"]
