"""Readers for the national offence lists in ``<data_dir>/data``.

Each reader yields :class:`SourceRecord` (a stable key, the text, and columns that help a
person map it). Keys are what the committed crosswalk files refer to, so the texts
themselves never enter the project. Key per source:

- ``us_ncic_codes``: the 4-digit NCIC code
- ``us_ca_doj_offense_codes``: the 5-digit CA DOJ offence code
- ``us_ca_police_charge_ncic``: ``h:`` + first 10 hex of sha1 of the charge string
- ``us_denver_offense_codes``: ``OFFENSE_CODE-OFFENSE_CODE_EXTENSION``
- ``us_boston_offense_codes``: the Boston offence code (all its name variants share it)
- ``uk_crown_court_offences``: ``h:`` + first 10 hex of sha1 of the offence description
- ``in_ipc_sections``: the IPC section, e.g. ``IPC_379``
"""

from __future__ import annotations

import csv
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class SourceRecord:
    """One text of a national list, with its key and hints for mapping it."""

    key: str
    text: str
    hints: dict[str, str] = field(default_factory=dict)


def text_key(text: str) -> str:
    """Stable key of a text, for sources whose own codes are too coarse."""
    return "h:" + hashlib.sha1(text.strip().encode("utf-8")).hexdigest()[:10]


def _rows(path: Path) -> Iterator[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        yield from csv.DictReader(f)


def _ncic(d: Path) -> Iterator[SourceRecord]:
    for r in _rows(d / "us_ncic_codes" / "ncic.csv"):
        yield SourceRecord(r["ncic_code"], r["description"], {"category": r["category"]})


def _ca_doj(d: Path) -> Iterator[SourceRecord]:
    for r in _rows(d / "us_ca_doj_offense_codes" / "ca_doj_offense_codes.csv"):
        hints = {
            "statute": f"{r['code_type']} {r['statute_section']}",
            "severity": r["felony_misd_infraction"],
            "ncic_prefix": r["ncic_category_prefix_derived"],
        }
        yield SourceRecord(r["ca_doj_offense_code"], r["literal"], hints)


def _ca_police(d: Path) -> Iterator[SourceRecord]:
    for r in _rows(d / "us_ca_police_charge_ncic" / "ca_charge_desc_to_ncic.csv"):
        text = r["charge_description"]
        hints = {"ncic": r["ncic_code"], "ncic_desc": r["ncic_description_from_recidiviz_list"]}
        yield SourceRecord(text_key(text), text, hints)


def _denver(d: Path) -> Iterator[SourceRecord]:
    for r in _rows(d / "us_denver_offense_codes" / "denver_offense_codes.csv"):
        hints = {
            "category": r["OFFENSE_CATEGORY_NAME"],
            "is_crime": r["IS_CRIME"],
            "is_traffic": r["IS_TRAFFIC"],
        }
        key = f"{r['OFFENSE_CODE']}-{r['OFFENSE_CODE_EXTENSION']}"
        yield SourceRecord(key, r["OFFENSE_TYPE_NAME"], hints)


def _boston(d: Path) -> Iterator[SourceRecord]:
    for r in _rows(d / "us_boston_offense_codes" / "boston_offense_codes.csv"):
        yield SourceRecord(r["OFFENSE_CODE"].strip(), r["NAME"].strip())


def _uk(d: Path) -> Iterator[SourceRecord]:
    seen: set[str] = set()
    for r in _rows(d / "uk_crown_court_offences" / "crown_court_offences_distinct.csv"):
        text = r["description"]
        key = text_key(text)
        if key in seen:
            continue
        seen.add(key)
        hints = {"contrary_to": r["contrary_to"], "class": r["legacy_offence_class"]}
        yield SourceRecord(key, text, hints)


# Placeholders some lists carry instead of a text; such rows teach nothing.
_NO_TEXT = {"", "nan", "none", "as described"}


def _ipc(d: Path) -> Iterator[SourceRecord]:
    for r in _rows(d / "in_ipc_sections" / "ipc_sections.csv"):
        if r["offense"].strip().lower() in _NO_TEXT:
            continue
        yield SourceRecord(r["section"], r["offense"], {"punishment": r["punishment"]})


Reader = Callable[[Path], Iterator[SourceRecord]]


@dataclass(frozen=True)
class Source:
    """A national list: how to read it, and how training and evaluation hold it out."""

    reader: Reader
    language: str
    # The split group is the jurisdiction, so leave-one-group-out never tests on a list whose
    # sibling list was in training. Each group is one fold of the calibration (`iccs train`).
    group: str
    # The fold of ``iccs evaluate --grouped``: a quicker (and stricter) run holding out a
    # region of jurisdictions at a time.
    region: str


# Adding a national list: a reader above, an entry here, and ``crosswalks/<name>*.csv``
# (labelled_data/README.md, "Adding a national list").
SOURCES: dict[str, Source] = {
    "us_ncic_codes": Source(_ncic, "en", "us_ncic", "us_police_lists"),
    "us_ca_doj_offense_codes": Source(_ca_doj, "en", "us_ca_doj", "california_doj"),
    "us_ca_police_charge_ncic": Source(_ca_police, "en", "us_ca_police", "us_police_lists"),
    "us_denver_offense_codes": Source(_denver, "en", "us_denver", "us_police_lists"),
    "us_boston_offense_codes": Source(_boston, "en", "us_boston", "us_police_lists"),
    "uk_crown_court_offences": Source(_uk, "en", "uk_crown_court", "uk_and_india"),
    "in_ipc_sections": Source(_ipc, "en", "in_ipc", "uk_and_india"),
}


def calibration_folds() -> dict[str, str]:
    """Split group -> fold of the calibration: one fold per jurisdiction."""
    return {s.group: s.group for s in SOURCES.values()}


def grouped_folds() -> dict[str, str]:
    """Split group -> fold of the grouped evaluation: one fold per region."""
    return {s.group: s.region for s in SOURCES.values()}


def read_source(name: str, data_dir: Path) -> Iterator[SourceRecord]:
    """Records of one national list under ``data_dir/data``."""
    return SOURCES[name].reader(Path(data_dir) / "data")
