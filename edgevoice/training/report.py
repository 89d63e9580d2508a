"""The figures of an evaluation as the model card and `edgevoice-build evaluate` show them:
markdown tables, a PNG plot of WER against SNR per noise kind (matplotlib, from the build
extra) and a plain-text summary."""

from __future__ import annotations

import re
from collections.abc import Collection
from pathlib import Path
from typing import Any

SET = re.compile(r"^words_(.+)_(-?\d+(?:\.\d+)?)dB$")
PLOT_FILE = "wer_by_snr.png"


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.1f}"


def by_kind(scores: dict[str, Any]) -> dict[str, dict[float, float]]:
    """{noise kind: {snr: wer}} from one model's word-set scores."""
    out: dict[str, dict[float, float]] = {}
    for name, sc in scores.items():
        m = SET.match(name)
        if m:
            out.setdefault(m.group(1), {})[float(m.group(2))] = sc["wer"]
    return out


def shipped(names: Collection[str]) -> str:
    """Of a figures dict's model+decoder names, the one the daemon's default behaves like:
    INT8 with the bundle's decoder (and its calibrated reject threshold, when there is one)."""
    for name in ("int8_beam_lm_reject", "int8_beam_reject", "int8_reject", "int8_beam_lm",
                 "int8_beam", "int8"):
        if name in names:
            return name
    return next(iter(names), "")


def default_model(metrics: dict[str, Any]) -> str:
    """The strangers row the daemon's default behaves like (see `shipped`)."""
    return shipped(metrics.get("strangers", {}))


# The every-model table: (header, set, score key). A column that no row has (a metrics.json
# from before the figure existed) is left out.
MODEL_COLUMNS = (
    ("clean", "words_clean", "wer"), ("reverberant", "words_reverb", "wer"),
    ("phrase right", "words_clean", "phrase_right"),
    ("wrong command", "words_clean", "phrase_wrong"),
    ("nothing published", "words_clean", "phrase_nothing"),
    ("insertions at onset", "words_clean", "onset_ins"),
    ("rejected", "words_clean", "rejected"),
    ("other words -> output", "neg_words", "false_output"),
    ("noise -> output", "neg_noise", "false_output"),
)
NEGATIVE_NAMES = {"neg_words": "other words", "neg_noise": "noise"}  # reject table columns
COLUMN_NOTES = {
    "phrase right": "phrase right: the whole word or phrase said was published, nothing else "
                    "(phrase accuracy).",
    "wrong command": "wrong command: something other than the phrase said was published (a "
                     "rejected result is not one).",
    "nothing published": "nothing published: no text, or a result rejected; the user has to "
                         "say it again.",
    "insertions at onset": "insertions at onset: words published before the word said.",
    "rejected": "rejected: results the decoder's reject threshold withheld.",
    "other words -> output": "other words / noise -> output: negatives (a word outside the "
                             "vocabulary, or noise only) for which anything was published.",
}


def strangers_tables(metrics: dict[str, Any], heldout_kinds: list[str]) -> str:
    """Markdown: WER by noise kind and SNR for the default row; clean, reverberant, phrase
    outcomes, onset insertions and false outputs for every model and decoder; the shipped
    model's figures per word; the reject trade-off."""
    if not metrics.get("strangers"):
        return "(no held-out Speech Commands speakers in this recipe)"
    parts = [_noise_table(metrics, heldout_kinds), _models_table(metrics["strangers"]),
             _per_word_table(metrics), _reject_table(metrics.get("reject", {}))]
    return "\n\n".join(p for p in parts if p)


def _noise_table(metrics: dict[str, Any], heldout_kinds: list[str]) -> str:
    main = default_model(metrics)
    kinds = by_kind(metrics["strangers"][main])
    if not kinds:  # no vocabulary word among the held-out recordings: false outputs only
        return ""
    snrs = sorted({s for v in kinds.values() for s in v}, reverse=True)
    lines = [f"WER % of `{main}` on isolated words by noise kind and SNR (dB); kinds marked * "
             "were never heard in training:", "",
             "| noise | " + " | ".join(f"{s:g}" for s in snrs) + " |",
             "|---" * (1 + len(snrs)) + "|"]
    held = [k.removeprefix("file:") for k in heldout_kinds]
    for kind, row in kinds.items():
        mark = " *" if kind in held else ""
        lines.append(f"| {kind}{mark} | " + " | ".join(_pct(row.get(s)) for s in snrs) + " |")
    return "\n".join(lines)


def _models_table(strangers: dict[str, Any]) -> str:
    columns = [(head, name, key) for head, name, key in MODEL_COLUMNS
               if any(key in sets.get(name, {}) for sets in strangers.values())]
    lines = ["Every model and decoder (clean and reverberant: WER %; the other columns are % "
             "of clean clips, or of negative clips):", "",
             "| model | " + " | ".join(h for h, _, _ in columns) + " |",
             "|---" * (1 + len(columns)) + "|"]
    for model, sets in strangers.items():
        lines.append(f"| {model} | " + " | ".join(_pct(sets.get(name, {}).get(key))
                                                 for _, name, key in columns) + " |")
    notes = [COLUMN_NOTES[h] for h, _, _ in columns if h in COLUMN_NOTES]
    return "\n".join([*lines, "", *(f"- {n}" for n in notes)])


