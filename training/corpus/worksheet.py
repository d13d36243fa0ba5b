"""Print a mapping worksheet for one national list: key, text, hints (TSV on stdout).

For the people who write crosswalks: ``python -m training.corpus.worksheet us_ncic_codes``.
The worksheet is for reading; it is not committed (the texts stay in the data directory).
"""

from __future__ import annotations

import sys
from pathlib import Path

from training.corpus.sources import SOURCES, read_source


def main(argv: list[str]) -> int:
    """Write the worksheet of source ``argv[0]`` (data dir ``argv[1]``, default ../shared)."""
    if not argv or argv[0] not in SOURCES:
        sys.stderr.write(f"usage: worksheet SOURCE [DATA_DIR]; sources: {', '.join(SOURCES)}\n")
        return 2
    data_dir = Path(argv[1]) if len(argv) > 1 else Path("../shared")
    seen: set[str] = set()
    for rec in read_source(argv[0], data_dir):
        if rec.key in seen:
            continue
        seen.add(rec.key)
        hints = " | ".join(f"{k}={v}" for k, v in rec.hints.items() if v)
        sys.stdout.write(f"{rec.key}\t{rec.text}\t{hints}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
