"""edgevoice plugin: an `rnnoise` denoiser (Xiph's RNNoise recurrent network, via pyrnnoise)."""

from __future__ import annotations

import ctypes
from dataclasses import dataclass
from typing import Any

import numpy as np

from edgevoice import hookimpl
from edgevoice.components import Closeable, StageContext
from edgevoice.errors import PluginError
from edgevoice.hookspecs import Register
from edgevoice.options import opt

RNNOISE_RATE = 48000  # RNNoise only runs at 48 kHz...
BLOCK = 480  # ...on 10 ms blocks
RNNOISE_DELAY = 960  # 48 kHz samples between a block going in and its denoised copy (measured)
# soxr's "quick" cubic resampler: at these whole-number ratios the round trip returns the
# pipeline's samples exactly, and what RNNoise leaves above the pipeline's band (about -40 dB)
# folds back. soxr's band-limited qualities measured the same noise reduction but hold back
# 30-60 ms more audio and trim the top of the band.
RESAMPLER = "QQ"
PYRNNOISE = "pip install 'pyrnnoise>=0.4.5,<0.5'"


@dataclass(frozen=True)
class RnnoiseOptions:
    mix: float = opt(0.2, "share of the original audio mixed back in: 0 (fully denoised) .. 1 "
                          "(untouched); some masks the network's artefacts and gaps, which a "
                          "recogniser never heard in training, and caps the suppression "
                          "(0.2: about 14 dB)", min=0.0, max=1.0)


class RnnoiseDenoise(Closeable):
    """RNNoise at 48 kHz between two streaming soxr resamplers.

    Output lags input by a fixed `delay_samples`: 30 ms from 8, 12, 16 or 24 kHz whatever the
    frame length (RNNoise's own 20 ms, plus the 10 ms block it must fill first; the start is
    primed with silence so every call returns a full frame), 20 ms at 48 kHz.
    """

    name = "rnnoise"
    kind = "denoise"
    Options = RnnoiseOptions

    def __init__(self, options: RnnoiseOptions, ctx: StageContext) -> None:
        rate = ctx.sample_rate
        if rate < 8000 or RNNOISE_RATE % rate:
            raise PluginError(f"denoise rnnoise: RNNoise runs at 48000 Hz and is fed from "
                              f"8000, 12000, 16000, 24000 or 48000 Hz, not {rate} Hz; use "
                              "`denoise: {name: none}` with this model")
        try:
            import soxr
            from pyrnnoise.rnnoise import FRAME_SIZE, SAMPLE_RATE, create, destroy, lib
        except (ImportError, OSError) as exc:  # OSError: its bundled librnnoise did not load
            raise PluginError(f"denoise rnnoise: cannot load pyrnnoise ({exc}); "
                              f"`{PYRNNOISE}`") from None
        if (SAMPLE_RATE, FRAME_SIZE) != (RNNOISE_RATE, BLOCK):
            raise PluginError(f"denoise rnnoise: this pyrnnoise takes {FRAME_SIZE} samples at "
                              f"{SAMPLE_RATE} Hz, expected {BLOCK} at {RNNOISE_RATE}; "
                              f"`{PYRNNOISE}`")
        # The C call itself, not pyrnnoise's wrappers: those allocate per block and truncate
        # the output to int16 without clipping; this keeps floats up to the final rounding.
        self._create, self._destroy, self._run = create, destroy, lib.rnnoise_process_frame
        self._mix = options.mix
        self._ratio = RNNOISE_RATE // rate
        n = ctx.frame_samples

        def streams() -> tuple[Any, Any]:
            if self._ratio == 1:
                return None, None
            return (soxr.ResampleStream(rate, RNNOISE_RATE, 1, "float32", RESAMPLER),
                    soxr.ResampleStream(RNNOISE_RATE, rate, 1, "float32", RESAMPLER))

        self._up, self._down = streams()
        self._lag = _worst_lag(*streams(), n, self._ratio)
        self.delay_samples = self._lag + RNNOISE_DELAY // self._ratio
        self._pending = _Queue(BLOCK + RNNOISE_RATE)  # 48 kHz, waiting for a whole block
        self._ready = _Queue(self._lag + n + rate)  # pipeline rate, waiting to be returned
        self._frame = np.zeros(n, np.float32)
        self._block = np.zeros(BLOCK, np.float32)
        self._denoised = np.zeros(BLOCK, np.float32)
        self._history = np.zeros(RNNOISE_DELAY + BLOCK, np.float32)  # input, to mix back
        self._block_ptr = self._block.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._denoised_ptr = self._denoised.ctypes.data_as(ctypes.POINTER(ctypes.c_float))
        self._out = np.zeros(n, np.float32)
        self._state: Any = None
        self.reset()

    def reset(self) -> None:
        if self._state is not None:
            self._destroy(self._state)  # RNNoise has no reset: a new stream is a new state
        self._state = self._create()
        for stream in (self._up, self._down):
            if stream is not None:
                stream.clear()
        self._pending.refill(0)
        self._ready.refill(self._lag)
        self._history[:] = 0.0

    def process(self, frame: np.ndarray) -> np.ndarray:
        self._frame[:] = frame  # RNNoise works on floats at int16 scale
        up = self._frame if self._up is None else self._up.resample_chunk(self._frame)
        self._pending.push(up)
        while self._pending.size >= BLOCK:
            self._pending.pop_into(self._block)
            self._denoise_block()
            down = self._denoised if self._down is None else \
                self._down.resample_chunk(self._denoised)
            self._ready.push(down)
        self._ready.pop_into(self._out)
        np.rint(self._out, out=self._out)
        np.clip(self._out, -32768, 32767, out=self._out)
        return self._out.astype(np.int16)

    def _denoise_block(self) -> None:
        """RNNoise on `_block` into `_denoised`, with the matching input mixed back."""
        self._run(self._state, self._denoised_ptr, self._block_ptr)
        if self._mix:
            self._history[RNNOISE_DELAY:] = self._block
            self._denoised *= 1.0 - self._mix
            self._denoised += self._mix * self._history[:BLOCK]
            self._history[:RNNOISE_DELAY] = self._history[BLOCK:]

    def close(self) -> None:
        if self._state is not None:
            self._destroy(self._state)
            self._state = None


