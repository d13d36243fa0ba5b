"""What a bulk run is asked to do (:class:`BulkOptions`) and what it did (:class:`BulkSummary`)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from service.bulk.contract import STATUSES
from service.bulk.readers import DEFAULT_MAX_DECOMPRESSED_BYTES, setting_default


@dataclass
class BulkOptions:
    """How to read the input and code its rows."""

    text_column: str
    id_column: str | None = None
    code_column: str | None = None
    # A column with each record's language tag; rows where it is blank get the detected one.
    language_column: str | None = None
    min_precision: float | None = None
    # The list is a national offence list coded as a correspondence table: the precision the
    # finished table (auto-coded plus reviewed entries) must reach; None: every code at
    # min_precision.
    table_precision: float | None = None
    top_k: int = 5
    to_review: bool = False
    batch_name: str | None = None
    origin: str = "bulk"
    # The API key whose job this is: its review items count against that key's quota.
    created_by: str | None = None
    encoding: str | None = None
    delimiter: str | None = None
    chunk_rows: int = 50_000
    cache_size: int = 100_000
    # The API's cap (ICCS_MAX_TEXT_LENGTH): longer texts are classified on their beginning.
    max_text_length: int = field(default_factory=lambda: setting_default("max_text_length"))
    # ICCS_MAX_DECOMPRESSED_BYTES: bigger XLSX contents or Parquet row groups are refused.
    max_decompressed_bytes: int = DEFAULT_MAX_DECOMPRESSED_BYTES

    def fingerprint_fields(self) -> dict[str, Any]:
        """The options that change the output (chunking, caching and limits do not)."""
        d = asdict(self)
        for k in (
            "chunk_rows",
            "cache_size",
            "to_review",
            "batch_name",
            "origin",
            "created_by",
            "max_decompressed_bytes",
        ):
            d.pop(k)
        if d["table_precision"] is None:
            d.pop("table_precision")  # checkpoints written before the option still match
        return d


@dataclass
class BulkSummary:
    """What a run did; printed by the CLI, stored on jobs."""

    rows: int = 0
    distinct_texts: int = 0
    counts: dict[str, int] = field(default_factory=lambda: dict.fromkeys(STATUSES, 0))
    seconds: float = 0.0
    model_version: str = ""
    reviews_queued: int = 0
    resumed_at: int = 0
    input_description: str = ""
    output: str = ""

    @property
    def dedupe_ratio(self) -> float:
        """Rows per distinct text (1.0 when every text is different)."""
        return self.rows / self.distinct_texts if self.distinct_texts else 0.0

    @property
    def rows_per_second(self) -> float:
        """Throughput of this run (rows processed by it, not those restored from a checkpoint)."""
        done = self.rows - self.resumed_at
        return done / self.seconds if self.seconds > 0 else 0.0

    def share(self, status: str) -> float:
        """Fraction of rows with ``status``."""
        return self.counts.get(status, 0) / self.rows if self.rows else 0.0

    def as_dict(self) -> dict[str, Any]:
        """JSON-ready summary."""
        return {
            "rows": self.rows,
            "distinct_texts": self.distinct_texts,
            "dedupe_ratio": round(self.dedupe_ratio, 2),
            "counts": dict(self.counts),
            "shares": {s: round(self.share(s), 4) for s in STATUSES},
            "seconds": round(self.seconds, 2),
            "rows_per_second": round(self.rows_per_second, 1),
            "model_version": self.model_version,
            "reviews_queued": self.reviews_queued,
            "resumed_at": self.resumed_at,
        }

    def lines(self) -> list[str]:
        """Human-readable summary lines."""
        out = [
            f"rows: {self.rows:,}",
            f"distinct texts: {self.distinct_texts:,} (dedupe ratio {self.dedupe_ratio:.1f}x)",
        ]
        for s in STATUSES:
            out.append(f"{s}: {self.counts.get(s, 0):,} ({self.share(s):.1%})")
        rate = f"{self.rows_per_second:,.0f} rows/s"
        out.append(f"time: {self.seconds:.1f} s ({rate})")
        if self.resumed_at:
            out.append(f"resumed at row {self.resumed_at:,}")
        if self.reviews_queued:
            out.append(f"queued for review: {self.reviews_queued:,} distinct texts")
        out.append(f"model: {self.model_version}")
        return out
