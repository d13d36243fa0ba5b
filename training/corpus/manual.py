"""Labelled rows from the ICCS manual, read from the data directory at training time.

Each category's title, description and every inclusion phrase are examples of that code;
each alphabetical-index term is an example of the code it points to. An exclusion phrase
names the code it belongs to instead ("threat of force to take property (0401)"), so it is
an example of *that* code and a hard negative for the category that excludes it.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from service.labels import LabelledRow
from service.taxonomy import load_taxonomy

SOURCE_MANUAL = "iccs_manual"
SOURCE_INDEX = "iccs_index"
_REFERENCE = re.compile(r"\((\d{2,6})\)\s*$")
_CROSS_REF = re.compile(r"^apply all (inclusions|exclusions)", re.IGNORECASE)


@dataclass(frozen=True)
class Exclusion:
    """``phrase`` is excluded from ``excluded_from`` and belongs to ``belongs_to``."""

    phrase: str
    excluded_from: str
    belongs_to: str


def _phrases(cell: str) -> list[str]:
    parts = [p.strip(" .;") for p in cell.split(";")]
    return [p for p in parts if len(p) > 2 and not _CROSS_REF.match(p)]


def read_manual(data_dir: Path) -> list[dict[str, str]]:
    """The rows of ``iccs/iccs_v1.csv``."""
    with (Path(data_dir) / "iccs" / "iccs_v1.csv").open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def exclusions(data_dir: Path) -> list[Exclusion]:
    """Exclusion phrases that name the code they belong to."""
    tax = load_taxonomy()
    out = []
    for row in read_manual(data_dir):
        for phrase in _phrases(row["exclusions"]):
            m = _REFERENCE.search(phrase)
            if m and m.group(1) in tax:
                text = phrase[: m.start()].strip(" ,;")
                if len(text) > 2:
                    out.append(Exclusion(text, row["code"], m.group(1)))
    return out


def category_texts(data_dir: Path) -> dict[str, str]:
    """``code -> "title. description"``: what a category means, for fine-tuning pairs."""
    return {
        r["code"]: f"{r['label']}. {r['description']}".strip(" .") for r in read_manual(data_dir)
    }


def manual_rows(data_dir: Path) -> Iterator[LabelledRow]:
    """Titles, descriptions, inclusions and exclusion references as labelled rows."""
    for row in read_manual(data_dir):
        code = row["code"]
        yield LabelledRow(
            row["label"],
            code,
            SOURCE_MANUAL,
            f"{code}:title",
            style="official_title",
            split_group=SOURCE_MANUAL,
        )
        if row["description"].strip():
            yield LabelledRow(
                row["description"].strip(),
                code,
                SOURCE_MANUAL,
                f"{code}:description",
                style="official_title",
                split_group=SOURCE_MANUAL,
            )
        for i, phrase in enumerate(_phrases(row["inclusions"])):
            yield LabelledRow(
                phrase,
                code,
                SOURCE_MANUAL,
                f"{code}:inclusion:{i}",
                style="official_title",
                split_group=SOURCE_MANUAL,
            )
    for i, exc in enumerate(exclusions(data_dir)):
        yield LabelledRow(
            exc.phrase,
            exc.belongs_to,
            SOURCE_MANUAL,
            f"{exc.excluded_from}:exclusion:{i}",
            style="official_title",
            confidence="medium",
            split_group=SOURCE_MANUAL,
        )


def index_rows(data_dir: Path) -> Iterator[LabelledRow]:
    """The alphabetical index: term -> code (the manual's misprinted codes are skipped)."""
    tax = load_taxonomy()
    path = Path(data_dir) / "iccs" / "iccs_v1_alphabetical_index.csv"
    with path.open(encoding="utf-8", newline="") as f:
        for i, row in enumerate(csv.DictReader(f)):
            if row["code"] in tax:
                yield LabelledRow(
                    row["term"],
                    row["code"],
                    SOURCE_INDEX,
                    f"index:{i}",
                    style="official_title",
                    split_group=SOURCE_MANUAL,
                )
