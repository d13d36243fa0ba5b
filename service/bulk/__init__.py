"""Bulk reclassification: coded files, DataFrames, correspondence tables, jobs, Spark.

For notebooks::

    from service.bulk import classify_frame
    coded = classify_frame(df, text_column="offence_description")
"""

from importlib import import_module
from typing import Any

# Imported on first use: the API process starts the job runner (service.bulk.jobs) at every
# start, and pyarrow, which the engine needs, costs it 55 MB of memory before any job runs.
_EXPORTS = {
    "OUTPUT_COLUMNS": "service.bulk.contract",
    "RESULT_COLUMNS": "service.bulk.contract",
    "BulkOptions": "service.bulk.summary",
    "BulkSummary": "service.bulk.summary",
    "classify_file": "service.bulk.engine",
    "classify_frame": "service.bulk.frame",
    "Crosswalk": "service.bulk.crosswalk",
    "build_crosswalk": "service.bulk.crosswalk",
    "write_crosswalk": "service.bulk.crosswalk",
}
__all__ = sorted(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name not in _EXPORTS:
        raise AttributeError(f"module 'service.bulk' has no attribute {name!r}")
    return getattr(import_module(_EXPORTS[name]), name)
