"""Agreement of the blind second pass with the first labels (a script, not a test).

Each ``labelled_data/second_pass/<file>.csv`` holds ``source_key,iccs_code`` for a random 10%
(seed 2026) of ``labelled_data/handwritten/<file>.csv``, labelled by a second labeller who saw
only the texts and the ICCS manual. Prints agreement at section, division and exact code:

    .venv/bin/python bench/label_agreement.py
"""

from __future__ import annotations

import csv
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "labelled_data"
LENGTH = {"section": 2, "division": 4}


def _at(code: str, level: str) -> str | None:
    if code == "not_an_offence" or level == "exact":
        return code
    return code[: LENGTH[level]] if len(code) >= LENGTH[level] else None


def main() -> None:
    """One table row per second-pass file."""
    print("| file | language | rows | section | division | exact code |")
    print("|---|---|---|---|---|---|")
    for path in sorted((ROOT / "second_pass").glob("*.csv")):
        with (ROOT / "handwritten" / path.name).open(encoding="utf-8", newline="") as f:
            first = {r["source_key"]: r for r in csv.DictReader(f)}
        with path.open(encoding="utf-8", newline="") as f:
            second = {r["source_key"]: r["iccs_code"] for r in csv.DictReader(f)}
        second = {k: v for k, v in second.items() if k in first}
        cells = []
        for level in ("section", "division", "exact"):
            pairs = [(_at(first[k]["iccs_code"], level), _at(v, level)) for k, v in second.items()]
            pairs = [(a, b) for a, b in pairs if a is not None and b is not None]
            cells.append(f"{sum(a == b for a, b in pairs) / len(pairs):.1%}")
        lang = next(iter(first.values()))["language"]
        print(f"| {path.stem} | {lang} | {len(second)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
