"""The strangers figures of an evaluation as the model card shows them: markdown tables and a
PNG plot of WER against SNR per noise kind (matplotlib, from the build extra)."""

from __future__ import annotations

import re
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


def default_model(metrics: dict[str, Any]) -> str:
    """The row the daemon's default behaves like: INT8 with the bundle's decoder (and its
    calibrated reject threshold, when there is one)."""
    strangers = metrics.get("strangers", {})
    for name in ("int8_beam_lm_reject", "int8_beam_reject", "int8_reject", "int8_beam_lm",
                 "int8_beam", "int8"):
        if name in strangers:
            return name
    return next(iter(strangers), "")


def strangers_tables(metrics: dict[str, Any], heldout_kinds: list[str]) -> str:
    """Markdown: WER by noise kind and SNR for the default row; clean, reverberant, onset
    insertions and false outputs for every model and decoder; the reject trade-off."""
    strangers = metrics.get("strangers")
    if not strangers:
        return "(no held-out Speech Commands speakers in this recipe)"
    lines = _by_kind_table(metrics, heldout_kinds)
    lines += [""] * bool(lines) + [
        "Every model and decoder (WER %; onset insertions, rejected and false outputs are % "
        "of clips):", "",
        "| model | clean | reverberant | insertions at onset | rejected | other words -> output "
        "| noise -> output |", "|---|---|---|---|---|---|---|"]
    for name, sets in strangers.items():
        clean, room = sets.get("words_clean", {}), sets.get("words_reverb", {})
        lines.append(
            f"| {name} | {_pct(clean.get('wer'))} | {_pct(room.get('wer'))} | "
            f"{_pct(clean.get('onset_ins'))} | {_pct(clean.get('rejected'))} | "
            f"{_pct(sets.get('neg_words', {}).get('false_output'))} | "
            f"{_pct(sets.get('neg_noise', {}).get('false_output'))} |")
    reject = metrics.get("reject", {})
    curve = reject.get("curve", [])
    if curve:
        chosen = reject.get("threshold")
        lines += ["", f"Reject threshold trade-off (`int8` with the {reject.get('decoder')} "
                  "decoder; clean held-out words and all negatives, %)"
                  + (f"; the bundle ships with {chosen:g}" if chosen is not None else "") + ":",
                  "", "| threshold | right | wrong | lost | false outputs |",
                  "|---|---|---|---|---|"]
        for p in curve[::2] if len(curve) > 10 else curve:
            mark = " (shipped)" if p["threshold"] == chosen else ""
            lines.append(f"| {p['threshold']:g}{mark} | {_pct(p['right'])} | "
                         f"{_pct(p['wrong'])} | {_pct(p['lost'])} | "
                         f"{_pct(p['false_output'])} |")
    return "\n".join(lines)


def _by_kind_table(metrics: dict[str, Any], heldout_kinds: list[str]) -> list[str]:
    """WER by noise kind and SNR of the default row (none without vocabulary words)."""
    main = default_model(metrics)
    kinds = by_kind(metrics["strangers"][main])
    if not kinds:
        return []
    snrs = sorted({s for v in kinds.values() for s in v}, reverse=True)
    lines = [f"WER % of `{main}` on isolated words by noise kind and SNR (dB); kinds marked * "
             "were never heard in training:", "",
             "| noise | " + " | ".join(f"{s:g}" for s in snrs) + " |",
             "|---" * (1 + len(snrs)) + "|"]
    held = [k.removeprefix("file:") for k in heldout_kinds]
    for kind, row in kinds.items():
        mark = " *" if kind in held else ""
        lines.append(f"| {kind}{mark} | " + " | ".join(_pct(row.get(s)) for s in snrs) + " |")
    return lines


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
