"""Magnitude pruning with fine-tuning (tensorflow-model-optimization, polynomial schedule).

Pointwise convolutions and the output layer hold nearly all weights and are pruned; the small
depthwise kernels are not (tfmot cannot wrap DepthwiseConv1D, and they matter most per weight).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.build.batches import Batch
from edgevoice.build.model import base_name, build_model, copy_weights, keras
from edgevoice.build.recipe import ModelSettings, PruneSettings
from edgevoice.build.train import fit, load_checkpoint
from edgevoice.errors import BuildError


def _tfmot() -> Any:
    keras()
    try:
        import tensorflow_model_optimization as tfmot
    except ImportError:
        raise BuildError("pruning needs tensorflow-model-optimization: pip install "
                         "'edgevoice[build]'") from None
    return tfmot


def prunable_model(ms: ModelSettings, ps: PruneSettings, n_features: int, n_tokens: int) -> Any:
    """The architecture with pruning wrappers; sparsity ramps 0 -> target over 2/3 of the steps."""
    if not 0.0 <= ps.sparsity < 1.0:
        raise BuildError(f"recipe prune.sparsity {ps.sparsity} must be in [0, 1)")
    tfmot = _tfmot()
    # Masks are updated every `freq` steps up to `end`, which must fall on an update step or
    # the final sparsity is never applied.
    freq = max(1, min(ps.frequency, ps.steps // 4))
    end = max(freq, ps.steps * 2 // 3 // freq * freq)
    schedule = tfmot.sparsity.keras.PolynomialDecay(
        initial_sparsity=0.0, final_sparsity=ps.sparsity, begin_step=0, end_step=end,
        frequency=freq)

    def wrap(layer: Any) -> Any:
        return tfmot.sparsity.keras.prune_low_magnitude(layer, pruning_schedule=schedule)

    return build_model(ms, n_features, n_tokens, wrap=wrap)


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
