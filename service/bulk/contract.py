"""The output contract of the bulk tool: the columns every coded row gets, and their values.

The columns (README "Bulk reclassification", PRODUCT.md "Command line") come after the input's
own columns, in this order, then ``reason``. The local engine, DataFrames and Spark all write
them from a :class:`RowResult`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import NamedTuple

import pyarrow as pa

from service.bulk.writers import rows_table
from service.coding import CodedRecord
from service.models.policy import AUTO, REJECTED, REVIEW

RESULT_COLUMNS = (
    "iccs_code",
    "iccs_label",
    "confidence",
    "assigned_code",
    "status",
    "alternatives",
    "model_version",
    "language",
    "relied_on",
)
REASON_COLUMN = "reason"
OUTPUT_COLUMNS = (*RESULT_COLUMNS, REASON_COLUMN)
RESULT_SCHEMA = pa.schema(
    [
        ("iccs_code", pa.string()),
        ("iccs_label", pa.string()),
        ("confidence", pa.float64()),
        ("assigned_code", pa.string()),
        ("status", pa.string()),
        ("alternatives", pa.string()),
        ("model_version", pa.string()),
        ("language", pa.string()),
        ("relied_on", pa.string()),
        (REASON_COLUMN, pa.string()),
    ]
)
STATUSES = (AUTO, REVIEW, REJECTED)
# ``reason`` of a coded row whose text was longer than the cap: the model saw its beginning.
TRUNCATED = "text_truncated"


class RowResult(NamedTuple):
    """The contract columns of one row (a tuple, so it serialises as a JSON list)."""

    iccs_code: str | None
    iccs_label: str | None
    confidence: float | None
    assigned_code: str | None
    status: str
    alternatives: str
    model_version: str
    language: str | None
    relied_on: str  # review item ids of the decisions the answer relied on, space-separated
    reason: str | None


def row_result(coded: CodedRecord) -> RowResult:
    """The contract columns for one classification."""
    res = coded.result
    top = res.suggestions[0] if res.suggestions else None
    alternatives = json.dumps(
        [
            {"code": s.code, "label": s.label, "confidence": s.confidence}
            for s in res.suggestions[1:]
        ],
        ensure_ascii=False,
    )
    return RowResult(
        iccs_code=top.code if top else None,
        iccs_label=top.label if top else None,
        confidence=top.confidence if top else None,
        assigned_code=res.assigned.code if res.assigned else None,
        status=res.status,
        alternatives=alternatives,
        model_version=res.model_version,
        language=coded.language.code if coded.language else None,
        relied_on=" ".join(str(i) for i in res.relied_on),
        reason=res.reason,
    )


def with_declared_languages(
    results: list[RowResult], declared: Sequence[str | None]
) -> list[RowResult]:
    """Row results with the language the input names (primary subtag, lower case) where it
    names one. Results are shared by every row of a text, so this runs per row, after fan-out.
    """
    out = []
    for res, tag in zip(results, declared, strict=True):
        tag = (tag or "").strip()
        if tag:
            res = res._replace(language=tag.split("-")[0].split("_")[0].lower())
        out.append(res)
    return out


def rejected_result(reason: str, model_version: str) -> RowResult:
    """The contract columns for a row no model looked at (no language either, as on Spark)."""
    return RowResult(None, None, None, None, REJECTED, "[]", model_version, None, "", reason)


def result_table(results: Sequence[RowResult]) -> pa.Table:
    """The contract columns (plus ``reason``) as an Arrow table."""
    return rows_table(results, RESULT_SCHEMA)


def output_names(columns: Sequence[str]) -> dict[str, str]:
    """Input column -> output column; inputs clashing with the contract get an ``input_`` prefix.

    A re-run on an already coded file must not overwrite the old codes silently: they are
    kept next to the new ones.
    """
    taken = set(OUTPUT_COLUMNS)
    out: dict[str, str] = {}
    for c in columns:
        name = c
        while name in taken:
            name = f"input_{name}"
        taken.add(name)
        out[c] = name
    return out


def output_schema(inputs: pa.Schema, names: dict[str, str]) -> pa.Schema:
    """The schema of an output file: the renamed input columns, then the contract columns."""
    renamed = [f.with_name(names[f.name]) for f in inputs]
    return pa.schema([*renamed, *RESULT_SCHEMA], metadata=inputs.metadata)
