"""The bulk engine on Apache Spark, for archives that outgrow one machine.

Same answer as the local engine, computed the Spark way:

1. every row gets its dedupe key (``service.normalize.dedupe_key``) in a pandas UDF;
2. Spark itself deduplicates: one row per key, the text of its first occurrence;
3. ``mapInPandas`` classifies the distinct texts; each Python worker loads the ONNX model
   once and keeps it for every later task (a per-process cache; Spark reuses its workers);
4. the results are joined back onto every row.

``classify_spark(df, text_column, registry_dir=...)`` returns a Spark DataFrame (write it
where a cluster writes: Parquet on HDFS or S3). ``classify_file_spark`` is what
``iccs classify-file --engine spark`` runs: Spark reads the file and codes it, and the
ordered result streams back into the same single-file writers as the local engine.

Decision memory and review queueing need the service's database and stay with the local
engine. Executors need the ``iccs-coder`` package (``pip install 'iccs-coder[spark]'``) and
read the model from ``registry_dir``, which must be reachable from every executor.
"""

from __future__ import annotations

import codecs
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from service.bulk import io as bio
from service.bulk.contract import (
    OUTPUT_COLUMNS,
    RESULT_SCHEMA,
    STATUSES,
    TRUNCATED,
    output_names,
    row_result,
)
from service.bulk.dedupe import CLASSIFY_BATCH
from service.bulk.readers import setting_default
from service.bulk.summary import BulkOptions, BulkSummary
from service.errors import FileFormatError

log = logging.getLogger(__name__)

KEY, REASON_IN, ROW_ID, CORRUPT = "_iccs_key", "_iccs_reason", "_iccs_row", "_corrupt_record"
TEXT, LONG = "_iccs_text", "_iccs_long"
# PySpark warns about pandas 3 on import and on every Arrow conversion; the calls used here
# (pandas UDFs and mapInPandas on plain strings and floats) are covered by the tests.
_PANDAS_WARNING = "PySpark does not yet fully support pandas"


@dataclass(frozen=True)
class ModelRef:
    """What an executor needs to load the model: picklable and small."""

    registry_dir: str
    version: str
    int8: bool = False
    top_k: int = 5
    min_precision: float | None = None


_EXECUTOR_MODELS: dict[tuple[str, str, bool], Any] = {}


def executor_predictor(ref: ModelRef) -> Any:
    """The predictor of this Python process, loaded on first use and kept."""
    key = (ref.registry_dir, ref.version, ref.int8)
    if key not in _EXECUTOR_MODELS:
        from service.models.predictor import load_predictor

        started = time.monotonic()
        _EXECUTOR_MODELS[key] = load_predictor(Path(ref.registry_dir), ref.version, int8=ref.int8)
        log.info(
            "executor %d loaded model %s in %.1f s",
            os.getpid(),
            ref.version,
            time.monotonic() - started,
        )
    return _EXECUTOR_MODELS[key]


def _key_and_reason(texts: pd.Series, rows: pd.Series, corrupt: pd.Series) -> pd.DataFrame:
    """pandas UDF body: dedupe key (null for unusable rows) and the reject reason."""
    from service.models.policy import unusable_text_reason
    from service.normalize import dedupe_key

    keys: list[str | None] = []
    reasons: list[str | None] = []
    for text, row, bad in zip(texts, rows, corrupt, strict=True):
        text = "" if text is None or (isinstance(text, float) and text != text) else str(text)
        reason = None
        if isinstance(bad, str):
            reason = bio.REASON_RAGGED
        elif isinstance(row, str) and "\ufffd" in row:
            reason = bio.REASON_UNDECODABLE  # Spark decodes bad bytes as U+FFFD
        else:
            reason = unusable_text_reason(text)
        keys.append(None if reason else dedupe_key(text))
        reasons.append(reason)
    return pd.DataFrame({"key": keys, "reason": reasons})


