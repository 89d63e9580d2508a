"""Voice activity detection and segmentation into utterances.

`Segmenter` turns per-frame speech/non-speech decisions into utterances with pre-roll (audio
before the trigger, so first phonemes are not clipped), hang-over (silence that must pass before
an utterance ends), and minimum and maximum utterance lengths. Detectors: webrtcvad, energy.
A plugin's VAD subclasses it (`from edgevoice import Segmenter`) and writes only `is_speech`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevoice.components import Closeable, Event, SpeechAudio, SpeechEnd, SpeechStart, StageContext
from edgevoice.errors import PluginError
from edgevoice.options import opt


@dataclass(frozen=True)
class SegmenterOptions:
    preroll_ms: int = opt(300, "audio kept from before speech starts, ms", min=0, max=2000)
    hangover_ms: int = opt(400, "silence that ends an utterance, ms", min=20, max=5000)
    trigger_ms: int = opt(60, "voiced audio needed (within 2x this span) to start, ms",
                          min=10, max=1000)
    min_utterance_ms: int = opt(150, "shorter speech is dropped (clicks, coughs), ms",
                                min=0, max=10000)
    max_utterance_ms: int = opt(15000, "an utterance is cut after this long, ms",
                                min=500, max=120000)


class Segmenter(Closeable, ABC):
    """Utterance state machine over frame decisions from `is_speech`.

    A subclass sets `name`, optionally `Options` (a subclass of SegmenterOptions, so the
    segmenter's own settings stay configurable), and implements `is_speech`.
    """

    kind = "vad"
    Options: type[SegmenterOptions] = SegmenterOptions

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if not (isinstance(cls.Options, type) and issubclass(cls.Options, SegmenterOptions)):
            raise TypeError(f"{cls.__qualname__}.Options must subclass "
                            "edgevoice.SegmenterOptions: the segmenter reads preroll_ms, "
                            "hangover_ms, ... from it")

    def __init__(self, options: SegmenterOptions, ctx: StageContext) -> None:
        self.options = options
        self.rate = ctx.sample_rate
        self.frame = ctx.frame_samples
        fms = 1000 * self.frame / self.rate
        self._n_pre = int(options.preroll_ms / fms)
        self._n_hang = max(1, int(round(options.hangover_ms / fms)))
        self._n_trig = max(1, int(round(options.trigger_ms / fms)))
        self._n_min = int(options.min_utterance_ms / fms)
        self._n_max = int(options.max_utterance_ms / fms)
        self._t = 0  # frames seen since reset
        self.reset()

    @abstractmethod
    def is_speech(self, frame: np.ndarray) -> bool:
        """Is this frame speech? `frame`: int16, `self.frame` samples at `self.rate` Hz,
        denoised; called once per frame, in order, on the processing thread."""

    def reset(self) -> None:
        self._pre: deque[np.ndarray] = deque(maxlen=self._n_pre + 2 * self._n_trig)
        self._recent: deque[bool] = deque(maxlen=2 * self._n_trig)
        self._active = False
        self._start = 0  # frame index where the utterance's audio starts
        self._speech_start = 0  # frame index where its trigger window starts
        self._last_voiced = 0  # frame index after the last voiced frame
        self._silence = 0

    def process(self, frame: np.ndarray) -> list[Event]:
        voiced = self.is_speech(frame)
        t = self._t
        self._t += 1
        self._pre.append(frame)  # always: an utterance may start right after another ends
        if not self._active:
            self._recent.append(voiced)
            if sum(self._recent) < self._n_trig:
                return []
            self._active = True
            self._silence = 0
            self._speech_start = t + 1 - len(self._recent)
            self._last_voiced = t + 1
            frames = list(self._pre)
            self._start = t + 1 - len(frames)
            self._pre.clear()
            self._recent.clear()
            start: list[Event] = [SpeechStart(self._seconds(self._start))]
            return start + [SpeechAudio(f) for f in frames]
        events: list[Event] = [SpeechAudio(frame)]
        if voiced:
            self._silence = 0
            self._last_voiced = t + 1
        else:
            self._silence += 1
        if self._silence >= self._n_hang:
            events.append(self._end("silence"))
        elif t + 1 - self._start >= self._n_max:
            events.append(self._end("max_length"))
        return events

    def flush(self) -> list[Event]:
        """End of stream: close an open utterance."""
        return [self._end("end_of_stream")] if self._active else []

    def _end(self, reason: str) -> SpeechEnd:
        # Speech is counted from the trigger window, not from the start of the pre-roll,
        # which is shorter than preroll_ms when the utterance began soon after the stream or
        # another utterance: counting it as full dropped short words that followed.
        speech = self._last_voiced - self._speech_start
        event = SpeechEnd(self._seconds(self._last_voiced), reason, speech < self._n_min)
        self._active = False
        self._recent.clear()
        if reason == "silence":
            # The next utterance's pre-roll may reach back into this one's hang-over (silence
            # by the VAD's account, so it repeats no words), rather than start with none.
            while len(self._pre) > self._t - self._last_voiced:
                self._pre.popleft()
        else:  # cut mid-speech (max_length): the next utterance starts where this one ended
            self._pre.clear()
        return event

    def _seconds(self, frame_index: int) -> float:
        return frame_index * self.frame / self.rate


@dataclass(frozen=True)
class WebRtcVadOptions(SegmenterOptions):
    aggressiveness: int = opt(2, "0 (lenient) .. 3 (strict about what is speech)", min=0, max=3)


class WebRtcVad(Segmenter):
    """Google's WebRTC VAD (webrtcvad-wheels); 10, 20 or 30 ms frames at 8/16/32/48 kHz."""

    name = "webrtcvad"
    Options = WebRtcVadOptions

    def __init__(self, options: WebRtcVadOptions, ctx: StageContext) -> None:
        ms = 1000 * ctx.frame_samples / ctx.sample_rate
        if ctx.sample_rate not in (8000, 16000, 32000, 48000) or ms not in (10, 20, 30):
            raise PluginError(f"vad webrtcvad: needs 10/20/30 ms frames at 8/16/32/48 kHz, "
                              f"got {ms:g} ms at {ctx.sample_rate} Hz (set audio.frame_ms)")
        import webrtcvad

        self._vad = webrtcvad.Vad(options.aggressiveness)
        super().__init__(options, ctx)

    def is_speech(self, frame: np.ndarray) -> bool:
        return bool(self._vad.is_speech(frame.astype("<i2", copy=False).tobytes(), self.rate))


@dataclass(frozen=True)
class EnergyVadOptions(SegmenterOptions):
    threshold_db: float = opt(12.0, "speech is this far above the tracked noise floor, dB",
                              min=0.0, max=60.0)
    floor_dbfs: float = opt(-60.0, "initial noise floor estimate, dBFS", max=0.0)


class EnergyVad(Segmenter):
    """Frame energy against an adaptive noise floor: no dependency, for quiet rooms."""

    name = "energy"
    Options = EnergyVadOptions

    def __init__(self, options: EnergyVadOptions, ctx: StageContext) -> None:
        self._thr = options.threshold_db
        self._floor = options.floor_dbfs
        super().__init__(options, ctx)

    def is_speech(self, frame: np.ndarray) -> bool:
        x = frame.astype(np.float32) / 32768.0
        db = 10.0 * np.log10(float(np.mean(x * x)) + 1e-10)
        voiced = db > self._floor + self._thr
        # The floor follows quiet frames quickly and loud frames very slowly.
        rate = 0.001 if voiced else 0.05
        self._floor += rate * (db - self._floor) if db > self._floor else 0.5 * (db - self._floor)
        return voiced
