"""TFLite interpreter loading and the streaming acoustic-model runner.

The runtime is ai-edge-litert, else tflite-runtime, else tensorflow.lite; the daemon never imports
TensorFlow when a lighter runtime is present.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.bundle import Bundle, StreamingSpec
from edgevoice.errors import BundleError


def interpreter_class() -> tuple[Any, str]:
    """The first available TFLite Interpreter class and the runtime's name."""
    try:
        from ai_edge_litert.interpreter import Interpreter

        return Interpreter, "ai-edge-litert"
    except ImportError:
        pass
    try:
        from tflite_runtime.interpreter import Interpreter  # type: ignore[no-redef]

        return Interpreter, "tflite-runtime"
    except ImportError:
        pass
    try:
        import tensorflow as tf

        return tf.lite.Interpreter, "tensorflow.lite"
    except ImportError:
        raise BundleError(
            "no TFLite runtime installed: `pip install ai-edge-litert` (or tflite-runtime)"
        ) from None


# TFLite's own log lines ("INFO: Created TensorFlow Lite XNNPACK delegate for CPU.") start
# with their severity, TensorFlow's (the tensorflow.lite fallback) with absl's "W1203 10:14:12"
# or a timestamp and " I tensorflow/"; edgevoice's with "YYYY-MM-DD hh:mm:ss,mmm LEVEL".
TFLITE_LOG = (b"INFO: ", b"WARNING: ", b"ERROR: ", b"VERBOSE: ")
TF_LOG = re.compile(rb"^([IWEF]\d{4} \d\d:\d\d:\d\d|\S+ \S+: [IWEF] tensorflow/)")
# TFLite writes a line in pieces ("INFO: ", the message, "\n"): should another thread's line
# land between them, it follows the prefix (and is kept), and the banner arrives without its
# prefix (and is dropped by its text).
TFLITE_BANNER = (b"Created TensorFlow Lite XNNPACK delegate",
                 b"Initialized TensorFlow Lite runtime")
OUR_LOG = re.compile(rb"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} ")


def _runtime_line(line: bytes) -> bytes | None:
    """What of a line written to fd 2 during a model load reaches the terminal: nothing of
    the runtime's own lines, all of anyone else's."""
    prefix = next((p for p in TFLITE_LOG if line.startswith(p)), None)
    if prefix is not None:
        rest = line[len(prefix):]
        return rest if OUR_LOG.match(rest) else None
    if any(b in line for b in TFLITE_BANNER) or TF_LOG.match(line):
        return None
    return line


def _quiet_stderr() -> contextlib.AbstractContextManager[None]:
    """Drop the runtime's C++ log lines on fd 2 while a model loads (its failures arrive as
    Python exceptions); anything else written meanwhile, another thread's log line during a
    model reload say, still reaches the terminal."""
    return filtered_stderr(_runtime_line)


