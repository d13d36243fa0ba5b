"""``iccs evaluate``: leave-one-source-out against two baselines, in one run.

Compared on the same folds (each national list scored by models that never saw it):
- the registered model's recipe (fine-tuned encoder + hierarchical head), retrained per fold;
- baseline A: TF-IDF character n-grams + logistic regression, one model per level;
- baseline B: nearest ICCS title/inclusion by the un-tuned base encoder's cosine.
Ablations on the same folds measure the abbreviation table and the n-gram features.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from service.config import Settings
from service.errors import FileFormatError
from service.labels import NOT_AN_OFFENCE, LabelledRow
from service.models.embedder import OnnxEncoder
from service.models.multilingual import JoinedEncoder, MultilingualEncoder
from service.models.policy import REJECTED
from service.models.predictor import entry_normalizer, load_predictor
from service.models.registry import Registry
from service.normalize import Normalizer
from service.taxonomy import ancestor_at, level_of, load_taxonomy
from training.config import TrainConfig
from training.corpus.manual import read_manual
from training.corpus.sources import grouped_folds
from training.finetune import load_base_model
from training.head import (
    NA,
    calibrate,
    calibration_rows,
    fit_head,
    fold_assignment,
    out_of_fold_logits,
    top_codes,
)
from training.metrics import (
    LEVELS,
    by_group_metrics,
    level_metrics,
    policy_outcome,
    section_confusion,
    worst_categories,
)
from training.pipeline import training_rows
from training.policy_sim import cross_fitted_decisions
from training.report import language_table
from training.review_sim import (
    ScoreParts,
    gold_index,
    plot_review_curves,
    review_simulation_table,
    simulate_held_out_lists,
    unit_rows,
)

log = logging.getLogger(__name__)
CURVE_PRECISIONS = [0.6, 0.7, 0.75, 0.8, 0.85, 0.9, 0.925, 0.95, 0.975, 0.99]


def _truncate(code: str, level: int) -> str:
    if code == NOT_AN_OFFENCE:
        return NA
    return code if level == 4 else ancestor_at(code, level)


def baseline_tfidf(
    texts: list[str], labels: np.ndarray, folds: np.ndarray, groups: np.ndarray
) -> dict[str, Any]:
    """Baseline A: char n-gram TF-IDF + logistic regression per level, leave-one-source-out."""
    held = folds != ""
    per_level_pred: dict[int, np.ndarray] = {}
    for level in LEVELS:
        y = np.array([_truncate(c, level) for c in labels], dtype=object)
        pred = np.empty(len(texts), dtype=object)
        for fold in sorted(set(folds) - {""}):
            test, train = folds == fold, folds != fold
            vec = TfidfVectorizer(
                analyzer="char_wb",
                ngram_range=(2, 5),
                sublinear_tf=True,
                max_features=20000,
                dtype=np.float32,
            )
            xtr = vec.fit_transform([t for t, m in zip(texts, train, strict=True) if m])
            clf = LogisticRegression(C=10.0, max_iter=100, tol=1e-3).fit(xtr, y[train])
            pred[test] = clf.predict(
                vec.transform([t for t, m in zip(texts, test, strict=True) if m])
            )
        per_level_pred[level] = pred[held]
    return _per_level_result(per_level_pred, labels[held], groups[held])


def _per_level_result(
    per_level_pred: dict[int, np.ndarray], truth: np.ndarray, groups: np.ndarray
) -> dict[str, Any]:
    out: dict[str, Any] = {"pooled_weighted_by_rows": {}, "unweighted_mean_over_sources": {}}
    for level, name in LEVELS.items():
        pooled = level_metrics(per_level_pred[level], truth).get(name)
        if pooled:
            out["pooled_weighted_by_rows"][name] = pooled
        per = [
            level_metrics(per_level_pred[level][groups == g], truth[groups == g]).get(name)
            for g in sorted(set(groups))
        ]
        found = [p for p in per if p is not None]
        if found:
            out["unweighted_mean_over_sources"][name] = {
                k: float(np.mean([p[k] for p in found]))
                for k in ("accuracy", "macro_f1", "weighted_f1")
            }
    return out


def baseline_nearest_title(
    settings: Settings,
    texts: list[str],
    labels: np.ndarray,
    folds: np.ndarray,
    groups: np.ndarray,
    norm: Normalizer,
) -> dict[str, Any]:
    """Baseline B: nearest ICCS title or inclusion phrase with the un-tuned base encoder."""
    refs, ref_codes = [], []
    for row in read_manual(settings.data_dir):
        for phrase in [row["label"], *row["inclusions"].split(";")]:
            phrase = phrase.strip(" .")
            if len(phrase) > 2 and not phrase.lower().startswith("apply all"):
                refs.append(norm(phrase))
                ref_codes.append(row["code"])
    model = load_base_model(64)
    held = folds != ""
    q = model.encode(
        [t for t, m in zip(texts, held, strict=True) if m],
        batch_size=64,
        normalize_embeddings=True,
        show_progress_bar=False,
    )
    r = model.encode(refs, batch_size=64, normalize_embeddings=True, show_progress_bar=False)
    pred = np.array(ref_codes, dtype=object)[np.argmax(q @ r.T, axis=1)]
    per_level = {
        level: np.array(
            [_truncate(p, level) if level_of(p) >= level or level == 4 else p for p in pred],
            dtype=object,
        )
        for level in LEVELS
    }
    return _per_level_result(per_level, labels[held], groups[held])


def recipe_oof(
    texts: list[str], emb: np.ndarray, labels: np.ndarray, folds: np.ndarray, cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leave-one-source-out probabilities of the model recipe (temperature fitted on them)."""
    classes = np.array(sorted(set(labels)), dtype=object)
    oof = out_of_fold_logits(texts, emb, labels, folds, classes, cfg)
    national = calibration_rows(folds)
    # Only hand-written folds held out (`--hw-only`): nothing to calibrate on, and the
    # temperature does not change a row's top code.
    temperature = (
        calibrate(oof, classes, labels, national, cfg)["temperature"]
        if (national != "").any()
        else 1.0
    )
    held = np.flatnonzero(folds != "")
    return softmax(oof[held] / temperature, axis=1), classes, held


