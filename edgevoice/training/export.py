"""Bundle export: model.tflite, bundle.yaml, metrics.json, optional lm.arpa and MODEL_CARD.md,
written atomically.

Files go to a temporary sibling directory that replaces the target only when complete, so a
failed export never leaves a half-written bundle where the daemon looks for one.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import yaml

from edgevoice.bundle import load_bundle, write_manifest
from edgevoice.errors import BuildError
from edgevoice.training.data import DIGIT_WORDS
from edgevoice.training.lm import expand_phrases
from edgevoice.training.prune import branch_step
from edgevoice.training.realdata import FEW, MANY, SC_SOURCE, summary
from edgevoice.training.report import PLOT_FILE, shipped, strangers_tables

FSDD_CREDIT = "Free Spoken Digit Dataset (Zohar Jackson et al.), CC BY-SA 4.0"
SC_CREDIT = ("Speech Commands (Warden, P. (2018). Speech Commands: A Dataset for "
             "Limited-Vocabulary Speech Recognition. arXiv:1804.03209), CC BY 4.0")
ENGINE_LICENCES = {
    "espeak-ng": "espeak-ng (GPL-3.0)", "flite": "flite (BSD-like)",
    "festival": "Festival with festvox voices (X11-style and BSD-like licences)",
    # Their terms forbid use in a product that is sold without the voice owner's permission.
    "mbrola": "MBROLA voices (non-commercial terms: check them before you ship this model)",
    "pico": "SVOX Pico (Apache-2.0; its language files are in Debian non-free)",
}
MAX_SHOWN = 12  # phrases the card quotes


def write_bundle(out: str | Path, model: bytes, meta: dict[str, Any], card: str | None = None,
                 lm_file: Path | None = None, extra: dict[str, Path] | None = None) -> Path:
    """Write a complete bundle to `out` (replacing it) and check that the daemon loads it;
    `extra` files (name -> source, e.g. the card's plot) are copied in and hashed too."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp makes it private; the daemon may run as another user
        (tmp / "model.tflite").write_bytes(model)
        meta = dict(meta)
        meta["model"] = {"file": "model.tflite", **meta.get("model", {})}
        if lm_file is not None:
            shutil.copyfile(lm_file, tmp / "lm.arpa")
            meta["lm"] = {"file": "lm.arpa"}
        if card is not None:
            (tmp / "MODEL_CARD.md").write_text(card, encoding="utf-8")
        for name, source in (extra or {}).items():
            shutil.copyfile(source, tmp / name)
        write_manifest(tmp, meta)
        load_bundle(tmp)
        old = out.with_name(f".{out.name}.old")
        if old.exists():
            shutil.rmtree(old)
        if out.exists():
            out.rename(old)
        tmp.rename(out)
        if old.exists():
            shutil.rmtree(old)
    except OSError as exc:
        raise BuildError(f"cannot write bundle {out}: {exc}") from None
    finally:
        if tmp.exists():
            shutil.rmtree(tmp)
    return out


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f} %"


def metrics_table(metrics: dict[str, Any]) -> str:
    """Markdown: one row per test set, WER/CER per model (float, pruned, int8) and decoder, and
    the shipped model's share of strings exactly right (older metrics have none)."""
    acc = metrics.get("accuracy", {})
    models = [m for m in acc if not m.endswith(("_beam", "_beam_lm"))]
    models += [m for m in acc if m not in models]
    sets = list(acc[models[0]]) if models else []
    main = shipped(acc)
    strings = bool(sets) and "string_right" in acc[main][sets[0]]
    head = ("| test set | " + " | ".join(f"{m} WER | {m} CER" for m in models) + " |"
            + (f" {main} strings right |" if strings else ""))
    rule = "|---" * (1 + 2 * len(models) + int(strings)) + "|"
    rows = [
        f"| {s} | " + " | ".join(f"{_pct(acc[m][s]['wer'])} | {_pct(acc[m][s]['cer'])}"
                                 for m in models) + " |"
        + (f" {_pct(acc[main][s]['string_right'])} |" if strings else "")
        for s in sets
    ]
    note = (f"\n\n{main} strings right: the share of test strings with every word right, none "
            "missing and none added." if strings else "")
    return "\n".join([head, rule, *rows]) + note


