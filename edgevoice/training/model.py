"""The acoustic model: a causal depthwise-separable 1-D CNN with CTC output.

Every time convolution is left-padded only, so output frame t depends on input frames <= 2t+1
and the daemon can run the model in chunks with left context (see edgevoice.runtime).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from edgevoice.errors import BuildError

if TYPE_CHECKING:
    from edgevoice.training.recipe import ModelSettings

STRIDE = 2
# Lines TensorFlow writes to stderr on every start that tell a CPU-only user nothing.
TF_NOTICES = (b"All log messages before absl::InitializeLog", b"oneDNN custom operations",
              b"cudart_stub.cc", b"cuda_platform.cc", b"cuda_dnn.cc", b"cuda_fft.cc",
              b"cuda_blas.cc", b"cpu_feature_guard.cc", b"To enable the following instructions",
              b"rebuild TensorFlow with the appropriate compiler flags", b"TF-TRT Warning",
              b"computation_placer.cc")
ARCHS = ("dscnn",)


def set_threads(threads: int) -> None:
    """Limit TensorFlow's CPU threads (0 = TensorFlow's default: all cores)."""
    if threads > 0:
        keras()  # sets the environment (legacy Keras, quiet logs) before TensorFlow loads
        import tensorflow as tf

        try:
            tf.config.threading.set_intra_op_parallelism_threads(threads)
            tf.config.threading.set_inter_op_parallelism_threads(threads)
        except RuntimeError:  # already initialised in this process (tests): keep as is
            pass


def keras() -> Any:
    """tf_keras (Keras 2), which the pruning API needs; TensorFlow is imported only here."""
    os.environ.setdefault("TF_USE_LEGACY_KERAS", "1")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgevoice.runtime import filtered_stderr

    try:
        # TensorFlow prints oneDNN and "no CUDA" notices straight to fd 2 while it loads and
        # finds its devices, ignoring TF_CPP_MIN_LOG_LEVEL; those lines are dropped, anything
        # else it prints (why it failed to load, say) still shows.
        with filtered_stderr(TF_NOTICES):
            import tensorflow as tf
            import tf_keras

            tf.config.list_physical_devices()
    except ImportError as exc:
        missing = isinstance(exc, ModuleNotFoundError) and \
            (exc.name or "").split(".")[0] in ("tensorflow", "tf_keras")
        if missing:
            raise BuildError(
                "training needs TensorFlow and tf-keras: pip install 'edgevoice[build]'"
            ) from None
        raise BuildError(f"TensorFlow is installed but failed to load: {exc}") from None
    return tf_keras


def receptive_field(s: ModelSettings) -> int:
    """Input frames one output frame sees (including itself)."""
    return s.first_kernel + STRIDE * sum((s.kernel - 1) * d for d in s.dilations)


def streaming_shape(s: ModelSettings) -> tuple[int, int]:
    """(window, context) in input frames: context covers the receptive field, both even."""
    rf = receptive_field(s)
    context = -(-(rf - 1) // STRIDE) * STRIDE
    if s.chunk <= 0 or s.chunk % STRIDE:
        raise BuildError(f"recipe model.chunk {s.chunk} must be a positive multiple of {STRIDE}")
    return context + s.chunk, context


def build_model(s: ModelSettings, n_features: int, n_tokens: int, frames: int | None = None,
                batch: int | None = None, training: bool = True,
                wrap: Callable[[Any], Any] | None = None) -> Any:
    """Keras model [batch, frames, n_features] -> log-probabilities [batch, frames/2, n_tokens].

    `wrap` is applied to every pointwise convolution and the output layer (pruning wrappers);
    `training=False` leaves out dropout (export).
    """
    if s.arch not in ARCHS:
        raise BuildError(f"recipe model.arch {s.arch!r} unknown (known: {', '.join(ARCHS)})")
    if s.first_kernel < STRIDE:
        raise BuildError(f"recipe model.first_kernel must be at least {STRIDE}")
    k = keras()
    L = k.layers
    w = wrap or (lambda layer: layer)
    inp = L.Input(shape=(frames, n_features), batch_size=batch, name="features")
    # Input layer: frames 2t+2-first_kernel .. 2t+1 -> output t (stride 2 = 20 ms frames).
    x = L.ZeroPadding1D((s.first_kernel - STRIDE, 0), name="pad_in")(inp)
    x = L.DepthwiseConv1D(s.first_kernel, strides=STRIDE, use_bias=False, name="dw_in")(x)
    x = w(L.Conv1D(s.channels, 1, use_bias=False, name="pw_in"))(x)
    x = L.BatchNormalization(name="bn_in")(x)
    x = L.ReLU(name="relu_in")(x)
    for i, d in enumerate(s.dilations):
        y = L.ZeroPadding1D(((s.kernel - 1) * d, 0), name=f"pad_{i}")(x)
        y = L.DepthwiseConv1D(s.kernel, dilation_rate=d, use_bias=False, name=f"dw_{i}")(y)
        y = w(L.Conv1D(s.channels, 1, use_bias=False, name=f"pw_{i}"))(y)
        y = L.BatchNormalization(name=f"bn_{i}")(y)
        y = L.ReLU(name=f"relu_{i}")(y)
        if s.dropout and training:
            y = L.Dropout(s.dropout, name=f"drop_{i}")(y)
        x = L.Add(name=f"res_{i}")([x, y]) if s.residual else y
    x = w(L.Dense(n_tokens, name="logits"))(x)
    out = L.Activation("log_softmax", name="log_probs")(x)
    return k.Model(inp, out, name=f"edgevoice_{s.arch}")


def macs_per_output_frame(s: ModelSettings, n_features: int, n_tokens: int) -> int:
    """Multiply-accumulates for one output frame (20 ms of audio)."""
    first = s.first_kernel * n_features + n_features * s.channels
    block = s.kernel * s.channels + s.channels * s.channels
    return first + len(s.dilations) * block + s.channels * n_tokens


def count_params(model: Any) -> int:
    """Trainable parameters (batch-norm statistics fold into the convolutions on export)."""
    return int(sum(int(w.shape.num_elements()) for w in model.trainable_weights))


def base_name(layer_name: str) -> str:
    return layer_name.removeprefix("prune_low_magnitude_")


def copy_weights(src: Any, dst: Any) -> None:
    """Copy weights between two builds of the same architecture, pruning-wrapped or not."""
    layers = {base_name(layer.name): layer for layer in src.layers}
    for layer in dst.layers:
        other = layers.get(base_name(layer.name))
        if other is None or not other.weights:
            continue
        source = getattr(other, "layer", other)
        target = getattr(layer, "layer", layer)
        target.set_weights(source.get_weights())


def weight_arrays(model: Any) -> dict[str, Any]:
    """Every layer's weights (batch-norm statistics included) as float16 arrays named
    "<layer>.<index>": the float model a bundle ships for later fine-tuning."""
    import numpy as np

    arrays = {}
    for layer in model.layers:
        for i, w in enumerate(getattr(layer, "layer", layer).get_weights()):
            arrays[f"{base_name(layer.name)}.{i}"] = np.asarray(w, np.float16)
    return arrays


def save_weight_arrays(path: Any, arrays: dict[str, Any]) -> None:
    """An .npz of `arrays` (np.load reads it) whose bytes depend on the arrays alone: sorted
    names and a fixed timestamp, so the same weights always give the same file and sha256."""
    import io
    import zipfile

    import numpy as np

    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as z:
        for name in sorted(arrays):
            buf = io.BytesIO()
            np.save(buf, arrays[name], allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            z.writestr(info, buf.getvalue())


def arrays_digest(arrays: Any) -> str:
    """sha256 over the names, shapes, types and values of `arrays` (an npz or a dict)."""
    import hashlib

    import numpy as np

    h = hashlib.sha256()
    for name in sorted(arrays):
        a = np.ascontiguousarray(arrays[name])
        h.update(f"{name}:{a.dtype.str}:{a.shape};".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def load_weight_arrays(model: Any, arrays: Any) -> tuple[list[str], list[str]]:
    """Set each layer of `model` whose weights all have a same-shaped array in `arrays` (see
    `weight_arrays`); (loaded layer names, skipped layer names: missing or another shape)."""
    loaded, skipped = [], []
    for layer in model.layers:
        target = getattr(layer, "layer", layer)
        current = target.get_weights()
        if not current:
            continue
        name = base_name(layer.name)
        keys = [f"{name}.{i}" for i in range(len(current))]
        if any(k not in arrays or arrays[k].shape != w.shape for k, w in zip(keys, current,
                                                                             strict=True)):
            skipped.append(name)
            continue
        target.set_weights([arrays[k].astype(w.dtype) for k, w in zip(keys, current,
                                                                      strict=True)])
        loaded.append(name)
    return loaded, skipped
