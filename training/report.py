"""Markdown report and model card written into each registry entry."""

from __future__ import annotations

from pathlib import Path
from typing import Any


def _level_table(levels: dict[str, Any]) -> list[str]:
    lines = ["| level | n | accuracy | macro-F1 | weighted F1 |", "|---|---|---|---|---|"]
    for name, m in levels.items():
        lines.append(
            f"| {name} | {m.get('n', '')} | {m['accuracy']:.3f} | {m['macro_f1']:.3f} "
            f"| {m['weighted_f1']:.3f} |"
        )
    return lines


def write_report(path: Path, manifest: dict[str, Any], metrics: dict[str, Any]) -> None:
    """Evaluation report: per-level metrics, per source, calibration, policy."""
    lv = metrics["levels"]
    lines = [
        f"# Evaluation of {manifest['version']}",
        "",
        f"Evaluation: {metrics['evaluation']} (each source scored by a head that never saw it).",
        "",
        "## Pooled over records (weighted by rows)",
        "",
        *_level_table(lv["pooled_weighted_by_rows"]),
        "",
        "## Unweighted mean over sources",
        "",
        *_level_table(lv["unweighted_mean_over_sources"]),
        "",
        "## Per source",
        "",
    ]
    for src, m in lv["per_source"].items():
        lines += [f"### {src}", "", *_level_table(m), ""]
    cal = metrics["calibration"]
    lines += [
        "## Calibration",
        "",
        f"Temperature {cal['temperature']:.3f}; ECE of the top suggestion "
        f"{cal['ece_top1_before']:.4f} before, {cal['ece_top1_after']:.4f} after "
        "(cross-validated over sources).",
        "",
        "## Automatic coding (thresholds cross-fitted over sources)",
        "",
        "| target precision | share auto-coded | precision of auto-coded |",
        "|---|---|---|",
    ]
    for p, m in metrics["policy"].items():
        lines.append(f"| {p} | {m['coverage']:.3f} | {m['precision']:.3f} |")
    lines += _held_out_precision(metrics) + _rejection(metrics) + _table_precision(metrics)
    lines += _languages(metrics)
    Path(path).write_text("\n".join(lines) + "\n", "utf-8")


def _held_out_precision(metrics: dict[str, Any]) -> list[str]:
    """Per held-out source: what the operator's target gives on a list the thresholds and the
    target map were learnt without (the figure a new jurisdiction would see)."""
    per = metrics.get("precision_by_held_out_source")
    if not per:
        return []
    targets = list(per["pooled"])
    lines = [
        "",
        "## Precision per held-out source (thresholds and target map learnt without it)",
        "",
        "Cells: share auto-coded / precision of the auto-coded.",
        "",
        "| source | " + " | ".join(f"target {t}" for t in targets) + " |",
        "|---" * (len(targets) + 1) + "|",
    ]
    for src, m in per.items():
        cells = [f"{m[t]['coverage']:.3f} / {m[t]['precision']:.3f}" for t in targets]
        lines.append(f"| {src} | " + " | ".join(cells) + " |")
    return lines


def _rejection(metrics: dict[str, Any]) -> list[str]:
    """Records rejected as not an offence on held-out lists, and how many truly were not."""
    rej = metrics.get("rejection_by_held_out_source")
    if not rej:
        return []
    lines = [
        "",
        "## Rejected as not an offence on held-out lists (bar learnt without the list)",
        "",
        f"{rej['not_an_offence_rows']} held-out rows are not offences. A rejected record is "
        "seen by nobody; below the bar it goes to review.",
        "",
        "| bar | rejected | of them truly not an offence |",
        "|---|---|---|",
    ]
    for bar, m in rej["rejected"].items():
        name = "0.5 (uncalibrated)" if bar == "uncalibrated" else f"target {bar}"
        lines.append(f"| {name} | {m['rejected']} | {m['precision']:.3f} |")
    return lines


def _table_precision(metrics: dict[str, Any]) -> list[str]:
    """Per held-out list coded as a correspondence table (``--table-precision``): what the
    table threshold learnt without it codes, and the finished table's precision."""
    per = metrics.get("table_precision_by_held_out_source")
    if not per:
        return []
    targets = list(per["pooled"])
    lines = [
        "",
        "## A held-out list coded as a table (table threshold learnt without it)",
        "",
        "Cells: share auto-coded / precision of those codes / precision of the finished table "
        "(the rest decided by reviewers).",
        "",
        "| list | " + " | ".join(f"table target {t}" for t in targets) + " |",
        "|---" * (len(targets) + 1) + "|",
    ]
    for src, m in per.items():
        cells = [
            f"{m[t]['auto_coded']:.3f} / {m[t]['auto_precision']:.3f} / "
            f"{m[t]['table_precision']:.3f}"
            for t in targets
        ]
        lines.append(f"| {src} | " + " | ".join(cells) + " |")
    return lines