def _build_time(bt: dict[str, Any] | None) -> str:
    if not bt:
        return ""
    parts = ", ".join(f"{k} {v / 60:.1f}" for k, v in bt["stage_seconds"].items() if v >= 30)
    detail = f" ({parts} min; shorter stages omitted)" if parts else ""
    cores = f" ({bt['cpus']} cores)" if bt.get("cpus") else ""
    return (f"Build time on the machine that made this bundle{cores}: "
            f"{bt['total_minutes']} min for all stages{detail}.")


def _synth_used(recipe: dict[str, Any]) -> bool:
    """Synthetic speech went into training (rendered and drawn from)."""
    return bool(recipe.get("synth", {}).get("enabled")) and recipe["data"].get("p_synth", 0) > 0


def _digit_phrases(synth: dict[str, Any]) -> bool:
    return tuple(synth.get("phrases", ())) == DIGIT_WORDS


def _engines(synth: dict[str, Any], sep: str) -> str:
    return sep.join(ENGINE_LICENCES.get(e, e) for e in synth.get("engines", ()))


def _is_digits(recipe: dict[str, Any]) -> bool:
    return not recipe["data"].get("manifests") and (
        not _synth_used(recipe) or _digit_phrases(recipe.get("synth", {})))


def _phrase_lm(recipe: dict[str, Any]) -> bool:
    return recipe["export"].get("lm_sentences") == "phrases"


def _lm_text(export: dict[str, Any]) -> str:
    order = export.get("lm_order", 3)
    source = ("the vocabulary's phrases, each a sentence" if export.get("lm_sentences") ==
              "phrases" else "random strings of 1-10 vocabulary entries")
    return (f"the {'trigram' if order == 3 else f'{order}-gram'} word LM lm.arpa (built from "
            f"{source})")


def _recognises(recipe: dict[str, Any]) -> str:
    negatives = recipe["data"].get("speech_commands") and recipe["data"].get("p_negative")
    if _is_digits(recipe):
        rest = ("other words, noise and clicks were trained to yield nothing" if negatives
                else "anything else will be heard as digits")
        return ("Recognises connected English digit words (zero ... nine), e.g.\nPINs and phone "
                f'numbers spoken as "three five seven"; {rest}.')
    rest = ("other words, noise and clicks were trained to yield nothing" if negatives
            else "anything else will be heard as the nearest of them")
    if _phrase_lm(recipe):
        phrases = expand_phrases(recipe["synth"]["phrases"])
        shown = ", ".join(f'"{p}"' for p in phrases[:MAX_SHOWN])
        more = f" and {len(phrases) - MAX_SHOWN} more" if len(phrases) > MAX_SHOWN else ""
        return (f"Recognises {len(phrases)} phrases, each said whole:\n{shown}{more};\n"
                f"{rest}.")
    words = expand_phrases(recipe["synth"]["phrases"]) if _synth_used(recipe) else []
    if 0 < len(words) <= MAX_SHOWN:
        return f"Recognises {len(words)} English words: {', '.join(words)};\n{rest}."
    return ("Recognises the words and phrases of its training data (recordings and synthetic "
            f"phrases below);\n{rest}.")


def _composed(data: dict[str, Any]) -> str:
    if data.get("max_words", 7) == 1:
        return "Each training utterance is one recording or rendering, framed with silence"
    return "Connected utterances are composed from isolated words with random pauses"


