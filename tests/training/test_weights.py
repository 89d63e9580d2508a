"""The float weights a bundle ships: the same weights give the same file (and digest)."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from edgevoice.training.model import arrays_digest, save_weight_arrays


def test_same_weights_same_bytes_and_np_load_reads_them(tmp_path: Path) -> None:
    arrays = {"pw_0.0": np.arange(6, dtype=np.float16).reshape(2, 3),
              "bn_0.1": np.ones(3, np.float16)}
    save_weight_arrays(tmp_path / "a.npz", arrays)
    time.sleep(2.1)  # zip timestamps have a resolution of 2 s
    save_weight_arrays(tmp_path / "b.npz", dict(reversed(list(arrays.items()))))
    assert (tmp_path / "a.npz").read_bytes() == (tmp_path / "b.npz").read_bytes()
    with np.load(tmp_path / "a.npz") as loaded:
        assert np.array_equal(loaded["pw_0.0"], arrays["pw_0.0"])
        assert arrays_digest(loaded) == arrays_digest(arrays)


def test_the_digest_sees_values_shapes_and_names() -> None:
    base = {"w.0": np.zeros((2, 3), np.float16)}
    digests = {arrays_digest(base),
               arrays_digest({"w.0": np.zeros((3, 2), np.float16)}),
               arrays_digest({"w.1": np.zeros((2, 3), np.float16)}),
               arrays_digest({"w.0": np.eye(2, 3, dtype=np.float16)})}
    assert len(digests) == 4
