"""The TensorFlow stages: train, prune, quantize, evaluate (see `stages` for the work dir)."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.errors import BuildError
from edgevoice.features import LogMel
from edgevoice.training.batches import BatchMaker, batch_stream
from edgevoice.training.data import BLANK, TOKENS, compose, spoken
from edgevoice.training.evaluate import (
    beam_decode,
    beam_results,
    greedy_results,
    greedy_texts,
    heldout_sets,
    int8_runner,
    latency,
    score_model,
)
from edgevoice.training.model import (
    STRIDE,
    build_model,
    count_params,
    keras,
    load_weight_arrays,
    macs_per_output_frame,
    receptive_field,
    save_weight_arrays,
    set_threads,
    streaming_shape,
    weight_arrays,
)
from edgevoice.training.prune import branch_step
from edgevoice.training.stages import INIT_WEIGHTS, Work, build_lm, bundle_meta
from edgevoice.training.train import (
    checkpoint_step,
    fit,
    float_logprobs,
    load_checkpoint,
    save_checkpoint,
)

log = logging.getLogger("edgevoice.training")


def _maker(work: Work) -> tuple[BatchMaker, int]:
    frontend = work.frontend()
    train, _, synth = work.banks()
    _, context = streaming_shape(work.recipe.model)
    words = work.words()
    clips = work.word_audio(words.train) if words is not None else []
    others = [x for x, _ in work.word_audio(words.other_train)] if words is not None else []
    noise = work.noise_files(work.recipe.augment.noise_kinds)
    return BatchMaker(work.recipe, frontend, train, synth, context, clips, others,
                      noise), context


def _model(work: Work, weights: Path | None = None) -> Any:
    model = build_model(work.recipe.model, work.recipe.frontend.n_mels, len(TOKENS))
    if weights is not None:
        model.load_weights(str(weights))
    return model


def train_stage(work: Work) -> dict[str, Any]:
    r = work.recipe
    maker, _ = _maker(work)
    set_threads(r.train.threads)
    keras().utils.set_random_seed(r.train.seed)  # the initial weights (and dropout) too
    model = _model(work)
    out = work.dir("train")
    ckpt = out / "checkpoint.weights.h5"
    start = load_checkpoint(model, ckpt)
    if start:
        log.info("train: resuming from step %d", start)
    elif r.train.init_from:
        _init_weights(work, model)
    batches = batch_stream(maker, r.train.seed, r.train.batch, start, r.train.workers)
    snapshot = None
    if r.prune.enabled and r.prune.branch:
        snapshot = (branch_step(r.train.steps, r.prune.branch), out / "branch.weights.h5")
    losses = fit(model, batches, steps=r.train.steps, start=start,
                 learning_rate=r.train.learning_rate, warmup=r.train.warmup, checkpoint=ckpt,
                 ema=r.train.ema, snapshot=snapshot)
    batches.close()
    save_checkpoint(model, out / "model.weights.h5", r.train.steps)
    return {"params": count_params(model), "final_loss": losses[-1] if losses else None}


def _init_weights(work: Work, model: Any) -> None:
    """Start from train.init_from's float weights, every layer whose shapes fit."""
    bundle, _ = work.init_bundle()
    with np.load(bundle.path / INIT_WEIGHTS) as arrays:
        loaded, skipped = load_weight_arrays(model, arrays)
    if not loaded:
        raise BuildError(f"recipe train.init_from: no layer of {work.recipe.train.init_from} "
                         "fits this recipe's model section (compare model.channels, dilations "
                         "and kernels with the bundle's training recipe)")
    log.info("train: %d layers from %s%s", len(loaded), work.recipe.train.init_from,
             f"; new weights for {', '.join(skipped)} (other shapes)" if skipped else "")


def float_weights(work: Work) -> Path:
    """The pruned float model's weights as shipped in the bundle (see model.weight_arrays)."""
    path = work.dir("export") / INIT_WEIGHTS
    model = _model(work, work.root / "prune" / "model.weights.h5")
    save_weight_arrays(path, weight_arrays(model))
    return path


def prune_stage(work: Work) -> dict[str, Any]:
    from edgevoice.training.prune import prune, prune_branch, sparsity

    r = work.recipe
    work.need("train")
    set_threads(r.train.threads)
    trained = _model(work, work.root / "train" / "model.weights.h5")
    out = work.dir("prune")
    if not r.prune.enabled:
        save_checkpoint(trained, out / "model.weights.h5", 0)
        return {"sparsity": sparsity(trained)}
    maker, _ = _maker(work)
    ckpt = out / "checkpoint.weights.h5"
    if r.prune.branch:
        # Pruning during training: the branch sees the batches the dense run saw after the
        # branch step, so the two differ only by the pruning.
        snapshot = work.root / "train" / "branch.weights.h5"
        if not snapshot.exists():
            raise BuildError(f"{snapshot}: the training run kept no weights to branch from; "
                             "run `edgevoice-build train --force`")
        branch = _model(work, snapshot)
        first = branch_step(r.train.steps, r.prune.branch)
        batches = batch_stream(maker, r.train.seed, r.train.batch,
                               checkpoint_step(ckpt) or first, r.train.workers)
        pruned = prune_branch(branch, trained, r.model, r.prune, r.train, batches, ckpt)
    else:
        # A resumed run continues the batch sequence where the interrupted one stopped.
        batches = batch_stream(maker, r.train.seed + 1, r.train.batch, checkpoint_step(ckpt),
                               r.train.workers)
        pruned = prune(trained, r.model, r.prune, batches, ckpt)
    batches.close()
    last = r.train.steps if r.prune.branch else r.prune.steps
    save_checkpoint(pruned, out / "model.weights.h5", last)
    return {"sparsity": sparsity(pruned)}


