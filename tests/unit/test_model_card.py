"""The model card's limits come from the model's own config and evaluation, not fixed prose."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from training.config import TrainConfig
from training.report import write_model_card


def _manifest(calibration_folds: dict[str, str]) -> dict[str, Any]:
    return {
        "version": "v1",
        "taxonomy_version": "ICCS v1.0",
        "encoder": {"base": "all-MiniLM-L6-v2"},
        "metrics_summary": {"accuracy_exact": 0.5},
        "config": {"expand": True, "calibration_folds": calibration_folds},
        "training_rows": 100,
        "training_data_hash": "0123456789abcdef",
        "classes": 10,
        "git_sha": "abc",
        "target_precision": 0.95,
        "thresholds": {"2": 0.9},
    }


def _card(tmp_path: Path, manifest: dict[str, Any], metrics: dict[str, Any]) -> str:
    write_model_card(tmp_path / "MODEL_CARD.md", manifest, metrics)
    return (tmp_path / "MODEL_CARD.md").read_text("utf-8")


def test_a_quick_model_claims_no_jurisdiction_or_language(tmp_path: Path) -> None:
    card = _card(tmp_path, _manifest({}), {})
    assert "no jurisdiction held out" in card
    assert "accuracy in any language is not measured" in card
    assert "India" not in card and "Spanish" not in card


def test_the_card_names_the_held_out_lists_and_measured_languages(tmp_path: Path) -> None:
    folds = TrainConfig().calibration_folds
    metrics = {
        "languages": {"per_language": {"en": {"exact": {"n": 900}}, "ko": {"exact": {"n": 100}}}}
    }
    card = _card(tmp_path, _manifest(folds), metrics)
    assert f"({', '.join(sorted(folds))}; {len(folds)} folds)" in card
    assert "en (900 rows), ko (100 rows); other languages are not measured" in card
