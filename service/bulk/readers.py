"""Streaming readers for bulk files: CSV (sniffed encoding and delimiter), XLSX, Parquet.

Readers stream: they hand out :class:`Chunk` objects of a fixed number of rows, so memory stays
bounded whatever the file size. A bad row never stops a read: it comes back with a ``reason``
(``ragged_row``, ``undecodable_bytes``, ``malformed_csv``) and the engine rejects it.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.parquet as pq

from service.bulk.sniff import (
    ENCODING_SAMPLE_BYTES,
    SNIFF_SAMPLE_CHARS,
    check_encoding,
    detect_encoding,
    sniff_delimiter,
)
from service.errors import FileFormatError

REASON_RAGGED = "ragged_row"
REASON_UNDECODABLE = "undecodable_bytes"
REASON_MALFORMED = "malformed_csv"

_SURROGATES = re.compile("[\udc80-\udcff]")


def repair(value: str) -> str:
    """A decoded value with undecodable bytes (kept as surrogates) shown as U+FFFD."""
    return _SURROGATES.sub("\ufffd", value)


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file: the CSV settings a user may force (sniffed when None)."""

    encoding: str | None = None
    delimiter: str | None = None


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
        return [cell_text(v) for v in self.table.column(column).to_pylist()]


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


def cell_text(value: Any) -> str:
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


def unique_names(names: Sequence[str]) -> list[str]:
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


class _RecordReader:
    """A reader whose rows come as lists of strings (CSV, XLSX): chunks them into tables."""

    columns: list[str]

    def records(self) -> Iterator[tuple[list[str], str | None]]:
        """Every data record with its reject reason (None for a good one)."""
        raise NotImplementedError

    def chunks(self, size: int, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of ``size`` records after the first ``skip``."""
        yield from chunk_records(self.records(), self.columns, size, skip)

    def empty_table(self) -> pa.Table:
        """No rows, every input column a string."""
        return string_table(self.columns, [])


class CsvReader(_RecordReader):
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
        self.columns = unique_names([repair(h) for h in header])
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


class XlsxReader(_RecordReader):
    """Streams the first worksheet of an XLSX workbook (openpyxl read-only mode)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        header = next(self._rows(), None)
        if header is None:
            raise FileFormatError("The workbook's first sheet is empty.", path=self.path.name)
        while header and header[-1] is None:
            header = header[:-1]
        self.columns = unique_names([cell_text(v) for v in header])
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
            values = [cell_text(v) for v in row]
            reason = None
            if len(values) > width and any(values[width:]):
                reason = REASON_RAGGED
                values = values[: width - 1] + [" ".join(v for v in values[width - 1 :] if v)]
            values = (values + [""] * width)[:width]
            yield values, reason


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


def string_table(columns: list[str], rows: list[list[str]]) -> pa.Table:
    """Rows of strings as a table of string columns."""
    data = list(zip(*rows, strict=True)) if rows else [()] * len(columns)
    return pa.table({c: pa.array(list(v), pa.string()) for c, v in zip(columns, data, strict=True)})


def chunk_records(
    records: Iterator[tuple[list[str], str | None]], columns: list[str], size: int, skip: int
) -> Iterator[Chunk]:
    """Records grouped into chunks of ``size`` after the first ``skip``."""
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
            yield Chunk(start, string_table(columns, rows), reasons)
            start += len(rows)
            rows, reasons = [], []
    if rows:
        yield Chunk(start, string_table(columns, rows), reasons)
