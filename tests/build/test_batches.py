"""Training batches made in worker processes: same order as without them, clean shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edgevoice.build.batches import BatchMaker, batch_stream
from edgevoice.build.data import WordBank, read_fsdd
from edgevoice.build.recipe import DEFAULT_RECIPE, load_recipe
from edgevoice.errors import BuildError
from edgevoice.features import LogMelSettings


def _maker(small_fsdd: Path, **overrides: object) -> BatchMaker:
    recipe = load_recipe(DEFAULT_RECIPE, {"data.p_synth": 0, "synth.enabled": False,
                                          "data.max_words": 3,
                                          "augment.noise_kinds": ["pink", "impulsive"],
                                          **overrides})
    bank = WordBank.from_clips(read_fsdd(small_fsdd), 16000)
    return BatchMaker(recipe, LogMelSettings(), bank, None, context=8)


def test_workers_give_the_same_batches_in_the_same_order(small_fsdd: Path) -> None:
    maker = _maker(small_fsdd)
    serial = batch_stream(maker, 3, 4, 5, workers=0)
    parallel = batch_stream(maker, 3, 4, 5, workers=2)
    for _ in range(5):
        a, b = next(serial), next(parallel)
        assert a.feats.shape == b.feats.shape
        np.testing.assert_array_equal(a.labels, b.labels)
        np.testing.assert_allclose(a.feats, b.feats)
    t0 = time.monotonic()
    parallel.close()  # the workers are blocked on their full queues: still prompt
    assert time.monotonic() - t0 < 10


def test_a_failing_worker_is_a_build_error_not_a_hang(small_fsdd: Path) -> None:
    maker = _maker(small_fsdd)
    maker.real = WordBank({})  # nothing to compose from: every batch fails in the worker
    stream = batch_stream(maker, 3, 4, 0, workers=1)
    with pytest.raises(BuildError, match="training data worker failed: batch 0"):
        next(stream)


def test_a_worker_killed_outright_is_a_build_error_not_a_hang() -> None:
    from support import DyingBatchMaker

    stream = batch_stream(DyingBatchMaker(), 3, 16, 0, workers=1)  # type: ignore[arg-type]
    with pytest.raises(BuildError, match="exited with code -9"):
        for _ in range(10):
            next(stream)
