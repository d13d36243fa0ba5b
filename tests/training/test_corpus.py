import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.cli import main
from service.labels import COLUMNS
from training.corpus.assemble import LABELLED_DIR, assemble, corpus_stats, own_rows
from training.corpus.sources import SOURCES, read_source

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
    return {"text": text, "iccs_code": code, "source": "handwritten", "source_key": key,
            "language": "en", "style": "narrative", "confidence": "high",
            "split_group": "handwritten"}


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
    assert stats["divisions_with_at_least_20"] == 63
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
    folder = _write(tmp_path, [_row("Theft of bicycle", "0502", "a"),
                               _row("theft of bicycle!", "0501", "b")])
    result = assemble(tmp_path / "nowhere", folder, include_reference=False)
    assert any("conflicting codes" in p for p in result.problems)


def test_validator_merges_duplicates(tmp_path):
    folder = _write(tmp_path, [_row("Theft of bicycle", "0502", "a"),
                               _row("theft of  bicycle", "0502", "b")])
    result = assemble(tmp_path / "nowhere", folder, include_reference=False)
    assert result.problems == [] and len(result.rows) == 1 and result.merged_duplicates == 1


def test_validator_requires_split_group(tmp_path):
    row = _row("theft of bicycle", "0502", "a") | {"split_group": ""}
    result = assemble(tmp_path / "nowhere", _write(tmp_path, [row]), include_reference=False)
    assert any("no split_group" in p for p in result.problems)


@needs_shared
def test_corpus_stats_cli_json():
    result = CliRunner().invoke(main, ["corpus", "stats", "--format", "json"],
                                env={"ICCS_DATA_DIR": str(SHARED)})
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert {"rows", "per_source", "per_language", "per_section",
            "categories_with_at_least"} <= set(stats)
    assert stats["categories_with_at_least"]["1"] == 320
