"""Magnitude pruning (tensorflow-model-optimization, polynomial schedule), either by
fine-tuning the trained model or during training, on a branch of the training run.

Pointwise convolutions and the output layer hold nearly all weights and are pruned; the small
depthwise kernels are not (tfmot cannot wrap DepthwiseConv1D, and they matter most per weight).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.errors import BuildError
from edgevoice.training.batches import Batch
from edgevoice.training.model import base_name, build_model, copy_weights, keras
from edgevoice.training.recipe import ModelSettings, PruneSettings, TrainSettings
from edgevoice.training.train import fit, load_checkpoint

# A pruning branch ramps its sparsity up over this share of its steps.
BRANCH_RAMP = 0.5


def _tfmot() -> Any:
    keras()
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError:
        raise BuildError("pruning needs tensorflow-model-optimization: pip install "
                         "'edgevoice[build]'") from None
    return tfmot


def prunable_model(ms: ModelSettings, ps: PruneSettings, n_features: int, n_tokens: int,
                   steps: int | None = None, ramp: float = 2 / 3) -> Any:
    """The architecture with pruning wrappers; sparsity ramps 0 -> target over the first
    `ramp` share of `steps` (default prune.steps)."""
    if not 0.0 <= ps.sparsity < 1.0:
        raise BuildError(f"recipe prune.sparsity {ps.sparsity} must be in [0, 1)")
    tfmot = _tfmot()
    steps = ps.steps if steps is None else steps
    freq, end = ramp_steps(steps, ps.frequency, ramp)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=ps.sparsity, begin_step=0, end_step=end,
        frequency=freq)

    def wrap(layer: Any) -> Any:
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    return build_model(ms, n_features, n_tokens, wrap=wrap)


def ramp_steps(steps: int, frequency: int, ramp: float) -> tuple[int, int]:
    """(mask update interval, last update step) for a ramp over `ramp` of `steps`: the end
    must fall on an update step or the final sparsity is never applied."""
    freq = max(1, min(frequency, steps // 4))
    return freq, max(freq, int(steps * ramp) // freq * freq)


def branch_step(train_steps: int, branch: float) -> int:
    """The training step a pruning branch starts from (prune.branch of train.steps)."""
    return min(max(1, round(train_steps * branch)), train_steps - 1)


def prune(trained: Any, ms: ModelSettings, ps: PruneSettings, batches: Iterator[Batch],
          checkpoint: Path) -> Any:
    """Fine-tune `trained` under the pruning schedule; returns a plain model with zeros in it."""
    tfmot = _tfmot()
    n_features, n_tokens = int(trained.input_shape[-1]), int(trained.output_shape[-1])
    model = prunable_model(ms, ps, n_features, n_tokens)
    copy_weights(trained, model)
    start = load_checkpoint(model, checkpoint)
    fit(model, batches, steps=ps.steps, start=start, learning_rate=ps.learning_rate, warmup=0,
        checkpoint=checkpoint, callback=tfmot.sparsity.keras.UpdatePruningStep(), label="prune",
        teacher=trained, distill=ps.distill)
    return _plain(model, ms)


def prune_branch(branch: Any, trained: Any, ms: ModelSettings, ps: PruneSettings,
                 ts: TrainSettings, batches: Iterator[Batch], checkpoint: Path) -> Any:
    """Prune during training: continue the training run from `branch` (its weights at
    `branch_step`) to train.steps with the same learning rate schedule, the sparsity ramping
    up over the first half of the remaining steps; the weight average (train.ema) covers only
    the steps after the masks are final. `trained` (the dense model) is the distillation
    teacher. Returns a plain model with zeros in it."""
    tfmot = _tfmot()
    n_features, n_tokens = int(branch.input_shape[-1]), int(branch.output_shape[-1])
    first = branch_step(ts.steps, ps.branch)
    length = ts.steps - first
    model = prunable_model(ms, ps, n_features, n_tokens, steps=length, ramp=BRANCH_RAMP)
    copy_weights(branch, model)
    start = load_checkpoint(model, checkpoint) or first
    _, end = ramp_steps(length, ps.frequency, BRANCH_RAMP)  # the masks are final after it
    fit(model, batches, steps=ts.steps, start=start, learning_rate=ts.learning_rate,
        warmup=ts.warmup, checkpoint=checkpoint, callback=tfmot.sparsity.keras.UpdatePruningStep(),
        label="prune", ema=ts.ema, ema_from=first + end + 1, teacher=trained,
        distill=ps.distill)
    return _plain(model, ms)


def _plain(model: Any, ms: ModelSettings) -> Any:
    """The architecture without wrappers, holding `model`'s weights with its masks applied
    (weight averaging or the last optimiser step may have moved masked weights off zero)."""
    tfmot = _tfmot()
    for layer in model.layers:
        for weight, mask, _ in getattr(layer, "pruning_vars", ()):
            weight.assign(weight * mask)
    n_features, n_tokens = int(model.input_shape[-1]), int(model.output_shape[-1])
    plain = build_model(ms, n_features, n_tokens)
    copy_weights(tfmot.sparsity.keras.strip_pruning(model), plain)
    return plain


def sparsity(model: Any) -> dict[str, float]:
    """Share of exact zeros: over the pruned layers ('pruned'), and over all weights ('all')."""
    zeros = total = zeros_all = total_all = 0
    for layer in model.layers:
        for w in layer.get_weights():
            if w.ndim < 2:
                continue
            z = int(np.sum(w == 0))
            zeros_all, total_all = zeros_all + z, total_all + w.size
            name = base_name(layer.name)
            if name.startswith("pw_") or name == "logits":
                zeros, total = zeros + z, total + w.size
    return {"pruned": zeros / max(total, 1), "all": zeros_all / max(total_all, 1)}
