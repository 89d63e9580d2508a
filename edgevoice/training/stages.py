"""The build stages (synth, prepare, train, prune, quantize, evaluate, export) over a work dir.

Each stage writes into `<work_dir>/<stage>/` and finishes with `done.json`, which records a
fingerprint of the recipe sections the stage depends on: a stage whose inputs did not change is
skipped, so an interrupted `recipe` run resumes where it stopped (training from its checkpoint).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from edgevoice.errors import BuildError
from edgevoice.features import LogMel, LogMelSettings
from edgevoice.training.data import (
    TOKENS,
    Clip,
    WordBank,
    WordClips,
    compose,
    heldout_by_hash,
    load_audio,
    read_fsdd,
    read_manifest,
    read_noise_dir,
    read_speech_commands,
    split_by_speaker,
    split_words,
    spoken,
)
from edgevoice.training.recipe import Recipe

log = logging.getLogger("edgevoice.training")
STAGES = ("synth", "prepare", "train", "prune", "quantize", "evaluate", "export")
DEPENDS = {
    "synth": ("synth",),
    "prepare": ("synth", "data", "frontend"),
    # prune.branch: training keeps the weights of the step a pruning branch starts from.
    "train": ("synth", "data", "frontend", "augment", "model", "train", "prune.branch"),
}
DEPENDS["prune"] = (*DEPENDS["train"], "prune")
DEPENDS["quantize"] = (*DEPENDS["prune"], "quantize")
# evaluate decodes with the bundle's decoder and LM; where the bundle goes or what it is called
# does not change a figure, so a new --out only re-exports.
DEPENDS["evaluate"] = (*DEPENDS["quantize"], "evaluate", "export.decoder", "export.lm_order",
                       "export.lm_sentences")
DEPENDS["export"] = (*DEPENDS["evaluate"], "export")
# Options added after work dirs were made: at their default they stay out of the fingerprints,
# so the finished stages of a recipe that leaves them alone are not built again. Options that
# change no stage's output (a size budget only warns) are never hashed.
LATER_OPTIONS = ("data.synth_heldout", "export.lm_sentences", "train.init_from",
                 "frontend.norm_window_s")
UNHASHED = ("quantize.max_kib",)
INIT_WEIGHTS = "float_weights.npz"  # a bundle's float model, for train.init_from


@dataclass
class Work:
    """A recipe and its work directory; the stages read each other's outputs through it."""

    recipe: Recipe
    root: Path
    command: str = "edgevoice-build recipe"

    def dir(self, stage: str) -> Path:
        path = self.root / stage
        path.mkdir(parents=True, exist_ok=True)
        return path

    def fingerprint(self, stage: str) -> str:
        d, defaults = self.recipe.to_dict(), Recipe().to_dict()
        for key in (*LATER_OPTIONS, *UNHASHED):
            section, _, field = key.partition(".")
            if key in UNHASHED or d[section][field] == defaults[section][field]:
                del d[section][field]
        parts = {}
        for key in DEPENDS[stage]:
            section, _, field = key.partition(".")
            if field in d[section] or not field:
                parts[key] = d[section][field] if field else d[section]
        if self.recipe.train.init_from and stage != "synth":
            # The frontend statistics and the starting weights come from that bundle.
            parts["init_weights"] = self.init_bundle()[1]
        text = json.dumps(parts, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def init_bundle(self) -> tuple[Any, str]:
        """(the bundle of train.init_from, checked; a digest of its float weights' values)."""
        from edgevoice.bundle import load_bundle
        from edgevoice.errors import BundleError

        spec = self.recipe.train.init_from
        try:
            bundle = load_bundle(spec)
        except BundleError as exc:
            raise BuildError(f"recipe train.init_from: {exc}") from None
        if INIT_WEIGHTS not in (bundle.raw.get("files") or {}):
            raise BuildError(
                f"recipe train.init_from: bundle {spec} has no {INIT_WEIGHTS} (bundles exported "
                "before edgevoice-build shipped float weights cannot be fine-tuned; rebuild it)")
        if tuple(bundle.tokens) != TOKENS:
            raise BuildError(f"recipe train.init_from: bundle {spec} spells with other tokens "
                             f"({''.join(bundle.tokens[1:])!r}) than this tool's; its output "
                             "layer would not fit")
        from edgevoice.training.model import arrays_digest

        with np.load(bundle.path / INIT_WEIGHTS) as arrays:  # the weights, not the file's bytes
            return bundle, arrays_digest(arrays)

    def is_done(self, stage: str) -> bool:
        """Whether `stage` finished for this recipe from the outputs the earlier stages have
        now: one of them run again since (a new model, a new threshold) makes it stale."""
        marker = self.root / stage / "done.json"
        if not marker.exists():
            return False
        if stage == "export" and not (Path(self.recipe.export.out) / "bundle.yaml").exists():
            return False  # the bundle was moved or deleted since: write it again
        info = json.loads(marker.read_text())
        return info.get("fingerprint") == self.fingerprint(stage) \
            and self._rerun_since(stage, info) is None

    def _finished_before(self, stage: str) -> dict[str, int | None]:
        """{earlier stage: its finish stamp} of the stages before `stage` with a done.json
        (None: a marker written before stamps existed)."""
        out = {}
        for s in STAGES[:STAGES.index(stage)]:
            marker = self.root / s / "done.json"
            if marker.exists():
                out[s] = json.loads(marker.read_text()).get("finished_ns")
        return out

    def _rerun_since(self, stage: str, info: dict[str, Any]) -> str | None:
        """The earlier stage that finished again after `stage` (its done.json `info`) did, if
        one did. Each marker keeps the stamps of the earlier stages it was built on ("after");
        a stage that had not run then, or a marker from before stamps existed, is judged on
        what it holds: an earlier stage stamped while this one is not ran after it. No clocks
        are compared, so a work dir copied without its file times is still up to date."""
        after = info.get("after")
        for s, now in self._finished_before(stage).items():
            if after is not None and s in after:
                if after[s] != now:
                    return s
            elif after is None and info.get("finished_ns") is None and now is not None:
                return s
        return None

    def mark_done(self, stage: str, info: dict[str, Any]) -> None:
        info = {"fingerprint": self.fingerprint(stage), **info, "finished_ns": time.time_ns(),
                "after": self._finished_before(stage)}
        tmp = self.dir(stage) / "done.json.tmp"
        tmp.write_text(json.dumps(info, indent=2))
        tmp.replace(self.root / stage / "done.json")

    def info(self, stage: str) -> dict[str, Any]:
        marker = self.root / stage / "done.json"
        if not marker.exists():
            raise BuildError(f"stage {stage!r} has not run in {self.root}: run "
                             f"`edgevoice-build {stage}` (or `edgevoice-build recipe`) first")
        return json.loads(marker.read_text())

    def need(self, stage: str) -> dict[str, Any]:
        info = self.info(stage)
        if info.get("fingerprint") != self.fingerprint(stage):
            raise BuildError(f"stage {stage!r} in {self.root} was built from a different recipe; "
                             f"run `edgevoice-build {stage}` again")
        since = self._rerun_since(stage, info)
        if since is not None:
            raise BuildError(f"stage {stage!r} in {self.root} was built before stage {since!r} "
                             "ran again: run `edgevoice-build recipe` to bring every stage up "
                             "to date")
        return info

    # Data shared by the stages -------------------------------------------------------------

    def recordings(self) -> dict[str, list[Clip]]:
        """The real recordings by source ("fsdd", then each manifest's path), held-out
        speakers included."""
        d = self.recipe.data
        out: dict[str, list[Clip]] = {}
        try:
            if d.fsdd:
                out["fsdd"] = read_fsdd(d.fsdd)
        except BuildError as exc:
            if d.manifests and not Path(d.fsdd).is_dir():  # the default left in by mistake
                raise BuildError(f"{exc} (or, to train from the manifests alone, set data.fsdd "
                                 "to \"\")") from None
            raise
        for m in d.manifests:
            out[m] = read_manifest(m)
        return out

    def synthetic(self) -> tuple[list[Clip], list[Clip]]:
        """(training, held-out) synthetic clips: data.synth_heldout of the voices, drawn by a
        hash of their names, are held out. Both empty when the recipe trains on none."""
        r = self.recipe
        if not (r.synth.enabled and r.data.p_synth > 0):
            return [], []
        self.need("synth")
        clips = read_manifest(self.root / "synth" / "audio" / "manifest.jsonl")
        voices = sorted({c.speaker for c in clips})
        held = heldout_by_hash(voices, r.data.synth_heldout)
        if r.data.synth_heldout and not 0 < len(held) < len(voices):
            raise BuildError(f"recipe data.synth_heldout {r.data.synth_heldout} holds out "
                             f"{len(held)} of the {len(voices)} synthetic voices: it must leave "
                             "some on both sides (change it, or synth.speakers)")
        return ([c for c in clips if c.speaker not in held],
                [c for c in clips if c.speaker in held])

    def clips(self) -> tuple[list[Clip], list[Clip], list[Clip]]:
        """(train, test, synthetic) clips. The test speakers are data.test_speakers, or the
        held-out synthetic voices; with synthetic voices, recordings are optional."""
        real = [c for clips in self.recordings().values() for c in clips]
        synth, held = self.synthetic()
        if not real and not synth:
            raise BuildError("recipe data: no fsdd folder, no manifests and no synthetic voices "
                             "(synth.enabled, data.p_synth): nothing to train on")
        train, test = split_by_speaker(real, self.recipe.data.test_speakers,
                                       need_train=not synth)
        return train, test + held, synth

    def banks(self) -> tuple[WordBank, WordBank, WordBank | None]:
        """(recorded training, held-out, synthetic training) word banks; the first is empty
        when nobody has recorded the vocabulary yet (see `data.spoken`)."""
        rate = self.recipe.frontend.sample_rate
        train, test, synth = self.clips()
        return (WordBank.from_clips(train, rate), WordBank.from_clips(test, rate),
                WordBank.from_clips(synth, rate) if synth else None)

    def words(self) -> WordClips | None:
        """Single words by many speakers (data.speech_commands), split by speaker; None if
        the recipe has none."""
        d = self.recipe.data
        if not d.speech_commands:
            return None
        return split_words(read_speech_commands(d.speech_commands),
                           self.recipe.synth.vocabulary(), d.sc_heldout, d.sc_test_speakers)

    def word_audio(self, clips: list[Clip]) -> list[tuple[np.ndarray, str]]:
        """Whole clips (not trimmed: their onsets and room are the point) at the model's rate."""
        rate = self.recipe.frontend.sample_rate
        return [(load_audio(c, rate), c.text) for c in clips]

    def noise_files(self, kinds: tuple[str, ...]) -> dict[str, np.ndarray]:
        """The recordings that the "file:<name>" kinds among `kinds` need."""
        from edgevoice.training.augment import FILE_KIND

        names = sorted({k[len(FILE_KIND):] for k in kinds if k.startswith(FILE_KIND)})
        return read_noise_dir(self.recipe.data.noise_dir, names,
                              self.recipe.frontend.sample_rate)

    def real_data(self) -> dict[str, Any]:
        """The speakers and clips of each source the model learns from (realdata.count)."""
        from edgevoice.training.realdata import count

        synth, held = self.synthetic()
        return count(self.recordings(), self.recipe.data.test_speakers, self.words(), synth,
                     held)

    def frontend(self) -> LogMelSettings:
        self.need("prepare")
        return LogMelSettings.from_dict(json.loads((self.root / "prepare" /
                                                    "frontend.json").read_text()))


def run(work: Work, stage: str, force: bool = False) -> None:
    """Run one stage unless it is done for this recipe (or `force`)."""
    if not force and work.is_done(stage):
        log.info("%s: up to date, skipped", stage)
        return
    stage_dir = work.root / stage
    stamp = stage_dir / "fingerprint"
    stale = not stamp.exists() or stamp.read_text() != work.fingerprint(stage)
    # Start afresh, unless resuming an interrupted run of this recipe: a checkpoint of another
    # recipe is no use, nor one of a finished run whose inputs an earlier stage has replaced.
    if stage_dir.exists() and (force or stale or (stage_dir / "done.json").exists()):
        shutil.rmtree(stage_dir)
    work.dir(stage)
    stamp.write_text(work.fingerprint(stage))
    elapsed_file = stage_dir / "elapsed"
    log.info("%s: running", stage)
    # Time spent so far, over every leg of an interrupted and resumed stage.
    try:
        before = float(elapsed_file.read_text())
    except (OSError, ValueError):
        before = 0.0
    t0 = time.monotonic()
    try:
        info = stage_funcs()[stage](work)
    finally:
        seconds = before + time.monotonic() - t0
        elapsed_file.write_text(f"{seconds:.1f}")
    info["seconds"] = round(seconds, 1)
    work.mark_done(stage, info)
    log.info("%s: done in %.0f s", stage, info["seconds"])


def _get(d: dict[str, Any], key: str) -> Any:
    section, _, field = key.partition(".")
    return d[section].get(field)


def run_all(work: Work, force: bool = False) -> None:
    for stage in STAGES:
        run(work, stage, force)


def synth_stage(work: Work) -> dict[str, Any]:
    from edgevoice.training.synth import synthesize

    s = work.recipe.synth
    if not s.enabled:
        return {"clips": 0}
    manifest = synthesize(s, work.dir("synth") / "audio")
    return {"clips": sum(1 for _ in manifest.open())}


def prepare_stage(work: Work) -> dict[str, Any]:
    """Check every clip, and compute the global per-band normalisation from training data."""
    r = work.recipe
    train, test, synth = work.banks()
    base = LogMelSettings(**asdict(r.frontend))
    # The global statistics are of the features before the running mean (norm_window_s), which
    # then starts from them at every utterance.
    frontend = LogMel(replace(base, norm_window_s=0.0))
    rng = np.random.default_rng(0)
    feats = [frontend.compute(x)
             for x, _, _ in _take(compose(spoken(train, synth), rng, base.sample_rate), 300)]
    if synth is not None:
        feats += [frontend.compute(x)
                  for x, _, _ in _take(compose(synth, rng, base.sample_rate), 100)]
    words = work.words()
    if words is not None:
        audio = work.word_audio(words.train[::3] + words.other_train[::6])
        feats += [frontend.compute(x) for x, _ in audio]
    # Fail here, before any training, on a noise recording that is missing.
    e = r.evaluate
    work.noise_files((*r.augment.noise_kinds, *e.word_noise_kinds, *e.heldout_noise_kinds))
    allf = np.concatenate(feats)
    settings = LogMelSettings(**{**asdict(base), "mean": tuple(allf.mean(0).tolist()),
                                 "std": tuple(allf.std(0).tolist())})
    if r.train.init_from:
        settings = _init_statistics(work, settings)
    out = work.dir("prepare") / "frontend.json"
    out.write_text(json.dumps(settings.to_dict(), indent=1))
    return {"train_speakers": sorted(train.speakers), "test_speakers": sorted(test.speakers),
            "train_clips": len(train), "test_clips": len(test),
            "synth_clips": len(synth) if synth else 0,
            **(_word_counts(words) if words is not None else {})}


def _init_statistics(work: Work, own: LogMelSettings) -> LogMelSettings:
    """The normalisation the init_from model learnt with, if its frontend is this recipe's:
    its weights then see the inputs they were trained on."""
    bundle, _ = work.init_bundle()
    theirs = bundle.frontend
    if theirs.norm_window_s != own.norm_window_s:  # the layers learnt other features
        log.warning("prepare: %s was trained with frontend.norm_window_s %g, this recipe uses "
                    "%g: set frontend.norm_window_s: %g to start from the features it knows",
                    work.recipe.train.init_from, theirs.norm_window_s, own.norm_window_s,
                    theirs.norm_window_s)
    # The statistics come before the running mean: they fit whatever norm_window_s is.
    ignore = {"mean": None, "std": None, "norm_window_s": None}
    if {**asdict(theirs), **ignore} != {**asdict(own), **ignore}:
        log.warning("prepare: %s has another frontend than this recipe; its weights start from "
                    "features they were not trained on", work.recipe.train.init_from)
        return own
    log.info("prepare: normalisation statistics from %s", work.recipe.train.init_from)
    return LogMelSettings(**{**asdict(own), "mean": theirs.mean, "std": theirs.std})


def _word_counts(words: WordClips) -> dict[str, Any]:
    train = {c.speaker for c in (*words.train, *words.other_train)}
    return {"word_train_speakers": len(train), "word_test_speakers": len(words.test_speakers),
            "word_train_clips": len(words.train), "word_test_clips": len(words.test),
            "other_word_train_clips": len(words.other_train),
            "other_word_test_clips": len(words.other_test)}


def _take(gen: Any, n: int) -> list:
    return [next(gen) for _ in range(n)]


def export_stage(work: Work) -> dict[str, Any]:
    from edgevoice.bundle import METRICS_FILE
    from edgevoice.training.export import credits_for, model_card, write_bundle
    from edgevoice.training.report import PLOT_FILE, plot_wer_by_snr
    from edgevoice.training.stages_model import float_weights

    r = work.recipe
    work.need("evaluate")
    meta = bundle_meta(work)
    figures = work.root / "evaluate" / "metrics.json"
    meta["metrics"] = json.loads(figures.read_text())
    chosen = meta["metrics"].get("reject", {}).get("threshold")
    if chosen is not None and meta["decoder"].get("name") == "beam":
        meta["decoder"].setdefault("reject_threshold", chosen)  # the recipe's own value wins
    meta["credits"] = credits_for(r.to_dict())
    meta["training"]["real_data"] = work.real_data()
    meta["build_time"] = build_time(work)
    lm = work.root / "evaluate" / "lm.arpa"
    lm_file = lm if lm.exists() else None
    card = model_card(meta, r.to_dict(), work.command, card_appendix(r))
    plot = plot_wer_by_snr(meta["metrics"], list(r.evaluate.heldout_noise_kinds),
                           work.dir("export") / PLOT_FILE)
    extra = {INIT_WEIGHTS: float_weights(work)} if r.export.float_weights else {}
    if plot:
        extra[PLOT_FILE] = plot
    # The figures go beside bundle.yaml, not into it: the daemon parses bundle.yaml at every
    # start and never needs them.
    del meta["metrics"]
    extra[METRICS_FILE] = figures
    out = write_bundle(r.export.out, (work.root / "quantize" / "model.tflite").read_bytes(),
                       meta, card, lm_file, extra)
    return {"bundle": str(out), "lm": lm_file is not None}


def card_appendix(r: Recipe) -> str:
    """The text of export.card_appendix ("" if unset); a missing file is a BuildError."""
    if not r.export.card_appendix:
        return ""
    try:
        return Path(r.export.card_appendix).read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise BuildError(f"recipe export.card_appendix: cannot read {r.export.card_appendix} "
                         f"({getattr(exc, 'strerror', None) or exc})") from None


def build_time(work: Work) -> dict[str, Any]:
    """Seconds each finished stage took (export excluded; every leg of a resumed stage
    counts), their sum and the cores this process could use."""
    stages = {stage: float(work.info(stage).get("seconds", 0.0)) for stage in STAGES
              if stage != "export" and work.is_done(stage)}
    try:
        cpus: int | None = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count()
    return {"stage_seconds": stages, "total_minutes": round(sum(stages.values()) / 60, 1),
            "cpus": cpus}


def bundle_meta(work: Work) -> dict[str, Any]:
    """bundle.yaml contents from the quantized model's meta.json and the current recipe."""
    r = work.recipe
    model = json.loads((work.root / "quantize" / "meta.json").read_text())
    meta: dict[str, Any] = {"name": r.export.name, "version": r.export.version,
                            "description": r.export.description}
    for key, value in model.items():
        meta.setdefault(key, value)
    meta["decoder"] = dict(r.export.decoder)
    # The denoiser the model was trained behind: the daemon's `denoise:` should match it.
    meta["denoise"] = dict(r.augment.denoise)
    meta["training"] = {"command": work.command, "recipe": r.to_dict()}
    return meta


def build_lm(work: Work) -> Path | None:
    """The bundle's word n-gram LM (export.lm_sentences), if edgevoice.training.lm (optional
    module) exists."""
    order = work.recipe.export.lm_order
    if order <= 0:
        return None
    try:
        from edgevoice.training import lm
    except ImportError:
        log.info("export: edgevoice.training.lm not available, bundle without LM")
        return None
    path = work.dir("evaluate") / "lm.arpa"
    lm.build_arpa(lm_sentences(work.recipe), path, order=order)
    return path


def lm_sentences(recipe: Recipe) -> list[str]:
    """Each vocabulary entry as a sentence ("phrases": a command is said whole), or 3,000
    random strings of 1-10 entries ("strings": digits are said in any order and number)."""
    words = recipe.synth.vocabulary()
    if recipe.export.lm_sentences == "phrases":
        return list(words)
    rng = np.random.default_rng(5)
    return [" ".join(words[int(i)] for i in rng.integers(0, len(words), n))
            for n in rng.integers(1, 11, 3000)]


def stage_funcs() -> dict[str, Any]:
    """Stage name -> function (the model stages live in stages_model, which imports this)."""
    from edgevoice.training import stages_model as m

    return {"synth": synth_stage, "prepare": prepare_stage, "train": m.train_stage,
            "prune": m.prune_stage, "quantize": m.quantize_stage,
            "evaluate": m.evaluate_stage, "export": export_stage}
