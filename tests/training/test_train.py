"""The training loop's weight averaging (exported, surviving a resume, started late for a
pruning branch) and pruning during training (a branch that ends at the target sparsity)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("tensorflow")

from edgevoice.training.batches import Batch, pad_features  # noqa: E402
from edgevoice.training.data import TOKENS  # noqa: E402
from edgevoice.training.model import build_model, keras  # noqa: E402
from edgevoice.training.prune import branch_step, prune, prune_branch, sparsity  # noqa: E402
from edgevoice.training.recipe import ModelSettings, PruneSettings, TrainSettings  # noqa: E402
from edgevoice.training.train import fit, load_checkpoint  # noqa: E402

SETTINGS = ModelSettings(channels=8, dilations=(1,), dropout=0.0, chunk=16)
STEPS = 8


def _batches(start: int = 0, stop: int | None = None) -> Iterator[Batch]:
    for i in range(start, STEPS if stop is None else stop):
        rng = np.random.default_rng(i)
        feats = [rng.standard_normal((60, 40)).astype(np.float32) for _ in range(3)]
        x, lens = pad_features(feats, 0)
        labels = rng.integers(3, len(TOKENS), (3, 5)).astype(np.int32)
        yield Batch(x, lens, labels, np.full(3, 5, np.int32))


def _train(tmp: Path, ema: float, init: list[np.ndarray], **kw: Any) -> list[np.ndarray]:
    tmp.mkdir()
    model = build_model(SETTINGS, 40, len(TOKENS))
    model.set_weights(init)
    fit(model, _batches(), steps=STEPS, start=0, learning_rate=0.01, warmup=0,
        checkpoint=tmp / "ckpt.weights.h5", every=4, ema=ema, **kw)
    return [w.numpy() for w in model.trainable_weights]


def test_averaged_weights_differ_from_the_last_step_and_survive_a_resume(tmp_path: Path) -> None:
    init = build_model(SETTINGS, 40, len(TOKENS)).get_weights()
    last = _train(tmp_path / "plain", 0.0, init)
    averaged = _train(tmp_path / "ema", 0.5, init)
    assert all(a.shape == b.shape for a, b in zip(last, averaged, strict=True))
    assert max(float(np.abs(a - b).max()) for a, b in zip(last, averaged, strict=True)) > 1e-4

    # Interrupted after the step-4 checkpoint, then resumed from it: same averaged weights.
    ckpt = tmp_path / "resumed" / "ckpt.weights.h5"
    ckpt.parent.mkdir()
    model = build_model(SETTINGS, 40, len(TOKENS))
    model.set_weights(init)
    with pytest.raises(StopIteration):
        fit(model, _batches(stop=5), steps=STEPS, start=0, learning_rate=0.01, warmup=0,
            checkpoint=ckpt, every=4, ema=0.5)
    model = build_model(SETTINGS, 40, len(TOKENS))
    start = load_checkpoint(model, ckpt)
    assert start == 4
    fit(model, _batches(start), steps=STEPS, start=start, learning_rate=0.01, warmup=0,
        checkpoint=ckpt, every=4, ema=0.5)
    resumed = [w.numpy() for w in model.trainable_weights]
    for a, b in zip(averaged, resumed, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_the_average_starts_at_ema_from_and_a_snapshot_keeps_that_steps_weights(
        tmp_path: Path) -> None:
    init = build_model(SETTINGS, 40, len(TOKENS)).get_weights()
    snap = tmp_path / "snap.weights.h5"
    last = _train(tmp_path / "plain", 0.0, init, snapshot=(3, snap))
    model = build_model(SETTINGS, 40, len(TOKENS))
    model.set_weights(init)
    with pytest.raises(StopIteration):  # the same run, stopped after step 3
        fit(model, _batches(stop=3), steps=STEPS, start=0, learning_rate=0.01, warmup=0,
            checkpoint=tmp_path / "three.weights.h5", every=100)
    at3 = [w.numpy() for w in model.trainable_weights]
    model = build_model(SETTINGS, 40, len(TOKENS))
    assert load_checkpoint(model, snap) == 3
    for a, b in zip(at3, model.trainable_weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())
    # An average that starts after the last step is the last step's weights; one that starts
    # two steps before the end is neither those nor the average over the whole run.
    unstarted = _train(tmp_path / "unstarted", 0.5, init, ema_from=STEPS)
    late = _train(tmp_path / "late", 0.5, init, ema_from=STEPS - 2)
    whole = _train(tmp_path / "whole", 0.5, init)
    for a, b in zip(last, unstarted, strict=True):
        np.testing.assert_array_equal(a, b)

    def gap(x: list[np.ndarray], y: list[np.ndarray]) -> float:
        return max(float(np.abs(a - b).max()) for a, b in zip(x, y, strict=True))

    assert gap(late, last) > 1e-5 and gap(late, whole) > 1e-5


def _kl(teacher: object, student: object) -> float:
    x = next(_batches()).feats
    t, s = teacher(x, training=False).numpy(), student(x, training=False).numpy()  # type: ignore
    return float(np.mean(np.sum(np.exp(t) * (t - s), axis=-1)))


def test_distillation_pulls_the_model_towards_the_teachers_posteriors(tmp_path: Path) -> None:
    keras().utils.set_random_seed(0)
    teacher = build_model(SETTINGS, 40, len(TOKENS))
    logits = teacher.get_layer("logits")  # peaked posteriors, far from a fresh model's
    logits.set_weights([w * 30 for w in logits.get_weights()])
    init = build_model(SETTINGS, 40, len(TOKENS)).get_weights()
    kl = {}
    for distill in (0.0, 5.0):
        student = build_model(SETTINGS, 40, len(TOKENS))
        student.set_weights(init)
        before = _kl(teacher, student)
        fit(student, _batches(), steps=STEPS, start=0, learning_rate=0.05, warmup=0,
            checkpoint=tmp_path / f"d{distill}.weights.h5", every=100, teacher=teacher,
            distill=distill)
        kl[distill] = _kl(teacher, student)
    assert kl[5.0] < 0.8 * before and kl[5.0] < 0.75 * kl[0.0], (before, kl)


def test_a_non_finite_batch_leaves_the_weights_alone(tmp_path: Path) -> None:
    model = build_model(SETTINGS, 40, len(TOKENS))
    init = [w.numpy() for w in model.trainable_weights]
    bad = next(_batches())
    bad.feats[0, 10, 3] = np.nan
    fit(model, iter([bad, bad]), steps=2, start=0, learning_rate=0.01, warmup=0,
        checkpoint=tmp_path / "nan.weights.h5", ema=0.5)
    for a, b in zip(init, model.trainable_weights, strict=True):
        np.testing.assert_array_equal(a, b.numpy())


BRANCH_RUN = 12


def test_branch_step_is_inside_the_run() -> None:
    assert branch_step(4200, 0.6667) == 2800
    assert branch_step(10, 0.01) == 1 and branch_step(10, 0.99) == 9


def test_a_pruning_branch_reaches_the_sparsity_through_the_weight_average(tmp_path: Path
                                                                          ) -> None:
    pytest.importorskip("tensorflow_model_optimization")
    ts = TrainSettings(steps=BRANCH_RUN, learning_rate=0.01, warmup=0, ema=0.5)
    ps = PruneSettings(sparsity=0.5, frequency=1, branch=0.5)
    first = branch_step(BRANCH_RUN, ps.branch)
    dense = build_model(SETTINGS, 40, len(TOKENS))
    snap = tmp_path / "branch.weights.h5"
    fit(dense, _batches(stop=BRANCH_RUN), steps=BRANCH_RUN, start=0, learning_rate=ts.learning_rate,
        warmup=0, checkpoint=tmp_path / "train.weights.h5", ema=ts.ema, snapshot=(first, snap))
    branch = build_model(SETTINGS, 40, len(TOKENS))
    assert load_checkpoint(branch, snap) == first
    assert sparsity(branch)["pruned"] < 0.01

    pruned = prune_branch(branch, dense, SETTINGS, ps, ts, _batches(first, BRANCH_RUN),
                          tmp_path / "prune.weights.h5")
    # Exactly half of the pointwise and output weights are zero: the average taken after the
    # masks were final has them re-applied, though the optimiser moved masked weights.
    assert sparsity(pruned)["pruned"] == pytest.approx(0.5, abs=0.01)
    for a, b in zip(dense.get_weights(), pruned.get_weights(), strict=True):
        assert a.shape == b.shape
    x = next(_batches()).feats
    out = pruned(x, training=False).numpy()
    assert np.all(np.isfinite(out)) and not np.allclose(out, dense(x, training=False).numpy())


def test_pruning_by_fine_tuning_reaches_the_sparsity(tmp_path: Path) -> None:
    pytest.importorskip("tensorflow_model_optimization")
    trained = build_model(SETTINGS, 40, len(TOKENS))
    ps = PruneSettings(sparsity=0.5, steps=STEPS, frequency=1, learning_rate=0.01)
    pruned = prune(trained, SETTINGS, ps, _batches(), tmp_path / "prune.weights.h5")
    assert sparsity(trained)["pruned"] < 0.01
    assert sparsity(pruned)["pruned"] == pytest.approx(0.5, abs=0.01)
