"""``iccs train``: corpus -> fine-tuned encoder -> ONNX -> head -> calibration -> registry."""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from scipy.special import softmax

from service.config import Settings
from service.glossary import Glossary, default_glossary_paths, read_glossaries
from service.labels import LabelledRow
from service.models.embedder import OnnxEncoder
from service.models.multilingual import NAME as MULTILINGUAL_NAME
from service.models.multilingual import MultilingualEncoder, join
from service.models.policy import ClassColumns
from service.models.predictor import Scorer
from service.models.registry import Registry
from service.normalize import (
    Normalizer,
    default_abbreviations_path,
    glossary_term_form,
    read_abbreviations,
    read_jurisdictions,
)
from service.shorthand import ShorthandResolver, tokenizer_words
from service.taxonomy import load_taxonomy
from training.config import TrainConfig
from training.corpus.assemble import LABELLED_DIR, assemble, corpus_hash
from training.corpus.manual import category_texts, exclusions
from training.encoders import base_encoder_path
from training.entry import summary, write_entry
from training.export import check_parity, choose_int8, export_encoder
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
    rejection_by_held_out_source,
)
from training.review_sim import (
    simulate_held_out_lists,
    table_precision_by_held_out_source,
    table_thresholds,
)

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
    glossary = None
    if cfg.glossary:
        glossary_files = [*default_glossary_paths(), *map(Path, cfg.extra_glossaries)]
        glossary = Glossary(read_glossaries(glossary_files, glossary_term_form))
    norm = Normalizer(
        read_abbreviations(abbr_files),
        expand=cfg.expand,
        glossary=glossary,
        jurisdictions=read_jurisdictions(abbr_files),
    )
    texts = [norm(r.text) for r in rows]
    if cfg.shorthand and cfg.expand:
        # Vocabulary from the fine-tuning sources only: no evaluation fold's words are in it,
        # so leave-one-source-out still tests on text the model never read.
        tuning = [
            (t, r.language == "en")
            for t, r, ok in zip(texts, rows, tuning_mask(rows, cfg), strict=True)
            if ok
        ]
        shorthand = ShorthandResolver.from_texts(
            [t for t, english in tuning if english],
            tokenizer_words(base_model_path() / "tokenizer.json"),
            other_language_texts=[t for t, english in tuning if not english],
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


@dataclass
class Corpus:
    """The assembled corpus as training reads it: rows, normalised texts, labels, groups."""

    rows: list[LabelledRow]
    data_hash: str
    norm: Normalizer
    texts: list[str]
    labels: np.ndarray
    groups: np.ndarray


@dataclass
class Fitted:
    """The head fitted on every row, and out-of-fold logits from heads that never saw a fold."""

    scorer: Scorer
    all_folds: np.ndarray
    folds: np.ndarray  # the national lists' folds only ("" elsewhere): calibration rows
    oof: np.ndarray

    @property
    def classes(self) -> np.ndarray:
        """The head's classes, the columns of ``oof``."""
        return self.scorer.head.classes_


class Steps:
    """Named steps of a run, each timed (``metrics.json: timings_seconds``)."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.timings: dict[str, float] = {}

    @contextmanager
    def __call__(self, name: str) -> Iterator[None]:
        """Time the block as step ``name``."""
        t0 = time.perf_counter()
        yield
        self.timings[name] = round(time.perf_counter() - t0, 2)
        log.info("step %s: %.1fs", name, self.timings[name])

    def total(self) -> dict[str, float]:
        """Every step's time and the run's total."""
        return {**self.timings, "total": round(time.perf_counter() - self.started, 2)}


def train_and_register(
    settings: Settings,
    config_path: Path | None = None,
    quick: bool = False,
    promote: bool = False,
    labelled_dir: Path = LABELLED_DIR,
    config: TrainConfig | None = None,
) -> str:
    """Train, check and register a new model version; return its id."""
    step = Steps()
    cfg = config or load_config(config_path, quick)
    with step("corpus"):
        corpus = assemble_corpus(settings, cfg, labelled_dir)
    version = f"{datetime.now(UTC):%Y%m%d-%H%M%S}-{cfg.name}-{corpus.data_hash[:6]}"
    registry = Registry(settings.registry_dir)
    registry.root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{version}-", dir=registry.root))
    try:
        with step("finetune"):
            model = tune_encoder(settings, cfg, corpus, work / "st_model")
        with step("export"):
            enc_dir, parity = export_checked(model, corpus.texts, work / "encoder", cfg)
            del model
            shutil.rmtree(work / "st_model", ignore_errors=True)
        with step("embed"):
            multilingual = _multilingual(cfg)
            emb = embed(enc_dir, corpus.texts, multilingual, cfg)
        with step("head_and_oof"):
            fitted = fit_with_out_of_fold(corpus, emb, cfg)
        with step("calibration"):
            calibration = calibrate_head(fitted, corpus, cfg)
        with step("checks"):
            metrics = leave_one_source_out_metrics(corpus, fitted, calibration, cfg)
            # int8 ships only if it agrees with fp32 on the evaluation rows: the fastest
            # recipe that does; if none does, the entry is registered without an int8 encoder
            # (fp32, which the service serves by default, passed its parity check above).
            if cfg.int8:
                held = np.flatnonzero(fitted.folds != "")
                metrics["int8"] = choose_int8(
                    enc_dir, fitted.scorer, corpus.texts, emb, held, cfg, multilingual
                )
            metrics["onnx_parity_min_cosine"] = parity
        if cfg.calibration_folds:
            with step("review_simulation"):
                metrics["review_simulation"] = review_simulation(corpus, fitted, calibration, emb)
        metrics["timings_seconds"] = step.total()
        save_out_of_fold(work / OUT_OF_FOLD, corpus, fitted)
        write_entry(
            work,
            version,
            cfg,
            corpus.norm,
            fitted.scorer,
            calibration,
            metrics,
            data_hash=corpus.data_hash,
            training_rows=len(corpus.rows),
        )
        register(registry, work, version)
    except BaseException:
        shutil.rmtree(work, ignore_errors=True)
        raise
    log.info("registered %s in %.0fs", version, time.perf_counter() - step.started)
    if promote:
        registry.promote(version)
    return version


OUT_OF_FOLD = "out_of_fold.npz"


def save_out_of_fold(path: Path, corpus: Corpus, fitted: Fitted) -> None:
    """The evaluation rows' out-of-fold logits, keyed by a hash of each row's source and key
    (no text), so that two entries built on one corpus can be compared row by row later
    (``bench/cascade.py``)."""
    held = np.flatnonzero(fitted.all_folds != "")
    keys = [
        hashlib.sha256(f"{r.source}\x1f{r.source_key}".encode()).hexdigest()[:16]
        for r in (corpus.rows[i] for i in held)
    ]
    np.savez_compressed(
        path,
        row_keys=np.array(keys),
        folds=fitted.all_folds[held].astype(str),
        national=fitted.folds[held] != "",  # the rows the headline figures are on
        groups=corpus.groups[held].astype(str),
        languages=np.array([corpus.rows[i].language for i in held]),
        labels=corpus.labels[held].astype(str),
        classes=fitted.classes.astype(str),
        logits=fitted.oof[held].astype(np.float32),
    )


def assemble_corpus(settings: Settings, cfg: TrainConfig, labelled_dir: Path) -> Corpus:
    """Step 1: the validated corpus, normalised as the service will normalise."""
    rows = training_rows(settings, cfg, labelled_dir)
    norm, texts = normalise_corpus(rows, cfg)
    corpus = Corpus(
        rows=rows,
        data_hash=corpus_hash(rows),
        norm=norm,
        texts=texts,
        labels=np.array([r.iccs_code for r in rows], dtype=object),
        groups=np.array([r.split_group for r in rows], dtype=object),
    )
    log.info(
        "corpus: %d rows, %d codes, hash %s",
        len(rows),
        len(set(corpus.labels)),
        corpus.data_hash[:12],
    )
    return corpus


def tune_encoder(settings: Settings, cfg: TrainConfig, corpus: Corpus, out: Path) -> Any:
    """Step 2: the sentence encoder, fine-tuned on sources no evaluation fold belongs to (so
    leave-one-source-out never tests on text the encoder was tuned on), or the base one."""
    base = base_encoder_path(cfg.base_encoder)
    if not cfg.finetune:
        return load_base_model(cfg.max_seq_length, path=base)
    triplets = finetune_triplets(settings, cfg, corpus.norm, corpus.rows, corpus.texts)
    return finetune(
        triplets,
        out,
        epochs=cfg.epochs,
        batch_size=cfg.batch_size,
        learning_rate=cfg.learning_rate,
        max_seq_length=cfg.max_seq_length,
        max_steps=cfg.max_steps,
        seed=cfg.seed,
        base_model=base,
    )


def export_checked(model: Any, texts: list[str], out: Path, cfg: TrainConfig) -> tuple[Path, float]:
    """Step 3: the ONNX export and its parity with PyTorch, checked before anything is built
    on it; returns the encoder folder and the lowest cosine."""
    if cfg.encode_max_length is not None:
        # Read longer texts than fine-tuning did: parity is checked at the length served.
        model.max_seq_length = cfg.encode_max_length
    enc_dir = export_encoder(model, out)
    parity_texts = texts[:: max(1, len(texts) // 400)][:400]
    return enc_dir, check_parity(model, enc_dir, parity_texts, cfg.parity_cosine)


def embed(
    enc_dir: Path,
    texts: list[str],
    multilingual: MultilingualEncoder | None,
    cfg: TrainConfig,
) -> np.ndarray:
    """Step 4: every text through the exported fp32 encoder (and the multilingual channel),
    the embeddings the service computes."""
    emb = OnnxEncoder(enc_dir, int8=False).encode(texts)
    if multilingual is not None:
        emb = join(emb, multilingual.encode(texts), texts, cfg.channel_weights())
    return emb


def fit_with_out_of_fold(corpus: Corpus, emb: np.ndarray, cfg: TrainConfig) -> Fitted:
    """Step 5: the head on every row, and out-of-fold logits (calibration data and the
    leave-one-source-out metrics)."""
    scorer = fit_head(corpus.texts, emb, corpus.labels, cfg)
    all_folds = fold_assignment(corpus.groups, corpus.labels, cfg)
    oof = out_of_fold_logits(corpus.texts, emb, corpus.labels, all_folds, scorer.head.classes_, cfg)
    return Fitted(scorer, all_folds, calibration_rows(all_folds), oof)


def calibrate_head(fitted: Fitted, corpus: Corpus, cfg: TrainConfig) -> dict[str, Any]:
    """Step 6: temperature, curves and thresholds from the national lists' folds; the head
    takes the temperature."""
    calibration = calibrate(fitted.oof, fitted.classes, corpus.labels, fitted.folds, cfg)
    fitted.scorer.head.temperature = calibration["temperature"]
    return calibration


def leave_one_source_out_metrics(
    corpus: Corpus, fitted: Fitted, calibration: dict[str, Any], cfg: TrainConfig
) -> dict[str, Any]:
    """Step 7: the headline figures on held-out sources, and the target map.

    Thresholds must hold on a source the model never saw: the target map is fitted on every
    fold for serving (``calibration["target_map"]``) and checked nested (map and thresholds
    learnt without the fold).
    """
    labels, groups, folds = corpus.labels, corpus.groups, fitted.folds
    held = np.flatnonzero(folds != "")
    proba = softmax(fitted.oof[held] / calibration["temperature"], axis=1)
    pred = top_codes(proba, fitted.classes)
    metrics: dict[str, Any] = {
        "evaluation": "leave-one-source-out" if cfg.calibration_folds else "3-fold",
        "levels": by_group_metrics(pred, labels[held], groups[held]),
        "languages": _language_metrics(
            fitted.oof, fitted.classes, labels, fitted.all_folds, folds, corpus.rows, calibration
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
    replay = PolicyReplay(proba, fitted.classes, labels[held])
    calibration["target_map"] = fit_target_map(replay, folds[held])
    calibration["table_thresholds"] = table_thresholds(
        proba, fitted.classes, labels[held], folds[held]
    )
    metrics["precision_by_held_out_source"] = per_source_precision(replay, folds[held])
    metrics["rejection_by_held_out_source"] = rejection_by_held_out_source(
        ClassColumns(fitted.classes).non_offence_probability(proba), labels[held], folds[held]
    )
    metrics["table_precision_by_held_out_source"] = table_precision_by_held_out_source(
        proba, fitted.classes, labels[held], folds[held]
    )
    for p in (0.80, 0.85, 0.90, 0.95, 0.98):
        assigned = cross_fitted_decisions(proba, fitted.classes, labels[held], folds[held], p)
        metrics["policy"][f"{p:.2f}"] = policy_outcome(assigned, labels[held])
    log.info("leave-one-source-out summary: %s", json.dumps(summary(metrics)))
    return metrics


def review_simulation(
    corpus: Corpus, fitted: Fitted, calibration: dict[str, Any], emb: np.ndarray
) -> dict[str, Any]:
    """Step 8: how many human decisions code each held-out list whole at 0.97 precision, of
    every machine-made code and of the finished table (``table_policy``; training/review_sim.py;
    `iccs evaluate --simulate-review` draws the curves)."""
    held = np.flatnonzero(fitted.folds != "")
    proba = softmax(fitted.oof[held] / calibration["temperature"], axis=1)
    args = (proba, fitted.classes, corpus.labels[held], fitted.folds[held], emb[held])
    result = simulate_held_out_lists(*args)
    result["table_policy"] = simulate_held_out_lists(*args, policy="table")
    log.info(
        "review simulation, decisions to code every held-out list (every code / the table at "
        "0.97): %s",
        {
            o: (r["decision_share_weighted"], table["decision_share_weighted"])
            for (o, r), table in zip(
                result["pooled"].items(), result["table_policy"]["pooled"].values(), strict=True
            )
        },
    )
    return result


def register(registry: Registry, work: Path, version: str) -> None:
    """Step 9: move the finished entry into place in one step (entries are immutable)."""
    work.rename(registry.root / version)


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
