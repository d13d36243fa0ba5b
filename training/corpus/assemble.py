"""Assemble, validate and describe the labelled corpus.

Rules the validator enforces (the test suite runs it on the committed data):
- every code exists in ICCS v1.0 (or is ``not_an_offence``);
- every row has a split group, so evaluation can leave a whole source out;
- one normalised text never carries two codes within the project's own rows (hand-written and
  review rows): that is an error to fix in the data;
- duplicates after normalisation are merged within a source. Across sources a disagreement
  (e.g. one list's "THEFT" mapped to the division, another's to a group) is resolved by
  source priority and reported, so the model is never taught two answers for one text;
- a reference row (ICCS manual or index) does not pull a text up to a parent: the manual repeats
  its children's phrases at the parent ("apply all inclusions listed in ..."), so when the
  priority winner is a reference row whose code is an ancestor of the text's other labels, and
  those labels lie on one branch, the deepest of them is kept ("Kidnapping" stays 020221).
"""

from __future__ import annotations

import csv
import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from service.labels import COLUMNS, CONFIDENCES, NOT_AN_OFFENCE, LabelledRow
from service.normalize import default_normalizer
from service.taxonomy import Taxonomy, load_taxonomy
from training.corpus.crosswalk import crosswalk_problems, crosswalk_rows
from training.corpus.manual import SOURCE_INDEX, SOURCE_MANUAL, index_rows, manual_rows

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LABELLED_DIR = PROJECT_ROOT / "labelled_data"
OWN_SOURCES = ("handwritten", "review")
# Lower number wins a cross-source disagreement: people's own judgement first.
_PRIORITY = {"review": 0, "handwritten": 1, SOURCE_MANUAL: 2, SOURCE_INDEX: 3}
_CONF_RANK = {c: i for i, c in enumerate(CONFIDENCES)}
# Sources whose phrases are listed at a parent as well as at the child (see _resolve).
_REFERENCE_SOURCES = (SOURCE_MANUAL, SOURCE_INDEX)


@dataclass
class Assembly:
    """The assembled corpus with what the validator found."""

    rows: list[LabelledRow]
    problems: list[str] = field(default_factory=list)
    resolved_conflicts: list[str] = field(default_factory=list)
    merged_duplicates: int = 0
    # ``source:key`` of national-list texts a crosswalk excludes from training.
    excluded: list[str] = field(default_factory=list)


def read_labelled_csv(path: Path) -> list[LabelledRow]:
    """Rows of a CSV in the corpus schema."""
    with Path(path).open(encoding="utf-8", newline="") as f:
        reader = csv.DictReader(f)
        missing = set(COLUMNS) - set(reader.fieldnames or [])
        if missing:
            raise ValueError(f"{path}: missing columns {sorted(missing)}")
        return [LabelledRow(**{k: (r[k] or "").strip() for k in COLUMNS}) for r in reader]


def own_rows(labelled_dir: Path = LABELLED_DIR) -> list[LabelledRow]:
    """Hand-written and reviewed rows committed under ``labelled_data``."""
    rows: list[LabelledRow] = []
    for sub in ("handwritten", "review"):
        for path in sorted((labelled_dir / sub).glob("*.csv")):
            rows.extend(read_labelled_csv(path))
    return rows


def _rank(row: LabelledRow) -> tuple[int, int]:
    return _PRIORITY.get(row.source, 4), _CONF_RANK.get(row.confidence, 3)


def _resolve(rows: list[LabelledRow], tax: Taxonomy) -> LabelledRow:
    """The row whose code a cross-source disagreement keeps.

    Source priority decides, except that a reference phrase listed at a parent does not
    override a deeper label consistent with it: when the priority winner is an ICCS manual or
    index row and some other rows carry descendants of its code, all on one branch, the
    best-ranked row with the deepest of those codes wins instead. Descendants on different
    branches leave the parent (their common ground) in place.
    """
    winner = min(rows, key=_rank)
    if winner.source not in _REFERENCE_SOURCES or winner.iccs_code not in tax:
        return winner
    deeper = {
        r.iccs_code
        for r in rows
        if r.iccs_code in tax
        and r.iccs_code != winner.iccs_code
        and winner.iccs_code in tax.path(r.iccs_code)
    }
    if not deeper:
        return winner
    deepest = max(deeper, key=tax.level)
    if not deeper <= set(tax.path(deepest)):
        return winner
    return min((r for r in rows if r.iccs_code == deepest), key=_rank)