def quantize_stage(work: Work) -> dict[str, Any]:
    """INT8 model + its part of the bundle metadata (frontend, tokens, shapes) in meta.json."""
    from edgevoice.training.quantize import calibration_windows, tflite_io, to_int8

    r = work.recipe
    work.need("prune")
    model = _model(work, work.root / "prune" / "model.weights.h5")
    frontend = work.frontend()
    window, context = streaming_shape(r.model)
    train, _, synth = work.banks()
    maker, _ = _maker(work)
    rng = np.random.default_rng(11)
    lm = LogMel(frontend)
    feats = []
    for i, (x, _, _) in enumerate(_take(compose(spoken(train, synth), rng, frontend.sample_rate),
                                        r.quantize.calibration)):
        feats.append(lm.compute(maker.augment(x, rng) if i % 2 else maker.augment.denoise(x)))
    windows = list(calibration_windows(feats, window, context, r.model.chunk,
                                       limit=4 * r.quantize.calibration))
    blob = to_int8(model, r.model, window, windows, r.quantize.per_channel)
    if len(blob) > r.quantize.max_kib * 1024:
        log.warning("quantize: model is %.1f KiB, over the recipe's quantize.max_kib %d KiB",
                    len(blob) / 1024, r.quantize.max_kib)
    out = work.dir("quantize")
    (out / "model.tflite").write_bytes(blob)
    meta = {
        "sample_rate": frontend.sample_rate,
        "frontend": {"name": "logmel", **frontend.to_dict()},
        "tokens": list(TOKENS), "blank": BLANK,
        "model": {"window": window, "context": context, "stride": STRIDE, "arch": r.model.arch,
                  "receptive_field": receptive_field(r.model)},
        **tflite_io(blob),
    }
    (out / "meta.json").write_text(json.dumps(meta, indent=1))
    return {"model_bytes": len(blob), "calibration_windows": len(windows)}


def _take(gen: Any, n: int) -> list:
    return [next(gen) for _ in range(n)]


def _features(work: Work, frontend: Any) -> Callable[[np.ndarray], np.ndarray]:
    """Audio -> features as the daemon makes them behind the recipe's denoiser."""
    from edgevoice.training.denoising import make_denoiser

    lm = LogMel(frontend)
    denoise = make_denoiser(work.recipe.augment.denoise, frontend.sample_rate)
    if denoise is None:
        return lm.compute
    return lambda x: lm.compute(denoise(x))


def _evaluate_strangers(work: Work, lm: Callable[[np.ndarray], np.ndarray],
                        runners: dict[str, Any],
                        lm_file: Path | None) -> dict[str, Any]:
    """Figures on the held-out speakers of data.speech_commands (none if the recipe has no
    such data): {"strangers": {model+decoder: {set: scores}}, "reject": curve and choice,
    "strangers_per_word": {shipped model+decoder[+"_reject"]: per-word table of the clean
    held-out words (strangers.per_word)}}."""
    from edgevoice.training.strangers import (
        false_outputs,
        per_word_figures,
        recipe_sets,
        reject_curve,
        score_strangers,
        word_score,
    )

    r = work.recipe
    if not r.data.speech_commands:
        return {}
    e = r.evaluate
    sets, speakers = recipe_sets(r)  # the sets benchmarks/strangers.py measures too
    feats = {ts.name: [lm(x) for x in ts.audio] for ts in (*sets.words, *sets.negatives)}
    decoders: dict[str, Any] = {"": greedy_results(TOKENS, BLANK)}
    default = ""
    if r.export.decoder.get("name") == "beam":
        default = "_beam_lm" if lm_file else "_beam"
        decoders[default] = beam_results(r.export.decoder, TOKENS, BLANK, lm_file)
    scores: dict[str, Any] = {}
    kept: dict[str, Any] = {}
    for name, run in runners.items():
        by_decoder, results = score_strangers(run, feats, sets, decoders)
        for suffix, by_set in by_decoder.items():
            scores[name + suffix] = by_set
        kept = results if name == "int8" else kept
    curve = reject_curve(sets, kept[default]) if sets.words else []
    chosen = _choose_threshold(curve, e)
    if chosen is not None:  # the shipped model and decoder with the threshold it ships with
        at = {ts.name: word_score(ts.texts, kept[default][ts.name], chosen) for ts in sets.words}
        at.update({ts.name: false_outputs(kept[default][ts.name], chosen)
                   for ts in sets.negatives})
        scores[f"int8{default}_reject"] = at
        log.info("evaluate: reject threshold %.2f chosen on the held-out sets", chosen)
    return {"strangers": scores,
            "strangers_info": {"speakers": speakers,
                               "words": len(sets.words[0].texts) if sets.words else 0,
                               "train_speakers": work.need("prepare").get("word_train_speakers"),
                               "other_words": len(sets.negatives[0].texts),
                               "noise_clips": e.noise_clips, "decoder": default or "greedy"},
            "strangers_per_word": (per_word_figures(sets, kept[default], f"int8{default}",
                                                    chosen, r.synth.vocabulary())
                                   if sets.words else {}),
            "reject": {"curve": curve, "threshold": chosen, "decoder": default or "greedy"}}


