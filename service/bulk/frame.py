"""The bulk engine for pandas DataFrames: ``classify_frame``, for notebooks.

Same dedupe and contract columns as files (:mod:`service.bulk.engine`), without a checkpoint:
a DataFrame lives in memory anyway.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa

from service.bulk.contract import output_names, result_table
from service.bulk.dedupe import TextClassifier
from service.bulk.readers import cell_text, setting_default
from service.coding import Coder
from service.errors import FileFormatError


def classify_frame(
    df: Any,
    text_column: str,
    *,
    id_column: str | None = None,
    coder: Coder | None = None,
    predictor: Any = None,
    model: str | None = None,
    registry_dir: Path | None = None,
    min_precision: float | None = None,
    top_k: int = 5,
    chunk_rows: int = 50_000,
    max_text_length: int | None = None,
) -> Any:
    """A copy of a pandas DataFrame with the contract columns added (same engine as files).

    The model comes from ``coder`` or ``predictor`` if given, else it is loaded once per
    process from the registry (``registry_dir``, default from settings; ``model`` version,
    default the promoted one). Each distinct text is classified once. Texts longer than
    ``max_text_length`` (default: the service's ``ICCS_MAX_TEXT_LENGTH`` default) are
    classified on their beginning and flagged ``reason=text_truncated``, as in files.
    """
    import pandas as pd

    if text_column not in df.columns:
        found = ", ".join(repr(str(c)) for c in df.columns)
        raise FileFormatError(
            f"Column '{text_column}' is not in the DataFrame. Columns found: {found}.",
            column=text_column,
            columns_found=[str(c) for c in df.columns],
        )
    if id_column is not None and id_column not in df.columns:
        raise FileFormatError(f"Column '{id_column}' is not in the DataFrame.", column=id_column)
    if coder is None:
        coder = Coder(predictor if predictor is not None else cached_predictor(registry_dir, model))
    classifier = TextClassifier(
        coder,
        top_k=top_k,
        min_precision=min_precision,
        cache_size=max(chunk_rows * 2, 100_000),
        max_text_length=max_text_length or setting_default("max_text_length"),
    )
    frames = []
    for start in range(0, len(df), chunk_rows):
        part = df.iloc[start : start + chunk_rows]
        texts = [cell_text(None if _isna(v) else v) for v in part[text_column].tolist()]
        ids = None
        if id_column is not None:
            ids = [None if _isna(v) else str(v) for v in part[id_column].tolist()]
        coding = classifier.code(texts, ids)
        frames.append(result_table(coding.results))
    added = pa.concat_tables(frames) if frames else result_table([])
    out = df.copy()
    names = output_names([str(c) for c in df.columns])
    out.columns = [names[str(c)] for c in df.columns]
    for name in added.column_names:
        # Positional, not by index: the caller's index may repeat labels.
        out[name] = pd.Series(
            added.column(name).to_pylist(),
            index=df.index,
            dtype="float64" if name == "confidence" else "object",
        )
    return out


def _isna(v: Any) -> bool:
    try:
        import pandas as pd

        return bool(pd.isna(v))
    except (TypeError, ValueError):
        return False


_PREDICTORS: dict[tuple[str, str | None], Any] = {}


def cached_predictor(registry_dir: Path | None = None, version: str | None = None) -> Any:
    """A predictor loaded once per process for (registry, version)."""
    from service.config import Settings
    from service.models.predictor import load_predictor

    settings = Settings()
    folder = Path(registry_dir or settings.registry_dir).resolve()
    key = (str(folder), version)
    if key not in _PREDICTORS:
        _PREDICTORS[key] = load_predictor(folder, version, int8=settings.use_int8)
    return _PREDICTORS[key]
