"""A reviewer's decision joins the model's nearest examples at once (issue 14 §1).

With the tiny model and a real review store: correcting one text to X raises X for a similar
pending-style text, on the coder that saw the decision and on a second coder (instance) sharing
the database, without retraining; answers name the decision they relied on; a retired entry
stops counting after a refresh; a decision never boosts its own text; `not_an_offence` adds
nothing; bulk output rows carry the ``relied_on`` column.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from service.bulk import BulkOptions, classify_file
from service.coding import SOURCE_MEMORY, Coder
from service.normalize import dedupe_key
from service.review.store import ReviewStore

# The reviewer decides DECIDED; SIMILAR is a later record worded alike; CODE is a leaf the
# tiny model does not rank first for either.
DECIDED = "siphoned diesel out of the depot's parked tractors overnight"
SIMILAR = "siphoned petrol out of the depot's parked lorries at night"
CODE = "050239"


def code_probability(coder: Coder, text: str, code: str = CODE) -> float:
    """The model's probability of ``code`` (its subtree) for ``text``, decided examples in."""
    p = coder.predictor
    proba = p.class_probabilities([text], decided=coder.decided)
    node = p.head.nodes_.index(code)
    return float((proba @ p.head.node_matrix_)[0, node])


def decide(store: ReviewStore, coder: Coder, text: str, action: str, code: str | None) -> int:
    """Queue ``text`` for review and have a (non-admin) reviewer decide it."""
    (rec,) = coder.code([text], min_precision=0.999)
    assert rec.review_id is not None and rec.result.status == "review"
    store.decide(rec.review_id, "alice", action, code=code)
    return rec.review_id


@pytest.fixture
def coders(tiny_predictor: Any, store: ReviewStore) -> tuple[Coder, Coder]:
    """Two instances over one database: their own Coder and their own store object."""
    other = ReviewStore(store.engine, lease_seconds=60)
    # An hour between full reloads: what the second instance sees, it sees incrementally.
    return Coder(tiny_predictor, store, 3600), Coder(tiny_predictor, other, 3600)


def test_a_correction_raises_its_code_for_similar_texts_on_every_instance(
    store: ReviewStore, coders: tuple[Coder, Coder]
) -> None:
    first, second = coders
    assert first.predictor.decided_index() is not None  # the tiny model has nearest examples
    before = code_probability(first, SIMILAR)
    (top_before,) = first.rescore([SIMILAR])
    assert top_before.suggestions[0].code != CODE and top_before.relied_on == []
    second.rescore([SIMILAR])  # the second instance has synced before the decision

    item = decide(store, first, DECIDED, "correct", CODE)
    # One reviewer: decision memory does not apply yet (agreement), the nearest examples do.
    assert store.memory_lookup_items([dedupe_key(DECIDED)]) == {}

    for coder in (first, second):
        (now,) = coder.rescore([SIMILAR])
        assert code_probability(coder, SIMILAR) > before + 0.05
        assert now.suggestions[0].code == CODE, [(s.code, s.confidence) for s in now.suggestions]
        assert now.relied_on == [item]
        (coded,) = coder.code([SIMILAR], queue_review=False)
        assert coded.source == "model" and coded.result.relied_on == [item]
    (near,) = second.decided_neighbours([SIMILAR], k=3)
    assert [(n.item_id, n.text, n.code) for n in near] == [(item, DECIDED, CODE)]
    assert 0.0 < near[0].similarity <= 1.0


def test_a_decision_never_boosts_its_own_text(
    store: ReviewStore, coders: tuple[Coder, Coder]
) -> None:
    first, _ = coders
    before = code_probability(first, DECIDED)
    decide(store, first, DECIDED, "correct", CODE)
    first.sync_decided()
    assert len(first.decided or ()) == 1
    # Same text key (case and punctuation differ): no bonus, nothing relied on, no neighbour.
    again = DECIDED.upper() + "!"
    assert code_probability(first, again) == pytest.approx(before, abs=1e-9)
    (res,) = first.rescore([again])
    assert res.relied_on == []
    assert first.decided_neighbours([again]) == [[]]
    (coded,) = first.code([again], queue_review=False)
    assert coded.source == "model" and coded.result.relied_on == []


