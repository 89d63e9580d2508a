"""Noise suppression: none, or WebRTC's noise suppressor and gain control."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from edgevoice.components import Closeable, StageContext
from edgevoice.errors import PluginError
from edgevoice.options import opt


@dataclass(frozen=True)
class NoOptions:
    """No options."""


class NoDenoise(Closeable):
    """Pass audio through unchanged."""

    name = "none"
    kind = "denoise"
    Options = NoOptions

    def __init__(self, options: NoOptions, ctx: StageContext) -> None:
        pass

    def process(self, frame: np.ndarray) -> np.ndarray:
        return frame


@dataclass(frozen=True)
class WebRtcOptions:
    noise_suppression: int = opt(2, "suppression level 0 (off) .. 4 (strongest)", min=0, max=4)
    auto_gain_dbfs: int = opt(0, "automatic gain target, dBFS below full scale; 0 disables",
                              min=0, max=31)


class WebRtcDenoise(Closeable):
    """webrtc-noise-gain: 10 ms blocks of 16 kHz 16-bit audio."""

    name = "webrtc"
    kind = "denoise"
    Options = WebRtcOptions

    def __init__(self, options: WebRtcOptions, ctx: StageContext) -> None:
        if ctx.sample_rate != 16000:
            raise PluginError(f"denoise webrtc: needs 16000 Hz audio, the model runs at "
                              f"{ctx.sample_rate} Hz; use `denoise: {{name: none}}`")
        if ctx.frame_samples % 160:
            raise PluginError("denoise webrtc: frame length must be a multiple of 10 ms")
        try:
            from webrtc_noise_gain import AudioProcessor
        except ImportError:
            raise PluginError("denoise webrtc: `pip install 'edgevoice[denoise]'` "
                              "(webrtc-noise-gain)") from None
        self._new = lambda: AudioProcessor(options.auto_gain_dbfs, options.noise_suppression)
        self._proc = self._new()
        self._out = np.zeros(ctx.frame_samples, np.int16)

    def reset(self) -> None:
        """A new stream: forget the noise estimate and gain of the last one."""
        self._proc = self._new()

    def process(self, frame: np.ndarray) -> np.ndarray:
        raw = frame.astype("<i2", copy=False).tobytes()
        for k in range(0, len(raw), 320):
            result = self._proc.Process10ms(raw[k : k + 320])
            self._out[k // 2 : k // 2 + 160] = np.frombuffer(result.audio, "<i2")
        return self._out.copy()