class _Queue:
    """A first-in first-out queue of float32 samples on one array allocated up front."""

    def __init__(self, capacity: int) -> None:
        self._buf = np.zeros(capacity, np.float32)
        self.size = 0

    def push(self, samples: np.ndarray) -> None:
        self._buf[self.size : self.size + len(samples)] = samples
        self.size += len(samples)

    def pop_into(self, out: np.ndarray) -> None:
        n = len(out)
        out[:] = self._buf[:n]
        self._buf[: self.size - n] = self._buf[n : self.size]
        self.size -= n

    def refill(self, zeros: int) -> None:
        """Empty the queue, then put `zeros` samples of silence in it."""
        self._buf[:zeros] = 0.0
        self.size = zeros


def _worst_lag(up: Any, down: Any, frame_samples: int, ratio: int) -> int:
    """The most pipeline samples the chain ever owes its caller (soxr hands out output in
    bursts, RNNoise takes whole blocks). Sample counts do not depend on the audio, so one
    second of silence through fresh resamplers, in frames of the same length, finds it."""
    silence = np.zeros(frame_samples, np.float32)
    fed = returned = pending = worst = 0
    for _ in range(max(1, RNNOISE_RATE // ratio // frame_samples)):
        fed += frame_samples
        pending += frame_samples * ratio if up is None else len(up.resample_chunk(silence))
        blocks, pending = divmod(pending, BLOCK)
        if blocks:
            n = blocks * BLOCK
            returned += n // ratio if down is None else \
                len(down.resample_chunk(np.zeros(n, np.float32)))
        worst = max(worst, fed - returned)
    return worst


@hookimpl
def register_stages(register: Register) -> None:
    register(RnnoiseDenoise)
