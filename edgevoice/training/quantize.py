"""Full-integer INT8 TFLite export (int8 in and out) with a representative dataset.

Calibration windows are cut from features computed by the daemon's frontend, with the same
leading zero context the daemon's runner prepends, so activation ranges match deployment.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import numpy as np

from edgevoice.errors import BuildError
from edgevoice.training.model import build_model, copy_weights, keras
from edgevoice.training.recipe import ModelSettings


def calibration_windows(feats: Iterable[np.ndarray], window: int, context: int, step: int,
                        limit: int = 400) -> Iterator[np.ndarray]:
    """[1, window, bands] float32 windows, sliding as edgevoice.runtime.AcousticModel does."""
    n = 0
    for f in feats:
        x = np.concatenate((np.zeros((context, f.shape[1]), np.float32), f))
        for start in range(0, max(len(x) - context, 1), step):
            w = x[start : start + window]
            if len(w) < window:
                w = np.concatenate((w, np.zeros((window - len(w), f.shape[1]), np.float32)))
            yield w[None].astype(np.float32)
            n += 1
            if n >= limit:
                return


def to_int8(model: Any, ms: ModelSettings, window: int, windows: list[np.ndarray],
            per_channel: bool = True) -> bytes:
    """Convert a trained Keras model to an INT8 TFLite flatbuffer calibrated on fixed windows
    that runs on any window length (weights scaled per output channel, or per tensor with
    `per_channel=False`)."""
    import tensorflow as tf

    n_features, n_tokens = int(model.input_shape[-1]), int(model.output_shape[-1])
    fixed = build_model(ms, n_features, n_tokens, frames=window, batch=1, training=False)
    copy_weights(model, fixed)
    keras()
    concrete = tf.function(lambda x: fixed(x, training=False)).get_concrete_function(
        tf.TensorSpec([1, window, n_features], tf.float32))
    converter = tf.lite.TFLiteConverter.from_concrete_functions([concrete], fixed)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([w] for w in windows)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    if not per_channel:
        if not hasattr(converter, "_experimental_disable_per_channel"):
            raise BuildError("this TensorFlow cannot quantize per tensor; set quantize.per_channel:"
                             " true")
        converter._experimental_disable_per_channel = True
    try:
        blob = bytes(converter.convert())
    except Exception as exc:  # the converter raises many kinds; all mean "cannot quantize"
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise BuildError(f"INT8 conversion failed: {first}") from None
    return strip_names(blob)


def strip_names(blob: bytes) -> bytes:
    """Drop tensor names and other strings the runtime does not need (a few KiB), and free the
    time dimension (see `free_time_axis`)."""
    try:
        from tensorflow.lite.tools import flatbuffer_utils as fb
    except ImportError:
        return blob
    model = fb.read_model_from_bytearray(bytearray(blob))
    fb.strip_strings(model)
    free_time_axis(model)
    return bytes(fb.convert_object_to_bytearray(model))


def free_time_axis(model: Any) -> None:
    """Make a converted fixed-window model (a flatbuffer ModelT) accept any window length.

    The converter bakes the window into the RESHAPE ops around each convolution ([1, 1, T, C]
    and back to [1, T, C]); with T as -1 there, and the input's signature [1, -1, bands], the
    runtime can resize the input and run many steps in one call (edgevoice.runtime), paying
    the left context once. Weights and quantization are untouched, so a window of the old
    length gives the same bytes out.
    """
    from tensorflow.lite.python import schema_py_generated as schema

    graph = model.subgraphs[0]
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    done: set[int] = set()
    for op in graph.operators:
        if codes[op.opcodeIndex] != schema.BuiltinOperator.RESHAPE or len(op.inputs) < 2:
            continue
        shape = graph.tensors[op.inputs[1]]
        if shape.buffer in done:  # shape constants are shared between RESHAPE ops
            continue
        data = model.buffers[shape.buffer].data
        if data is None:
            raise BuildError("INT8 model: a RESHAPE has a computed shape; cannot free its time "
                             "axis")
        dims = np.frombuffer(bytes(data), "<i4").copy()
        dims[-2] = -1  # [..., time, channels]
        model.buffers[shape.buffer].data = np.frombuffer(dims.astype("<i4").tobytes(), np.uint8)
        done.add(shape.buffer)
    for index in (*graph.inputs, *graph.outputs):
        tensor = graph.tensors[index]
        signature = np.array(tensor.shape, np.int32)
        signature[1] = -1  # [batch, time, features]
        tensor.shapeSignature = signature


def tflite_io(model_bytes: bytes) -> dict[str, Any]:
    """Input/output shapes, dtypes and quantization of a TFLite model (for bundle.yaml)."""
    from edgevoice.runtime import interpreter_class

    cls, _ = interpreter_class()
    interp = cls(model_content=model_bytes)
    interp.allocate_tensors()

    def describe(d: dict) -> dict[str, Any]:
        scale, zero = d["quantization"]
        return {"shape": [int(v) for v in d["shape"]], "dtype": np.dtype(d["dtype"]).name,
                "scale": float(scale), "zero_point": int(zero)}

    return {"input": describe(interp.get_input_details()[0]),
            "output": describe(interp.get_output_details()[0])}