def _limits(recipe: dict[str, Any], m: dict[str, Any], real_data: dict[str, Any] | None
            ) -> str:
    """Who the model may fail, and what it does with speech outside its vocabulary."""
    data, digits = recipe["data"], _is_digits(recipe)
    if real_data is not None:
        speakers = f"{real_data['speakers']} real speakers of the vocabulary"
    else:
        info = m.get("strangers_info", {})
        speakers = (f"{len(m.get('train_speakers', [])) + (info.get('train_speakers') or 0)} "
                    "real speakers")
    trained = (f"Trained on {speakers}"
               + (" (adults) of one dataset recorded at 8 kHz"
                  if data.get("fsdd") and digits and not data.get("speech_commands") else "")
               + ", plus synthetic voices" * _synth_used(recipe)
               + ": expect higher error rates for children, strong accents, far-field "
               "microphones and real noise unlike the synthetic noise above. ")
    if not (data.get("speech_commands") and data.get("p_negative", 0) > 0):
        return trained + ("Words outside zero-nine" if digits else
                          "Words outside the training data") + " are not rejected."
    if digits:
        return trained + ("Other words, noise and clicks were trained to yield nothing, yet "
                          "some still come out as digits (the false outputs above); the "
                          "decoder's reject_threshold trades digits for fewer of them (the "
                          "trade-off table).")
    return trained + ("Other words, noise and clicks were trained to yield nothing, yet some "
                      "still come out as one of the vocabulary (the false outputs above); a "
                      "decoder reject_threshold trades missed commands for fewer of them.")


def _data_lines(recipe: dict[str, Any], trained_on: list[str], word_speakers: int = 0,
                real_data: dict[str, Any] | None = None) -> str:
    """The card's list of what the model was trained on."""
    data, synth = recipe["data"], recipe.get("synth", {})
    lines = []
    speakers = f" Speakers used for training: {', '.join(trained_on)}." if trained_on else ""
    if data.get("fsdd"):
        lines.append(f"- Recordings: {FSDD_CREDIT}.{speakers}")
        speakers = ""
    sc_vocabulary = (real_data or {}).get("sources", {}).get(SC_SOURCE, {}).get("clips", 1)
    if data.get("speech_commands") and word_speakers and not sc_vocabulary:
        lines.append(f"- Recordings: {SC_CREDIT}: other words by {word_speakers} speakers "
                     "through their own microphones, as negatives, speech that must yield "
                     "nothing (none of the vocabulary is in it).")
    elif data.get("speech_commands"):
        lines.append(f"- Recordings: {SC_CREDIT}: single words by "
                     f"{n_words} speakers through their own microphones, as whole clips; "
                     "its other words are negatives, speech that must yield nothing."
                     if (n_words := word_speakers) else f"- Recordings: {SC_CREDIT}.")
    for m in data.get("manifests", []):
        lines.append(f"- Recordings listed in `{m}` (their licences are the data owner's).")
    if speakers:
        lines.append(f"-{speakers}")
    if recipe.get("train", {}).get("init_from"):
        lines.append(f"- Started from the float weights of `{recipe['train']['init_from']}` "
                     "(see its card: what it learnt from its data is part of this model) and "
                     f"fine-tuned for {recipe['train']['steps']} steps on the data here.")
    if _synth_used(recipe):
        words = ("the digit words" if _digit_phrases(synth)
                 else f"{len(expand_phrases(synth.get('phrases', ())))} phrases of the recipe")
        engines = _engines(synth, " and ")
        accents = (f", {round(100 * synth['accented'])} % of the espeak-ng speakers with a "
                   "second-language accent of their own"
                   if synth.get("accented") and "espeak-ng" in synth.get("engines", ()) else "")
        lines.append(f"- Synthetic speech of {words} rendered with {engines}\n  across voices, "
                     f"variants, rates and pitches{accents}; no third-party audio ships with "
                     "the model.")
    return "\n".join(lines)


def credits_for(recipe: dict[str, Any]) -> list[str]:
    """Credits the card and bundle.yaml owe: the datasets and engines the recipe used."""
    out = [FSDD_CREDIT] if recipe["data"].get("fsdd") else []
    if recipe["data"].get("speech_commands"):
        out.append(SC_CREDIT)
    if _synth_used(recipe):
        out.append("Synthetic speech: " + _engines(recipe["synth"], ", "))
    return out