def _per_word_table(metrics: dict[str, Any]) -> str:
    """The shipped model per vocabulary entry, and at its reject threshold if it has one."""
    tables = metrics.get("strangers_per_word")
    if not tables:
        return ""
    main = next(n for n in tables if not n.endswith("_reject"))
    threshold = metrics.get("reject", {}).get("threshold")
    at = tables.get(f"{main}_reject") if threshold is not None else None
    head = ["word or phrase", "clips", "right", "wrong", "most often heard as", "nothing"]
    if at:
        head += [f"{k} at {threshold:g}" for k in ("right", "wrong", "nothing")]
    lines = [f"Per word or phrase, `{main}` on the clean held-out words: right, wrong command "
             "and nothing published as above, in % of its clips; most often heard as: the "
             "wrong text published most often for it"
             + (f"; the last three columns with the reject threshold {threshold:g} the bundle "
                "ships with" if at else "") + ":", "",
             "| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for word, w in tables[main].items():
        row = (f"| {word} | {w['clips']} | {_pct(w['right'])} | {_pct(w['wrong'])} | "
               f"{w['became'] or '-'} | {_pct(w['nothing'])} |")
        if at:
            r = at[word]
            row += f" {_pct(r['right'])} | {_pct(r['wrong'])} | {_pct(r['nothing'])} |"
        lines.append(row)
    return "\n".join(lines)


def _reject_table(reject: dict[str, Any]) -> str:
    curve = reject.get("curve", [])
    if not curve:
        return ""
    chosen = reject.get("threshold")
    kinds = [k for k in NEGATIVE_NAMES if k in curve[0].get("false_output_by", {})]
    lines = [f"Reject threshold trade-off (`int8` with the {reject.get('decoder')} decoder; "
             "clean held-out words and all negatives, %)"
             + (f"; the bundle ships with {chosen:g}" if chosen is not None else "") + ":",
             "", "| threshold | right | wrong | lost | false outputs |"
             + "".join(f" {NEGATIVE_NAMES[k]} |" for k in kinds),
             "|---|---|---|---|---|" + "---|" * len(kinds)]
    for p in curve:
        if round(p["threshold"] * 100) % 10 and p["threshold"] != chosen:
            continue  # every 0.1, and the shipped one
        mark = " (shipped)" if p["threshold"] == chosen else ""
        lines.append(f"| {p['threshold']:g}{mark} | {_pct(p['right'])} | {_pct(p['wrong'])} | "
                     f"{_pct(p['lost'])} | {_pct(p['false_output'])} |"
                     + "".join(f" {_pct(p['false_output_by'][k])} |" for k in kinds))
    return "\n".join(lines)


STRING_FIGURES = {"wer": "WER", "cer": "CER", "string_right": "strings right"}
WORD_FIGURES = {"wer": "WER", "phrase_right": "phrase accuracy", "phrase_wrong": "wrong command",
                "phrase_nothing": "nothing published"}


def summary(metrics: dict[str, Any]) -> str:
    """What `edgevoice-build evaluate` prints: the shipped model and decoder on the held-out
    connected strings and on strangers' single words, then per word."""
    lines = []
    acc = metrics.get("accuracy") or {}
    if acc:
        name = shipped(acc)
        lines.append(f"Held-out connected strings, {name}:")
        lines += [f"  {s}: {_listed(sc, STRING_FIGURES)}" for s, sc in acc[name].items()]
    strangers = metrics.get("strangers") or {}
    if strangers:
        name = default_model(metrics)
        sets = strangers[name]
        lines += [f"Held-out Speech Commands speakers, single words, {name}:",
                  f"  clean: {_listed(sets.get('words_clean', {}), WORD_FIGURES)}",
                  f"  other words -> output {_pct(sets['neg_words']['false_output'])} %, "
                  f"noise -> output {_pct(sets['neg_noise']['false_output'])} %"]
    tables = metrics.get("strangers_per_word") or {}
    if tables:
        name = shipped(tables)
        lines.append(f"Per word, clean, {name} (% right / wrong / nothing):")
        lines += [f"  {word}: {_pct(w['right'])} / {_pct(w['wrong'])} / {_pct(w['nothing'])}"
                  + (f", most often heard as {w['became']!r}" if w["became"] else "")
                  + f" ({w['clips']} clips)" for word, w in tables[name].items()]
    return "\n".join(lines)


def _listed(scores: dict[str, float], figures: dict[str, str]) -> str:
    """"WER 12.5 %, ..." of the figures `scores` has (older metrics lack some)."""
    return ", ".join(f"{label} {_pct(scores[k])} %" for k, label in figures.items()
                     if k in scores)


def plot_wer_by_snr(metrics: dict[str, Any], heldout_kinds: list[str], out: Path) -> Path | None:
    """WER against SNR, a line per noise kind (dashed: never heard in training), for the
    default row; None when there are no strangers figures or no matplotlib."""
    strangers = metrics.get("strangers")
    if not strangers or not by_kind(strangers[default_model(metrics)]):
        return None
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    main = default_model(metrics)
    held = [k.removeprefix("file:") for k in heldout_kinds]
    fig, ax = plt.subplots(figsize=(6.4, 4.2), dpi=100)
    for kind, row in by_kind(strangers[main]).items():
        snrs = sorted(row)
        ax.plot(snrs, [100 * row[s] for s in snrs], marker="o",
                linestyle="--" if kind in held else "-",
                label=kind + (" (never heard)" if kind in held else ""))
    clean = strangers[main].get("words_clean", {}).get("wer")
    if clean is not None:
        ax.axhline(100 * clean, color="grey", linewidth=0.8, label="clean")
    ax.set_xlabel("SNR (dB)")
    ax.set_ylabel("WER (%)")
    ax.set_title(f"Held-out speakers, isolated words: {main}")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, format="png")
    plt.close(fig)
    return out