def _classify_partitions(ref: ModelRef) -> Any:
    """mapInPandas body: (key, text) batches in, key + contract columns out."""

    def run(batches: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
        from service.coding import Coder

        coder = Coder(executor_predictor(ref))
        names = [f.name for f in RESULT_SCHEMA]
        for pdf in batches:
            keys = pdf[KEY].tolist()
            texts = pdf[TEXT].tolist()
            rows: list[tuple[Any, ...]] = []
            for start in range(0, len(texts), CLASSIFY_BATCH):
                coded = coder.code(
                    texts[start : start + CLASSIFY_BATCH],
                    top_k=ref.top_k,
                    min_precision=ref.min_precision,
                    queue_review=False,
                )
                rows.extend(row_result(c) for c in coded)
            out = pd.DataFrame(rows, columns=names) if rows else pd.DataFrame(columns=names)
            out.insert(0, KEY, keys)
            out["confidence"] = out["confidence"].astype("float64")
            for name in names:
                if name != "confidence":
                    out[name] = out[name].astype(object)
            yield out

    return run


def _result_struct() -> Any:
    from pyspark.sql import types as T

    fields = [T.StructField(KEY, T.StringType())]
    for f in RESULT_SCHEMA:
        typ = T.DoubleType() if f.name == "confidence" else T.StringType()
        fields.append(T.StructField(f.name, typ))
    return T.StructType(fields)


def _key_udf() -> Any:
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    struct = T.StructType(
        [T.StructField("key", T.StringType()), T.StructField("reason", T.StringType())]
    )
    return F.pandas_udf(_key_and_reason, struct)  # type: ignore[attr-defined]


def _q(name: str) -> Any:
    from pyspark.sql import functions as F

    return F.col(f"`{name}`")  # backticks: header names may hold dots or spaces


@dataclass
class _Plan:
    keyed: Any  # input + row id + key + pre-model reason
    classified: Any  # one row per distinct key with its results
    inputs: list[str]
    version: str


def _plan(
    df: Any,
    text_column: str,
    registry_dir: Path,
    version: str | None,
    int8: bool,
    min_precision: float | None,
    top_k: int,
    max_text_length: int,
) -> _Plan:
    from pyspark.sql import functions as F

    from service.models.registry import Registry

    if text_column not in df.columns:
        found = ", ".join(repr(c) for c in df.columns)
        raise FileFormatError(
            f"Column '{text_column}' is not in the DataFrame. Columns found: {found}.",
            column=text_column,
            columns_found=list(df.columns),
        )
    resolved = Registry(Path(registry_dir)).resolve(version)
    ref = ModelRef(str(Path(registry_dir).resolve()), resolved, int8, top_k, min_precision)
    inputs = [c for c in df.columns if c != CORRUPT]
    whole_row = F.concat_ws("\u0001", *[_q(c).cast("string") for c in inputs])
    corrupt = _q(CORRUPT) if CORRUPT in df.columns else F.lit(None).cast("string")
    full = _q(text_column).cast("string")
    # Cut to the cap before the key and the model, and flagged per row, as in the local engine.
    text = F.substring(full, 1, max_text_length)
    keyed = (
        df.withColumn(ROW_ID, F.monotonically_increasing_id())
        .withColumn(LONG, F.coalesce(F.length(full) > max_text_length, F.lit(False)))
        .withColumn("_iccs_kr", _key_udf()(text, whole_row, corrupt))
        .withColumn(KEY, F.col("_iccs_kr.key"))
        .withColumn(REASON_IN, F.col("_iccs_kr.reason"))
        .drop("_iccs_kr")
    )
    # The first occurrence's text represents its key, as in the local engine.
    distinct = (
        keyed.where(F.col(KEY).isNotNull())
        .groupBy(KEY)
        .agg(F.min_by(text, F.col(ROW_ID)).alias(TEXT))
    )
    # One even slice of the distinct texts per core: every worker loads the model once and
    # classifies in large batches, instead of 200 small shuffle partitions paying per task.
    slices = max(int(df.sparkSession.sparkContext.defaultParallelism), 1)
    classified = distinct.repartition(slices).mapInPandas(
        _classify_partitions(ref), schema=_result_struct()
    )
    return _Plan(keyed, classified, inputs, resolved)


def _joined(plan: _Plan, keep_order: bool) -> Any:
    from pyspark.sql import functions as F

    joined = plan.keyed.join(plan.classified, on=KEY, how="left")
    names = output_names(plan.inputs)
    rejected = F.col(KEY).isNull()
    cols = [_q(c).alias(names[c]) for c in plan.inputs]
    for f in RESULT_SCHEMA:
        if f.name == "status":
            col = F.when(rejected, F.lit("rejected")).otherwise(F.col("status"))
        elif f.name == "alternatives":
            col = F.when(rejected, F.lit("[]")).otherwise(F.col("alternatives"))
        elif f.name == "model_version":
            col = F.lit(plan.version)
        elif f.name == "reason":
            col = (
                F.when(rejected, F.col(REASON_IN))
                .when(F.col(LONG) & F.col("reason").isNull(), F.lit(TRUNCATED))
                .otherwise(F.col("reason"))
            )
        else:
            col = F.when(rejected, F.lit(None)).otherwise(F.col(f.name))
        cols.append(col.alias(f.name))
    if keep_order:
        return joined.orderBy(ROW_ID).select(*cols)
    return joined.select(*cols)


def classify_spark(
    df: Any,
    text_column: str,
    *,
    registry_dir: Path,
    version: str | None = None,
    int8: bool = False,
    min_precision: float | None = None,
    top_k: int = 5,
    keep_order: bool = True,
    max_text_length: int | None = None,
) -> Any:
    """A Spark DataFrame: ``df``'s columns plus the contract columns (and ``reason``).

    Lazy, like any Spark transformation. ``keep_order`` sorts the result back into the
    input's order (a global sort; skip it on very large data when order does not matter).
    Texts longer than ``max_text_length`` (default: the service's ``ICCS_MAX_TEXT_LENGTH``
    default) are classified on their beginning and flagged ``text_truncated``.
    """
    cap = max_text_length or setting_default("max_text_length")
    plan = _plan(df, text_column, registry_dir, version, int8, min_precision, top_k, cap)
    return _joined(plan, keep_order)


def get_spark(
    app_name: str = "iccs-classify-file",
    master: str | None = None,
    conf: dict[str, str] | None = None,
) -> Any:
    """The active Spark session, or a new one (master from spark-submit, else local[*]).

    Python workers run ``PYSPARK_PYTHON``; when it is unset they would start the system
    python, which lacks this package, so it defaults to the interpreter running this code
    (right for local mode; on a cluster spark-submit users set it themselves).
    """
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING)
        from pyspark.sql import SparkSession

        builder = SparkSession.builder.appName(app_name)
        if master:
            builder = builder.master(master)
        for k, v in (conf or {}).items():
            builder = builder.config(k, v)
        return builder.getOrCreate()


