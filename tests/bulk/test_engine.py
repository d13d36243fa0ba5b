"""The bulk engine with the tiny real model: contract columns, dedupe, resume, formats, reviews."""

from __future__ import annotations

import csv
import json
import sqlite3
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import load_workbook
from sqlalchemy import select

from service.bulk import OUTPUT_COLUMNS, RESULT_COLUMNS, BulkOptions, classify_file, classify_frame
from service.bulk.checkpoint import Checkpoint
from service.bulk.engine import Interrupted, checkpoint_folder
from service.coding import Coder
from service.db import MemoryEntry, ReviewItem, session_factory, utcnow
from service.errors import FileFormatError, InvalidInput
from service.normalize import dedupe_key
from service.review.store import ReviewStore
from service.taxonomy import load_taxonomy

from .helpers import TEXTS, CountingPredictor, legacy_rows


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def opts(**kw: Any) -> BulkOptions:
    kw.setdefault("text_column", "description")
    return BulkOptions(**kw)


def test_output_contract(write_csv, coder: Coder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_csv(legacy_rows(60))
    out = tmp_path / "out.csv"
    summary = classify_file(src, out, opts(id_column="record_id"), coder)
    with out.open(encoding="utf-8", newline="") as f:
        header = next(csv.reader(f))
    assert header == ["record_id", "agency_code", "description", *RESULT_COLUMNS, "reason"]
    rows = read_csv(out)
    assert len(rows) == 60 == summary.rows
    tax = load_taxonomy()
    version = coder.predictor.version
    for row in rows:
        assert row["model_version"] == version
        assert row["status"] in ("auto", "review", "rejected")
        alts = json.loads(row["alternatives"])
        assert isinstance(alts, list)
        for alt in alts:
            assert set(alt) == {"code", "label", "confidence"}
            assert alt["label"] == tax.title(alt["code"])
            assert 0.0 <= alt["confidence"] <= 1.0
        if row["iccs_code"]:
            assert row["iccs_label"] == tax.title(row["iccs_code"])
            assert 0.0 <= float(row["confidence"]) <= 1.0
            assert len(alts) <= 4  # top_k 5: the top one plus the next four
        if row["status"] == "auto":
            assert row["iccs_code"].startswith(row["assigned_code"])
        else:
            assert row["assigned_code"] == ""
        if row["status"] == "rejected":
            assert row["reason"]
        else:
            assert row["reason"] == ""
    by_text = {r["description"]: r for r in rows}
    assert by_text[""]["reason"] == "empty_text"
    assert by_text["12345"]["reason"] == "no_words"
    assert by_text["see file"]["reason"] == "placeholder"
    assert summary.counts == {
        s: sum(1 for r in rows if r["status"] == s) for s in ("auto", "review", "rejected")
    }
    assert not checkpoint_folder(out).exists()


def test_each_distinct_text_is_classified_once(
    write_csv,
    counting: CountingPredictor,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    src = write_csv(legacy_rows(600))
    out = tmp_path / "out.csv"
    # Small chunks and a tiny memory cache: the checkpoint must still stop re-classification.
    summary = classify_file(src, out, opts(chunk_rows=50, cache_size=2), Coder(counting))
    seen = counting.texts_seen
    assert len(seen) == len({dedupe_key(t) for t in seen})
    usable = {dedupe_key(t) for t in TEXTS if t and t not in ("12345", "see file")}
    assert {dedupe_key(t) for t in seen} == usable
    assert summary.distinct_texts == len(usable)
    assert summary.dedupe_ratio == pytest.approx(600 / len(usable))
    rows = read_csv(out)
    # Texts sharing a key share every result column (fan-out).
    by_key: dict[str, dict[str, str]] = {}
    for row in rows:
        if row["reason"]:
            continue
        key = dedupe_key(row["description"])
        result = {c: row[c] for c in RESULT_COLUMNS}
        assert by_key.setdefault(key, result) == result
    assert rows[0]["iccs_code"] == rows[1]["iccs_code"]  # "Theft..." and "THEFT...."


def test_resume_after_interruption_equals_uninterrupted_run(
    write_csv,
    tiny_predictor: Any,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    src = write_csv(legacy_rows(500, distinct=120))
    full = tmp_path / "full.csv"
    classify_file(src, full, opts(chunk_rows=40), Coder(tiny_predictor))

    out = tmp_path / "resumed.csv"
    calls = {"n": 0}

    def stop_after_three() -> bool:
        calls["n"] += 1
        return calls["n"] >= 3

    with pytest.raises(Interrupted):
        classify_file(
            src, out, opts(chunk_rows=40), Coder(tiny_predictor), should_stop=stop_after_three
        )
    assert not out.exists() and checkpoint_folder(out).exists()
    counting = CountingPredictor(tiny_predictor)
    summary = classify_file(src, out, opts(chunk_rows=40), Coder(counting))
    assert summary.resumed_at == 120
    assert out.read_bytes() == full.read_bytes()
    # Texts of the first 120 rows were classified before the interruption, not again.
    first = {f"Theft of property number {i} from a shop" for i in range(120)}
    assert not first & set(counting.texts_seen)
    assert summary.rows == 500 and summary.distinct_texts == 120


def test_a_checkpoint_from_before_the_non_offence_column_is_resumed(tmp_path: Path) -> None:
    folder = tmp_path / "out.csv.iccs-partial"
    folder.mkdir()
    old = sqlite3.connect(folder / "state.sqlite3")
    old.executescript(
        """
        CREATE TABLE meta (k TEXT PRIMARY KEY, v TEXT NOT NULL);
        CREATE TABLE texts (
            key TEXT PRIMARY KEY, result TEXT NOT NULL, status TEXT NOT NULL,
            occurrences INTEGER NOT NULL, text TEXT, record_id TEXT, suggestions TEXT
        );
        INSERT INTO meta VALUES ('fingerprint', 'fp');
        INSERT INTO texts VALUES ('k', '[]', 'review', 3, 'lost wallet', NULL, '[]');
        """
    )
    old.commit()
    old.close()
    ckpt = Checkpoint(folder, "fp")
    assert [list(r) for rows in ckpt.review_rows() for r in rows] == [
        ["k", "lost wallet", None, 3, "[]", "[]", None]
    ]
    ckpt.close()


def test_checkpoint_of_another_input_is_not_reused(
    write_csv,
    coder: Coder,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    src = write_csv(legacy_rows(100))
    out = tmp_path / "out.csv"
    with pytest.raises(Interrupted):
        classify_file(src, out, opts(chunk_rows=30), coder, should_stop=lambda: True)
    src.write_text(src.read_text("utf-8").replace("Murder", "Homicide"), "utf-8")
    summary = classify_file(src, out, opts(chunk_rows=30), coder)
    assert summary.resumed_at == 0
    assert "Homicide" in out.read_text("utf-8") and "Murder" not in out.read_text("utf-8")


def test_xlsx_and_parquet_outputs_hold_the_same_values(
    write_csv,
    coder: Coder,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    src = write_csv(legacy_rows(40))
    classify_file(src, tmp_path / "o.csv", opts(), coder)
    classify_file(src, tmp_path / "o.parquet", opts(), coder)
    classify_file(src, tmp_path / "o.xlsx", opts(), coder)
    expected = read_csv(tmp_path / "o.csv")
    table = pq.read_table(tmp_path / "o.parquet")
    assert table.column_names == ["record_id", "agency_code", "description", *OUTPUT_COLUMNS]
    assert table.schema.field("confidence").type == pa.float64()
    wb = load_workbook(tmp_path / "o.xlsx", read_only=True)
    width = len(table.column_names)
    # Read-only openpyxl drops trailing empty cells: pad rows back to the header's width.
    raw = wb.worksheets[0].iter_rows(values_only=True)
    sheet = [tuple(r) + (None,) * (width - len(r)) for r in raw]
    wb.close()
    assert list(sheet[0]) == table.column_names
    for i, row in enumerate(table.to_pylist()):
        for col in ("iccs_code", "assigned_code", "status", "alternatives", "reason"):
            assert (row[col] or "") == expected[i][col]
            assert (sheet[i + 1][table.column_names.index(col)] or "") == expected[i][col]
        if row["confidence"] is not None:
            assert row["confidence"] == float(expected[i]["confidence"])


def test_parquet_input_keeps_types_and_clashing_columns(coder: Coder, tmp_path: Path) -> None:
    src = tmp_path / "in.parquet"
    pq.write_table(
        pa.table({"n": [1, 2, 3], "text": ["Murder", None, "Fraud"], "status": ["a", "b", "c"]}),
        src,
    )
    out = tmp_path / "out.parquet"
    classify_file(src, out, opts(text_column="text"), coder)
    table = pq.read_table(out)
    assert table.column_names[:3] == ["n", "text", "input_status"]
    assert table.schema.field("n").type == pa.int64()
    assert table.column("input_status").to_pylist() == ["a", "b", "c"]
    assert table.column("status").to_pylist()[1] == "rejected"


def test_bad_rows_never_abort_the_run(coder: Coder, tmp_path: Path) -> None:
    src = tmp_path / "bad.csv"
    src.write_bytes(
        b"id,description\n1,Murder\n2\n3,Fraud,extra\n"
        + "4,Vol qualifi\u00e9\n".encode("latin-1")
        + "5,Vol qualifi\u00e9 \u00e0 main arm\u00e9e\n6,Burglary\n".encode()
    )
    out = tmp_path / "out.csv"
    summary = classify_file(src, out, opts(), coder)
    rows = read_csv(out)
    assert [r["id"] for r in rows] == ["1", "2", "3", "4", "5", "6"]
    assert [r["reason"] for r in rows][1:4] == ["ragged_row", "ragged_row", "undecodable_bytes"]
    assert rows[3]["description"] == "Vol qualifi\ufffd"
    assert rows[4]["status"] != "rejected" or rows[4]["reason"] not in (
        "ragged_row",
        "undecodable_bytes",
    )
    assert summary.counts["rejected"] >= 3


def test_missing_column_fails_fast(write_csv, coder: Coder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_csv(legacy_rows(3))
    with pytest.raises(FileFormatError) as err:
        classify_file(src, tmp_path / "o.csv", opts(text_column="offence"), coder)
    assert "'record_id', 'agency_code', 'description'" in err.value.message
    with pytest.raises(FileFormatError, match="--id-column"):
        classify_file(src, tmp_path / "o.csv", opts(id_column="nope"), coder)
    with pytest.raises(InvalidInput):
        classify_file(src, src, opts(), coder)
    with pytest.raises(InvalidInput, match="review store"):
        classify_file(src, tmp_path / "o.csv", opts(to_review=True), coder)


def test_to_review_queues_each_text_once_with_its_occurrences(
    write_csv,
    tiny_predictor: Any,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    store = ReviewStore.from_url(f"sqlite:///{tmp_path / 'db.sqlite3'}")
    # A reviewer already decided "Murder": decision memory answers it, no review item.
    with session_factory(store.engine)() as s, s.begin():
        s.add(
            MemoryEntry(
                text_key=dedupe_key("Murder"),
                text="Murder",
                code="0101",
                decided_by="rev",
                decided_at=utcnow(),
            )
        )
    src = write_csv(legacy_rows(240))
    out = tmp_path / "out.csv"
    summary = classify_file(
        src,
        out,
        opts(to_review=True, batch_name="legacy-2019", chunk_rows=50),
        Coder(tiny_predictor, store),
    )
    rows = read_csv(out)
    murder = [r for r in rows if r["description"] == "Murder"]
    assert {(r["status"], r["assigned_code"], r["confidence"]) for r in murder} == {
        ("auto", "0101", "1.0")
    }
    review_rows: dict[str, int] = {}
    for r in rows:
        if r["status"] == "review":
            key = dedupe_key(r["description"])
            review_rows[key] = review_rows.get(key, 0) + 1
    with session_factory(store.engine)() as s:
        items = s.scalars(select(ReviewItem)).all()
    assert {i.text_key: i.occurrences for i in items} == review_rows
    assert {i.batch for i in items} <= {"legacy-2019"}
    assert {i.origin for i in items} <= {"bulk"}
    # The model's P(not an offence) reaches the item, though no output column carries it.
    assert items and all(0.0 <= (i.non_offence_probability or -1.0) <= 1.0 for i in items)
    assert summary.reviews_queued == len(items)
    store.engine.dispose()


def test_classify_frame(tiny_predictor: Any) -> None:
    df = pd.DataFrame(
        {"text": ["Murder", "MURDER!", None, "Fraud by false representation"], "n": [1, 2, 3, 4]},
        index=[7, 7, 8, 9],  # repeated labels must not confuse the fan-out
    )
    counting = CountingPredictor(tiny_predictor)
    out = classify_frame(df, text_column="text", predictor=counting)
    assert list(out.columns) == ["text", "n", *OUTPUT_COLUMNS]
    assert list(out.index) == [7, 7, 8, 9]
    assert len(counting.texts_seen) == 2
    assert out["iccs_code"].iloc[0] == out["iccs_code"].iloc[1]
    assert out["status"].iloc[2] == "rejected" and out["reason"].iloc[2] == "empty_text"
    assert out["confidence"].dtype == "float64"
    assert list(df.columns) == ["text", "n"]  # the caller's frame is untouched
    with pytest.raises(FileFormatError, match="Columns found: 'text', 'n'"):
        classify_frame(df, text_column="description", predictor=tiny_predictor)


def test_classify_frame_loads_the_promoted_model(tiny_registry: Path) -> None:
    out = classify_frame(
        pd.DataFrame({"t": ["Theft of a bicycle"]}), text_column="t", registry_dir=tiny_registry
    )
    assert out["model_version"].iloc[0]
    assert out["status"].iloc[0] in ("auto", "review", "rejected")


@pytest.mark.parametrize("ext", ["csv", "parquet", "xlsx"])
def test_header_only_file_gives_header_only_output(coder: Coder, tmp_path: Path, ext: str) -> None:
    src = tmp_path / "in.csv"
    src.write_text("id,description\n", encoding="utf-8")
    out = tmp_path / f"out.{ext}"
    summary = classify_file(src, out, opts(), coder)
    assert summary.rows == 0 and summary.distinct_texts == 0
    if ext == "parquet":
        table = pq.read_table(out)
        assert table.num_rows == 0 and table.column_names == ["id", "description", *OUTPUT_COLUMNS]
    elif ext == "csv":
        assert out.read_text("utf-8") == ",".join(["id", "description", *OUTPUT_COLUMNS]) + "\n"
    else:
        wb = load_workbook(out, read_only=True)
        assert len(list(wb.worksheets[0].iter_rows(values_only=True))) == 1
        wb.close()


def test_language_column_holds_each_rows_language(tiny_predictor: Any) -> None:
    df = pd.DataFrame(
        {
            "t": [
                "절도 형법 제329조",
                "ลักทรัพย์ในเวลากลางคืน",
                "Robo con violencia en la vía pública",
                "Theft of a pedal cycle from a dwelling",
                "",
            ]
        }
    )
    out = classify_frame(df, text_column="t", predictor=tiny_predictor)
    assert list(out["language"]) == ["ko", "th", "es", "en", None]
    assert out["status"].iloc[4] == "rejected"


def test_language_column_names_the_language_where_filled(coder: Coder, tmp_path: Path) -> None:
    src = tmp_path / "in.csv"
    src.write_text(
        "description,lang\nRobo con violencia,es-CL\nRobo con violencia,\nTheft of a bicycle,EN\n",
        "utf-8",
    )
    out = tmp_path / "out.csv"
    classify_file(src, out, opts(language_column="lang"), coder)
    rows = read_csv(out)
    assert [r["language"] for r in rows] == ["es", "es", "en"]
    with pytest.raises(FileFormatError, match="--language-column"):
        classify_file(src, tmp_path / "x.csv", opts(language_column="idioma"), coder)
