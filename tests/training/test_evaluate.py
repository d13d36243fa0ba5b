"""`iccs evaluate`: a labelled file, and the side-by-side suite (on the tiny model)."""

import csv
import json
from dataclasses import replace

import pytest
from click.testing import CliRunner

from service.cli import main
from service.config import Settings
from service.normalize import Normalizer


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


def test_evaluate_names_the_missing_column_of_a_labelled_file(tmp_path):
    path = tmp_path / "labelled.csv"
    path.write_text("description,iccs_code\ntheft of a bicycle,05022\n", "utf-8")
    result = CliRunner().invoke(
        main,
        ["evaluate", "--input", str(path)],
        env={"ICCS_REGISTRY_DIR": str(tmp_path / "no-registry")},
    )
    assert result.exit_code == 1
    assert (
        "file_format_error: labelled.csv has no 'text' column; "
        "columns found: description, iccs_code." in result.output
    )


@pytest.mark.slow
def test_full_evaluation_compares_against_both_baselines(tiny_registry, shared_dir, tmp_path):
    # The baselines read the ICCS manual's texts: a clone without ../shared beside it skips.
    if not (shared_dir / "iccs" / "iccs_v1.csv").exists():
        pytest.skip("../shared not present")
    from training.evaluate import ABLATIONS, full_evaluation

    settings = Settings(registry_dir=tiny_registry, data_dir=shared_dir)
    out = tmp_path / "eval"
    results = full_evaluation(settings, None, out)
    for system in ("model", "baseline_tfidf_char_lr", "baseline_nearest_title_base_encoder"):
        pooled = results[system]["pooled_weighted_by_rows"]
        assert {"section", "division", "exact"} <= set(pooled)
    assert (out / "coverage_precision.png").stat().st_size > 1000
    assert "baseline A" in (out / "report.md").read_text()
    assert len(results["coverage_vs_precision"]) >= 5
    # Every ablation ran on the same folds and has its row in the report.
    report = (out / "report.md").read_text()
    for key, label in ABLATIONS.items():
        if key in results:
            assert {"section", "exact"} <= set(results[key])
            assert f"| {label} |" in report
    assert {"ablation_no_char_ngrams", "ablation_no_nearest_examples"} <= set(results)


def test_the_ablation_table_varies_one_part_each_and_the_report_shows_every_row(tmp_path):
    from training.config import TrainConfig
    from training.evaluate import ABLATIONS, _ablations, write_evaluation_report

    cfg = TrainConfig()
    plain = Normalizer({}, expand=False)
    with_table = Normalizer({"gbh": "grievous bodily harm"})
    variants = _ablations(cfg, with_table, plain)  # no shorthand reader: nothing to take away
    assert list(variants) == [k for k in ABLATIONS if k != "ablation_no_shorthand_reading"]
    assert variants["ablation_no_abbreviation_expansion"] == (plain, cfg)
    assert variants["ablation_no_char_ngrams"] == (None, replace(cfg, char_ngrams=False))
    assert variants["ablation_no_nearest_examples"] == (None, replace(cfg, neighbour_weight=0.0))

    cell = {"accuracy": 0.5, "macro_f1": 0.25}
    pooled = {"section": cell, "division": cell, "exact": cell}
    systems = ("model", "baseline_tfidf_char_lr", "baseline_nearest_title_base_encoder")
    results = {
        "model_version": "v1",
        "evaluation": "leave-one-source-out",
        "sources": ["us_ncic"],
        "rows_evaluated": 10,
        **{
            s: {"pooled_weighted_by_rows": pooled, "unweighted_mean_over_sources": pooled}
            for s in systems
        },
        **{key: pooled for key in ABLATIONS},
        "coverage_vs_precision": [],
        "worst_categories": [],
    }
    write_evaluation_report(tmp_path / "report.md", results)
    report = (tmp_path / "report.md").read_text()
    for label in ABLATIONS.values():
        assert f"| {label} | 0.500 / 0.250 |" in report


@pytest.mark.slow
def test_simulate_review_writes_the_curves_and_compares_three_queue_orders(
    tiny_registry, shared_dir, tmp_path
):
    out = tmp_path / "sim"
    result = CliRunner().invoke(
        main,
        ["evaluate", "--simulate-review", "--output", str(out)],
        env={"ICCS_REGISTRY_DIR": str(tiny_registry), "ICCS_DATA_DIR": str(shared_dir)},
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert set(summary) == {
        "model_version",
        "confidence",
        "random",
        "value",
        "table_policy",
        "ceiling",
    }
    ceiling = summary["ceiling"]
    assert 0.0 <= ceiling["machine_at_start"] <= 1.0
    assert 0.0 <= ceiling["machine_all_others_decided"] <= 1.0
    full = json.loads((out / "review_simulation.json").read_text())
    assert full["target_precision"] == 0.97
    assert full["table_policy"]["mechanism"]["policy"] == "table"
    for run in (full, full["table_policy"]):
        for order in ("confidence", "random", "value"):
            pooled = run["pooled"][order]
            assert pooled["curve"]["coded_share"][-1] == pytest.approx(1.0)
            assert 0.0 <= pooled["decision_share_weighted"] <= 1.0
    assert (out / "review_simulation.png").stat().st_size > 0
    report = (out / "review_simulation.md").read_text()
    assert report.count("| **pooled** |") == 3
    assert "## The target on the finished table" in report
    assert "## How far decisions could go" in report
