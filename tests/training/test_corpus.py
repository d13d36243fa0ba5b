import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.labels import COLUMNS, LabelledRow
from service.taxonomy import load_taxonomy
from training.config import TrainConfig
from training.corpus.assemble import (
    LABELLED_DIR,
    assemble,
    corpus_stats,
    own_rows,
    validate_and_merge,
)
from training.corpus.crosswalk import EXCLUDE, crosswalk_problems, crosswalk_rows
from training.corpus.sources import SOURCES, Source, grouped_folds, read_source

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared"
needs_shared = pytest.mark.skipif(not (SHARED / "iccs").exists(), reason="../shared not present")


@pytest.fixture(scope="module")
def assembled():
    return assemble(SHARED)


def _write(folder: Path, rows: list[dict[str, str]]) -> Path:
    (folder / "handwritten").mkdir(parents=True)
    with (folder / "handwritten" / "x.csv").open("w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=COLUMNS)
        w.writeheader()
        w.writerows(rows)
    return folder


def _row(text, code, key):
    return {
        "text": text,
        "iccs_code": code,
        "source": "handwritten",
        "source_key": key,
        "language": "en",
        "style": "narrative",
        "confidence": "high",
        "split_group": "handwritten",
    }


def test_committed_rows_follow_the_schema():
    rows = own_rows(LABELLED_DIR)
    assert len(rows) >= 3000
    assert all(r.split_group and r.source for r in rows)


@needs_shared
def test_committed_corpus_validates(assembled):
    assert assembled.problems == []


@needs_shared
def test_corpus_meets_the_coverage_bar(assembled):
    stats = corpus_stats(assembled.rows)
    assert stats["rows"] >= 10_000
    # Residual "Other ..." divisions are not padded to the bar: padding them is how wrong
    # labels got in (labels audit, section 2.5). Every other division has at least 20.
    tax = load_taxonomy()
    per_division: dict[str, int] = {}
    for row in assembled.rows:
        if row.is_offence and tax.level(row.iccs_code) >= 2:
            div = tax.path(row.iccs_code)[1]
            per_division[div] = per_division.get(div, 0) + 1
    thin = [c for c in tax.codes(level=2) if per_division.get(c, 0) < 20]
    assert all(tax.title(c).startswith("Other") for c in thin), thin
    assert all(per_division.get(c, 0) >= 10 for c in tax.codes(level=2))
    covered, total = stats["leaf_targets_level3_4_with_at_least_8"]
    assert covered >= 0.9 * total
    assert stats["not_an_offence"] >= 200


@needs_shared
def test_every_key_of_every_national_list_is_crosswalked():
    from training.corpus.crosswalk import read_crosswalks

    cw = read_crosswalks(LABELLED_DIR / "crosswalks")
    assert set(cw) == set(SOURCES)
    for source, entries in cw.items():
        keys = {r.key for r in read_source(source, SHARED)}
        assert keys <= set(entries), f"{source}: {len(keys - set(entries))} keys unmapped"


def test_validator_rejects_an_invalid_code(tmp_path):
    folder = _write(tmp_path, [_row("theft of bicycle", "0502", "a"), _row("x y z", "0599", "b")])
    result = assemble(tmp_path / "nowhere", folder, include_reference=False)
    assert any("invalid code '0599'" in p for p in result.problems)


def test_validator_rejects_conflicting_duplicates(tmp_path):
    folder = _write(
        tmp_path, [_row("Theft of bicycle", "0502", "a"), _row("theft of bicycle!", "0501", "b")]
    )
    result = assemble(tmp_path / "nowhere", folder, include_reference=False)
    assert any("conflicting codes" in p for p in result.problems)


def test_validator_merges_duplicates(tmp_path):
    folder = _write(
        tmp_path, [_row("Theft of bicycle", "0502", "a"), _row("theft of  bicycle", "0502", "b")]
    )
    result = assemble(tmp_path / "nowhere", folder, include_reference=False)
    assert result.problems == [] and len(result.rows) == 1 and result.merged_duplicates == 1


def test_validator_requires_split_group(tmp_path):
    row = _row("theft of bicycle", "0502", "a") | {"split_group": ""}
    result = assemble(tmp_path / "nowhere", _write(tmp_path, [row]), include_reference=False)
    assert any("no split_group" in p for p in result.problems)


@needs_shared
def test_corpus_stats_cli_json():
    result = CliRunner().invoke(
        main, ["corpus", "stats", "--format", "json"], env={"ICCS_DATA_DIR": str(SHARED)}
    )
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert {"rows", "per_source", "per_language", "per_section", "categories_with_at_least"} <= set(
        stats
    )
    assert stats["categories_with_at_least"]["1"] == 320


def _ref(text, code, source, key, confidence="high"):
    return LabelledRow(
        text, code, source, key, style="official_title", confidence=confidence, split_group=source
    )


def _codes(result):
    return {(r.source, r.source_key): r.iccs_code for r in result.rows}


def test_parent_phrase_does_not_override_a_consistent_deeper_label():
    # The manual lists "Kidnapping" under 02022 (a parent's inclusions repeat its children's)
    # and as the title of 020221; a national list maps it to 020221 too.
    result = validate_and_merge(
        [
            _ref("Kidnapping", "02022", "iccs_manual", "02022:inclusion:0"),
            _ref("Kidnapping", "020221", "iccs_manual", "020221:title"),
            _ref("KIDNAPPING", "020221", "us_ncic_codes", "1099", confidence="medium"),
            _ref("Extortion", "0205", "iccs_manual", "0205:inclusion:1"),
            _ref("EXTORTION", "02051", "in_ipc_sections", "IPC_384", confidence="medium"),
        ]
    )
    assert result.problems == []
    codes = _codes(result)
    assert {codes[("iccs_manual", "02022:inclusion:0")], codes[("us_ncic_codes", "1099")]} == {
        "020221"
    }
    assert codes[("iccs_manual", "0205:inclusion:1")] == "02051"
    assert len(result.resolved_conflicts) == 2


def test_parent_phrase_keeps_priority_when_deeper_labels_disagree_or_are_unrelated():
    result = validate_and_merge(
        [
            # deeper labels on two different branches: the parent is their common ground
            _ref("Detention", "02022", "iccs_manual", "02022:inclusion:9"),
            _ref("DETENTION", "020221", "us_ncic_codes", "1"),
            _ref("detention", "020222", "us_denver_offense_codes", "2"),
            # not a descendant: plain source priority (manual over national list)
            _ref("Torture", "11011", "iccs_manual", "11011:inclusion:0"),
            _ref("TORTURE", "020111", "us_ca_doj_offense_codes", "13000"),
        ]
    )
    codes = _codes(result)
    assert set(codes[k] for k in codes if k[1] in ("02022:inclusion:9", "1", "2")) == {"02022"}
    assert codes[("us_ca_doj_offense_codes", "13000")] == "11011"


def test_parent_rule_does_not_override_own_rows():
    # A hand-written label is a person's decision, even at a parent level.
    result = validate_and_merge(
        [
            LabelledRow(
                "grabbed her arm and groped",
                "03012",
                "handwritten",
                "hw-1",
                split_group="handwritten",
            ),
            _ref("grabbed her arm and groped", "030121", "uk_crown_court_offences", "h:1"),
        ]
    )
    assert set(_codes(result).values()) == {"03012"}


def _boston_fixture(tmp_path, crosswalk_lines):
    data = tmp_path / "data" / "us_boston_offense_codes"
    data.mkdir(parents=True)
    (data / "boston_offense_codes.csv").write_text(
        "OFFENSE_CODE,NAME\n1,Bag snatching\n2,Offences under the Act\n", encoding="utf-8"
    )
    folder = tmp_path / "crosswalks"
    folder.mkdir()
    (folder / "us_boston_offense_codes.csv").write_text(
        "source_key,iccs_code,confidence,rationale\n" + "".join(crosswalk_lines), encoding="utf-8"
    )
    return folder


def test_crosswalk_can_exclude_a_text_from_training(tmp_path):
    folder = _boston_fixture(
        tmp_path,
        [
            "1,050221,high,bag snatch\n",
            f"2,{EXCLUDE},high,excluded: placeholder text\n",
        ],
    )
    missing, excluded = [], []
    rows = list(crosswalk_rows(tmp_path, folder, missing, excluded))
    assert [(r.source_key, r.iccs_code) for r in rows] == [("1", "050221")]
    assert missing == [] and excluded == ["us_boston_offense_codes:2"]
    assert crosswalk_problems(folder) == []


def test_excluded_crosswalk_row_needs_a_rationale(tmp_path):
    folder = _boston_fixture(tmp_path, ["1,050221,high,bag snatch\n", f"2,{EXCLUDE},high,\n"])
    problems = crosswalk_problems(folder)
    assert len(problems) == 1 and "excluded without a rationale" in problems[0]


# The folds the registered default models were trained and evaluated with, before the
# jurisdiction list moved to SOURCES: deriving them must not change a model.
REGISTERED_CALIBRATION_FOLDS = {
    g: g
    for g in (
        "us_ca_doj",
        "uk_crown_court",
        "in_ipc",
        "us_ncic",
        "us_ca_police",
        "us_denver",
        "us_boston",
    )
}
REGISTERED_GROUPED_FOLDS = {
    "us_ca_doj": "california_doj",
    "uk_crown_court": "uk_and_india",
    "in_ipc": "uk_and_india",
    "us_ncic": "us_police_lists",
    "us_ca_police": "us_police_lists",
    "us_denver": "us_police_lists",
    "us_boston": "us_police_lists",
}


def test_folds_derived_from_sources_are_those_the_registered_models_used():
    assert TrainConfig().calibration_folds == REGISTERED_CALIBRATION_FOLDS
    assert grouped_folds() == REGISTERED_GROUPED_FOLDS
    for config in sorted((ROOT / "model_registry").glob("*-default-*/config.yaml")):
        assert TrainConfig.load(config).calibration_folds == TrainConfig().calibration_folds


def test_a_new_national_list_is_one_sources_entry(monkeypatch):
    new = Source(lambda d: iter(()), "fr", "fr_natinf", "europe")
    monkeypatch.setitem(SOURCES, "fr_natinf_codes", new)
    assert TrainConfig().calibration_folds["fr_natinf"] == "fr_natinf"
    assert grouped_folds()["fr_natinf"] == "europe"
    assert list(read_source("fr_natinf_codes", SHARED)) == []
