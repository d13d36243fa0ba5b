"""The bulk file formats: one :class:`Format` entry per format, and opening files by extension.

Everything that depends on a file's format reads this registry: readers (by the input's
extension), the engine's part files and final writer, the Spark engine, the job runner's
result name and the API's media types. Adding a format is adding one entry to ``FORMATS``.

Reading and writing live in :mod:`service.bulk.readers` and :mod:`service.bulk.writers`;
the names below are re-exported so callers import one module.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from service.bulk import writers
from service.bulk.readers import (
    DEFAULT_MAX_DECOMPRESSED_BYTES,
    MAX_CELL_CHARS,
    REASON_MALFORMED,
    REASON_RAGGED,
    REASON_UNDECODABLE,
    Chunk,
    CsvReader,
    ParquetReader,
    Reader,
    ReadOptions,
    XlsxReader,
    cell_text,
    repair,
)
from service.bulk.sniff import DELIMITERS, check_encoding, detect_encoding, sniff_delimiter
from service.bulk.writers import (
    XLSX_MAX_ROWS,
    Sheet,
    csv_field,
    csv_text,
    render_column,
    render_lines,
    write_csv_header,
    write_csv_rows,
    write_sheets,
    write_xlsx,
)
from service.errors import FileFormatError

__all__ = [
    "DELIMITERS",
    "FORMATS",
    "FORMATS_BY_EXTENSION",
    "REASON_MALFORMED",
    "REASON_RAGGED",
    "REASON_UNDECODABLE",
    "XLSX_MAX_ROWS",
    "MAX_CELL_CHARS",
    "Chunk",
    "CsvReader",
    "Format",
    "ParquetReader",
    "PartFormat",
    "ProgressCallback",
    "ReadOptions",
    "Reader",
    "Sheet",
    "XlsxReader",
    "cell_text",
    "check_encoding",
    "csv_field",
    "csv_text",
    "detect_encoding",
    "file_format",
    "format_named",
    "format_of",
    "media_type",
    "open_reader",
    "render_column",
    "render_lines",
    "repair",
    "resolve_column",
    "sniff_delimiter",
    "write_csv_header",
    "write_csv_rows",
    "write_sheets",
    "write_xlsx",
]

ReaderFactory = Callable[[Path, ReadOptions], Reader]
# (output path, schema, tables) -> the finished file.
TableWriter = Callable[[Path, pa.Schema, Iterable[pa.Table]], None]
# (part path, renamed input columns, result rows, result schema) -> the part on disk.
PartWriter = Callable[[Path, pa.Table, Sequence[Sequence[Any]], pa.Schema], None]
ProgressCallback = Callable[[int, int | None], None]


@dataclass(frozen=True)
class PartFormat:
    """How the engine keeps a committed chunk of output rows until the run ends."""

    suffix: str
    write: PartWriter
    # (output path, output schema, part paths, the format's table writer) -> the output file.
    assemble: Callable[[Path, pa.Schema, Sequence[Path], TableWriter], None]


def _join_parquet_parts(
    path: Path, schema: pa.Schema, parts: Sequence[Path], write: TableWriter
) -> None:
    write(path, schema, (pq.read_table(p) for p in parts))


def _join_csv_parts(
    path: Path, schema: pa.Schema, parts: Sequence[Path], write: TableWriter
) -> None:
    writers.join_csv_parts(path, schema, parts)


# CSV parts are already the output's lines; any other output re-reads Parquet parts as tables.
CSV_PARTS = PartFormat(".csv", writers.write_csv_part, _join_csv_parts)
PARQUET_PARTS = PartFormat(".parquet", writers.write_parquet_part, _join_parquet_parts)


@dataclass(frozen=True)
class Format:
    """One file format: how to recognise, read and write it."""

    name: str
    extensions: tuple[str, ...]  # lower case, with the dot; the first is the canonical one
    media_type: str
    read: ReaderFactory
    write: TableWriter
    parts: PartFormat = PARQUET_PARTS

    @property
    def extension(self) -> str:
        """The extension of files this tool writes in this format."""
        return self.extensions[0]

    def assemble(self, path: Path, schema: pa.Schema, parts: Sequence[Path]) -> None:
        """The output file from the run's committed parts, in order."""
        self.parts.assemble(path, schema, parts, self.write)