def coverage_points(
    proba: np.ndarray, classes: np.ndarray, truth: np.ndarray, groups: np.ndarray
) -> list[dict[str, float]]:
    """Share auto-coded vs precision of the auto-coded, over a range of target precisions."""
    points = []
    for p in CURVE_PRECISIONS:
        res = policy_outcome(cross_fitted_decisions(proba, classes, truth, groups, p), truth)
        points.append({"target": p, **res})
    return points


def plot_coverage(points: list[dict[str, float]], path: Path, title: str) -> None:
    """PNG of precision of auto-coded records against the share auto-coded."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(5.5, 4))
    ax.plot([p["coverage"] for p in points], [p["precision"] for p in points], marker="o")
    for p in points:
        ax.annotate(
            f"{p['target']:.2f}",
            (p["coverage"], p["precision"]),
            fontsize=7,
            textcoords="offset points",
            xytext=(4, -8),
        )
    ax.set_xlabel("share of records auto-coded")
    ax.set_ylabel("precision of auto-coded records")
    ax.set_title(f"Coverage vs precision ({title})")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


# Ablation key in metrics.json -> its row in the report, in the order both show them.
ABLATIONS = {
    "ablation_no_abbreviation_expansion": "no abbreviation expansion (table or shorthand)",
    "ablation_no_shorthand_reading": "table only, no shorthand reading",
    "ablation_no_char_ngrams": "no char n-grams",
    "ablation_no_nearest_examples": "no nearest examples",
}


def _ablations(
    cfg: TrainConfig, norm: Normalizer, plain: Normalizer
) -> dict[str, tuple[Normalizer | None, TrainConfig]]:
    """Per ablation: the normaliser its texts go through (None: the recipe's texts) and the
    training config. Without a shorthand reader there is nothing to take away from it."""
    variants: dict[str, tuple[Normalizer | None, TrainConfig]] = {
        "ablation_no_abbreviation_expansion": (plain, cfg),
        "ablation_no_shorthand_reading": (norm.with_shorthand(None), cfg),
        "ablation_no_char_ngrams": (None, replace(cfg, char_ngrams=False)),
        "ablation_no_nearest_examples": (None, replace(cfg, neighbour_weight=0.0)),
    }
    if norm.shorthand is None:
        del variants["ablation_no_shorthand_reading"]
    return variants


def recipe_oof_parts(
    texts: list[str], emb: np.ndarray, labels: np.ndarray, folds: np.ndarray, cfg: TrainConfig
) -> tuple[np.ndarray, np.ndarray, np.ndarray, ScoreParts]:
    """:func:`recipe_oof` (the same per-fold heads, logits and temperature), and each held-out
    row's scorer pieces: head logits, training-neighbour similarities, index-space embedding
    (row for row with the probabilities)."""
    classes = np.array(sorted(set(labels)), dtype=object)
    col = {c: i for i, c in enumerate(classes)}
    held = np.flatnonzero(folds != "")
    at = np.full(len(texts), -1, dtype=np.intp)
    at[held] = np.arange(len(held))
    oof = np.full((len(texts), len(classes)), -np.inf)
    head = np.full((len(held), len(classes)), -np.inf)
    near = np.zeros((len(held), len(classes)))
    space: np.ndarray | None = None
    for fold in sorted(set(folds) - {""}):
        test, train = np.flatnonzero(folds == fold), np.flatnonzero(folds != fold)
        scorer = fit_head([texts[i] for i in train], emb[train], labels[train], cfg)
        test_texts = [texts[i] for i in test]
        # Scorer.logits, taken apart: the head, then the nearest-example bonus.
        logits = scorer.head.logits(scorer.features.transform(test_texts, emb[test]))
        cols = np.array([col[c] for c in scorer.head.classes_], dtype=np.intp)
        head[np.ix_(at[test], cols)] = logits
        if scorer.neighbours is not None and scorer.neighbour_weight:
            bonus = scorer.neighbours.scores(emb[test])
            logits = logits + scorer.neighbour_weight * bonus
            near[np.ix_(at[test], cols)] = bonus
            projected = scorer.neighbours.project(emb[test])
        else:
            projected = unit_rows(emb[test]).astype(np.float32)
        if space is None:
            space = np.zeros((len(held), projected.shape[1]), dtype=np.float32)
        space[at[test], : projected.shape[1]] = projected
        oof[np.ix_(test, cols)] = logits
        log.info("out-of-fold %s: %d rows, trained on %d", fold, len(test), len(train))
    cal = calibrate(oof, classes, labels, calibration_rows(folds), cfg)
    temperature = float(cal["temperature"])
    parts = ScoreParts(
        head,
        near,
        np.zeros((len(held), 0), np.float32) if space is None else space,
        float(cfg.neighbour_weight),
        temperature,
    )
    return softmax(oof[held] / temperature, axis=1), classes, held, parts


@dataclass
class HeldOut:
    """A registered model's recipe scored out of fold on the corpus it was trained on."""

    version: str
    entry: Path
    cfg: TrainConfig
    rows: list[LabelledRow]
    texts: list[str]
    emb: np.ndarray
    labels: np.ndarray
    groups: np.ndarray
    all_folds: np.ndarray  # every evaluation fold (national lists and hand-written groups)
    folds: np.ndarray  # the national lists' folds only ("" elsewhere)
    norm: Normalizer
    encoder: OnnxEncoder | JoinedEncoder
    proba_all: np.ndarray  # one row per index of idx_all
    classes: np.ndarray
    idx_all: np.ndarray
    parts_all: ScoreParts  # the fold scorers' pieces, one row per index of idx_all

    def national(self) -> tuple[np.ndarray, np.ndarray]:
        """(probabilities, corpus row indices) of the national lists' held-out rows."""
        keep = self.folds[self.idx_all] != ""
        return self.proba_all[keep], self.idx_all[keep]

    def national_parts(self) -> ScoreParts:
        """The scorer's pieces of the national lists' held-out rows (as :meth:`national`)."""
        return self.parts_all.subset(np.flatnonzero(self.folds[self.idx_all] != ""))

    def gold_columns(self, idx: np.ndarray) -> np.ndarray:
        """Column of each row's gold label among ``classes`` (-1: not a model class)."""
        return gold_index(self.labels[idx], self.classes)


def held_out_predictions(
    settings: Settings, version: str | None, grouped: bool = False, national_only: bool = False
) -> HeldOut:
    """Embed the corpus with the entry's encoder and score every fold out of fold.

    ``national_only``: only the national lists' folds are scored (the hand-written folds'
    rows then train every head, as they do the national folds' heads anyway).
    """
    registry = Registry(settings.registry_dir)
    version = registry.resolve(version)
    entry = registry.path(version)
    cfg = TrainConfig.load(entry / "config.yaml")
    if grouped and cfg.calibration_folds:
        cfg = replace(cfg, calibration_folds=grouped_folds())
    rows = training_rows(settings, cfg)
    groups = np.array([r.split_group for r in rows], dtype=object)
    labels = np.array([r.iccs_code for r in rows], dtype=object)
    all_folds = fold_assignment(groups, labels, cfg)
    if national_only:
        all_folds = calibration_rows(all_folds)
    norm = entry_normalizer(entry, expand=True)
    texts = [norm(r.text) for r in rows]
    encoder: OnnxEncoder | JoinedEncoder = OnnxEncoder(entry / "encoder", int8=False)
    if cfg.multilingual_encoder:
        encoder = JoinedEncoder(encoder, MultilingualEncoder(), cfg.channel_weights())
    emb = encoder.encode(texts)
    proba_all, classes, idx_all, parts_all = recipe_oof_parts(texts, emb, labels, all_folds, cfg)
    return HeldOut(
        version=version,
        entry=entry,
        cfg=cfg,
        rows=rows,
        texts=texts,
        emb=emb,
        labels=labels,
        groups=groups,
        all_folds=all_folds,
        folds=calibration_rows(all_folds),
        norm=norm,
        encoder=encoder,
        proba_all=proba_all,
        classes=classes,
        idx_all=idx_all,
        parts_all=parts_all,
    )


def full_evaluation(
    settings: Settings, version: str | None, output: Path | None, grouped: bool = False
) -> dict[str, Any]:
    """The leave-one-source-out suite with baselines and ablations; writes files."""
    h = held_out_predictions(settings, version, grouped)
    version, entry, cfg, rows, texts, emb = h.version, h.entry, h.cfg, h.rows, h.texts, h.emb
    labels, groups, all_folds, folds, norm = h.labels, h.groups, h.all_folds, h.folds, h.norm
    encoder, proba_all, classes, idx_all = h.encoder, h.proba_all, h.classes, h.idx_all
    plain = Normalizer({}, expand=False)
    proba, idx = h.national()
    pred = top_codes(proba, classes)
    truth, grp, fld = labels[idx], groups[idx], folds[idx]
    points = coverage_points(proba, classes, truth, fld)
    languages = np.array([rows[i].language for i in idx_all], dtype=object)
    results: dict[str, Any] = {
        "model_version": version,
        "evaluation": "leave-jurisdictions-out (3 folds)" if grouped else "leave-one-source-out",
        "folds": {f: sorted(set(groups[all_folds == f])) for f in sorted(set(all_folds) - {""})},
        "sources": sorted(set(grp)),
        "rows_evaluated": int(len(idx)),
        "model": by_group_metrics(pred, truth, grp),
        # Every held-out row (national lists and hand-written groups) by its text's language.
        "per_language": by_group_metrics(top_codes(proba_all, classes), labels[idx_all], languages)[
            "per_source"
        ],
        "baseline_tfidf_char_lr": baseline_tfidf(texts, labels, folds, groups),
        "baseline_nearest_title_base_encoder": baseline_nearest_title(
            settings, texts, labels, folds, groups, norm
        ),
        "coverage_vs_precision": points,
        "section_confusion": section_confusion(pred, truth),
        "worst_categories": worst_categories(pred, truth),
    }
    # Ablations on the same folds: each retrains the recipe with one part taken away.
    for key, (normalizer, variant) in _ablations(cfg, norm, plain).items():
        if normalizer is None:
            texts_v, emb_v = texts, emb
        else:
            texts_v = [normalizer(r.text) for r in rows]
            emb_v = encoder.encode(texts_v)
        proba_v, classes_v, _ = recipe_oof(texts_v, emb_v, labels, folds, variant)
        results[key] = by_group_metrics(top_codes(proba_v, classes_v), truth, grp)[
            "pooled_weighted_by_rows"
        ]

    out_dir = output or entry / "evaluation"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "metrics.json").write_text(json.dumps(results, indent=2), "utf-8")
    plot_coverage(points, out_dir / "coverage_precision.png", results["evaluation"])
    write_evaluation_report(out_dir / "report.md", results)
    return results


