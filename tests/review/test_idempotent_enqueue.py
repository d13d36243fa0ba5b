"""Queueing a run's review texts is idempotent per (run, text) (issue 16 L3).

A bulk run queues its review texts at its end. When the process dies during that step, or
after the checkpoint is removed but before the job is marked done, the run is repeated; the
repeat must not add the occurrences again, nor queue anew a text decided in the meantime.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from sqlalchemy import select

from service.bulk import BulkOptions, classify_file
from service.coding import Coder
from service.db import ReviewItem
from service.review.store import ReviewStore


def test_enqueue_with_a_source_sets_rather_than_adds(store: ReviewStore, make_request) -> None:
    reqs = [make_request("a", batch="f", occurrences=5), make_request("b", batch="f")]
    first = store.enqueue(reqs, source="run-1")
    assert store.enqueue(reqs, source="run-1") == first
    assert store.get(first[0]).occurrences == 5
    # The same run again with a corrected count: the count is set, not added.
    assert store.enqueue([make_request("a", batch="f", occurrences=7)], source="run-1") == [
        first[0]
    ]
    assert store.get(first[0]).occurrences == 7
    # Another run of the same batch adds its own records to the open item.
    store.enqueue([make_request("a", batch="f", occurrences=2)], source="run-2")
    assert store.get(first[0]).occurrences == 9
    # A text decided meanwhile is not queued again by the same run.
    store.decide(first[1], "alice", "accept")
    again = store.enqueue(reqs, source="run-1")
    assert again == first and store.get(first[1]).status == "decided"
    assert store.list_items().total == 2
    assert store.get(first[0]).occurrences == 7  # run-1 says 5 again, run-2 added 2
    # Without a source, enqueue merges and adds, as before.
    store.enqueue([make_request("a", batch="f", occurrences=1)])
    assert store.get(first[0]).occurrences == 8


def test_a_repeated_bulk_run_queues_nothing_twice(
    store: ReviewStore, tiny_predictor: Any, tmp_path: Path
) -> None:
    texts = ["stole a car", "ASSLT W/DW", "see file", "xq zz 12", "burglary of a dwelling"]
    src = tmp_path / "in.csv"
    with src.open("w", newline="", encoding="utf-8") as f:
        w = csv.writer(f)
        w.writerow(["id", "text"])
        for i in range(60):
            w.writerow([i, texts[i % len(texts)]])
    coder = Coder(tiny_predictor, store)
    options = BulkOptions(
        text_column="text", to_review=True, batch_name="f.csv", chunk_rows=20, min_precision=0.99
    )

    def items() -> dict[str, tuple[int, int, str]]:
        with store._sessions() as s:
            rows = s.scalars(select(ReviewItem).order_by(ReviewItem.id)).all()
            return {r.text: (r.id, r.occurrences, r.status) for r in rows}

    classify_file(src, tmp_path / "out.csv", options, coder)
    before = items()
    assert before and all(occ == 12 for _, occ, _ in before.values())
    decided_text = next(iter(before))
    store.decide(before[decided_text][0], "alice", "reject")
    # The checkpoint is gone (the run finished) but the job was not marked done: it runs again.
    classify_file(src, tmp_path / "out.csv", options, coder)
    after = items()
    assert {t: (i, occ) for t, (i, occ, _) in after.items()} == {
        t: (i, occ) for t, (i, occ, _) in before.items()
    }
    assert after[decided_text][2] == "decided"
