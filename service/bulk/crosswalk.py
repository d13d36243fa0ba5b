"""Correspondence tables: how an agency's own offence codes map onto ICCS, with shares.

Reads a coded file (the output of ``iccs classify-file``) and aggregates by the agency's code
column. Each record counts for the code the system committed to (``assigned_code``); a record
still in review counts for its top suggestion (``iccs_code``) and is counted apart in
``review_records``; rejected records count under an empty ICCS code. A national code whose
records spread over several ICCS codes is a *split* (1-to-many); an ICCS code that receives
several national codes is a *merge* (many-to-1). Mappings below ``min_share`` of a national
code's records are listed but do not raise either flag, so a few misclassified records do not
turn every national code into a split.
"""

from __future__ import annotations

import csv
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from service.bulk import io as bio
from service.bulk.formulas import neutralise
from service.errors import FileFormatError, InvalidInput
from service.models.policy import REJECTED, REVIEW
from service.taxonomy import Taxonomy, ancestor_at, load_taxonomy

PAIR_COLUMNS = (
    "national_code",
    "national_records",
    "iccs_code",
    "iccs_label",
    "records",
    "share",
    "review_records",
    "dominant",
    "split",
    "merge",
    "relation",
    "national_codes_for_iccs",
)
NATIONAL_COLUMNS = (
    "national_code",
    "records",
    "dominant_code",
    "dominant_label",
    "dominant_share",
    "iccs_codes",
    "split",
    "review_records",
    "rejected_records",
)
REJECTED_LABEL = "(rejected: not an offence or unusable text)"


@dataclass
class Crosswalk:
    """The aggregated correspondence: one row per (national code, ICCS code) pair."""

    pairs: list[dict[str, Any]]
    national: list[dict[str, Any]]

    @property
    def splits(self) -> int:
        """National codes flagged 1-to-many."""
        return sum(1 for n in self.national if n["split"])

    @property
    def merges(self) -> int:
        """ICCS codes flagged many-to-1."""
        return len({p["iccs_code"] for p in self.pairs if p["merge"]})


def build_crosswalk(
    coded_path: Path,
    code_column: str,
    *,
    level: int | None = None,
    min_share: float = 0.05,
    encoding: str | None = None,
    delimiter: str | None = None,
    chunk_rows: int = 50_000,
) -> Crosswalk:
    """Aggregate a coded file by ``code_column`` (streamed; memory grows with pairs, not rows)."""
    if level is not None and level not in (1, 2, 3, 4):
        raise InvalidInput("level must be 1, 2, 3 or 4.", level=level)
    if not 0.0 <= min_share <= 1.0:
        raise InvalidInput("min_share must be between 0 and 1.", min_share=min_share)
    reader = bio.open_reader(Path(coded_path), encoding=encoding, delimiter=delimiter)
    code_col = bio.resolve_column(reader.columns, code_column, "--code-column")
    for needed in ("iccs_code", "assigned_code", "status"):
        if needed not in reader.columns:
            raise FileFormatError(
                f"'{Path(coded_path).name}' is not a coded file: column '{needed}' is missing "
                f"(run `iccs classify-file` first). Columns found: "
                + ", ".join(repr(c) for c in reader.columns)
                + ".",
                column=needed,
                columns_found=list(reader.columns),
            )
    tax = load_taxonomy()
    counts: Counter[tuple[str, str]] = Counter()
    review: Counter[tuple[str, str]] = Counter()
    for chunk in reader.chunks(chunk_rows):
        nats = chunk.strings(code_col)
        tops = chunk.strings("iccs_code")
        assigned = chunk.strings("assigned_code")
        statuses = chunk.strings("status")
        for nat, top, ass, status in zip(nats, tops, assigned, statuses, strict=True):
            code = "" if status == REJECTED else (ass or top)
            if code and level is not None and code in tax:
                code = ancestor_at(code, level)
            key = (nat.strip(), code)
            counts[key] += 1
            if status == REVIEW:
                review[key] += 1
    return _tabulate(counts, review, min_share)