def _row(name: str, m: dict[str, Any]) -> str:
    cells = []
    for lvl in LEVELS.values():
        v = m.get(lvl)
        cells.append(f"{v['accuracy']:.3f} / {v['macro_f1']:.3f}" if v else "-")
    return f"| {name} | " + " | ".join(cells) + " |"


def _language_table(r: dict[str, Any]) -> list[str]:
    per = r.get("per_language") or {}
    return [*language_table(per), ""] if per else []


def write_evaluation_report(path: Path, r: dict[str, Any]) -> None:
    """Markdown: the side-by-side table, ablations, coverage curve, confusion, worst codes."""
    head = "| system | " + " | ".join(LEVELS.values()) + " |"
    sep = "|---" * (len(LEVELS) + 1) + "|"
    lines = [
        f"# Evaluation of {r['model_version']}",
        "",
        f"{r['evaluation']} over {', '.join(r['sources'])} ({r['rows_evaluated']} rows). "
        "Cells: accuracy / macro-F1.",
        "",
    ]
    for title, key in (
        ("Pooled (weighted by rows)", "pooled_weighted_by_rows"),
        ("Unweighted mean over sources", "unweighted_mean_over_sources"),
    ):
        lines += [
            f"## {title}",
            "",
            head,
            sep,
            _row("fine-tuned model", r["model"][key]),
            _row("baseline A: TF-IDF char + LR per level", r["baseline_tfidf_char_lr"][key]),
            _row(
                "baseline B: nearest title, base encoder",
                r["baseline_nearest_title_base_encoder"][key],
            ),
            "",
        ]
    lines += [
        "## Ablations (pooled)",
        "",
        head,
        sep,
        _row("full recipe", r["model"]["pooled_weighted_by_rows"]),
        *[_row(label, r[key]) for key, label in ABLATIONS.items() if key in r],
        "",
        *_language_table(r),
        "## Coverage vs precision",
        "",
        "![](coverage_precision.png)",
        "",
        "| target | share auto-coded | precision |",
        "|---|---|---|",
    ]
    lines += [
        f"| {p['target']} | {p['coverage']:.3f} | {p['precision']:.3f} |"
        for p in r["coverage_vs_precision"]
    ]
    lines += ["", "## Worst categories (exact code, F1)", ""]
    lines += [
        f"- {w['code']} {load_taxonomy().title(w['code']) if w['code'] in load_taxonomy() else ''}"
        f": F1 {w['f1']} (support {w['support']})"
        for w in r["worst_categories"]
    ]
    Path(path).write_text("\n".join(lines) + "\n", "utf-8")