def load_interpreter(model_file: Path, threads: int = 1) -> Any:
    cls, _ = interpreter_class()
    try:
        with _quiet_stderr():
            interp = cls(model_path=str(model_file), num_threads=threads)
            interp.allocate_tensors()
    except (ValueError, RuntimeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BundleError(f"{model_file}: not a usable TFLite model ({first})") from None
    return interp


class AcousticModel:
    """Runs a causal CTC model over a stream of feature frames, chunk by chunk.

    `process(features)` returns log-probabilities [n, tokens] for every output frame whose
    input window is complete; `flush()` pads the tail and returns the rest. Output for a
    signal is the same however its features are split into calls.

    The model's window is `context` frames of left context and `step` new ones. When several
    steps are waiting (whole files, the build's evaluation) and the model accepts any length
    (its input signature is [1, -1, bands]; see edgevoice.training.quantize.free_time_axis),
    they run in one call over context + k * step frames, so the context is computed once per
    call instead of once per step. That is checked once at load against the fixed window, on
    the model's own kernels; a model that fails the check (or `multi_step=False`) runs one
    window per step.
    """

    def __init__(self, model_file: Path, spec: StreamingSpec, n_features: int,
                 n_tokens: int, threads: int = 1, multi_step: bool = True) -> None:
        self.spec = spec
        self._interp = load_interpreter(model_file, threads)
        inp = self._interp.get_input_details()[0]
        out = self._interp.get_output_details()[0]
        want_in = (1, spec.window, n_features)
        if tuple(inp["shape"]) != want_in:
            raise BundleError(f"{model_file}: input shape {tuple(inp['shape'])}, bundle says "
                              f"{want_in}")
        if int(out["shape"][-1]) != n_tokens or int(out["shape"][1]) * spec.stride != spec.window:
            raise BundleError(f"{model_file}: output shape {tuple(out['shape'])} does not fit "
                              f"{n_tokens} tokens and stride {spec.stride}")
        self._in_index, self._out_index = inp["index"], out["index"]
        self._in_dtype = inp["dtype"]
        self._in_scale, self._in_zero = _quant(inp)
        if self._in_scale:  # integer input: the clip bounds, looked up once
            info = np.iinfo(self._in_dtype)
            self._in_min, self._in_max = info.min, info.max
        self._out_scale, self._out_zero = _quant(out)
        self.input_dtype = np.dtype(self._in_dtype).name
        self.output_dtype = np.dtype(out["dtype"]).name
        self._length = spec.window  # the interpreter's current input length
        self._n_features, self._n_out = n_features, n_tokens
        signature = inp.get("shape_signature", inp["shape"])
        self.multi_step = multi_step and int(signature[1]) == -1 and self._same_as_fixed()
        self.reset()

    def reset(self) -> None:
        s = self.spec
        self._buf = np.zeros((s.context, self._n_features), np.float32)
        self._fresh = 0  # frames in _buf after the context that have not been run

    def process(self, feats: np.ndarray) -> np.ndarray:
        s = self.spec
        self._append(feats)
        steps = self._fresh // s.step
        if not steps:
            return np.zeros((0, self._n_out), np.float32)
        if self.multi_step:
            out = self._run(self._buf[: s.context + steps * s.step])
        else:
            out = np.concatenate([self._run(self._buf[i * s.step : i * s.step + s.window])
                                  for i in range(steps)])
        self._buf = self._buf[steps * s.step :]
        self._fresh -= steps * s.step
        return out

    def flush(self) -> np.ndarray:
        """Run what is buffered (zero-padded) and return its real output frames."""
        s = self.spec
        if self._fresh == 0:
            self.reset()
            return np.zeros((0, self._n_out), np.float32)
        n_out = -(-self._fresh // s.stride)
        # Causal: the padding never reaches a real output frame, so the multi-step path pads
        # only to a whole output frame and the fixed one to its window.
        length = s.context + n_out * s.stride if self.multi_step else s.window
        pad = np.zeros((length - len(self._buf), self._buf.shape[1]), np.float32)
        out = self._run(np.concatenate((self._buf, pad)))[:n_out]
        self.reset()
        return out

    def run_utterance(self, feats: np.ndarray) -> np.ndarray:
        """Log-probabilities for one whole utterance's features (evaluation, transcribe)."""
        self.reset()
        if self.multi_step:  # one call for the whole utterance
            self._append(feats)
            return self.flush()
        return np.concatenate((self.process(feats), self.flush()))

    def _append(self, feats: np.ndarray) -> None:
        self._buf = np.concatenate((self._buf, feats.astype(np.float32, copy=False)))
        self._fresh += len(feats)

    def _run(self, window: np.ndarray) -> np.ndarray:
        """Output frames after the context for `window` (context + a multiple of stride)."""
        if self._in_scale:
            q = np.round(window / self._in_scale + self._in_zero)
            raw = self._invoke(np.clip(q, self._in_min, self._in_max).astype(self._in_dtype))
        else:
            raw = self._invoke(window.astype(self._in_dtype))
        out = raw.astype(np.float32)
        if self._out_scale:
            out = (out - self._out_zero) * self._out_scale
        return out[self.spec.context // self.spec.stride :]

    def _invoke(self, window: np.ndarray) -> np.ndarray:
        """The model's raw output [frames, tokens] for an input [frames, bands] of its dtype."""
        if len(window) != self._length:
            self._interp.resize_tensor_input(self._in_index, [1, len(window), window.shape[1]])
            self._length = len(window)  # before allocating: a failure is undone by resizing
            self._interp.allocate_tensors()
        self._interp.set_tensor(self._in_index, window[None])
        self._interp.invoke()
        return self._interp.get_tensor(self._out_index)[0]

    def _same_as_fixed(self) -> bool:
        """Does one call over two steps give the bytes two fixed windows give, and a short
        tail the first frame of its padded window? (Any left-padded causal model does.)"""
        s = self.spec
        shape = (s.context + 2 * s.step, self._n_features)
        rng = np.random.default_rng(0)
        if self._in_scale:
            info = np.iinfo(self._in_dtype)
            x = rng.integers(info.min, info.max, shape, endpoint=True).astype(self._in_dtype)
        else:
            x = rng.standard_normal(shape).astype(self._in_dtype)
        skip = s.context // s.stride
        try:
            fixed = [self._invoke(x[i : i + s.window])[skip:] for i in (0, s.step)]
            long = self._invoke(x)[skip:]
            tail = self._invoke(x[: s.context + s.stride])[skip:]
        except (RuntimeError, ValueError):  # a RESHAPE that fixes the length, say
            return False
        finally:
            self._invoke(x[: s.window])  # back to the fixed window
        return (np.array_equal(np.concatenate(fixed), long)
                and np.array_equal(tail, fixed[0][:1]))


def _quant(detail: dict) -> tuple[float, int]:
    scale, zero = detail.get("quantization", (0.0, 0))
    return float(scale), int(zero)


@contextlib.contextmanager
def filtered_stderr(drop: Sequence[bytes] | Callable[[bytes], bytes | None]
                    ) -> Iterator[None]:
    """Pass everything written to fd 2 (by C++ too) through a filter that drops the lines
    containing any of `drop` (or, `drop` a function, passes on what it returns for a line, None
    for nothing); every other line, a real error or a crash message included, reaches the
    terminal as it comes."""
    if callable(drop):
        passed = drop
    else:
        texts = tuple(drop)

        def passed(line: bytes) -> bytes | None:
            return None if any(t in line for t in texts) else line

    try:
        saved = os.dup(2)
        read_end, write_end = os.pipe()
    except OSError:
        yield
        return

    def pump() -> None:
        with os.fdopen(read_end, "rb") as source:
            for line in source:
                out = passed(line)
                if out:
                    os.write(saved, out)

    sys.stderr.flush()
    thread = threading.Thread(target=pump, name="stderr-filter", daemon=True)
    thread.start()
    os.dup2(write_end, 2)
    os.close(write_end)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # the pipe's last write end closes: the pump sees the end and stops
        thread.join(timeout=5)
        os.close(saved)


def open_acoustic_model(bundle: Bundle, threads: int = 1) -> AcousticModel:
    return AcousticModel(bundle.model_file, bundle.streaming, bundle.frontend.n_mels,
                         len(bundle.tokens), threads)
