"""`iccs evaluate`: a labelled file, and the side-by-side suite (on the tiny model)."""

import csv
import json

import pytest
from click.testing import CliRunner

from service.cli import main
from service.config import Settings


def test_evaluate_a_labelled_file(tiny_registry, tmp_path):
    path = tmp_path / "labelled.csv"
    with path.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["text", "iccs_code"])
        w.writerows(
            [
                ["burglary of a dwelling at night", "05012"],
                ["N/A", "not_an_offence"],
                ["possession of heroin", "060111"],
                ["theft of a bicycle", "05022"],
            ]
        )
    result = CliRunner().invoke(
        main,
        ["evaluate", "--input", str(path), "--output", str(tmp_path / "out")],
        env={"ICCS_REGISTRY_DIR": str(tiny_registry)},
    )
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert metrics["rows"] == 4
    assert set(metrics["levels"]) == {"section", "division", "group", "exact"}
    assert 0.0 <= metrics["policy"]["coverage"] <= 1.0


@pytest.mark.slow
def test_full_evaluation_compares_against_both_baselines(tiny_registry, shared_dir, tmp_path):
    from training.evaluate import full_evaluation

    settings = Settings(registry_dir=tiny_registry, data_dir=shared_dir)
    out = tmp_path / "eval"
    results = full_evaluation(settings, None, out)
    for system in ("model", "baseline_tfidf_char_lr", "baseline_nearest_title_base_encoder"):
        pooled = results[system]["pooled_weighted_by_rows"]
        assert {"section", "division", "exact"} <= set(pooled)
    assert (out / "coverage_precision.png").stat().st_size > 1000
    assert "baseline A" in (out / "report.md").read_text()
    assert len(results["coverage_vs_precision"]) >= 5