def _choose_threshold(curve: list[dict[str, Any]], e: Any) -> float | None:
    """The reject threshold evaluate.calibrate_reject asks for, if there is a curve to choose
    it on (held-out speakers saying vocabulary words)."""
    from edgevoice.training.strangers import choose_threshold

    if not e.calibrate_reject:
        return None
    if not curve:
        log.warning("evaluate: calibrate_reject needs vocabulary words in data.speech_commands; "
                    "the bundle ships without a reject threshold")
        return None
    return choose_threshold(curve, e.max_false_output)


def _float_runner(model: Any, context: int) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    return lambda feats: float_logprobs(model, feats, context)


def evaluate_stage(work: Work) -> dict[str, Any]:
    from edgevoice.bundle import load_bundle
    from edgevoice.runtime import open_acoustic_model
    from edgevoice.training.export import write_bundle

    r = work.recipe
    work.need("quantize")
    frontend = work.frontend()
    train, test, synth = work.banks()
    sets = heldout_sets(test, spoken(train, synth), r.evaluate, frontend.sample_rate)
    lm = _features(work, frontend)
    feats = {ts.name: [lm(x) for x in ts.audio] for ts in sets}
    _, context = streaming_shape(r.model)
    # The INT8 model runs from a real bundle through the daemon's loader, runner and decoders.
    q = work.root / "quantize"
    bundle_dir = write_bundle(work.root / "evaluate" / "bundle", (q / "model.tflite").read_bytes(),
                              bundle_meta(work), lm_file=build_lm(work))
    bundle = load_bundle(bundle_dir)
    am = open_acoustic_model(bundle)
    decoders: dict[str, Any] = {"": lambda lp: greedy_texts(lp, TOKENS, BLANK)}
    if r.export.decoder.get("name") == "beam":
        suffix = "_beam_lm" if bundle.lm_file else "_beam"
        decoders[suffix] = beam_decode(r.export.decoder, TOKENS, BLANK, bundle.lm_file)
    runners = {"float": _float_runner(_model(work, work.root / "train" / "model.weights.h5"),
                                      context),
               "pruned": _float_runner(_model(work, work.root / "prune" / "model.weights.h5"),
                                       context),
               "int8": int8_runner(am)}
    accuracy: dict[str, Any] = {}
    for name, run in runners.items():
        for suffix, by_set in score_model(run, feats, sets, decoders).items():
            accuracy[name + suffix] = by_set
            log.info("evaluate: %s %s", name + suffix, by_set)
    strangers = _evaluate_strangers(work, lm, runners, bundle.lm_file)
    seconds = sum(len(x) for x in sets[0].audio) / frontend.sample_rate
    window, _ = streaming_shape(r.model)
    per_frame = macs_per_output_frame(r.model, frontend.n_mels, len(TOKENS))
    frames_per_second = 1000.0 / frontend.hop_ms
    metrics = {
        "heldout_speakers": sorted(test.speakers),
        "heldout": "recorded" if r.data.test_speakers else "synthetic",
        "train_speakers": work.need("prepare")["train_speakers"],
        "test_utterances": len(sets[0].texts),
        "test_seconds": round(seconds, 1),
        "accuracy": accuracy,
        "sparsity": work.need("prune")["sparsity"],
        "cost": {
            "model_bytes": (q / "model.tflite").stat().st_size,
            "params": count_params(_model(work)),
            "macs_per_second": int(per_frame * frames_per_second / STRIDE),
            "streaming_macs_per_second": int(per_frame * window / STRIDE
                                             * frames_per_second / r.model.chunk),
        },
        "latency": latency(am, feats["clean"], seconds),
        "decoder": dict(r.export.decoder),  # for the *_beam* entries; the others are greedy
        **strangers,
    }
    (work.dir("evaluate") / "metrics.json").write_text(json.dumps(metrics, indent=1))
    return {"int8_clean_wer": accuracy["int8"]["clean"]["wer"]}