def validate_and_merge(rows: Iterable[LabelledRow]) -> Assembly:
    """Check codes and split groups, merge duplicates, resolve or report conflicts."""
    tax = load_taxonomy()
    norm = default_normalizer()
    problems: list[str] = []
    by_key: dict[tuple[str, str], LabelledRow] = {}
    codes_by_text: dict[str, dict[str, list[LabelledRow]]] = defaultdict(dict)
    merged = 0
    for row in rows:
        where = f"{row.source}:{row.source_key}"
        if row.iccs_code != NOT_AN_OFFENCE and row.iccs_code not in tax:
            problems.append(f"invalid code {row.iccs_code!r} at {where}")
            continue
        if not row.split_group:
            problems.append(f"no split_group at {where}")
            continue
        text = norm(row.text)
        if not text:
            if row.iccs_code != NOT_AN_OFFENCE:
                problems.append(f"empty text labelled {row.iccs_code} at {where}")
            continue
        key = (row.source, text)
        if key in by_key:
            merged += 1
            if by_key[key].iccs_code == row.iccs_code:
                continue
        else:
            by_key[key] = row
        codes_by_text[text].setdefault(row.iccs_code, []).append(row)

    resolved: list[str] = []
    keep: dict[tuple[str, str], LabelledRow] = {}
    for text, codes in codes_by_text.items():
        if len(codes) == 1:
            for row in next(iter(codes.values())):
                keep.setdefault((row.source, text), row)
            continue
        all_rows = [r for rs in codes.values() for r in rs]
        own_codes = {r.iccs_code for r in all_rows if r.source in OWN_SOURCES}
        if len(own_codes) > 1:
            where = ", ".join(f"{r.source}:{r.source_key}={r.iccs_code}" for r in all_rows)
            problems.append(f"conflicting codes for one text: {where}")
            continue
        winner = _resolve(all_rows, tax)
        losers = sorted(
            {
                f"{r.source}:{r.source_key}={r.iccs_code}"
                for r in all_rows
                if r.iccs_code != winner.iccs_code
            }
        )
        resolved.append(
            f"{winner.source}:{winner.source_key}={winner.iccs_code} over " + ", ".join(losers)
        )
        for row in all_rows:
            keep.setdefault((row.source, text), _relabel(row, winner.iccs_code))
    return Assembly(list(keep.values()), problems, resolved, merged)


def _relabel(row: LabelledRow, code: str) -> LabelledRow:
    if row.iccs_code == code:
        return row
    d = row.as_dict()
    d["iccs_code"] = code
    return LabelledRow(**d)


def assemble(
    data_dir: Path,
    labelled_dir: Path = LABELLED_DIR,
    include_reference: bool = True,
) -> Assembly:
    """The full corpus: manual, index, crosswalked national lists, own rows."""
    rows: list[LabelledRow] = []
    missing: list[str] = []
    excluded: list[str] = []
    cw_problems: list[str] = []
    data_dir = Path(data_dir)
    if include_reference and (data_dir / "iccs" / "iccs_v1.csv").exists():
        rows.extend(manual_rows(data_dir))
        rows.extend(index_rows(data_dir))
        folder = labelled_dir / "crosswalks"
        cw_problems = crosswalk_problems(folder)
        rows.extend(crosswalk_rows(data_dir, folder, missing, excluded))
    rows.extend(own_rows(labelled_dir))
    result = validate_and_merge(rows)
    result.problems.extend(cw_problems)
    result.problems.extend(f"crosswalk has no row for {m}" for m in missing)
    result.excluded = excluded
    return result


def corpus_hash(rows: Iterable[LabelledRow]) -> str:
    """Order-independent hash of the training data (recorded in every manifest)."""
    h = hashlib.sha256()
    for line in sorted("\x1f".join(r.as_dict().values()) for r in rows):
        h.update(line.encode("utf-8"))
        h.update(b"\n")
    return h.hexdigest()


def corpus_stats(rows: list[LabelledRow]) -> dict[str, Any]:
    """Totals for ``iccs corpus stats`` and the data card."""
    tax = load_taxonomy()
    per_code = Counter(r.iccs_code for r in rows if r.is_offence)
    # A category counts the examples of its whole subtree.
    subtree: Counter[str] = Counter()
    for code, n in per_code.items():
        for anc in tax.path(code):
            subtree[anc] += n
    targets = [c for c in tax.codes() if tax.is_leaf(c)]
    level_counts = Counter(tax.level(r.iccs_code) for r in rows if r.is_offence)
    return {
        "rows": len(rows),
        "not_an_offence": sum(1 for r in rows if not r.is_offence),
        "per_source": dict(Counter(r.source for r in rows).most_common()),
        "per_language": dict(Counter(r.language for r in rows).most_common()),
        "per_style": dict(Counter(r.style for r in rows).most_common()),
        "per_section": {s: subtree[s] for s in tax.codes(level=1)},
        "per_label_level": {str(k): level_counts[k] for k in sorted(level_counts)},
        "categories_with_at_least": {
            str(k): sum(1 for c in tax.codes() if subtree[c] >= k) for k in (1, 5, 10)
        },
        "categories_total": len(tax),
        "divisions_with_at_least_20": sum(1 for c in tax.codes(level=2) if subtree[c] >= 20),
        "leaf_targets_level3_4_with_at_least_8": (
            sum(1 for c in targets if tax.level(c) >= 3 and subtree[c] >= 8),
            sum(1 for c in targets if tax.level(c) >= 3),
        ),
    }
