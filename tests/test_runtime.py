"""The acoustic-model runner: several steps in one call give the same bytes as one fixed window
per step, on real recordings, whole or streamed."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support import compose, need_fsdd

from edgevoice.audio import read_wav
from edgevoice.bundle import Bundle, load_bundle
from edgevoice.features import LogMel
from edgevoice.runtime import AcousticModel

DIGIT_STRINGS = [["4_jackson_8", "0_lucas_30", "7_nicolas_1"],
                 ["2_george_5", "9_yweweler_2", "1_lucas_4", "5_jackson_0", "3_george_17"],
                 ["8_nicolas_9"]]


def _model(bundle: Bundle, multi_step: bool, model_file: Path | None = None) -> AcousticModel:
    return AcousticModel(model_file or bundle.model_file, bundle.streaming,
                         bundle.frontend.n_mels, len(bundle.tokens), multi_step=multi_step)


@pytest.fixture
def recordings(tmp_path: Path, bundle_dir: Path) -> list[np.ndarray]:
    """Features of digit strings composed from FSDD, 1 to 5 digits (0.7 to 4 s)."""
    need_fsdd()
    mel = LogMel(load_bundle(bundle_dir).frontend)
    feats = []
    for i, names in enumerate(DIGIT_STRINGS):
        samples, _ = read_wav(compose(tmp_path / f"{i}.wav", names))
        feats.append(mel.compute(samples))
    return feats


def test_shipped_model_runs_many_steps_per_call(bundle_dir: Path) -> None:
    assert _model(load_bundle(bundle_dir), multi_step=True).multi_step


def test_multi_step_gives_the_fixed_window_bytes(bundle_dir: Path,
                                                 recordings: list[np.ndarray]) -> None:
    bundle = load_bundle(bundle_dir)
    fast, fixed = _model(bundle, True), _model(bundle, False)
    assert fast.multi_step and not fixed.multi_step
    for feats in recordings:
        reference = fixed.run_utterance(feats)
        assert len(reference) == -(-len(feats) // bundle.streaming.stride)
        assert np.array_equal(fast.run_utterance(feats), reference)
        for size in (2, 33, 100, 1000):  # the daemon's 20 ms frames, odd sizes, transcribe's 1 s
            fast.reset()
            parts = [fast.process(feats[i : i + size]) for i in range(0, len(feats), size)]
            parts.append(fast.flush())
            assert np.array_equal(np.concatenate(parts), reference), size


def test_a_model_fixed_to_its_window_falls_back(bundle_dir: Path, tmp_path: Path,
                                                recordings: list[np.ndarray]) -> None:
    """A bundle exported before free_time_axis (RESHAPEs fixed to the window) still runs, one
    window per step; free_time_axis makes it multi-step with the same output."""
    pytest.importorskip("tensorflow")
    from tensorflow.lite.tools import flatbuffer_utils as fb

    from edgevoice.training.quantize import free_time_axis

    bundle = load_bundle(bundle_dir)
    model = fb.read_model_from_bytearray(bytearray(bundle.model_file.read_bytes()))
    _fix_time_axis(model, bundle.streaming.window)
    old = tmp_path / "fixed.tflite"
    old.write_bytes(bytes(fb.convert_object_to_bytearray(model)))
    free_time_axis(model)
    freed = tmp_path / "freed.tflite"
    freed.write_bytes(bytes(fb.convert_object_to_bytearray(model)))

    fixed, fast = _model(bundle, True, old), _model(bundle, True, freed)
    assert not fixed.multi_step and fast.multi_step
    for feats in recordings:
        assert np.array_equal(fast.run_utterance(feats), fixed.run_utterance(feats))


def _fix_time_axis(model, window: int) -> None:  # type: ignore[no-untyped-def]
    """Undo free_time_axis: the RESHAPE shapes as the converter writes them for `window`."""
    from tensorflow.lite.python import schema_py_generated as schema

    graph = model.subgraphs[0]
    assert graph.tensors[graph.inputs[0]].shape[1] == window
    codes = [max(c.builtinCode, c.deprecatedBuiltinCode) for c in model.operatorCodes]
    for op in graph.operators:
        if codes[op.opcodeIndex] == schema.BuiltinOperator.RESHAPE:
            dims = np.array(graph.tensors[op.outputs[0]].shape, "<i4")
            buffer = model.buffers[graph.tensors[op.inputs[1]].buffer]
            buffer.data = np.frombuffer(dims.tobytes(), np.uint8)
    for index in (*graph.inputs, *graph.outputs):
        graph.tensors[index].shapeSignature = None