def _pruning(recipe: dict[str, Any]) -> str:
    """How the pruned model was made, for the card."""
    p, t = recipe["prune"], recipe["train"]
    if not p.get("enabled", True) or not p.get("sparsity"):
        return ""
    if p.get("branch"):
        return (f", pruned during training: branched from the training run at step "
                f"{branch_step(t['steps'], p['branch'])} of {t['steps']} and trained on with "
                "its schedule")
    return f", pruned by fine-tuning the trained model for {p['steps']} steps"


def _strangers_section(m: dict[str, Any], recipe: dict[str, Any]) -> str:
    """The card's figures on held-out speakers of data.speech_commands, if there are any."""
    if not m.get("strangers"):
        return ""
    info, ev = m.get("strangers_info", {}), recipe["evaluate"]
    held = list(ev.get("heldout_noise_kinds", ()))
    kinds = ", ".join(k.removeprefix("file:") for k in ev.get("word_noise_kinds", ()))
    never = ", ".join(k.removeprefix("file:") for k in held) or "none"
    if not info.get("words"):
        return f"""## On strangers: false outputs

None of the vocabulary is in the Speech Commands data: the figures are false outputs, how
often anything is published for {info.get('other_words')} other words said by
{info.get('speakers')} held-out speakers (never trained on: \
{round(100 * recipe['data']['sc_heldout'])} % of its speakers, drawn by a hash of their id),
each through their own microphone and room, and for {info.get('noise_clips')} one-second
noise-only clips (every kind, and quiet rooms with a click or breath).

{strangers_tables(m, held)}
"""
    return f"""## On strangers: held-out speakers, rooms and noise

{info.get('words')} single words by {info.get('speakers')} held-out Speech Commands speakers
(never trained on: {round(100 * recipe['data']['sc_heldout'])} % of its speakers, drawn by a
hash of their id, not by results), each through their own microphone and room, as recorded:
clean, in a simulated reverberant room, and mixed with {kinds} and with the kinds never heard
in training ({never}) at each SNR. Babble is built from held-out speakers saying other words.
False outputs: {info.get('other_words')} other words of the held-out speakers and
{info.get('noise_clips')} one-second noise-only clips (every kind, and quiet rooms with a click
or breath) for which anything is published. A rejected result counts as nothing said.

{strangers_tables(m, held)}

![WER against SNR per noise kind]({PLOT_FILE})
"""


def _heldout(m: dict[str, Any], recipe: dict[str, Any]) -> tuple[str, str, str]:
    """(who was held out, for the card; whose audio the test set is; who the model never
    heard): real speakers, or the synthetic voices data.synth_heldout keeps out."""
    if m.get("heldout") != "synthetic":
        held = ", ".join(recipe["data"]["test_speakers"])
        return (f"Held-out speaker(s): **{held}**, never used for training, normalisation "
                "statistics or checkpoint selection (a recipe whose settings were compared on "
                "the same speaker, as this tool's default recipe was, makes these figures "
                "somewhat optimistic).", "that speaker's recordings", held)
    share = round(100 * recipe["data"]["synth_heldout"])
    return (f"Held-out synthetic voices: **{len(m.get('heldout_speakers', []))}** ({share} % "
            "of the synthetic speakers, drawn by a hash of their names, not by results), never "
            "used for training or normalisation statistics. Nobody real was held out, and an "
            "unheard synthetic voice is far easier than a person: read these figures as an "
            "upper bound (see Real speech and strangers).", "those voices' renderings",
            "those voices")


def _test_set(ev: dict[str, Any], unit: str) -> str:
    if ev["max_words"] == 1:
        return f"{ev['utterances']} single {unit}"
    return f"{ev['utterances']} connected strings of {ev['min_words']}-{ev['max_words']} {unit}"