def _tabulate(
    counts: Counter[tuple[str, str]], review: Counter[tuple[str, str]], min_share: float
) -> Crosswalk:
    tax = load_taxonomy()
    by_nat: dict[str, list[tuple[str, int]]] = defaultdict(list)
    for (nat, code), n in counts.items():
        by_nat[nat].append((code, n))
    totals = {nat: sum(n for _, n in items) for nat, items in by_nat.items()}
    # A mapping is "material" when it holds at least min_share of its national code's records.
    material: dict[str, set[str]] = defaultdict(set)  # iccs code -> national codes
    nat_material: dict[str, set[str]] = defaultdict(set)
    for nat, items in by_nat.items():
        for code, n in items:
            if code and n / totals[nat] >= min_share:
                material[code].add(nat)
                nat_material[nat].add(code)
    pairs: list[dict[str, Any]] = []
    national: list[dict[str, Any]] = []
    for nat in sorted(by_nat):
        items = sorted(by_nat[nat], key=lambda cn: (-cn[1], cn[0]))
        total = totals[nat]
        real = [(c, n) for c, n in items if c]
        dominant = real[0][0] if real else ""
        split = len(nat_material[nat]) > 1
        for code, n in items:
            merge = bool(code) and len(material.get(code, ())) > 1
            pairs.append(
                {
                    "national_code": nat,
                    "national_records": total,
                    "iccs_code": code,
                    "iccs_label": _title(tax, code) if code else REJECTED_LABEL,
                    "records": n,
                    "share": round(n / total, 4),
                    "review_records": review.get((nat, code), 0),
                    "dominant": bool(code) and code == dominant,
                    "split": split,
                    "merge": merge,
                    "relation": _relation(split, merge) if code else "",
                    "national_codes_for_iccs": len(material.get(code, ())) if code else 0,
                }
            )
        dom_n = real[0][1] if real else 0
        national.append(
            {
                "national_code": nat,
                "records": total,
                "dominant_code": dominant,
                "dominant_label": _title(tax, dominant) if dominant else "",
                "dominant_share": round(dom_n / total, 4),
                "iccs_codes": len(real),
                "split": split,
                "review_records": sum(review.get((nat, c), 0) for c, _ in items),
                "rejected_records": sum(n for c, n in items if not c),
            }
        )
    return Crosswalk(pairs, national)


def _title(tax: Taxonomy, code: str) -> str:
    # A hand-edited coded file may carry a code that is not ICCS; show it, untitled.
    return tax.title(code) if code in tax else ""


def _relation(split: bool, merge: bool) -> str:
    if split and merge:
        return "many-to-many"
    if split:
        return "1-to-many"
    if merge:
        return "many-to-1"
    return "1-to-1"


def write_crosswalk(table: Crosswalk, output: Path) -> None:
    """CSV (the pair table) or XLSX (pairs plus a per-national-code sheet), by extension."""
    output = Path(output)
    fmt = bio.file_format(output)
    if fmt == "csv":
        with output.open("w", encoding="utf-8", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=PAIR_COLUMNS, lineterminator="\n")
            writer.writeheader()
            writer.writerows(
                {k: neutralise(v) if isinstance(v, str) else v for k, v in p.items()}
                for p in table.pairs
            )
    elif fmt == "xlsx":
        bio.write_sheets(
            output,
            [
                (
                    "correspondence",
                    PAIR_COLUMNS,
                    ([p[c] for c in PAIR_COLUMNS] for p in table.pairs),
                ),
                (
                    "national_codes",
                    NATIONAL_COLUMNS,
                    ([n[c] for c in NATIONAL_COLUMNS] for n in table.national),
                ),
            ],
        )
    else:
        raise FileFormatError("Write correspondence tables as .csv or .xlsx.", path=output.name)
