"""Join the committed crosswalks (key -> ICCS code) with the national lists' texts."""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from service.labels import LabelledRow
from training.corpus.sources import SOURCES, read_source

CROSSWALK_COLUMNS = ("source_key", "iccs_code", "confidence", "rationale")


@dataclass(frozen=True)
class CrosswalkEntry:
    """One mapping row of a crosswalk file."""

    source: str
    key: str
    code: str
    confidence: str
    rationale: str
    file: str


def read_crosswalks(folder: Path) -> dict[str, dict[str, CrosswalkEntry]]:
    """``source -> key -> entry``; a source's mapping may be split over ``<source>*.csv``."""
    out: dict[str, dict[str, CrosswalkEntry]] = {}
    for source in SOURCES:
        entries: dict[str, CrosswalkEntry] = {}
        for path in sorted(Path(folder).glob(f"{source}*.csv")):
            with path.open(encoding="utf-8", newline="") as f:
                for row in csv.DictReader(f):
                    key = row["source_key"].strip()
                    entries[key] = CrosswalkEntry(
                        source,
                        key,
                        row["iccs_code"].strip(),
                        row["confidence"].strip(),
                        row.get("rationale", "").strip(),
                        path.name,
                    )
        if entries:
            out[source] = entries
    return out


def crosswalk_rows(
    data_dir: Path, folder: Path, missing: list[str] | None = None
) -> Iterator[LabelledRow]:
    """Labelled rows of every national list that has a crosswalk.

    Keys without a crosswalk row are appended to ``missing`` (the validator reports them).
    """
    for source, entries in read_crosswalks(folder).items():
        _, language, group = SOURCES[source]
        for rec in read_source(source, data_dir):
            entry = entries.get(rec.key)
            if entry is None:
                if missing is not None:
                    missing.append(f"{source}:{rec.key}")
                continue
            yield LabelledRow(
                rec.text,
                entry.code,
                source,
                rec.key,
                language=language,
                style="code_list",
                confidence=entry.confidence or "medium",
                split_group=group,
            )
