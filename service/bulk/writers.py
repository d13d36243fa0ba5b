"""Writers for bulk outputs: CSV, XLSX and Parquet files, and the engine's part files.

The engine commits each chunk of coded rows to a *part* file and joins the parts into the
output at the end. CSV outputs keep CSV parts (joining them is a byte copy); XLSX and Parquet
outputs keep Parquet parts, read back as tables by the final writer.
"""

from __future__ import annotations

import datetime as dt
import io
import os
import re
import shutil
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from service.bulk.formulas import FORMULA_START, needs_neutralising, neutralise
from service.bulk.readers import cell_text
from service.errors import FileFormatError

# Excel's sheet limit, header included.
XLSX_MAX_ROWS = 1_048_576
_ILLEGAL_XLSX = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f]")
# Strings openpyxl would store as error cells rather than text.
_XLSX_ERRORS = frozenset(("#NULL!", "#DIV/0!", "#VALUE!", "#REF!", "#NAME?", "#NUM!", "#N/A"))

Sheet = tuple[str, Sequence[str], Iterable[Sequence[Any]]]


# --- CSV ----------------------------------------------------------------------------------


def csv_text(value: Any) -> str:
    """A value as written into an output CSV cell (before quoting)."""
    if value is None:
        return ""
    if isinstance(value, float):
        return repr(value)
    return cell_text(value)


def csv_field(value: str) -> str:
    """A cell neutralised (:func:`neutralise`) and quoted the minimal RFC 4180 way."""
    value = neutralise(value)
    if '"' in value:
        return '"' + value.replace('"', '""') + '"'
    if "," in value or "\n" in value or "\r" in value:
        return '"' + value + '"'
    return value


def csv_cell(value: Any) -> str:
    """Any value as a finished CSV field."""
    return csv_field(csv_text(value))


def render_column(column: pa.Array | pa.ChunkedArray) -> list[str]:
    """A column's cells as quoted CSV fields."""
    values = column.to_pylist()
    if _all_str(column.type):
        return ["" if v is None else csv_field(v) for v in values]
    return [csv_cell(v) for v in values]


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


def write_csv(path: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> None:
    """A CSV file (header, then every table's rows)."""
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        write_csv_header(f, schema.names)
        for t in tables:
            write_csv_rows(f, t)


# --- XLSX ---------------------------------------------------------------------------------


def write_xlsx(path: Path, columns: Sequence[str], tables: Iterable[pa.Table]) -> int:
    """A single-sheet XLSX from tables (streamed, write-only mode); returns the rows written."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    ws = wb.create_sheet("coded")
    ws.append([xlsx_value(c, ws) for c in columns])
    n = 0
    for table in tables:
        for batch in table.to_batches(max_chunksize=10_000):
            cols = batch.to_pydict()
            for row in zip(*cols.values(), strict=True):
                ws.append([xlsx_value(v, ws) for v in row])
                n += 1
                if n >= XLSX_MAX_ROWS:
                    raise FileFormatError(
                        "Too many rows for an XLSX sheet; write CSV or Parquet instead.",
                        rows=n,
                    )
    wb.save(path)
    return n


def write_xlsx_tables(path: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> None:
    """The XLSX output of a run: one sheet named ``coded``."""
    write_xlsx(path, schema.names, tables)


def xlsx_value(v: Any, ws: Any) -> Any:
    """A value as a cell of the write-only sheet ``ws``: text always stays text.

    openpyxl stores a string that starts with ``=`` as a formula and ``#N/A`` as an error;
    those become string cells, and a cell that could run (:func:`needs_neutralising`) also
    gets Excel's quote prefix (the apostrophe a user types), so it stays text when edited.
    The value itself is unchanged: reading the file back gives the text that was written.
    """
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.isoformat()  # Excel has no time zones; the text keeps the offset
    if v is None or isinstance(v, int | float | bool | dt.datetime | dt.date):
        return v
    # Control characters are illegal in XLSX cells; drop them rather than fail the file.
    text = _ILLEGAL_XLSX.sub("", v if isinstance(v, str) else cell_text(v))
    if text[:1] not in FORMULA_START and text not in _XLSX_ERRORS:
        return text
    from openpyxl.cell import WriteOnlyCell

    cell = WriteOnlyCell(ws, value=text)
    cell.data_type = "s"
    cell.quotePrefix = needs_neutralising(text)
    return cell


def write_sheets(path: Path, sheets: Sequence[Sheet]) -> None:
    """An XLSX with several sheets of rows (used for correspondence tables)."""
    from openpyxl import Workbook

    wb = Workbook(write_only=True)
    for name, header, rows in sheets:
        ws = wb.create_sheet(name)
        ws.append([xlsx_value(c, ws) for c in header])
        for row in rows:
            ws.append([xlsx_value(v, ws) for v in row])
    wb.save(path)


# --- Parquet ------------------------------------------------------------------------------


def write_parquet(path: Path, schema: pa.Schema, tables: Iterable[pa.Table]) -> None:
    """A Parquet file with ``schema`` (written even when there are no rows)."""
    with pq.ParquetWriter(path, schema) as writer:
        writer.write_table(schema.empty_table())
        for t in tables:
            writer.write_table(t.cast(schema))


# --- part files ---------------------------------------------------------------------------


def rows_table(rows: Sequence[Sequence[Any]], schema: pa.Schema) -> pa.Table:
    """Row tuples as a table of ``schema``."""
    cols = list(zip(*rows, strict=True)) if rows else [()] * len(schema)
    return pa.table(
        [pa.array(list(c), f.type) for c, f in zip(cols, schema, strict=True)], schema=schema
    )


def write_csv_part(
    path: Path, inputs: pa.Table, results: Sequence[Sequence[Any]], schema: pa.Schema
) -> None:
    """CSV lines (no header) of the inputs with the result columns, synced to disk."""
    columns = [render_column(c) for c in inputs.columns]
    # Rows sharing a text share one result tuple: render its cells once.
    rendered: dict[int, str] = {}
    tail = []
    for res in results:
        line = rendered.get(id(res))
        if line is None:
            line = rendered[id(res)] = ",".join(csv_cell(v) for v in res)
        tail.append(line)
    columns.append(tail)
    with Path(path).open("w", encoding="utf-8", newline="") as f:
        f.write(render_lines(columns))
        f.flush()
        os.fsync(f.fileno())


def join_csv_parts(path: Path, schema: pa.Schema, parts: Sequence[Path]) -> None:
    """A CSV output from its header and the CSV parts, copied in order."""
    with Path(path).open("w", encoding="utf-8", newline="") as out:
        write_csv_header(out, schema.names)
        out.flush()
        for p in parts:
            with p.open("r", encoding="utf-8", newline="") as f:
                shutil.copyfileobj(f, out, 1 << 20)


def write_parquet_part(
    path: Path, inputs: pa.Table, results: Sequence[Sequence[Any]], schema: pa.Schema
) -> None:
    """A Parquet part: the inputs with the result columns appended."""
    table = inputs
    res = rows_table(results, schema)
    for f, col in zip(res.schema, res.columns, strict=True):
        table = table.append_column(f, col)
    pq.write_table(table, path)
