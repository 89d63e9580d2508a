"""Training batches made in worker processes: same order as without them, clean shutdown."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from edgevoice.errors import BuildError
from edgevoice.features import LogMelSettings
from edgevoice.training.batches import BatchMaker, batch_stream
from edgevoice.training.data import WordBank, read_fsdd
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe


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


WORKERS_OF_A_KILLED_TRAINER = """
import sys, time
from edgevoice.training.batches import BatchMaker, batch_stream
from edgevoice.training.data import WordBank, read_fsdd
from edgevoice.training.recipe import DEFAULT_RECIPE, load_recipe
from edgevoice.features import LogMelSettings

if __name__ == "__main__":
    recipe = load_recipe(DEFAULT_RECIPE, {"data.p_synth": 0, "synth.enabled": False,
                                          "augment.noise_kinds": ["pink"]})
    bank = WordBank.from_clips(read_fsdd(sys.argv[1]), 16000)
    stream = batch_stream(BatchMaker(recipe, LogMelSettings(), bank, None, 8), 1, 2, 0, 2)
    next(stream)
    import multiprocessing
    print(" ".join(str(p.pid) for p in multiprocessing.active_children()), flush=True)
    time.sleep(120)
"""


def test_workers_do_not_outlive_a_trainer_killed_outright(small_fsdd: Path, tmp_path: Path
                                                          ) -> None:
    import signal
    import subprocess
    import sys

    script = tmp_path / "trainer.py"
    script.write_text(WORKERS_OF_A_KILLED_TRAINER)
    trainer = subprocess.Popen([sys.executable, str(script), str(small_fsdd)],
                               stdout=subprocess.PIPE, text=True)
    assert trainer.stdout is not None
    pids = [int(p) for p in trainer.stdout.readline().split()]
    assert len(pids) == 2
    trainer.send_signal(signal.SIGKILL)  # no `finally`, no atexit: only the workers can act
    trainer.wait()
    deadline = time.monotonic() + 15
    alive = pids
    while alive and time.monotonic() < deadline:
        time.sleep(0.2)
        alive = [p for p in alive if _running(p)]
    assert not alive, f"workers {alive} outlived their trainer"


def _running(pid: int) -> bool:
    import os

    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie has exited
        return f.read().split()[2] != "Z"