def evaluate_file(settings: Settings, version: str | None, input_path: Path) -> dict[str, Any]:
    """Metrics of a registered model on a labelled CSV (columns text, iccs_code at least)."""
    import pandas as pd

    df = pd.read_csv(input_path, dtype=str, keep_default_na=False)
    missing = [c for c in ("text", "iccs_code") if c not in df.columns]
    if missing:
        raise FileFormatError(
            f"{input_path.name} has no {' or '.join(repr(c) for c in missing)} column; "
            f"columns found: {', '.join(map(str, df.columns))}.",
            missing=missing,
        )
    predictor = load_predictor(settings.registry_dir, version)
    results = predictor.classify(df["text"].tolist())
    pred = np.array(
        [
            NA if r.status == REJECTED else (r.suggestions[0].code if r.suggestions else NA)
            for r in results
        ],
        dtype=object,
    )
    truth = df["iccs_code"].to_numpy(dtype=object)
    assigned = [r.assigned.code if r.assigned else None for r in results]
    return {
        "model_version": predictor.version,
        "rows": len(df),
        "levels": level_metrics(pred, truth),
        "policy": policy_outcome(assigned, truth),
    }


# Mechanisms the review simulation also reports, pooled (training/review_sim.py fit_rules):
# carry-over alone (decisions do not join the nearest-example component), learning alone,
# and learning at a threshold learnt on fully decided lists.
REVIEW_VARIANTS = (("off", True), ("model", False), ("context", True))


