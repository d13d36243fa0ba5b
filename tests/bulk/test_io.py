"""Readers and writers: encodings, delimiters, bad rows, XLSX and Parquet, column checks."""

from __future__ import annotations

import codecs
import io
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from openpyxl import Workbook

from service.bulk import io as bio
from service.errors import FileFormatError


def rows_of(reader, size: int = 1000, skip: int = 0):  # type: ignore[no-untyped-def]
    out = []
    for chunk in reader.chunks(size, skip=skip):
        cols = chunk.table.to_pydict()
        for i in range(len(chunk)):
            out.append(([cols[c][i] for c in reader.columns], chunk.reasons[i]))
    return out


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b"a,b\n1,2\n", "utf-8"),
        ("id,text\n1,Vol qualifi\u00e9\n".encode(), "utf-8"),
        (codecs.BOM_UTF8 + b"id,text\n1,Diebstahl\n", "utf-8-sig"),
        ("id,text\n1,Vol qualifi\u00e9\n2,Ha\u00dfrede\n".encode("latin-1"), "cp1252"),
        # 0x81 is undefined in Windows-1252: plain Latin-1 then.
        (b"id,text\n1,caf\xe9 \x81\n", "latin-1"),
    ],
)
def test_detect_encoding(data: bytes, expected: str) -> None:
    assert bio.detect_encoding(data) == expected


def test_mostly_utf8_file_stays_utf8() -> None:
    """A UTF-8 export with one Latin-1 row appended is UTF-8 (that row gets rejected)."""
    good = "".join(f"{i},Vol qualifi\u00e9 num\u00e9ro {i}\n" for i in range(20)).encode()
    assert bio.detect_encoding(b"id,text\n" + good + "9,caf\u00e9\n".encode("latin-1")) == "utf-8"


def test_utf8_sample_cut_inside_a_character() -> None:
    data = ("x" * 10 + "\u00e9").encode()
    assert bio.detect_encoding(data[:-1]) == "utf-8"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("id,text,code\n1,Theft; by night,A\n2,Assault,B\n", ","),
        ("id;text;code\n1;Theft, by night;A\n2;Assault;B\n", ";"),
        ("id\ttext\tcode\n1\tTheft, by night; with force\tA\n", "\t"),
        ("id|text\n1|Theft, by night\n2|Fraud; forgery\n", "|"),
        ("text\nTheft\nAssault\n", ","),
    ],
)
def test_sniff_delimiter(text: str, expected: str) -> None:
    assert bio.sniff_delimiter(text) == expected


def test_csv_reader_sniffs_and_streams(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    lines = ["id;offence;code"] + [f"{i};Theft of item {i}, at night;C{i % 3}" for i in range(25)]
    p.write_text("\n".join(lines) + "\n", encoding="utf-8")
    reader = bio.open_reader(p)
    assert reader.delimiter == ";"
    assert reader.columns == ["id", "offence", "code"]
    chunks = list(reader.chunks(10))
    assert [len(c) for c in chunks] == [10, 10, 5]
    assert [c.start for c in chunks] == [0, 10, 20]
    assert chunks[2].strings("offence")[0] == "Theft of item 20, at night"
    # Resuming skips exactly the rows already done.
    rest = rows_of(reader, 10, skip=13)
    assert rest[0][0] == ["13", "Theft of item 13, at night", "C1"]
    assert len(rest) == 12
    assert reader.estimate_rows() == 25


def test_bad_rows_are_kept_with_a_reason(tmp_path: Path) -> None:
    p = tmp_path / "bad.csv"
    data = (
        (
            b"id,text,code\n"
            b"1,Burglary of a dwelling,A\n"
            b"2,too few\n"
            b"3,too,many,fields,here\n"
            b"\n"  # blank line: not a record
            b'4,"quoted, with comma",B\n'
        )
        + "5,Vol qualifi\u00e9,C\n".encode("latin-1")
        + b"6,Fraud,D\n"
    )
    p.write_bytes(data)
    reader = bio.open_reader(p, encoding="utf-8")
    rows = rows_of(reader)
    assert [r[1] for r in rows] == [
        None,
        bio.REASON_RAGGED,
        bio.REASON_RAGGED,
        None,
        bio.REASON_UNDECODABLE,
        None,
    ]
    assert rows[1][0] == ["2", "too few", ""]
    assert rows[2][0] == ["3", "too", "many,fields,here"]  # surplus kept in the last column
    assert rows[3][0][1] == "quoted, with comma"
    assert rows[4][0][1] == "Vol qualifi\ufffd"  # shown, not silently repaired
    assert rows[5][0] == ["6", "Fraud", "D"]


def test_oversized_field_is_read_whole_not_split(tmp_path: Path) -> None:
    # Over the csv module's default 131,072 characters: read as one field (the engine cuts
    # the text to the cap), never a malformed row followed by invented ones.
    p = tmp_path / "huge.csv"
    p.write_text("id,text\n1,ok\n2," + "x" * 200_000 + "\n3,Fraud\n", encoding="utf-8")
    rows = rows_of(bio.open_reader(p))
    assert rows == [(["1", "ok"], None), (["2", "x" * 200_000], None), (["3", "Fraud"], None)]


def test_latin1_and_bom_files_read_correctly(tmp_path: Path) -> None:
    latin = tmp_path / "latin.csv"
    latin.write_bytes("id;texte\n1;Vol qualifi\u00e9\n".encode("latin-1"))
    bom = tmp_path / "bom.csv"
    bom.write_bytes(codecs.BOM_UTF8 + "id,text\n1,Ha\u00dfrede\n".encode())
    r1, r2 = bio.open_reader(latin), bio.open_reader(bom)
    assert r1.columns == ["id", "texte"] and rows_of(r1)[0][0][1] == "Vol qualifi\u00e9"
    assert r2.columns == ["id", "text"] and rows_of(r2)[0][0][1] == "Ha\u00dfrede"


def test_duplicate_and_empty_header_names(tmp_path: Path) -> None:
    p = tmp_path / "h.csv"
    p.write_text("text,text,,id\na,b,c,d\n", encoding="utf-8")
    assert bio.open_reader(p).columns == ["text", "text.1", "column_3", "id"]


def test_missing_column_names_the_columns_found(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_text("id,Offence Description\n1,Theft\n", encoding="utf-8")
    reader = bio.open_reader(p)
    with pytest.raises(FileFormatError) as err:
        bio.resolve_column(reader.columns, "text", "--text-column")
    assert "'id', 'Offence Description'" in err.value.message
    assert err.value.context["columns_found"] == ["id", "Offence Description"]
    # A case or spacing slip is forgiven when it is unambiguous.
    assert bio.resolve_column(reader.columns, "offence description", "--text-column") == (
        "Offence Description"
    )


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.csv", b"", "empty"),
        ("data.json", b"{}", "Unsupported file type"),
        ("broken.xlsx", b"not a zip", "XLSX"),
        ("broken.parquet", b"not parquet", "Parquet"),
    ],
)
def test_unreadable_files_fail_fast(
    tmp_path: Path, name: str, content: bytes, message: str
) -> None:
    p = tmp_path / name
    p.write_bytes(content)
    with pytest.raises(FileFormatError, match=message):
        bio.open_reader(p)