def _languages(metrics: dict[str, Any]) -> list[str]:
    """Out-of-fold accuracy per language (national lists and hand-written groups)."""
    per = (metrics.get("languages") or {}).get("per_language")
    return ["", *language_table(per)] if per else []


def language_table(per: dict[str, Any]) -> list[str]:
    """Markdown: per language, rows and section / division / exact accuracy (largest first)."""
    lines = [
        "## Per language (every held-out row, by the language of its text)",
        "",
        "| language | rows | section | division | exact |",
        "|---|---|---|---|---|",
    ]
    for lang, m in sorted(per.items(), key=lambda kv: -kv[1]["exact"]["n"]):
        cells = [
            f"{m[k]['accuracy']:.3f}" if k in m else "-" for k in ("section", "division", "exact")
        ]
        lines.append(f"| {lang} | {m['exact']['n']} | " + " | ".join(cells) + " |")
    return lines


def write_model_card(path: Path, manifest: dict[str, Any], metrics: dict[str, Any]) -> None:
    """A short model card: what it is, what it was trained on, how good, its limits."""
    s = manifest["metrics_summary"]
    lines = [
        f"# Model card: {manifest['version']}",
        "",
        f"- Taxonomy: {manifest['taxonomy_version']}",
        f"- Encoder: {manifest['encoder']['base']}, fine-tuned contrastively; served as ONNX "
        f"(fp32 by default; int8 {_int8_line(metrics)}).",
        "- Head: multinomial logistic regression over ICCS target nodes on [embedding | char "
        "n-gram TF-IDF]; node probabilities are sums over subtrees." + _neighbour_line(manifest),
        _text_line(manifest),
        f"- Training rows: {manifest['training_rows']} (data hash "
        f"`{manifest['training_data_hash'][:12]}`), {manifest['classes']} classes.",
        f"- Git commit: `{manifest['git_sha']}`",
        f"- Target precision for automatic coding: {manifest['target_precision']}; thresholds per "
        f"level: {manifest['thresholds']}",
        "",
        "## Headline figures (leave-one-source-out)",
        "",
        *(f"- {k}: {v}" for k, v in s.items()),
        "",
        "## Intended use and limits",
        "",
        "Suggests ICCS codes for offence descriptions; records below threshold go to human "
        "review. " + _languages_measured(metrics) + " " + _calibrated_on(manifest),
    ]
    Path(path).write_text("\n".join(lines) + "\n", "utf-8")


def _languages_measured(metrics: dict[str, Any]) -> str:
    """Which languages the held-out figures cover, from this model's own evaluation."""
    per = (metrics.get("languages") or {}).get("per_language") or {}
    rows = {lang: m["exact"]["n"] for lang, m in per.items() if m.get("exact")}
    if not rows:
        return "No held-out figures by language: accuracy in any language is not measured."
    measured = ", ".join(
        f"{lang} ({n} rows)" for lang, n in sorted(rows.items(), key=lambda kv: -kv[1])
    )
    return f"Accuracy is measured out of fold in {measured}; other languages are not measured."


def _calibrated_on(manifest: dict[str, Any]) -> str:
    """What the thresholds were calibrated on, from the training config's folds."""
    folds: dict[str, str] = manifest["config"].get("calibration_folds") or {}
    if not folds:
        return (
            "Confidence is calibrated on stratified folds of the training rows, with no "
            "jurisdiction held out: expect lower precision on a new jurisdiction's records."
        )
    return (
        f"Confidence is calibrated on national lists predicted by heads that never saw them "
        f"({', '.join(sorted(folds))}; {len(set(folds.values()))} folds); recalibrate "
        "(retrain) before relying on the thresholds for other jurisdictions."
    )


def _int8_line(metrics: dict[str, Any]) -> str:
    int8 = metrics.get("int8") or {}
    if not int8:
        return "not built"
    agreement = f"{100 * int8['top1_agreement']:.2f}% top-1 agreement with fp32"
    return f"shipped, {agreement}" if int8.get("shipped") else f"not shipped: best {agreement}"


def _text_line(manifest: dict[str, Any]) -> str:
    cfg = manifest["config"]
    if not cfg.get("expand", True):
        return "- Text: lower-cased and punctuation collapsed; abbreviations not expanded."
    shorthand = (
        "; other shorthand read against the fine-tuning sources' vocabulary (`vocabulary.json`)"
        if cfg.get("shorthand", False)
        else ""
    )
    glossary = (
        "; English glosses of other languages' offence terms appended (`glossary.csv`)"
        if cfg.get("glossary", False)
        else ""
    )
    return f"- Text: abbreviation table (`abbreviations.csv`) expanded{shorthand}{glossary}."


def _neighbour_line(manifest: dict[str, Any]) -> str:
    weight = manifest["config"].get("neighbour_weight") or 0
    if not weight:
        return ""
    return f" Plus {weight:g} x the cosine similarity of the nearest labelled record of each class."
