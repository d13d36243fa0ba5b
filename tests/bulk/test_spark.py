"""The Spark engine in local mode: same output as the local engine, dedupe done by Spark."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from service.bulk.engine import BulkOptions, classify_file
from service.coding import Coder
from service.models.predictor import load_predictor

from .helpers import legacy_rows

pytest.importorskip("pyspark")

pytestmark = [
    pytest.mark.spark,
    pytest.mark.filterwarnings("ignore:PySpark does not yet fully support pandas:FutureWarning"),
]


@pytest.fixture(scope="module")
def spark() -> Iterator[Any]:
    from service.bulk.spark import get_spark

    session = get_spark(
        "iccs-tests",
        master="local[1]",
        conf={
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "1",
            # A test's queries are tiny: skip the optimisations that cost more than they save.
            "spark.sql.adaptive.enabled": "false",
            "spark.sql.codegen.wholeStage": "false",
            "spark.driver.extraJavaOptions": "-XX:+UseSerialGC -XX:TieredStopAtLevel=1",
        },
    )
    assert get_spark() is session  # the CLI path reuses an active session
    yield session
    session.stop()


def test_spark_output_equals_local_output(
    spark: Any,
    write_csv,
    tiny_registry: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from service.bulk.spark import classify_file_spark

    rows = legacy_rows(60)
    rows.insert(5, ["R-short", "N9"])  # ragged: one field short
    src = write_csv(rows, delimiter=";", encoding="cp1252")  # a Windows export
    options = BulkOptions(text_column="description", chunk_rows=25)
    # fp32 on both sides: int8 dynamic quantisation makes scores depend on batch neighbours.
    local = tmp_path / "local.csv"
    classify_file(src, local, options, Coder(load_predictor(tiny_registry, int8=False)))
    out = tmp_path / "spark.csv"
    summary = classify_file_spark(
        src, out, options, registry_dir=tiny_registry, int8=False, spark=spark
    )
    assert out.read_text("utf-8") == local.read_text("utf-8")
    assert summary.rows == 61
    assert summary.counts["rejected"] >= 1
    # 12 texts: 2 share a key; "", "12345" and "see file" are rejected before the model.
    assert summary.distinct_texts == 8
    text = out.read_text("utf-8")
    assert "ragged_row" in text and "Vol qualifi\u00e9" in text
    # classify_file_spark is classify_spark plus file reading and writing: the DataFrame API
    # (what a cluster job calls) is the code path checked above.


def test_spark_cuts_long_texts_like_the_local_engine(
    spark: Any,
    write_csv,
    tiny_registry: Path,
    tmp_path: Path,  # type: ignore[no-untyped-def]
) -> None:
    from service.bulk.spark import classify_file_spark

    long = "Burglary of a dwelling at night and theft of a motor vehicle " * 3
    rows = [["id", "text"], ["1", long], ["2", "Murder"], ["3", long[:40]], ["4", long + "x"]]
    src = write_csv(rows)
    options = BulkOptions(text_column="text", max_text_length=40)
    local = tmp_path / "local.csv"
    classify_file(src, local, options, Coder(load_predictor(tiny_registry, int8=False)))
    out = tmp_path / "spark.csv"
    classify_file_spark(src, out, options, registry_dir=tiny_registry, int8=False, spark=spark)
    assert out.read_text("utf-8") == local.read_text("utf-8")
    assert "text_truncated" in local.read_text("utf-8") or "not_an_offence" in local.read_text(
        "utf-8"
    )