def test_unknown_encoding_and_bad_delimiter(tmp_path: Path) -> None:
    p = tmp_path / "in.csv"
    p.write_text("a,b\n1,2\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="Unknown encoding"):
        bio.open_reader(p, encoding="no-such-codec")
    with pytest.raises(FileFormatError, match="one character"):
        bio.open_reader(p, delimiter=";;")
    assert bio.open_reader(p, delimiter="tab").delimiter == "\t"


def test_xlsx_reader(tmp_path: Path) -> None:
    wb = Workbook()
    ws = wb.active
    ws.append(["id", "offence", "code"])
    ws.append([1, "Theft of a bicycle", 110])
    ws.append([None, None, None])  # blank row: skipped
    ws.append([2.0, "Assault", "02A", "extra"])  # a cell past the header: ragged
    ws.append([3, None])
    p = tmp_path / "in.xlsx"
    wb.save(p)
    reader = bio.open_reader(p)
    assert reader.columns == ["id", "offence", "code"]
    rows = rows_of(reader)
    assert rows == [
        (["1", "Theft of a bicycle", "110"], None),
        (["2", "Assault", "02A extra"], bio.REASON_RAGGED),
        (["3", "", ""], None),
    ]
    assert rows_of(reader, skip=2) == rows[2:]


def test_parquet_reader_keeps_types_and_skips(tmp_path: Path) -> None:
    p = tmp_path / "in.parquet"
    texts = [f"t{i}" if i % 5 else None for i in range(25)]
    table = pa.table({"id": list(range(25)), "text": texts})
    pq.write_table(table, p, row_group_size=7)
    reader = bio.open_reader(p)
    assert reader.estimate_rows() == 25
    chunks = list(reader.chunks(10, skip=3))
    assert [len(c) for c in chunks] == [10, 10, 2]
    assert chunks[0].table.column("id").to_pylist()[0] == 3
    assert chunks[0].table.schema.field("id").type == pa.int64()
    assert chunks[0].strings("text")[2] == ""  # null -> empty text


def test_csv_writer_quotes_only_when_needed() -> None:
    f = io.StringIO()
    table = pa.table({"a": ["x", "y,z", None], "b": [0.25, None, 1.0], "n": [1, 2, None]})
    bio.write_csv_rows(f, table)
    assert f.getvalue() == 'x,0.25,1\n"y,z",,2\n,1.0,\n'


def test_file_format_by_extension() -> None:
    assert bio.file_format(Path("a.TSV")) == "csv"
    assert bio.file_format(Path("a.pq")) == "parquet"
    with pytest.raises(FileFormatError):
        bio.file_format(Path("a.xls"))


@pytest.mark.parametrize("codec", ["base64", "rot13", "zlib_codec", "hex", "bz2"])
def test_non_text_codecs_are_refused_at_once(tmp_path: Path, codec: str) -> None:
    p = tmp_path / "a.csv"
    p.write_text("text\ntheft\n", encoding="utf-8")
    with pytest.raises(FileFormatError, match="not a text encoding"):
        bio.open_reader(p, encoding=codec)


def test_duplicate_parquet_column_names_are_made_unique(tmp_path: Path) -> None:
    p = tmp_path / "dup.parquet"
    table = pa.Table.from_arrays(
        [pa.array(["theft", "fraud"]), pa.array(["a", "b"]), pa.array([1, 2])],
        names=["text", "text", ""],
    )
    pq.write_table(table, p)
    reader = bio.open_reader(p)
    assert reader.columns == ["text", "text.1", "column_3"]
    (chunk,) = reader.chunks(10)
    assert chunk.strings("text") == ["theft", "fraud"]
    assert chunk.strings("text.1") == ["a", "b"]
    assert reader.empty_table().column_names == reader.columns
