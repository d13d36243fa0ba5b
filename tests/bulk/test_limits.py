"""Poison inputs (issue 16 #2, security review H2, L9): long texts, zip bombs, huge fields."""

from __future__ import annotations

import csv
import tracemalloc
import zipfile
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from service.bulk import BulkOptions, classify_file
from service.bulk import io as bio
from service.bulk.contract import TRUNCATED
from service.coding import Coder
from service.errors import FileTooLarge
from service.models.ngrams import CharNgrams

from .helpers import CountingPredictor

LONG = "burglary of a dwelling at night " * 2_000  # 64,000 characters


def read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def test_long_bulk_text_is_cut_to_the_cap_and_flagged(
    write_csv,
    counting: CountingPredictor,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    src = write_csv([["id", "text"], ["1", LONG], ["2", "Theft of a bicycle"], ["3", LONG]])
    out = tmp_path / "out.csv"
    options = BulkOptions(text_column="text", id_column="id", max_text_length=300)
    summary = classify_file(src, out, options, Coder(counting))  # type: ignore[arg-type]
    assert summary.rows == 3
    assert max(len(t) for t in counting.texts_seen) <= 300
    assert LONG[:300] in counting.texts_seen  # the model saw the text's beginning, once
    rows = read_csv(out)
    assert [r["text"] for r in rows] == [LONG, "Theft of a bicycle", LONG]  # input kept whole
    for row in (rows[0], rows[2]):
        assert row["status"] in ("auto", "review", "rejected")
        if row["status"] != "rejected":
            assert row["reason"] == TRUNCATED
    assert rows[1]["reason"] == "" or rows[1]["status"] == "rejected"


def test_default_cap_is_the_api_setting() -> None:
    from service.config import Settings

    assert BulkOptions(text_column="t").max_text_length == Settings().max_text_length


def test_parquet_string_over_the_cap_is_handled_like_a_long_text(
    counting: CountingPredictor, tmp_path: Path
) -> None:
    big = "burglary " * 500_000  # 4.5 MB in a Parquet file of a few KB
    src = tmp_path / "long.parquet"
    pq.write_table(pa.table({"text": [big, "theft of a bicycle"]}), src, compression="zstd")
    assert src.stat().st_size < 100_000
    out = tmp_path / "out.parquet"
    options = BulkOptions(text_column="text", max_text_length=2000)
    classify_file(src, out, options, Coder(counting))  # type: ignore[arg-type]
    assert max(len(t) for t in counting.texts_seen) <= 2000
    result = pq.read_table(out).to_pylist()
    assert result[0]["status"] == "rejected" or result[0]["reason"] == TRUNCATED
    assert result[1]["reason"] is None or result[1]["status"] == "rejected"


def test_ngram_features_of_a_huge_text_use_bounded_memory() -> None:
    from sklearn.feature_extraction.text import TfidfVectorizer

    vec = TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5)).fit(
        ["burglary of a dwelling", "theft of a bicycle", "assault"]
    )
    ngrams = CharNgrams.from_vectorizer(vec)
    text = "burglary of a dwelling at night " * 2_000  # 64,000 characters
    tracemalloc.start()
    try:
        row = ngrams.transform([text])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    # A list of every n-gram would hold ~2.6 million strings (well over 100 MB); the features
    # themselves are a vocabulary-sized row.
    assert peak < 8 * len(text) + 1_000_000, peak
    expected = vec.transform([text])
    assert abs(row - expected).max() < 1e-6


def _xlsx_bomb(path: Path, copies: int) -> None:
    """An XLSX whose shared-strings part inflates far beyond its compressed size."""
    base = path.with_name("base.xlsx")
    wb = Workbook()
    ws = wb.active
    assert ws is not None
    ws.append(["text"])
    ws.append(["theft"])
    wb.save(base)
    with zipfile.ZipFile(base) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            if item.filename != "xl/sharedStrings.xml":
                zout.writestr(item, zin.read(item.filename))
        with zout.open("xl/sharedStrings.xml", "w") as f:
            f.write(
                b'<?xml version="1.0" encoding="UTF-8"?><sst xmlns="http://schemas.'
                b'openxmlformats.org/spreadsheetml/2006/main"><si><t>text</t></si>'
                b"<si><t>theft</t></si>"
            )
            chunk = b"<si><t>xy</t></si>" * 100_000
            for _ in range(copies):
                f.write(chunk)
            f.write(b"</sst>")