def test_an_answer_from_decision_memory_names_its_decision(
    store: ReviewStore, coders: tuple[Coder, Coder]
) -> None:
    first, _ = coders
    store.memory_min_agreeing = 1
    item = decide(store, first, DECIDED, "correct", CODE)
    (coded,) = first.code([DECIDED.upper()])
    assert coded.source == SOURCE_MEMORY and coded.result.assigned is not None
    assert coded.result.assigned.code == CODE and coded.result.relied_on == [item]


def test_a_retired_entry_stops_counting_after_a_refresh(
    store: ReviewStore, coders: tuple[Coder, Coder], monkeypatch: pytest.MonkeyPatch
) -> None:
    first, second = coders
    before = code_probability(second, SIMILAR)
    item = decide(store, first, DECIDED, "correct", CODE)
    second.sync_decided()
    assert code_probability(second, SIMILAR) > before + 0.05
    store.memory_retire("admin", item_id=item)
    # The refresh interval passes on the second instance's clock: a full reload drops it.
    import service.coding as coding

    later = coding.time.monotonic() + 3601
    monkeypatch.setattr(coding.time, "monotonic", lambda: later)
    (res,) = second.rescore([SIMILAR])
    assert res.relied_on == [] and len(second.decided or ()) == 0
    assert code_probability(second, SIMILAR) == pytest.approx(before, abs=1e-9)


def test_not_an_offence_decisions_add_no_bonus(
    store: ReviewStore, coders: tuple[Coder, Coder]
) -> None:
    first, _ = coders
    p = first.predictor
    before = p.class_probabilities([SIMILAR])
    item = decide(store, first, DECIDED, "reject", None)
    first.sync_decided()
    assert first.decided is not None and len(first.decided) == 1  # indexed, for neighbours
    after = p.class_probabilities([SIMILAR], decided=first.decided)
    assert np.allclose(after, before, atol=1e-12)
    (res,) = first.rescore([SIMILAR])
    assert res.relied_on == []
    assert [n.item_id for n in first.decided_neighbours([SIMILAR])[0]] == [item]


def test_bulk_rows_carry_the_decisions_they_relied_on(
    store: ReviewStore, coders: tuple[Coder, Coder], tmp_path: Path
) -> None:
    first, second = coders
    item = decide(store, first, DECIDED, "correct", CODE)
    src = tmp_path / "in.csv"
    with src.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["description"])
        w.writerows([[SIMILAR], ["theft of a bicycle"], [""]])
    out = tmp_path / "out.csv"
    classify_file(src, out, BulkOptions(text_column="description"), second)
    with out.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["relied_on"] for r in rows] == [str(item), "", ""]
    assert rows[0]["iccs_code"] == CODE


def test_a_request_does_not_wait_for_a_sync_in_progress(
    store: ReviewStore, coders: tuple[Coder, Coder]
) -> None:
    """The first load at startup encodes every decided text; requests code meanwhile with the
    examples loaded so far, and the next request after it picks up the rest."""
    first, second = coders
    item = decide(store, first, DECIDED, "correct", CODE)
    second._sync_lock.acquire()  # another thread's sync (the startup load) is running
    try:
        (coded,) = second.code([SIMILAR], queue_review=False)
        assert coded.result.relied_on == []  # answered without the decision, not blocked
    finally:
        second._sync_lock.release()
    (coded,) = second.code([SIMILAR], queue_review=False)
    assert coded.result.relied_on == [item]


def test_a_retirement_reaches_other_instances_at_their_next_request(
    store: ReviewStore, coders: tuple[Coder, Coder], monkeypatch: pytest.MonkeyPatch
) -> None:
    """No full reload needed: the incremental pull also reads entries retired since it."""
    import service.coding as coding

    monkeypatch.setattr(coding, "DECIDED_OVERLAP", coding.timedelta(0))
    first, second = coders
    item = decide(store, first, DECIDED, "correct", CODE)
    second.sync_decided()
    # A decision on an unrelated act (traffic, not theft), so only the first can drive SIMILAR.
    decide(store, first, "drove through a red light on the ring road", "correct", "0907")
    second.sync_decided()  # the watermark moves past the first decision
    assert second.rescore([SIMILAR])[0].relied_on == [item]
    store.memory_retire("admin", item_id=item)
    (res,) = second.rescore([SIMILAR])  # an incremental pull, an hour before the full one
    assert res.relied_on == [] and len(second.decided or ()) == 1