def review_simulation_evaluation(
    settings: Settings, version: str | None, output: Path | None, target: float = 0.97
) -> dict[str, Any]:
    """``iccs evaluate --simulate-review``: each national list coded whole by the model and an
    oracle reviewer (training/review_sim.py); writes JSON, a plot and a short report."""
    h = held_out_predictions(settings, version, national_only=True)
    proba, idx = h.national()
    args = (proba, h.classes, h.labels[idx], h.folds[idx], h.emb[idx], target, h.national_parts())
    result = simulate_held_out_lists(*args) | {"model_version": h.version}
    # The target is the finished table's precision: the same lists under that policy.
    result["table_policy"] = simulate_held_out_lists(*args, policy="table")
    # The same lists under the other mechanisms, pooled, for comparison.
    result["variants"] = {}
    for learn, carry in REVIEW_VARIANTS:
        other = simulate_held_out_lists(*args, learn=learn, carry=carry)
        result["variants"][f"learn={learn}, carry={'on' if carry else 'off'}"] = _pooled_figures(
            other
        )
    out_dir = output or h.entry / "evaluation"
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "review_simulation.json").write_text(json.dumps(result, indent=2), "utf-8")
    plot_review_curves(result, out_dir / "review_simulation.png")
    (out_dir / "review_simulation.md").write_text(review_simulation_table(result), "utf-8")
    return result