# Python codec names -> Java charset names (Spark decodes in the JVM); a UTF-8 BOM goes with
# the header line, which Spark skips.
_JAVA_CHARSETS = {
    "utf-8": "UTF-8",
    "utf-8-sig": "UTF-8",
    "cp1252": "windows-1252",
    "iso8859-1": "ISO-8859-1",
    "utf-16": "UTF-16",
}


_SPARK_CHARSETS = {"iso-8859-1", "us-ascii", "utf-16", "utf-16be", "utf-16le", "utf-32", "utf-8"}


def read_spark(spark: Any, path: Path, options: BulkOptions) -> tuple[Any, str]:
    """The input file as a Spark DataFrame, read with the local engine's sniffed settings."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    fmt = bio.file_format(path)
    if fmt == "parquet":
        df = spark.read.parquet(str(path))
        return df, "Parquet (Spark)"
    if fmt != "csv":
        raise FileFormatError(
            "The Spark engine reads CSV and Parquet; convert XLSX files or use --engine local.",
            path=path.name,
        )
    local = bio.CsvReader(path, encoding=options.encoding, delimiter=options.delimiter)
    schema = T.StructType(
        [T.StructField(c, T.StringType()) for c in local.columns]
        + [T.StructField(CORRUPT, T.StringType())]
    )
    encoding = _JAVA_CHARSETS.get(codecs.lookup(local.encoding).name, local.encoding)
    if encoding.lower() not in _SPARK_CHARSETS:
        # Spark 4 accepts only a few charsets unless told to use any the JVM knows; legacy
        # Windows-1252 exports need that.
        spark.conf.set("spark.sql.legacy.javaCharsets", "true")
    df = spark.read.csv(
        str(path),
        header=True,
        schema=schema,
        sep=local.delimiter,
        encoding=encoding,
        mode="PERMISSIVE",
        columnNameOfCorruptRecord=CORRUPT,
        enforceSchema=True,
    )
    # Empty CSV fields are empty strings in the local engine; Spark reads them as null.
    df = df.select(
        *[F.coalesce(F.col(f"`{c}`"), F.lit("")).alias(c) for c in local.columns],
        F.col(CORRUPT),
    )
    return df, f"{local.description} (Spark)"


def classify_file_spark(
    input_path: Path,
    output_path: Path,
    options: BulkOptions,
    *,
    registry_dir: Path,
    version: str | None = None,
    int8: bool = False,
    spark: Any = None,
) -> BulkSummary:
    """``iccs classify-file --engine spark``: same output file as the local engine."""
    started = time.monotonic()
    input_path, output_path = Path(input_path), Path(output_path)
    bio.format_of(output_path)  # an unknown output type fails before Spark starts
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_PANDAS_WARNING)
        spark = spark or get_spark()
        df, description = read_spark(spark, input_path, options)
        inputs = [c for c in df.columns if c != CORRUPT]
        text_col = bio.resolve_column(inputs, options.text_column, "--text-column")
        for col, flag in (
            (options.id_column, "--id-column"),
            (options.code_column, "--code-column"),
        ):
            if col:
                bio.resolve_column(inputs, col, flag)
        plan = _plan(
            df,
            text_col,
            registry_dir,
            version,
            int8,
            options.min_precision,
            options.top_k,
            options.max_text_length,
        )
        # Persisted so the key UDF and the model each run once per row / distinct text.
        plan.keyed.persist()
        plan.classified.persist()
        output_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=output_path.name + ".", dir=output_path.parent))
        try:
            distinct = int(plan.classified.count())
            _joined(plan, keep_order=True).write.mode("overwrite").parquet(str(tmp / "parts"))
            parts = sorted((tmp / "parts").glob("part-*.parquet"))
            summary = _assemble_spark(parts, tmp, output_path)
        finally:
            plan.classified.unpersist()
            plan.keyed.unpersist()
            shutil.rmtree(tmp, ignore_errors=True)
    summary.distinct_texts = distinct
    summary.seconds = time.monotonic() - started
    summary.input_description = description
    summary.output = str(output_path)
    summary.model_version = plan.version
    return summary


def _assemble_spark(parts: list[Path], tmp: Path, output_path: Path) -> BulkSummary:
    """Stream Spark's ordered part files into one output file; count statuses on the way."""
    counts = dict.fromkeys(STATUSES, 0)
    rows = 0

    def tables() -> Iterator[pa.Table]:
        nonlocal rows
        for p in parts:
            t = pq.read_table(p)
            for s in t.column("status").to_pylist():
                counts[s] = counts.get(s, 0) + 1
            rows += t.num_rows
            yield t

    out_tmp = tmp / ("output" + output_path.suffix)
    schema = pq.read_schema(parts[0]) if parts else None
    if schema is None:
        schema = pa.schema([pa.field(c, pa.string()) for c in OUTPUT_COLUMNS])
    bio.format_of(output_path).write(out_tmp, schema, tables())
    os.replace(out_tmp, output_path)
    return BulkSummary(rows=rows, counts=counts)
