"""Reviewed decisions back into training: corpus rows in the ``service.labels`` schema.

``iccs train`` reads ``labelled_data/review/*.csv``; this writes the file it reads. Each row
is a text whose code a reviewer decided (the active decision memory, so the newest decision
per text, minus entries an admin retired), with the reviewer and date kept in two extra
columns after the corpus columns (the corpus reader takes the columns it knows).

Items the model coded on its own after a reviewer decided a similar one (status
``auto_coded``) are coded, but by the model: training on them would teach the model its own
answers, so they are no rows here; the result counts them.
"""

from __future__ import annotations

import csv
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

from service.bulk.formulas import neutralise
from service.labels import COLUMNS, LabelledRow
from service.normalize import default_normalizer
from service.review.store import ReviewStore

DEFAULT_EXPORT = Path("labelled_data") / "review" / "reviewed.csv"
PROVENANCE_COLUMNS = ("reviewer", "decided_at")
SOURCE = "review"


@dataclass(frozen=True)
class ExportResult:
    """What an export wrote."""

    path: Path
    rows: int
    superseded: int
    # Items coded by the model after a reviewer's decision on a similar item: left out.
    auto_coded: int = 0


def export_reviewed(
    store: ReviewStore, path: Path = DEFAULT_EXPORT, language: str = "en"
) -> ExportResult:
    """Write every active reviewed decision as a labelled row; replaces ``path`` atomically.

    Two texts that differ only in ways the model's normaliser erases (e.g. "asslt" and
    "assault") would teach the model two answers for one input; the newest decision wins and
    the older one is counted as superseded.
    """
    norm = default_normalizer()
    newest: dict[str, tuple[LabelledRow, dict[str, str]]] = {}
    superseded = 0
    records = sorted(store.reviewed_rows(), key=lambda r: (r["decided_at"], r["item_id"]))
    for rec in records:
        row = LabelledRow(
            text=rec["text"],
            iccs_code=rec["code"],
            source=SOURCE,
            source_key=f"review-{rec['item_id']}",
            language=language,
            style="review",
            # A code settled by a third reviewer after two disagreed is less certain.
            confidence="medium" if rec["reviews_required"] >= 3 else "high",
            split_group="review",
        )
        provenance = {
            "reviewer": rec["reviewer"],
            "decided_at": rec["decided_at"].isoformat() if rec["decided_at"] else "",
        }
        key = norm(rec["text"])
        if key in newest:
            superseded += 1
        newest[key] = (row, provenance)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".reviewed-", suffix=".tmp")  # never *.csv
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=[*COLUMNS, *PROVENANCE_COLUMNS])
            writer.writeheader()
            for row, provenance in sorted(
                newest.values(), key=lambda p: int(p[0].source_key.split("-")[1])
            ):
                cells = {**row.as_dict(), **provenance}
                # Opened in a spreadsheet, a text like "=HYPERLINK(...)" must not run. The
                # apostrophe does not change what training sees: the normaliser drops it.
                writer.writerow({k: neutralise(v) for k, v in cells.items()})
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return ExportResult(path, len(newest), superseded, store.stats().auto_coded)
