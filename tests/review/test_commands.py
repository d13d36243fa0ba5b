"""``iccs review`` commands through click's CliRunner, on a SQLite file."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from service.config import Settings
from service.labels import COLUMNS, NOT_AN_OFFENCE
from service.normalize import dedupe_key
from service.review.commands import review
from service.review.store import ReviewStore


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Settings, ReviewStore]:
    settings = Settings(state_dir=tmp_path / "state")
    settings.state_dir.mkdir()
    return settings, ReviewStore.from_url(settings.resolved_database_url())


def _run(settings: Settings, *args: str) -> str:
    result = CliRunner().invoke(review, list(args), obj=settings, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def test_export_writes_corpus_rows(setup, make_request, tmp_path: Path) -> None:
    settings, store = setup
    texts = ["Punched a man", "see file", "ASSLT W/DW", "assault with deadly weapon"]
    ids = store.enqueue([make_request(t, key=dedupe_key(t)) for t in texts])
    store.decide(ids[0], "alice", "correct", code="020111")
    store.decide(ids[1], "alice", "reject")
    store.decide(ids[2], "bob", "correct", code="0201")
    # Same text after the normaliser expands the abbreviation: the newer decision wins.
    store.decide(ids[3], "carol", "correct", code="02011")
    (skipped,) = store.enqueue([make_request("undecided")])
    store.decide(skipped, "alice", "skip")
    out_path = tmp_path / "labelled_data" / "review" / "reviewed.csv"
    out = _run(settings, "export", "--output", str(out_path))
    assert "wrote" in out
    with out_path.open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        assert tuple(reader.fieldnames or ())[: len(COLUMNS)] == COLUMNS
        rows = list(reader)
    by_key = {r["source_key"]: r for r in rows}
    assert by_key[f"review-{ids[0]}"]["iccs_code"] == "020111"
    assert by_key[f"review-{ids[1]}"]["iccs_code"] == NOT_AN_OFFENCE
    assert {r["source"] for r in rows} == {"review"}
    assert {r["style"] for r in rows} == {"review"} and {r["split_group"] for r in rows} == {
        "review"
    }
    assert by_key[f"review-{ids[0]}"]["reviewer"] == "alice"
    assert by_key[f"review-{ids[0]}"]["decided_at"][:4].isdigit()
    # The abbreviation table expands "asslt w/dw" to the long form: one row, the newest.
    assert len(rows) == 3 and "1 older decisions superseded" in out
    assert f"review-{ids[2]}" not in by_key and by_key[f"review-{ids[3]}"]["iccs_code"] == "02011"
    assert not any(r["text"] == "undecided" for r in rows)
    # The training corpus reader takes the file as it is.
    from training.corpus.assemble import read_labelled_csv

    assert {r.iccs_code for r in read_labelled_csv(out_path)} >= {"020111", NOT_AN_OFFENCE}
    # Retired memory drops out of the next export.
    _run(settings, "memory", "retire", "--text", "PUNCHED a man!", "--by", "boss")
    _run(settings, "export", "--output", str(out_path))
    with out_path.open(encoding="utf-8", newline="") as f:
        assert f"review-{ids[0]}" not in {r["source_key"] for r in csv.DictReader(f)}
    assert store.history(ids[0])[-1].actor == "boss"


def test_memory_list_retire_errors(setup, make_request) -> None:
    settings, store = setup
    (a,) = store.enqueue([make_request("x", key="kx")])
    store.decide(a, "alice", "correct", code="0501")
    listing = _run(settings, "memory", "list")
    assert "kx\t0501" in listing and "x\t" not in listing.replace("kx\t", "")
    assert "retired" in _run(settings, "memory", "retire", "--item", str(a))
    assert _run(settings, "memory", "list").strip() == ""
    assert "retired by" in _run(settings, "memory", "list", "--all")
    again = CliRunner().invoke(review, ["memory", "retire", "--key", "kx"], obj=settings)
    assert again.exit_code == 1 and "not_found" in again.output
    both = CliRunner().invoke(
        review, ["memory", "retire", "--key", "kx", "--item", "1"], obj=settings
    )
    assert both.exit_code == 2


def test_double_review_and_stats(setup, make_request) -> None:
    settings, store = setup
    store.enqueue([make_request(str(i), batch="b") for i in range(4)])
    assert "flagged 2" in _run(settings, "double-review", "--batch", "b", "--share", "0.5")
    stats = json.loads(_run(settings, "stats"))
    assert stats["remaining"] == 4 and stats["inter_reviewer"]["pairs"] == 0
    assert stats["auto_coded"] == 0 and stats["by_status"]["auto_coded"] == 0
