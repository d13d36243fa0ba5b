"""Score a coded spot-check file against its ``expected`` column (written by us, per record).

    iccs classify-file bench/spot_check/ko.csv --text-column text --id-column id \\
        --output /tmp/ko_coded.csv
    python bench/spot_check/score.py /tmp/ko_coded.csv

Prints a Markdown table (expected code, suggested code, status, confidence, the deepest level at
which they agree) and the counts per level. A record counts at a level when the suggestion and the
expected code share that level's prefix ("not_an_offence" only matches itself, or a record
rejected as not an offence); where we wrote
the expected code at a shallower level (unsure of the class), a suggestion under it counts as
exact.
"""

from __future__ import annotations

import csv
import sys

LEVELS = (("section", 2), ("division", 4), ("exact", None))


def agreement(expected: str, suggested: str) -> list[str]:
    """Levels at which ``suggested`` agrees with ``expected``."""
    if not expected[:1].isdigit() or not suggested[:1].isdigit():
        return [name for name, _ in LEVELS] if expected == suggested else []
    out = []
    for name, width in LEVELS:
        if width is None:
            if suggested == expected or (
                len(suggested) > len(expected) and suggested.startswith(expected)
            ):
                out.append(name)
        elif len(expected) >= width and expected[:width] == suggested[:width]:
            out.append(name)
    return out


def main(path: str) -> None:
    with open(path, encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    counts = dict.fromkeys((name for name, _ in LEVELS), 0)
    print("| id | text | expected | suggested | status | confidence | agrees at |")
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        # A record the model scores as not an offence is rejected with that reason; its
        # iccs_code is only the best of the offence codes.
        suggested = "not_an_offence" if r.get("reason") == "not_an_offence" else r["iccs_code"]
        levels = agreement(r["expected"], suggested)
        for name in levels:
            counts[name] += 1
        print(
            f"| {r['id']} | {r['text']} | {r['expected']} | {suggested} | {r['status']} "
            f"| {float(r['confidence'] or 0):.2f} | {levels[-1] if levels else '-'} |"
        )
    print()
    print(", ".join(f"{name} {n}/{len(rows)}" for name, n in counts.items()))


if __name__ == "__main__":
    main(sys.argv[1])
