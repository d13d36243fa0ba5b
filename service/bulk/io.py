"""Readers and writers for bulk files: CSV (any delimiter, sniffed encoding), XLSX, Parquet.

Readers stream: they hand out :class:`Chunk` objects of a fixed number of rows, so memory stays
bounded whatever the file size. A bad row never stops a read: it comes back with a ``reason``
(``ragged_row``, ``undecodable_bytes``, ``malformed_csv``) and the engine rejects it. A file whose
header lacks a requested column fails at once with :class:`FileFormatError` naming the columns
that were found.
"""

from __future__ import annotations

import codecs
import csv
import datetime as dt
import io
import json
import re
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from service.errors import FileFormatError

FORMATS = {
    ".csv": "csv",
    ".tsv": "csv",
    ".txt": "csv",
    ".xlsx": "xlsx",
    ".parquet": "parquet",
    ".pq": "parquet",
}
DELIMITERS = (",", ";", "\t", "|")
# Excel's sheet limit, header included.
XLSX_MAX_ROWS = 1_048_576
# How much of a CSV file encoding detection and delimiter sniffing look at.
ENCODING_SAMPLE_BYTES = 4 * 1024 * 1024
SNIFF_SAMPLE_CHARS = 64 * 1024

REASON_RAGGED = "ragged_row"
REASON_UNDECODABLE = "undecodable_bytes"
REASON_MALFORMED = "malformed_csv"

_SURROGATES = re.compile("[\udc80-\udcff]")


def file_format(path: Path) -> str:
    """``csv``, ``xlsx`` or ``parquet`` from the file extension."""
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise FileFormatError(
            f"Unsupported file type '{Path(path).suffix}': "
            "use .csv, .tsv, .txt, .xlsx or .parquet.",
            suffix=Path(path).suffix,
        )
    return fmt


def repair(value: str) -> str:
    """A decoded value with undecodable bytes (kept as surrogates) shown as U+FFFD."""
    return _SURROGATES.sub("\ufffd", value)


# --- encoding and delimiter detection -----------------------------------------------------


def detect_encoding(head: bytes) -> str:
    """Encoding of a CSV file from its first bytes: UTF-8 (with or without BOM) or Latin-1.

    A file is UTF-8 when its non-ASCII bytes are mostly valid UTF-8 sequences: a UTF-8 export
    with a few Latin-1 rows appended (mixed encodings) stays UTF-8 and those rows are rejected
    as undecodable, rather than every accented letter in the file turning into mojibake.
    Western legacy exports that are not UTF-8 are Windows-1252 (a superset of Latin-1's
    printable characters); bytes it does not define fall back to plain Latin-1.
    """
    if head.startswith(codecs.BOM_UTF8):
        return "utf-8-sig"
    if head.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        return "utf-16"
    if head.isascii():
        return "utf-8"
    # The sample may end inside a multi-byte character; an incremental decoder waits for it.
    decoded = codecs.getincrementaldecoder("utf-8")("replace").decode(head, final=False)
    bad = decoded.count("\ufffd")
    good = sum(1 for ch in decoded if ord(ch) > 127) - bad
    if bad == 0 or good > bad:
        return "utf-8"
    try:
        head.decode("cp1252")
    except UnicodeDecodeError:
        return "latin-1"
    return "cp1252"


def check_encoding(name: str) -> str:
    """The codec name, or :class:`FileFormatError` for one Python does not know."""
    try:
        return codecs.lookup(name).name
    except LookupError as exc:
        raise FileFormatError(f"Unknown encoding '{name}'.", encoding=name) from exc


def sniff_delimiter(sample: str, preferred: str = ",") -> str:
    """The delimiter among , ; TAB | that splits the sample's lines most consistently.

    ``csv.Sniffer`` guesses from character frequencies and is easily fooled by punctuation in
    offence texts ("Theft; by night"); parsing the first lines with each candidate and keeping
    the one that gives the header's field count on most lines is sturdier.
    """
    lines = sample.splitlines()[:200]
    if len(lines) > 1:
        lines = lines[:-1]  # the last line of a sample may be cut short
    best, best_score = preferred, (0.0, 1)
    for delim in DELIMITERS:
        try:
            records = [r for r in csv.reader(lines, delimiter=delim) if r]
        except csv.Error:
            continue
        if not records or len(records[0]) < 2:
            continue
        width = len(records[0])
        consistency = sum(1 for r in records if len(r) == width) / len(records)
        score = (round(consistency, 2), width)
        if score > best_score or (score == best_score and delim == preferred):
            best, best_score = delim, score
    return best


# --- chunks and readers -------------------------------------------------------------------