FORMATS: dict[str, Format] = {
    f.name: f
    for f in (
        Format(
            "csv",
            (".csv", ".tsv", ".txt"),
            "text/csv",
            lambda path, o: CsvReader(path, encoding=o.encoding, delimiter=o.delimiter),
            writers.write_csv,
            CSV_PARTS,
        ),
        Format(
            "xlsx",
            (".xlsx",),
            "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
            lambda path, o: XlsxReader(path, o.max_decompressed_bytes),
            writers.write_xlsx_tables,
        ),
        Format(
            "parquet",
            (".parquet", ".pq"),
            "application/vnd.apache.parquet",
            lambda path, o: ParquetReader(path, o.max_decompressed_bytes, o.max_cell_chars),
            writers.write_parquet,
        ),
    )
}
FORMATS_BY_EXTENSION: dict[str, Format] = {ext: f for f in FORMATS.values() for ext in f.extensions}


def format_of(path: Path) -> Format:
    """The format of a file from its extension; :class:`FileFormatError` for an unknown one."""
    fmt = FORMATS_BY_EXTENSION.get(Path(path).suffix.lower())
    if fmt is None:
        known = ", ".join(FORMATS_BY_EXTENSION)
        raise FileFormatError(
            f"Unsupported file type '{Path(path).suffix}': use {known}.",
            suffix=Path(path).suffix,
        )
    return fmt


def file_format(path: Path) -> str:
    """The name of a file's format (``csv``, ``xlsx``, ``parquet``) from its extension."""
    return format_of(path).name


def format_named(name: str) -> Format:
    """A format by name; :class:`FileFormatError` for an unknown one."""
    fmt = FORMATS.get(name)
    if fmt is None:
        raise FileFormatError(
            f"Unknown file format '{name}': use {', '.join(FORMATS)}.", format=name
        )
    return fmt


def media_type(name: str) -> str:
    """The HTTP media type of a format (by name, or by a file extension such as ``.csv``)."""
    fmt = FORMATS_BY_EXTENSION.get(name.lower()) or FORMATS.get(name)
    return fmt.media_type if fmt is not None else "application/octet-stream"


def open_reader(
    path: Path,
    encoding: str | None = None,
    delimiter: str | None = None,
    *,
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES,
    max_cell_chars: int = MAX_CELL_CHARS,
) -> Reader:
    """The reader for a file, by extension.

    An XLSX that unpacks to more than ``max_decompressed_bytes``, or a Parquet file with a
    row group that large, fails at once with :class:`FileTooLarge`.
    """
    path = Path(path)
    if not path.is_file():
        raise FileFormatError(f"No such file: {path.name}.", path=path.name)
    options = ReadOptions(encoding, delimiter, max_decompressed_bytes, max_cell_chars)
    fmt = format_of(path)
    if fmt.name == "csv":
        _check_not_binary(path)
    return fmt.read(path, options)


# Leading bytes of files that are not delimited text (issue 16 L10: a file's content is checked
# against its extension). XLSX and Parquet readers refuse other content themselves.
_BINARY_SIGNATURES = {
    b"PK\x03\x04": "a ZIP archive (an XLSX workbook?)",
    b"\x1f\x8b": "a gzip archive",
    b"\xd0\xcf\x11\xe0": "an old Office (XLS) file",
    b"%PDF-": "a PDF",
}


def _check_not_binary(path: Path) -> None:
    """:class:`FileFormatError` when a file named as CSV starts like a known binary format.

    Read as text, such a file's "header" is its data, and an error naming the columns found
    would echo it.
    """
    with path.open("rb") as f:
        head = f.read(8)
        f.seek(max(0, path.stat().st_size - 4))
        tail = f.read(4)
    found = [w for m, w in _BINARY_SIGNATURES.items() if head.startswith(m)]
    if head.startswith(b"PAR1") and tail == b"PAR1":  # Parquet opens and ends with its magic
        found.append("a Parquet file")
    if found:
        what = found[0]
        raise FileFormatError(
            f"The file is named {path.suffix or 'as text'} but its content is {what}, "
            "not delimited text; upload it with its own extension.",
            path=path.name,
            detected=what,
        )


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