def _real_data_section(meta: dict[str, Any]) -> str:
    """The card's account of the real speech trained on (realdata.summary), if recorded."""
    counts = meta.get("training", {}).get("real_data")
    if not counts:
        return ""
    return f"""## Real speech and strangers

{summary(counts)}

(Rules of thumb, not measurements: under {FEW} real speakers of the vocabulary a model knows
those people; from {MANY} on, voices and microphones start to cover a household's. A captured
manifest's speaker is the daemon's site_id, which may be several people.)
"""


def model_card(meta: dict[str, Any], recipe: dict[str, Any], command: str,
               appendix: str = "") -> str:
    """MODEL_CARD.md: what it recognises, data and credits, how it was measured, how to rebuild;
    `appendix` (Markdown, e.g. the size frontier) goes after the figures."""
    m = meta.get("metrics", {})
    cost = m.get("cost", {})
    data = recipe["data"]
    who, whose, never = _heldout(m, recipe)
    ev = recipe["evaluate"]
    decoder = ", ".join(f"{k}: {v}" for k, v in recipe["export"]["decoder"].items())
    if recipe["export"]["decoder"].get("name") == "beam":
        decoder += f"; CTC prefix beam search with {_lm_text(recipe['export'])}"
    trained_on = m.get("train_speakers", [])
    info = m.get("strangers_info", {})
    all_note = f"The shipped model is the one measured: it never heard {never}."
    credits = "\n".join(f"- {c}" for c in meta.get("credits", []))
    digits = _is_digits(recipe)
    unit = "digits" if digits else "phrases" if _phrase_lm(recipe) else "recordings"
    real_data = meta.get("training", {}).get("real_data")
    return f"""# {meta['name']} {meta['version']}: {recipe['export']['description']}

Causal depthwise-separable CNN with a CTC character output, INT8 TFLite (int8 in and out),
for the edgevoice daemon. {_recognises(recipe)}

## Data, licences and credits

{_data_lines(recipe, trained_on, info.get("train_speakers") or 0, real_data)}
- {_composed(data)}, then augmented
  (speed, tempo, pitch, vocal-tract-length warp, spectral tilt, reverberation,
  white/pink/brown noise and babble, gain, SpecAugment).

Credits:

{credits}

## How it was measured

{who} Test set: {_test_set(ev, unit)} composed from {whose} \
(seed {ev['seed']}), at 16 kHz; noisy copies at \
{', '.join(f'{s:g}' for s in ev['snrs'])} dB SNR with {' / '.join(ev['noise_kinds'])} noise \
(alternating per utterance; babble is built from the training speakers' words). The int8 \
columns run this bundle through `edgevoice.runtime.AcousticModel` exactly as the daemon does. \
float, pruned and int8: greedy CTC decoding (the acoustic model alone); *_beam_lm: the \
bundle's default decoder ({decoder}). {all_note}

{metrics_table(m) if m.get('accuracy') else '(not evaluated)'}

- Model file: {cost.get('model_bytes', 0) / 1024:.1f} KiB; {cost.get('params', 'n/a')} \
parameters; sparsity {_pct(m.get('sparsity', {}).get('pruned'))} of the pruned layers \
(pointwise convolutions and output layer){_pruning(recipe)}.
- Compute: {cost.get('macs_per_second', 0) / 1e6:.2f} M multiply-accumulates per second of \
audio ({cost.get('streaming_macs_per_second', 0) / 1e6:.2f} M counting the left context the \
streaming window recomputes).
- Latency (TFLite INT8, 1 thread, build machine): \
{m.get('latency', {}).get('ms_per_audio_second')} ms per second of audio, \
{m.get('latency', {}).get('ms_per_call')} ms per streaming call.

{_strangers_section(m, recipe)}
{appendix.strip() + chr(10) if appendix.strip() else ""}
{_real_data_section(meta)}
## Limits

{_limits(recipe, m, real_data)}

## Reproduce

```
{command}
```

{_build_time(meta.get('build_time'))}

Recipe (resolved):

```yaml
{yaml.safe_dump(recipe, sort_keys=False).strip()}
```
"""