def test_xlsx_zip_bomb_is_refused_before_it_is_parsed(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xlsx"
    _xlsx_bomb(bomb, copies=20)  # 36 MB of XML in a file of a few hundred KB
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(FileTooLarge) as err:
        bio.open_reader(bomb, max_decompressed_bytes=10_000_000)
    assert err.value.code == "file_too_large"
    assert err.value.http_status == 413
    # Under the limit the same file reads (the guard counts, it does not guess).
    assert bio.open_reader(bomb, max_decompressed_bytes=100_000_000).columns == ["text"]


def test_xlsx_with_an_extreme_compression_ratio_is_refused(tmp_path: Path) -> None:
    bomb = tmp_path / "bomb.xlsx"
    _xlsx_bomb(bomb, copies=80)  # ~144 MB of XML, compressed several hundred times
    with pytest.raises(FileTooLarge, match="compress"):
        bio.open_reader(bomb)


def test_csv_field_over_the_csv_module_limit_is_one_row(
    write_csv,
    coder: Coder,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    huge = "theft of a car\n" + "x" * 200_000 + "\nmore"  # quoted, over 131,072 characters
    src = write_csv(
        [["id", "text"], ["1", "ok"], ["2", huge], ["3", "Fraud by false representation"]]
    )
    rows = [r for chunk in bio.open_reader(src).chunks(10) for r in chunk.table.to_pylist()]
    assert [r["id"] for r in rows] == ["1", "2", "3"]
    assert rows[1]["text"] == huge
    out = tmp_path / "out.csv"
    summary = classify_file(src, out, BulkOptions(text_column="text", id_column="id"), coder)
    assert summary.rows == 3
    coded = read_csv(out)
    assert [r["id"] for r in coded] == ["1", "2", "3"]
    assert coded[1]["text"] == huge
    assert coded[1]["reason"] in (TRUNCATED, "no_words", "not_an_offence")


def test_parquet_cells_are_cut_before_a_dictionary_is_expanded(tmp_path: Path) -> None:
    # One long value on every row: tiny on disk (dictionary-encoded), huge once expanded.
    src = tmp_path / "dict.parquet"
    values = pa.array(["burglary " * 50] * 1000 + [None, "theft"])
    pq.write_table(pa.table({"text": values, "n": list(range(1002))}), src)
    reader = bio.open_reader(src, max_cell_chars=20)
    assert reader.empty_table().schema.field("text").type == pa.string()
    texts = [t for chunk in reader.chunks(300) for t in chunk.strings("text")]
    assert len(texts) == 1002
    assert set(texts[:1000]) == {("burglary " * 50)[:20]}
    assert texts[1000:] == ["", "theft"]


def test_parquet_row_group_over_the_limit_is_refused(tmp_path: Path) -> None:
    src = tmp_path / "big.parquet"
    pq.write_table(pa.table({"text": [f"theft of a bicycle {i}" for i in range(20_000)]}), src)
    with pytest.raises(FileTooLarge):
        bio.open_reader(src, max_decompressed_bytes=10_000)
    assert bio.open_reader(src).columns == ["text"]


def test_classify_frame_cuts_long_texts_too(counting: CountingPredictor) -> None:
    import pandas as pd

    from service.bulk import classify_frame

    df = pd.DataFrame({"text": [LONG, "Theft of a bicycle"]})
    out = classify_frame(df, "text", coder=Coder(counting), max_text_length=100)  # type: ignore[arg-type]
    assert max(len(t) for t in counting.texts_seen) <= 100
    assert out["text"].tolist() == [LONG, "Theft of a bicycle"]
    assert out["reason"][0] == TRUNCATED or out["status"][0] == "rejected"
    counting.calls.clear()
    classify_frame(df, "text", coder=Coder(counting))  # default: the API's cap
    assert max(len(t) for t in counting.texts_seen) <= BulkOptions(text_column="t").max_text_length