@dataclass
class Chunk:
    """A run of consecutive data rows: the input columns plus a pre-model reject reason."""

    start: int  # index of the first row among the file's data rows (0-based)
    table: pa.Table  # the input columns, in file order
    reasons: list[str | None]  # why a row is unusable before any model looks at it

    def __len__(self) -> int:
        return int(self.table.num_rows)

    def strings(self, column: str) -> list[str]:
        """A column as text, nulls as empty strings."""
        return [_cell_text(v) for v in self.table.column(column).to_pylist()]


class Reader(Protocol):
    """What the engine needs from a file reader."""

    columns: list[str]
    description: str

    def estimate_rows(self) -> int | None:
        """Number of data rows, exact or estimated; None when unknown."""
        ...

    def chunks(self, size: int, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of ``size`` rows, starting after the first ``skip`` data rows."""
        ...

    def empty_table(self) -> pa.Table:
        """A table with the input schema and no rows."""
        ...


def _cell_text(value: Any) -> str:
    """A spreadsheet or Parquet value as the text a person would read in the cell."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float):
        # Excel stores 12 as 12.0; agency codes read as numbers must not grow a ".0".
        return str(int(value)) if value.is_integer() else repr(value)
    if isinstance(value, dt.datetime | dt.date | dt.time):
        return value.isoformat()
    if isinstance(value, Decimal | int):
        return str(value)
    if isinstance(value, bytes):
        return repair(value.decode("utf-8", "surrogateescape"))
    return json.dumps(value, default=str, ensure_ascii=False)


def _unique_names(names: Sequence[str]) -> list[str]:
    """Header names made unique and non-empty (``col``, ``col.1``; ``column_3``)."""
    out: list[str] = []
    seen: set[str] = set()
    for i, raw in enumerate(names):
        base = raw.strip() if raw and raw.strip() else f"column_{i + 1}"
        name, n = base, 0
        while name in seen:
            n += 1
            name = f"{base}.{n}"
        seen.add(name)
        out.append(name)
    return out


class CsvReader:
    """Streams a delimited text file; encoding and delimiter sniffed unless given."""

    def __init__(
        self, path: Path, encoding: str | None = None, delimiter: str | None = None
    ) -> None:
        self.path = Path(path)
        with self.path.open("rb") as f:
            head = f.read(ENCODING_SAMPLE_BYTES)
        self.encoding = check_encoding(encoding) if encoding else detect_encoding(head)
        if delimiter is not None:
            if delimiter in ("\\t", "tab", "TAB"):
                delimiter = "\t"
            if len(delimiter) != 1:
                raise FileFormatError("The delimiter must be one character.", delimiter=delimiter)
            self.delimiter = delimiter
        else:
            sample = head[: SNIFF_SAMPLE_CHARS * 4].decode(self.encoding, "replace")
            preferred = "\t" if self.path.suffix.lower() == ".tsv" else ","
            self.delimiter = sniff_delimiter(sample[:SNIFF_SAMPLE_CHARS], preferred)
        with self._open() as f:
            try:
                header = next(csv.reader(f, delimiter=self.delimiter))
            except StopIteration:
                raise FileFormatError(
                    "The file is empty: no header row.", path=self.path.name
                ) from None
            except csv.Error as exc:
                raise FileFormatError(
                    f"Unreadable CSV header: {exc}.", path=self.path.name
                ) from exc
        self.columns = _unique_names([repair(h) for h in header])
        shown = "TAB" if self.delimiter == "\t" else self.delimiter
        self.description = f"CSV, encoding {self.encoding}, delimiter '{shown}'"

    def _open(self) -> io.TextIOWrapper:
        # surrogateescape keeps undecodable bytes visible, so the row can be rejected, not lost.
        return self.path.open(encoding=self.encoding, errors="surrogateescape", newline="")

    def estimate_rows(self) -> int | None:
        """Line count minus the header (quoted line breaks make it an estimate)."""
        count, last = 0, b"\n"
        with self.path.open("rb") as f:
            while block := f.read(8 * 1024 * 1024):
                count += block.count(b"\n")
                last = block[-1:]
        if last != b"\n":
            count += 1
        return max(count - 1, 0)

    def records(self) -> Iterator[tuple[list[str], str | None]]:
        """Every data record with its reject reason (None for a good one)."""
        width = len(self.columns)
        with self._open() as f:
            reader = csv.reader(f, delimiter=self.delimiter)
            next(reader, None)  # header
            while True:
                try:
                    record = next(reader)
                except StopIteration:
                    return
                except csv.Error:
                    # The reader resets its state on the next call: carry on with the next line.
                    yield [""] * width, REASON_MALFORMED
                    continue
                if not record:
                    continue  # a blank line is not a record
                reason = None
                # Undecodable bytes stay as lone surrogates (never valid text): one cheap ASCII
                # test per record, the regex only for records with non-ASCII characters.
                if not all(map(str.isascii, record)) and _SURROGATES.search("".join(record)):
                    record = [repair(v) for v in record]
                    reason = REASON_UNDECODABLE
                if len(record) != width:
                    reason = reason or REASON_RAGGED
                    if len(record) < width:
                        record = record + [""] * (width - len(record))
                    else:
                        # Keep the surplus fields in the last column rather than drop data.
                        record = record[: width - 1] + [self.delimiter.join(record[width - 1 :])]
                yield record, reason

    def chunks(self, size: int, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of ``size`` records after the first ``skip``."""
        yield from _chunk_records(self.records(), self.columns, size, skip)

    def empty_table(self) -> pa.Table:
        """No rows, every input column a string."""
        return _string_table(self.columns, [])


class XlsxReader:
    """Streams the first worksheet of an XLSX workbook (openpyxl read-only mode)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        header = next(self._rows(), None)
        if header is None:
            raise FileFormatError("The workbook's first sheet is empty.", path=self.path.name)
        while header and header[-1] is None:
            header = header[:-1]
        self.columns = _unique_names([_cell_text(v) for v in header])
        self.description = "XLSX, first worksheet"

    def _rows(self) -> Iterator[tuple[Any, ...]]:
        from openpyxl import load_workbook

        try:
            wb = load_workbook(self.path, read_only=True, data_only=True)
        except Exception as exc:  # openpyxl raises many kinds for a broken file
            raise FileFormatError(
                f"Not a readable XLSX workbook: {type(exc).__name__}.", path=self.path.name
            ) from exc
        try:
            yield from wb.worksheets[0].iter_rows(values_only=True)
        finally:
            wb.close()

    def estimate_rows(self) -> int | None:
        """Rows in the sheet's stored dimension, if the writer recorded one."""
        from openpyxl import load_workbook

        wb = load_workbook(self.path, read_only=True, data_only=True)
        try:
            n = wb.worksheets[0].max_row
        finally:
            wb.close()
        return max(n - 1, 0) if n else None

    def records(self) -> Iterator[tuple[list[str], str | None]]:
        """Data rows as text; blank rows skipped; cells past the header make a row ragged."""
        width = len(self.columns)
        rows = self._rows()
        next(rows, None)
        for row in rows:
            if all(v is None or v == "" for v in row):
                continue
            values = [_cell_text(v) for v in row]
            reason = None
            if len(values) > width and any(values[width:]):
                reason = REASON_RAGGED
                values = values[: width - 1] + [" ".join(v for v in values[width - 1 :] if v)]
            values = (values + [""] * width)[:width]
            yield values, reason

    def chunks(self, size: int, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of ``size`` rows after the first ``skip``."""
        yield from _chunk_records(self.records(), self.columns, size, skip)

    def empty_table(self) -> pa.Table:
        """No rows, every input column a string."""
        return _string_table(self.columns, [])


class ParquetReader:
    """Streams a Parquet file in record batches, keeping the columns' own types."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        try:
            self._file = pq.ParquetFile(self.path)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileFormatError(
                f"Not a readable Parquet file: {exc}.", path=self.path.name
            ) from exc
        self.schema = self._file.schema_arrow
        self.columns = list(self.schema.names)
        self.description = "Parquet"

    def estimate_rows(self) -> int | None:
        """Exact, from the file metadata."""
        return int(self._file.metadata.num_rows)

    def chunks(self, size: int, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of ``size`` rows after the first ``skip``."""
        pos = 0
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        start = skip
        for batch in self._file.iter_batches(batch_size=size):
            if pos + batch.num_rows <= skip:
                pos += batch.num_rows
                continue
            if pos < skip:
                batch = batch.slice(skip - pos)
            pos = max(pos, skip) + batch.num_rows
            pending.append(batch)
            pending_rows += batch.num_rows
            while pending_rows >= size:
                table = pa.Table.from_batches(pending, schema=self.schema)
                head, rest = table.slice(0, size), table.slice(size)
                yield Chunk(start, head, [None] * head.num_rows)
                start += size
                pending = rest.to_batches()
                pending_rows = rest.num_rows
        if pending_rows:
            table = pa.Table.from_batches(pending, schema=self.schema)
            yield Chunk(start, table, [None] * table.num_rows)

    def empty_table(self) -> pa.Table:
        """No rows, the file's schema."""
        return self.schema.empty_table()


def _string_table(columns: list[str], rows: list[list[str]]) -> pa.Table:
    data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pa.table({c: pa.array(list(v), pa.string()) for c, v in zip(columns, data, strict=True)})


def _chunk_records(
    records: Iterator[tuple[list[str], str | None]], columns: list[str], size: int, skip: int
) -> Iterator[Chunk]:
    index = 0
    rows: list[list[str]] = []
    reasons: list[str | None] = []
    start = skip
    for record, reason in records:
        if index < skip:
            index += 1
            continue
        index += 1
        rows.append(record)
        reasons.append(reason)
        if len(rows) >= size:
            yield Chunk(start, _string_table(columns, rows), reasons)
            start += len(rows)
            rows, reasons = [], []
    if rows:
        yield Chunk(start, _string_table(columns, rows), reasons)


def open_reader(
    path: Path, encoding: str | None = None, delimiter: str | None = None
) -> CsvReader | XlsxReader | ParquetReader:
    """The reader for a file, by extension."""
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"No such file: {path.name}.", path=path.name)
    fmt = file_format(path)
    if fmt == "csv":
        return CsvReader(path, encoding=encoding, delimiter=delimiter)
    if fmt == "xlsx":
        return XlsxReader(path)
    return ParquetReader(path)


def resolve_column(columns: Sequence[str], wanted: str, option: str) -> str:
    """The header name matching ``wanted`` (exactly, else ignoring case and spaces).

    Fails fast with the columns that were found, so a user sees at once "you meant
    'Offence description'" instead of a million rejected rows.
    """
    if wanted in columns:
        return wanted
    loose = [c for c in columns if c.strip().casefold() == wanted.strip().casefold()]
    if len(loose) == 1:
        return loose[0]
    found = ", ".join(repr(c) for c in columns)
    raise FileFormatError(
        f"Column '{wanted}' ({option}) is not in the file. Columns found: {found}.",
        column=wanted,
        columns_found=list(columns),
    )


# --- writers ------------------------------------------------------------------------------


def csv_text(value: Any) -> str:
    """A value as written into an output CSV cell (before quoting)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return _cell_text(value)


def csv_field(value: str) -> str:
    """A cell quoted the minimal RFC 4180 way (comma-delimited output)."""
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    if "," in value or "\n" in value or "\r" in value:
        return '"' + value + '"'
    return value


def render_column(column: pa.Array | pa.ChunkedArray) -> list[str]:
    """A column's cells as quoted CSV fields."""
    values = column.to_pylist()
    if _all_str(column.type):
        return ["" if v is None else csv_field(v) for v in values]
    return [csv_field(csv_text(v)) for v in values]


def render_lines(columns: Sequence[Sequence[str]]) -> str:
    """CSV lines from columns of already quoted fields.

    Faster than ``csv.writer`` on this output: the long JSON ``alternatives`` cells are the
    same few thousand strings over and over, and the engine quotes each of them once.
    """
    if not columns or not columns[0]:
        return ""
    return "\n".join(map(",".join, zip(*columns, strict=True))) + "\n"


def write_csv_rows(f: io.TextIOBase, table: pa.Table) -> None:
    """Append a table's rows (no header) to an open CSV text file."""
    for batch in table.to_batches(max_chunksize=50_000):
        f.write(render_lines([render_column(c) for c in batch.columns]))


def _all_str(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def write_csv_header(f: io.TextIOBase, columns: Sequence[str]) -> None:
    """The header line of an output CSV."""
    f.write(",".join(csv_field(c) for c in columns) + "\n")


def write_xlsx(path: Path, columns: Sequence[str], tables: Iterable[pa.Table]) -> int:
    """A single-sheet XLSX from tables (streamed, write-only mode); returns the rows written."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("coded")
    ws.append(list(columns))
    n = 0
    for table in tables:
        for batch in table.to_batches(max_chunksize=10_000):
            cols = batch.to_pydict()
            for row in zip(*cols.values(), strict=True):
                ws.append([_xlsx_value(v) for v in row])
                n += 1
                if n >= XLSX_MAX_ROWS:
                    raise FileFormatError(
                        "Too many rows for an XLSX sheet; write CSV or Parquet instead.",
                        rows=n,
                    )
    wb.save(path)
    return n


def _xlsx_value(v: Any) -> Any:
    if v is None or isinstance(v, str | int | float | bool | dt.datetime | dt.date):
        # Control characters are illegal in XLSX cells; drop them rather than fail the file.
        return _ILLEGAL_XLSX.sub("", v) if isinstance(v, str) else v
    return _cell_text(v)


_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")


Sheet = tuple[str, Sequence[str], Iterable[Sequence[Any]]]


def write_sheets(path: Path, sheets: Sequence[Sheet]) -> None:
    """An XLSX with several sheets of rows (used for correspondence tables)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for name, header, rows in sheets:
        ws = wb.create_sheet(name)
        ws.append(list(header))
        for row in rows:
            ws.append([_xlsx_value(v) for v in row])
    wb.save(path)


ProgressCallback = Callable[[int, int | None], None]
