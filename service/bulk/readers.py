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
import sys
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Protocol

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from service.bulk.sniff import (
    ENCODING_SAMPLE_BYTES,
    SNIFF_SAMPLE_CHARS,
    check_encoding,
    detect_encoding,
    sniff_delimiter,
)
from service.errors import FileFormatError, FileTooLarge

REASON_RAGGED = "ragged_row"
REASON_UNDECODABLE = "undecodable_bytes"
REASON_MALFORMED = "malformed_csv"

_SURROGATES = re.compile("[\udc80-\udcff]")


def repair(value: str) -> str:
    """A decoded value with undecodable bytes (kept as surrogates) shown as U+FFFD."""
    return _SURROGATES.sub("\ufffd", value)


def setting_default(name: str) -> int:
    """A numeric setting's default (the core reads no environment; callers pass values)."""
    from service.config import Settings

    return int(Settings.model_fields[name].default)


DEFAULT_MAX_DECOMPRESSED_BYTES = setting_default("max_decompressed_bytes")
# Excel's longest cell. Parquet string cells are cut to this when read, so a few KB of
# compressed file cannot become gigabytes of Python strings; any cut text is still longer
# than the text cap, so the engine flags it.
MAX_CELL_CHARS = 32_767
# An XLSX unpacking to more than this is refused when it is also compressed more than
# XLSX_MAX_RATIO times: spreadsheets compress 5-30x, shared-strings bombs 1000x.
XLSX_RATIO_FLOOR = 100_000_000
XLSX_MAX_RATIO = 200

# A quoted CSV field may span many lines and be longer than the csv module's default 131,072
# characters; that limit made the reader resume mid-field and invent rows. A field is now read
# whole (the upload limit bounds it) and the engine cuts the text to the cap.
try:
    csv.field_size_limit(sys.maxsize)
except OverflowError:  # a C long of 32 bits
    csv.field_size_limit(2**31 - 1)


@dataclass(frozen=True)
class ReadOptions:
    """How to read a file: the CSV settings a user may force (sniffed when None), and limits."""

    encoding: str | None = None
    delimiter: str | None = None
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    max_cell_chars: int = MAX_CELL_CHARS


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

    def __init__(
        self, path: Path, max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES
    ) -> None:
        self.path = Path(path)
        check_zip_size(self.path, max_decompressed_bytes)
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


def check_zip_size(path: Path, limit: int) -> None:
    """Refuse a zip container (XLSX) that unpacks to more than ``limit`` bytes, or that is
    compressed like a bomb, before any XML parser sees it.

    The sizes come from the zip directory; Python's zip reader never returns more than the
    size a member declares, so a member cannot lie its way past this check.
    """
    try:
        with zipfile.ZipFile(path) as zf:
            infos = zf.infolist()
    except (zipfile.BadZipFile, OSError) as exc:
        raise FileFormatError(
            f"Not a readable XLSX workbook: {type(exc).__name__}.", path=path.name
        ) from exc
    size = sum(i.file_size for i in infos)
    packed = max(sum(i.compress_size for i in infos), 1)
    if size > limit:
        raise FileTooLarge(
            f"The workbook unpacks to {size:,} bytes, more than the {limit:,} read here; "
            "save it as CSV or Parquet, or split it.",
            unpacked_bytes=size,
            limit=limit,
        )
    if size > XLSX_RATIO_FLOOR and size > XLSX_MAX_RATIO * packed:
        raise FileTooLarge(
            f"The workbook is compressed {size // packed:,} times ({size:,} bytes unpacked); "
            "spreadsheets are not. Save it as CSV.",
            unpacked_bytes=size,
            limit=limit,
        )


class ParquetReader:
    """Streams a Parquet file in record batches, keeping the columns' own types.

    Column names are made unique like a CSV header's. String cells longer than
    ``max_cell_chars`` are cut to it, and a dictionary-encoded string column is cut in its
    dictionary before it is expanded, so one long value repeated on every row stays cheap.
    """

    def __init__(
        self,
        path: Path,
        max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
        max_cell_chars: int = MAX_CELL_CHARS,
    ) -> None:
        self.path = Path(path)
        self.max_cell_chars = max_cell_chars
        try:
            meta = pq.ParquetFile(self.path).metadata
            dictionary = _dictionary_columns(meta)
            self._file = pq.ParquetFile(self.path, read_dictionary=dictionary)
        except (pa.ArrowInvalid, OSError) as exc:
            raise FileFormatError(
                f"Not a readable Parquet file: {exc}.", path=self.path.name
            ) from exc
        for i in range(meta.num_row_groups):
            size = meta.row_group(i).total_byte_size
            if size > max_decompressed_bytes:
                raise FileTooLarge(
                    f"A row group of the Parquet file holds {size:,} bytes uncompressed, more "
                    f"than the {max_decompressed_bytes:,} read at once here; write it with "
                    "smaller row groups.",
                    unpacked_bytes=size,
                    limit=max_decompressed_bytes,
                )
        arrow = self._file.schema_arrow
        self.columns = unique_names(list(arrow.names))
        fields = [
            pa.field(name, _plain(f.type), f.nullable)
            for f, name in zip(arrow, self.columns, strict=True)
        ]
        renamed = self.columns != list(arrow.names)
        self.schema = pa.schema(fields, metadata=None if renamed else arrow.metadata)
        self.description = "Parquet"

    def _prepare(self, batch: pa.RecordBatch) -> pa.RecordBatch:
        """A batch under the reader's schema: long strings cut, dictionaries expanded."""
        cap = self.max_cell_chars
        columns = []
        for col in batch.columns:
            if pa.types.is_dictionary(col.type) and _is_text(col.type.value_type):
                values = col.dictionary
                if len(values) and (pc.max(pc.utf8_length(values)).as_py() or 0) > cap:
                    values = pc.utf8_slice_codeunits(values, 0, cap)
                col = pa.DictionaryArray.from_arrays(col.indices, values).dictionary_decode()
            elif (
                _is_text(col.type) and len(col) and (pc.max(pc.utf8_length(col)).as_py() or 0) > cap
            ):
                col = pc.utf8_slice_codeunits(col, 0, cap)
            columns.append(col)
        return pa.RecordBatch.from_arrays(columns, schema=self.schema)

    def estimate_rows(self) -> int | None:
        """Exact, from the file metadata."""
        return int(self._file.metadata.num_rows)

    def chunks(self, size: int, skip: int = 0) -> Iterator[Chunk]:
        """Chunks of ``size`` rows after the first ``skip``."""
        pos = 0
        pending: list[pa.RecordBatch] = []
        pending_rows = 0
        start = skip
        for raw in self._file.iter_batches(batch_size=size):
            batch = self._prepare(raw)
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


def _is_text(t: pa.DataType) -> bool:
    return bool(pa.types.is_string(t) or pa.types.is_large_string(t))


def _plain(t: pa.DataType) -> pa.DataType:
    """A dictionary type's value type (what the reader hands out), other types as they are."""
    return t.value_type if pa.types.is_dictionary(t) and _is_text(t.value_type) else t


def _dictionary_columns(meta: pq.FileMetaData) -> list[str]:
    """Top-level columns stored dictionary-encoded (read as dictionaries, never expanded)."""
    if meta.num_row_groups == 0:
        return []
    group = meta.row_group(0)
    out = []
    for j in range(group.num_columns):
        col = group.column(j)
        if "." not in col.path_in_schema and any("DICTIONARY" in e for e in col.encodings):
            out.append(col.path_in_schema)
    return out


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
