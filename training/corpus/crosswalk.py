"""Join the committed crosswalks (key -> ICCS code) with the national lists' texts.

A crosswalk row's ``iccs_code`` is an ICCS code, ``not_an_offence``, or :data:`EXCLUDE`. An
excluded key is mapped (every key of a list must have a row) but its text does not enter the
corpus: the text is a placeholder or a generic phrase whose code depends entirely on the statute
behind it, so no code can be learned from it. An excluded row must say why in its ``rationale``.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from service.labels import LabelledRow
from training.corpus.sources import SOURCES, read_source

CROSSWALK_COLUMNS = ("source_key", "iccs_code", "confidence", "rationale")
# ``iccs_code`` of a key whose text must not train any code (see the module docstring).
EXCLUDE = "exclude"


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


def crosswalk_problems(folder: Path) -> list[str]:
    """What the validator reports about the crosswalk files themselves.

    An excluded row without a rationale is a problem: exclusion is a labelling decision
    and has to be explained. (Invalid codes are reported when the rows are validated.)
    """
    return [
        f"crosswalk row {entry.file}:{entry.key} is excluded without a rationale"
        for entries in read_crosswalks(folder).values()
        for entry in entries.values()
        if entry.code == EXCLUDE and not entry.rationale
    ]


def crosswalk_rows(
    data_dir: Path,
    folder: Path,
    missing: list[str] | None = None,
    excluded: list[str] | None = None,
) -> Iterator[LabelledRow]:
    """Labelled rows of every national list that has a crosswalk.

    Keys without a crosswalk row are appended to ``missing`` (the validator reports them);
    texts of keys marked :data:`EXCLUDE` are skipped and their ``source:key`` appended to
    ``excluded``.
    """
    for source, entries in read_crosswalks(folder).items():
        language, group = SOURCES[source].language, SOURCES[source].group
        for rec in read_source(source, data_dir):
            entry = entries.get(rec.key)
            if entry is None:
                if missing is not None:
                    missing.append(f"{source}:{rec.key}")
                continue
            if entry.code == EXCLUDE:
                if excluded is not None:
                    excluded.append(f"{source}:{rec.key}")
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
