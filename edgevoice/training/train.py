"""CTC training loop (Keras 2 via tf_keras), resumable from its last checkpoint.

The loop is shared by training and pruning fine-tuning; batches come from `batches.batch_stream`,
so batch i is the same whichever run reaches it, and a resumed run continues the same sequence.
"""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.training.batches import Batch, pad_features
from edgevoice.training.model import STRIDE, keras

log = logging.getLogger("edgevoice.training")


def lr_at(step: int, total: int, peak: float, warmup: int) -> float:
    """Linear warm-up, then cosine decay to 5 % of the peak."""
    if step < warmup:
        return peak * (step + 1) / warmup
    progress = (step - warmup) / max(total - warmup, 1)
    return peak * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * min(progress, 1.0))))


def make_train_step(model: Any, optimizer: Any, n_features: int,
                    shadow: list[Any] | None = None, decay: Any = None,
                    teacher: Any = None, distill: float = 0.0) -> Any:
    """One optimiser step; with `shadow` variables, also their moving average update (the
    `decay` variable's value per step); with a `teacher`, the loss adds `distill` times the
    KL divergence of the model's frame posteriors from the teacher's."""
    import tensorflow as tf

    spec = [
        tf.TensorSpec([None, None, n_features], tf.float32),
        tf.TensorSpec([None], tf.int32),
        tf.TensorSpec([None, None], tf.int32),
        tf.TensorSpec([None], tf.int32),
    ]

    @tf.function(input_signature=spec)
    def step(x: Any, x_len: Any, y: Any, y_len: Any) -> Any:
        with tf.GradientTape() as tape:
            logp = model(x, training=True)
            frames = (x_len + STRIDE - 1) // STRIDE
            # An empty transcript (a negative: noise, another word) is only blanks, whose CTC
            # loss is the sum of blank log-probabilities; the native kernel refuses empty
            # labels, so it gets a stand-in label whose loss is thrown away.
            empty = tf.equal(y_len, 0)
            first = tf.equal(tf.range(tf.shape(y)[1]), 0)[None, :]
            y_safe = tf.where(tf.logical_and(empty[:, None], first), tf.ones_like(y), y)
            # Sparse labels select TensorFlow's native CTC kernel (~10x faster on CPU than the
            # dense path); padding is 0 = blank, which never occurs in a label.
            ctc = tf.nn.ctc_loss(tf.sparse.from_dense(y_safe), logp, None, frames,
                                 logits_time_major=False, blank_index=0)
            valid = tf.sequence_mask(frames, tf.shape(logp)[1], dtype=tf.float32)
            blanks = -tf.reduce_sum(logp[:, :, 0] * valid, axis=1)
            loss = tf.where(empty, blanks, ctc)
            loss = tf.reduce_mean(loss / tf.cast(tf.maximum(y_len, 1), tf.float32))
            if teacher is not None:
                target = teacher(x, training=False)
                kl = tf.reduce_sum(tf.exp(target) * (target - logp), axis=-1)  # [B, T]
                mask = tf.sequence_mask(frames, tf.shape(kl)[1], dtype=tf.float32)
                loss += distill * tf.reduce_sum(kl * mask) / tf.maximum(tf.reduce_sum(mask), 1.0)
        grads = tape.gradient(loss, model.trainable_variables)
        grads, norm = tf.clip_by_global_norm(grads, 5.0)

        def update() -> Any:
            optimizer.apply_gradients(zip(grads, model.trainable_variables, strict=True))
            if shadow:
                for avg, var in zip(shadow, model.trainable_variables, strict=True):
                    avg.assign(decay * avg + (1.0 - decay) * var)
            return tf.constant(True)

        # A non-finite loss or gradient would turn every weight (and average) into NaN: such
        # a batch changes nothing, and the caller reports it.
        finite = tf.math.logical_and(tf.math.is_finite(loss), tf.math.is_finite(norm))
        tf.cond(finite, update, lambda: tf.constant(False))
        return loss

    return step


