"""Bulk reclassification: coded files, DataFrames, correspondence tables, jobs, Spark.

For notebooks::

    from service.bulk import classify_frame
    coded = classify_frame(df, text_column="offence_description")
"""

from service.bulk.crosswalk import Crosswalk, build_crosswalk, write_crosswalk
from service.bulk.engine import (
    OUTPUT_COLUMNS,
    RESULT_COLUMNS,
    BulkOptions,
    BulkSummary,
    classify_file,
    classify_frame,
)

__all__ = [
    "OUTPUT_COLUMNS",
    "RESULT_COLUMNS",
    "BulkOptions",
    "BulkSummary",
    "Crosswalk",
    "build_crosswalk",
    "classify_file",
    "classify_frame",
    "write_crosswalk",
]