def _pooled_figures(result: dict[str, Any]) -> dict[str, Any]:
    """A review simulation's pooled figures per queue order, without the curves."""
    return {
        order: {k: v for k, v in r.items() if k != "curve"} for order, r in result["pooled"].items()
    }


def evaluate_command(
    settings: Settings,
    version: str | None,
    input_path: Path | None,
    output: Path | None,
    grouped: bool = False,
    simulate_review: bool = False,
) -> dict[str, Any]:
    """Entry point of ``iccs evaluate``."""
    if simulate_review:
        sim = review_simulation_evaluation(settings, version, output)
        return (
            {"model_version": sim["model_version"]}
            | _pooled_figures(sim)
            | {"table_policy": _pooled_figures(sim["table_policy"])}
            | {"ceiling": sim["ceiling"]}
        )
    if input_path is not None:
        result = evaluate_file(settings, version, input_path)
        if output:
            output.mkdir(parents=True, exist_ok=True)
            (output / "metrics.json").write_text(json.dumps(result, indent=2), "utf-8")
        return result
    full = full_evaluation(settings, version, output, grouped)
    return {k: full[k] for k in ("model_version", "rows_evaluated")} | {
        "model": full["model"]["pooled_weighted_by_rows"],
        "baseline_tfidf_char_lr": full["baseline_tfidf_char_lr"]["pooled_weighted_by_rows"],
        "baseline_nearest_title": full["baseline_nearest_title_base_encoder"][
            "pooled_weighted_by_rows"
        ],
    }