def fit(model: Any, batches: Iterator[Batch], *, steps: int, start: int, learning_rate: float,
        warmup: int, checkpoint: Path, every: int = 250, callback: Any = None,
        label: str = "train", ema: float = 0.0, ema_from: int = 0, teacher: Any = None,
        distill: float = 0.0, snapshot: tuple[int, Path] | None = None) -> list[float]:
    """Train `model` from step `start` to `steps`, checkpointing weights + step every `every`.

    With `ema` > 0 a moving average of the weights is kept and the model ends with the
    averaged weights; the average starts at step `ema_from` (pruning during training starts it
    once the masks are final). With `teacher` and `distill` > 0 the model also learns the
    teacher's frame posteriors (distillation; pruning uses the float model). The optimiser's
    moments and the averages are checkpointed beside the weights, so a resumed run continues
    exactly where the interrupted one was. `snapshot` (step, path) also keeps the weights of
    that step, for a pruning branch.
    """
    import tensorflow as tf

    k = keras()
    optimizer = k.optimizers.Adam(learning_rate)
    optimizer.build(model.trainable_variables)
    shadow = [tf.Variable(v, trainable=False) for v in model.trainable_variables] if ema else []
    if start:
        _load_state(checkpoint, start, optimizer.variables(), shadow, label)
    decay = tf.Variable(0.0, trainable=False)
    step_fn = make_train_step(model, optimizer, int(model.input_shape[-1]), shadow, decay,
                              teacher if distill else None, distill)
    losses: list[float] = []
    if callback is not None:
        callback.set_model(model)
        callback.on_train_begin()
    t0, recent = time.monotonic(), []
    for i in range(start, steps):
        b = next(batches)
        optimizer.learning_rate.assign(lr_at(i, steps, learning_rate, warmup))
        # Short memory while the weights are young; before `ema_from` the average is the
        # weights themselves.
        age = i - ema_from
        decay.assign(min(ema, (1 + age) / (10 + age)) if age >= 0 else 0.0)
        if callback is not None:
            callback.on_train_batch_begin(batch=-1)
        loss = float(step_fn(b.feats, b.feat_lens, b.labels, b.label_lens))
        if math.isfinite(loss):
            recent.append(loss)
        else:  # the step changed nothing; checkpoints below still fall where they should
            log.warning("%s step %d: non-finite loss, batch skipped", label, i)
        if recent and ((i + 1) % 50 == 0 or i + 1 == steps):
            rate = (time.monotonic() - t0) / len(recent)
            log.info("%s step %d/%d loss %.3f (%.2f s/step)", label, i + 1, steps,
                     float(np.mean(recent)), rate)
            losses.append(float(np.mean(recent)))
            t0, recent = time.monotonic(), []
        if snapshot is not None and i + 1 == snapshot[0]:
            save_checkpoint(model, snapshot[1], i + 1)
        if (i + 1) % every == 0 and i + 1 < steps:
            save_checkpoint(model, checkpoint, i + 1, optimizer.variables(), shadow)
    if callback is not None:
        callback.on_epoch_end(batch=-1)
    if shadow:
        for var, avg in zip(model.trainable_variables, shadow, strict=True):
            var.assign(avg)
    return losses


def save_checkpoint(model: Any, path: Path, step: int, optimizer: Sequence[Any] = (),
                    averages: Sequence[Any] = ()) -> None:
    """Weights (and the optimiser's variables and weight averages, if given) at `step`; each
    file is replaced whole, the step file last."""
    if optimizer or averages:
        # State first: the step file never points at older moments (see _load_state).
        tmp = path.with_suffix(".state.tmp.npz")
        np.savez(tmp, step=np.int64(step),
                 **{f"opt{j}": v.numpy() for j, v in enumerate(optimizer)},
                 **{f"ema{j}": v.numpy() for j, v in enumerate(averages)})
        tmp.replace(path.with_suffix(".state.npz"))
    tmp = path.with_suffix(".tmp.weights.h5")
    model.save_weights(str(tmp))
    tmp.replace(path)
    meta = path.with_suffix(".tmp.json")
    meta.write_text(json.dumps({"step": step}))
    meta.replace(path.with_suffix(".json"))


def _load_state(path: Path, step: int, optimizer: Sequence[Any], averages: Sequence[Any],
                label: str) -> None:
    """Restore what save_checkpoint wrote beside the weights of `step`, if it matches them."""
    state = path.with_suffix(".state.npz")
    if not state.exists():
        return
    with np.load(state) as saved:
        # Written just before the weights: from a kill in between it is one checkpoint ahead
        # of them, and the moments start afresh rather than mismatched.
        if int(saved["step"]) != step:
            log.warning("%s: optimiser state is from step %d, the weights from step %d: "
                        "continuing with fresh optimiser state", label, int(saved["step"]), step)
            return
        for i, var in enumerate(optimizer):
            var.assign(saved[f"opt{i}"])
        for i, avg in enumerate(averages):
            avg.assign(saved[f"ema{i}"])


def checkpoint_step(path: Path) -> int:
    """The step a checkpoint was written at (0 if there is none)."""
    meta = path.with_suffix(".json")
    if not path.exists() or not meta.exists():
        return 0
    return int(json.loads(meta.read_text())["step"])


def load_checkpoint(model: Any, path: Path) -> int:
    """Restore weights if a checkpoint exists; the step to continue from (0 if none)."""
    step = checkpoint_step(path)
    if step:
        model.load_weights(str(path))
    return step


def float_logprobs(model: Any, feats: list[np.ndarray], context: int, batch: int = 32
                   ) -> list[np.ndarray]:
    """Log-probabilities of a Keras model per utterance, run as the daemon runs the TFLite model:
    `context` zero frames first, their outputs dropped, ceil(frames / 2) frames kept."""
    out: list[np.ndarray] = []
    order = np.argsort([len(f) for f in feats])
    result: dict[int, np.ndarray] = {}
    for s in range(0, len(order), batch):
        idx = order[s : s + batch]
        x, _ = pad_features([feats[i] for i in idx], context)
        logp = model(x, training=False).numpy()
        for j, i in enumerate(idx):
            n = -(-len(feats[i]) // STRIDE)
            result[int(i)] = logp[j, context // STRIDE : context // STRIDE + n]
    out = [result[i] for i in range(len(feats))]
    return out
