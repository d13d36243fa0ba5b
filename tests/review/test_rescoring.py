"""Re-scoring after a decision (issue 14 §1) and the queue order by value (§2), store side.

A fake coder stands in for the model: it answers what each test needs, so the tests pin what
the store does with the answers (who leaves the queue, what the audit says, what is left
alone), on SQLite and PostgreSQL.
"""

from __future__ import annotations

import gc
import weakref
from dataclasses import replace
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import select

from service.db import MemoryEntry, ReviewDecision, utcnow
from service.errors import Conflict
from service.review.export import export_reviewed
from service.review.rescoring import (
    SIMILAR,
    ListKey,
    OpenItem,
    TextEmbeddings,
    ValuedQueue,
    embeddings_of,
    expected_values,
    refresh_values,
    rescore_after_decision,
)
from service.review.store import AUTO_CODED, ItemFilter, ReviewStore
from service.review.tables import MemoryVote

from .rescoring_fakes import Answer, FakeCoder, auto, review


def test_correction_auto_codes_and_rescores_only_pending_single_review_items_of_its_list(
    store: ReviewStore, make_request: Any, tmp_path: Path
) -> None:
    ids = dict(
        zip(
            ["decided", "auto", "moved", "same", "other_batch", "double", "claimed", "no_batch"],
            store.enqueue(
                [
                    make_request("customs act sec 3601", batch="list-1"),
                    make_request("customs act sec 3602", batch="list-1"),
                    make_request("customs act sec 9", batch="list-1"),
                    make_request("a burglary", batch="list-1"),
                    make_request("customs act sec 3603", batch="list-2"),
                    make_request("customs act sec 3604", batch="list-1"),
                    make_request("customs act sec 3605", batch="list-1"),
                    make_request("customs act sec 3606"),
                ]
            ),
            strict=True,
        )
    )
    store.flag_double_review("boss", item_ids=[ids["double"]])
    store.claim(ids["claimed"], "bob")
    coder = FakeCoder(
        {
            "customs act sec 3602": auto("0501", 0.991, [ids["decided"]]),
            "customs act sec 9": review("0501", 0.7),
            # the top code stays what it was: no "rescored" audit row, the numbers change
            "a burglary": review("020111", 0.61),
        }
    )
    store.decide(ids["decided"], "alice", "correct", code="0501")
    out = rescore_after_decision(store, coder, ids["decided"])

    # Only the open, unclaimed, single-review items of the same batch were asked about.
    assert sorted(coder.asked[0]) == ["a burglary", "customs act sec 3602", "customs act sec 9"]
    assert out.considered == 3 and out.auto_coded == [ids["auto"]] and out.moved == [ids["moved"]]

    coded = store.get(ids["auto"])
    assert (coded.status, coded.decided_code, coded.decided_by, coded.decision) == (
        AUTO_CODED,
        "0501",
        "system",
        AUTO_CODED,
    )
    last = store.history(ids["auto"])[-1]
    assert (last.action, last.actor, last.from_status, last.to_status, last.to_code) == (
        "auto_coded",
        "system",
        "pending",
        AUTO_CODED,
        "0501",
    )
    assert last.note is not None
    assert f"review item(s) {ids['decided']};" in last.note and "test-model-2" in last.note
    assert last.model_version == "test-model-2"

    moved = store.get(ids["moved"])
    assert (moved.status, moved.top_code, moved.top_confidence, moved.section) == (
        "pending",
        "0501",
        0.7,
        "05",
    )
    assert [s["code"] for s in moved.suggestions] == ["0501", "020111"]
    assert [(e.action, e.from_code, e.to_code) for e in store.history(ids["moved"])][-1] == (
        "rescored",
        "020111",
        "0501",
    )
    same = store.get(ids["same"])
    assert same.top_confidence == 0.61
    assert [e.action for e in store.history(ids["same"])] == ["enqueued"]
    for name in ("other_batch", "double", "no_batch"):
        assert store.get(ids[name]).status == "pending"
        assert store.get(ids[name]).top_code == "020111"
    assert store.get(ids["claimed"]).claimed_by == "bob"

    # Not a human decision: no decision, no memory entry, no vote, no training row.
    assert store.decisions(ids["auto"]) == []
    assert store.memory_lookup(["key-customs act sec 3602"]) == {}
    with store._sessions() as s:
        assert s.scalars(select(MemoryVote).where(MemoryVote.item_id == ids["auto"])).all() == []
        assert s.scalars(select(MemoryEntry).where(MemoryEntry.item_id == ids["auto"])).all() == []
        assert (
            s.scalars(select(ReviewDecision).where(ReviewDecision.item_id == ids["auto"])).all()
            == []
        )
    result = export_reviewed(store, tmp_path / "reviewed.csv")
    assert result.rows == 1 and result.auto_coded == 1
    assert "3602" not in (tmp_path / "reviewed.csv").read_text(encoding="utf-8")


def test_rescoring_updates_the_not_an_offence_probability(
    store: ReviewStore, make_request: Any
) -> None:
    decided, found, robbery = store.enqueue(
        [
            replace(make_request(t, batch="l"), non_offence_probability=0.05)
            for t in ("stolen purse", "lost wallet", "robbery")
        ]
    )
    wallet = review("0502", 0.4)
    wallet.non_offence_probability = 0.62
    store.decide(decided, "alice", "correct", code="0502")
    rescore_after_decision(store, FakeCoder({"lost wallet": wallet}), decided)
    assert store.get(found).non_offence_probability == 0.62
    # The default answer: a model without a "not an offence" class, or none scored.
    assert store.get(robbery).non_offence_probability is None
    assert store.get(decided).non_offence_probability == 0.05


def test_items_without_batch_form_one_list_per_origin(
    store: ReviewStore, make_request: Any
) -> None:
    a, b, c = store.enqueue(
        [
            make_request("t1", origin="api"),
            make_request("t2", origin="api"),
            make_request("t3", origin="bulk"),
        ]
    )
    coder = FakeCoder({"t2": auto("0501", 0.99, []), "t3": auto("0501", 0.99, [])})
    store.decide(a, "alice", "accept")
    out = rescore_after_decision(store, coder, a)
    assert coder.asked == [["t2"]] and out.auto_coded == [b]
    # No decided example behind the answer: the audit names the decision that started it.
    assert f"review item(s) {a};" in (store.history(b)[-1].note or "")
    assert store.get(c).status == "pending"


def test_nothing_is_rescored_until_the_item_is_settled(
    store: ReviewStore, make_request: Any
) -> None:
    a, b = store.enqueue([make_request("x1", batch="l"), make_request("x2", batch="l")])
    store.flag_double_review("boss", item_ids=[a])
    coder = FakeCoder({"x2": auto("0501", 0.99, [a])})
    store.decide(a, "alice", "correct", code="0501")  # first of two reviews
    assert rescore_after_decision(store, coder, a).considered == 0 and coder.asked == []
    store.decide(a, "bob", "correct", code="0501")
    assert rescore_after_decision(store, coder, a).auto_coded == [b]


def test_an_item_claimed_meanwhile_is_left_alone(store: ReviewStore, make_request: Any) -> None:
    a, b = store.enqueue([make_request("y1", batch="l"), make_request("y2", batch="l")])
    store.decide(a, "alice", "accept")

    class ClaimingCoder(FakeCoder):
        def rescore(self, texts: list[str], min_precision: float | None = None) -> list[Answer]:
            store.claim(b, "bob")  # a reviewer takes it while the model runs
            return [auto("0501", 0.99, [a]) for _ in texts]

    out = rescore_after_decision(store, ClaimingCoder(), a)
    assert out.skipped == 1 and out.auto_coded == []
    item = store.get(b)
    assert (item.status, item.claimed_by, item.top_code) == ("claimed", "bob", "020111")


def test_auto_coded_is_closed_everywhere(
    store: ReviewStore, make_request: Any, tmp_path: Path
) -> None:
    a, b, c = store.enqueue(
        [make_request("z1", batch="l"), make_request("z2", batch="l"), make_request("z3")]
    )
    store.decide(a, "alice", "accept")
    rescore_after_decision(store, FakeCoder({"z2": auto("0501", 0.99, [a])}), a)
    # filters
    page = store.list_items(ItemFilter(status=AUTO_CODED))
    assert [i.id for i in page.items] == [b]
    assert b not in [i.id for i in store.list_items(ItemFilter(status="pending")).items]
    # statistics
    stats = store.stats()
    assert stats.auto_coded == 1 and stats.by_status[AUTO_CODED] == 1
    assert stats.remaining == 1 and stats.decided == 1
    # nobody can claim or decide it
    with pytest.raises(Conflict):
        store.claim(b, "bob")
    with pytest.raises(Conflict):
        store.decide(b, "bob", "accept")
    assert store.claim_next("bob").id == c  # type: ignore[union-attr]
    # retention removes its text like a decided item's
    counts = store.purge_texts(utcnow() + timedelta(seconds=1))
    assert counts.items == 2
    assert store.get(b).text == ""
    assert [(e.action, e.to_status) for e in store.history(b)][-1] == ("texts_purged", AUTO_CODED)
    # an identical text queued later is a new open item (the auto-coded one is closed)
    (again,) = store.enqueue([make_request("z2", batch="l")])
    assert again != b


# --- value order ---------------------------------------------------------------------------


def test_expected_value_counts_similar_items_of_the_list() -> None:
    items = [
        OpenItem(1, "x", 10, 0.5),
        OpenItem(2, "y", 100, 0.9),
        OpenItem(3, "z", 20, 0.2),
        OpenItem(4, "w", 5, None),
    ]
    emb = np.array(
        [
            [1.0, 0.0, 0.0],
            [SIMILAR + 0.01, np.sqrt(1 - (SIMILAR + 0.01) ** 2), 0.0],
            [0.0, 0.0, 1.0],
            [0.0, 1.0, 0.0],
        ]
    )
    values = expected_values(items, emb)
    assert values[1] == pytest.approx(0.5 * 110)  # its 10 records + the 100 of item 2
    assert values[2] == pytest.approx(0.1 * 110)
    assert values[3] == pytest.approx(0.8 * 20)  # alone
    # item 4 is close to item 2 (cos ~0.6) but below the cut: alone; no suggestion = unsure
    assert values[4] == pytest.approx(1.0 * 5)


def _embed_by_table(table: dict[str, list[float]]) -> Any:
    def embed(texts: list[str]) -> np.ndarray:
        rows = np.array([table[t] for t in texts], dtype=np.float64)
        return rows / np.linalg.norm(rows, axis=1, keepdims=True)

    return embed


def test_value_order_after_refresh_and_the_other_orders_still_work(
    store: ReviewStore, make_request: Any
) -> None:
    x, y, z, other = store.enqueue(
        [
            make_request("x", batch="l", top=0.5, occurrences=10),
            make_request("y", batch="l", top=0.9, occurrences=100),
            make_request("z", batch="l", top=0.2, occurrences=20),
            make_request("o", batch="m", top=0.5, occurrences=1),
        ]
    )
    # At enqueue, the part without the model: uncertainty x own records.
    assert store.get(x).priority == pytest.approx(5.0)
    assert store.get(y).priority == pytest.approx(10.0)
    embed = _embed_by_table({"x": [1, 0], "y": [1, 0.1], "z": [0, 1]})
    # x and y count each other's records now; z is alone, its value stays what it was
    assert refresh_values(store, embed, ListKey("l", None)) == 2
    assert store.get(x).priority == pytest.approx(55.0)
    assert store.get(other).priority == pytest.approx(0.5)  # another list: untouched

    def order(name: str) -> list[int]:
        return [i.id for i in store.list_items(ItemFilter(batch="l"), order=name).items]

    assert order("value") == [x, z, y]
    assert order("confidence") == [z, x, y]
    assert order("occurrences") == [y, z, x]
    # filters apply with the value order too
    flt = ItemFilter(batch="l", max_confidence=0.6)
    assert [i.id for i in store.list_items(flt, order="value").items] == [x, z]
    assert store.claim_next("bob", ItemFilter(batch="l"), order="value").id == x  # type: ignore[union-attr]


def test_growing_an_open_item_adds_to_its_value(store: ReviewStore, make_request: Any) -> None:
    (a,) = store.enqueue([make_request("g", batch="l", top=0.75, occurrences=4)])
    store.enqueue([make_request("g", batch="l", top=0.75, occurrences=8)])
    item = store.get(a)
    assert item.occurrences == 12 and item.priority == pytest.approx(0.25 * 12)
    store.enqueue([make_request("g", batch="l", top=0.75, occurrences=4)], source="run-1")
    store.enqueue([make_request("g", batch="l", top=0.75, occurrences=6)], source="run-1")
    assert store.get(a).priority == pytest.approx(0.25 * 18)


def test_rescoring_refreshes_the_lists_values(store: ReviewStore, make_request: Any) -> None:
    a, b, c = store.enqueue(
        [
            make_request("p", batch="l", top=0.5, occurrences=1),
            make_request("q", batch="l", top=0.5, occurrences=3),
            make_request("r", batch="l", top=0.5, occurrences=5),
        ]
    )
    embed = _embed_by_table({"p": [1, 0], "q": [1, 0.3], "r": [0.9, 0.5]})
    store.decide(a, "alice", "accept")
    rescore_after_decision(store, FakeCoder({"q": review("0501", 0.8)}), a, embed=embed)
    assert store.get(b).priority == pytest.approx(0.2 * 8)
    assert store.get(c).priority == pytest.approx(0.5 * 8)
    assert store.get(a).priority == pytest.approx(0.5)  # decided: kept as it was


def test_large_lists_rescore_the_most_similar(
    store: ReviewStore, make_request: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    import service.review.rescoring as rescoring

    monkeypatch.setattr(rescoring, "MAX_RESCORED", 2)
    ids = store.enqueue([make_request(f"m{i}", batch="l") for i in range(5)])
    table = {"m0": [1, 0], "m1": [0, 1], "m2": [1, 0.1], "m3": [0.2, 1], "m4": [1, 0.2]}
    coder = FakeCoder()
    store.decide(ids[0], "alice", "accept")
    rescore_after_decision(store, coder, ids[0], embed=_embed_by_table(table))
    assert sorted(coder.asked[0]) == ["m2", "m4"]


def test_enqueue_through_the_valued_queue_sets_values_around_new_items(
    store: ReviewStore, make_request: Any
) -> None:
    table = {"a": [1, 0], "a2": [1, 0.05], "b": [0, 1], "c": [0.7, 0.7]}
    queue = ValuedQueue(store, store, _embed_by_table(table))
    (a,) = queue.enqueue([make_request("a", batch="l", top=0.5, occurrences=2)])
    (b,) = queue.enqueue([make_request("b", batch="l", top=0.5, occurrences=4)])
    assert store.get(a).priority == pytest.approx(1.0)
    (a2,) = queue.enqueue([make_request("a2", batch="l", top=0.5, occurrences=6)])
    # the new item and its near-duplicate both count each other's records; b is alone
    assert store.get(a).priority == pytest.approx(0.5 * 8)
    assert store.get(a2).priority == pytest.approx(0.5 * 8)
    assert store.get(b).priority == pytest.approx(0.5 * 4)

    def broken(texts: list[str]) -> np.ndarray:
        raise RuntimeError("encoder went away")

    # A failed refresh never fails the enqueue: the item keeps the value it was queued with.
    (c,) = ValuedQueue(store, store, broken).enqueue([make_request("c", batch="l", top=0.5)])
    assert store.get(c).status == "pending" and store.get(c).priority == pytest.approx(0.5)


def test_items_far_from_the_decided_text_are_not_rescored(
    store: ReviewStore, make_request: Any
) -> None:
    a, near, far = store.enqueue([make_request(t, batch="l") for t in ("d", "near", "far")])
    table = {"d": [1, 0], "near": [1, 0.5], "far": [0.3, 1]}  # cosines 0.89 and 0.29
    coder = FakeCoder()
    store.decide(a, "alice", "accept")
    out = rescore_after_decision(store, coder, a, embed=_embed_by_table(table))
    assert coder.asked == [["near"]] and out.considered == 1


class _CountingPredictor:
    """Encoder stand-in for TextEmbeddings: counts the texts it encodes."""

    def __init__(self, table: dict[str, list[float]]) -> None:
        self.table = table
        self.encoded: list[str] = []
        self.normalizer = str
        self.encoder = self

    def encode(self, texts: list[str]) -> np.ndarray:
        self.encoded += texts
        return np.array([self.table[t] for t in texts], dtype=np.float32) * 3.0  # not unit


def test_text_embeddings_are_unit_rows_cached_and_bounded() -> None:
    pred = _CountingPredictor({"a": [1, 0], "b": [0, 2], "c": [1, 1]})
    embed = TextEmbeddings(pred, size=2)
    first = embed(["a", "b", "a"])
    assert np.allclose(np.linalg.norm(first, axis=1), 1.0) and np.allclose(first[0], first[2])
    assert sorted(pred.encoded) == ["a", "b"] and embed.missing(["a", "b", "c"]) == 1
    embed(["b"])
    assert pred.encoded.count("b") == 1  # from the cache
    embed(["c"])  # evicts the least recently added
    assert embed.missing(["a", "b", "c"]) == 1
    assert embed([]).shape[0] == 0


def test_the_cached_embedder_does_not_keep_its_model_alive() -> None:
    pred = _CountingPredictor({"a": [1, 0]})
    embed = embeddings_of(pred)
    assert embeddings_of(pred) is embed and embed(["a"]).shape == (1, 2)
    gone = weakref.ref(pred)
    del pred, embed
    gc.collect()
    assert gone() is None  # an app's model is freed with the app


def test_a_classify_call_does_not_encode_a_cold_list(store: ReviewStore, make_request: Any) -> None:
    table = {f"t{i}": [1, 0.01 * i] for i in range(5)}
    store.enqueue([make_request(f"t{i}", batch="l", top=0.5) for i in range(4)])
    pred = _CountingPredictor(table)
    queue = ValuedQueue(store, store, TextEmbeddings(pred), max_cold=2)
    (new,) = queue.enqueue([make_request("t4", batch="l", top=0.5)])
    # Four texts of the list were never encoded (a restart): the call leaves the list alone.
    assert pred.encoded == [] and store.get(new).priority == pytest.approx(0.5)
    # A run (a job's end-of-run enqueue) refreshes whatever it costs.
    queue.enqueue([make_request("t4", batch="l", top=0.5)], source="job-1")
    assert sorted(pred.encoded) == [f"t{i}" for i in range(5)]
    assert store.get(new).priority == pytest.approx(0.5 * 6)  # 2 records + the 4 others


def test_a_rejection_rescores_nothing_but_refreshes_values(
    store: ReviewStore, make_request: Any
) -> None:
    a, b = store.enqueue(
        [make_request("r1", batch="l", top=0.5), make_request("r2", batch="l", top=0.5)]
    )
    embed = _embed_by_table({"r1": [1, 0], "r2": [1, 0.1]})
    refresh_values(store, embed, ListKey("l", None))
    assert store.get(b).priority == pytest.approx(1.0)  # its record and r1's
    coder = FakeCoder()
    store.decide(a, "alice", "reject")
    out = rescore_after_decision(store, coder, a, embed=embed)
    assert coder.asked == [] and out.considered == 0
    assert store.get(b).priority == pytest.approx(0.5)  # r1 is settled: no longer counted


def test_each_item_is_rescored_at_the_precision_its_records_were_coded_at(
    store: ReviewStore, make_request: Any
) -> None:
    from dataclasses import replace

    at = {"decided": None, "strict": 0.99, "default": None, "lax": 0.9}
    ids = dict(
        zip(
            at,
            store.enqueue(
                [
                    replace(make_request(f"customs act sec {n}", batch="l"), min_precision=p)
                    for n, p in enumerate(at.values())
                ]
            ),
            strict=True,
        )
    )
    assert store.get(ids["strict"]).min_precision == 0.99
    store.decide(ids["decided"], "alice", "correct", code="08051")
    coder = FakeCoder()
    rescore_after_decision(store, coder, ids["decided"], min_precision=0.95)
    asked = {p: sorted(texts) for p, texts in zip(coder.precisions, coder.asked, strict=True)}
    # The stricter of the item's and the call's; an item from before migration 0009 (None)
    # gets the call's.
    assert asked == {
        0.99: ["customs act sec 1"],
        0.95: ["customs act sec 2", "customs act sec 3"],
    }


def test_a_growing_item_keeps_the_strictest_precision_of_its_records(
    store: ReviewStore, make_request: Any
) -> None:
    from dataclasses import replace

    req = make_request("open container", batch="l")
    (item_id,) = store.enqueue([replace(req, min_precision=0.95)])
    store.enqueue([replace(req, min_precision=0.9)])
    assert store.get(item_id).min_precision == 0.95
    store.enqueue([replace(req, min_precision=0.99)])
    item = store.get(item_id)
    assert item.min_precision == 0.99 and item.occurrences == 3
    # Within one call too, and through a run's contributions.
    (other,) = set(
        store.enqueue(
            [
                replace(make_request("b", batch="m"), min_precision=0.9),
                replace(make_request("b", batch="m"), min_precision=0.97),
            ],
            source="run-1",
        )
    )
    assert store.get(other).min_precision == 0.97


def test_entries_of_a_list_coded_as_a_table_are_rescored_as_such(
    store: ReviewStore, make_request: Any
) -> None:
    from dataclasses import replace

    table = {"decided": 0.97, "entry": 0.97, "stricter": 0.98, "codes": None}
    ids = dict(
        zip(
            table,
            store.enqueue(
                [
                    replace(
                        make_request(f"customs act sec {n}", batch="l"),
                        min_precision=0.95,
                        table_precision=t,
                    )
                    for n, t in enumerate(table.values())
                ]
            ),
            strict=True,
        )
    )
    assert store.get(ids["entry"]).table_precision == 0.97
    store.decide(ids["decided"], "alice", "correct", code="08051")
    coder = FakeCoder()
    rescore_after_decision(store, coder, ids["decided"])
    asked = {t: sorted(texts) for t, texts in zip(coder.tables, coder.asked, strict=True)}
    assert asked == {
        0.97: ["customs act sec 1"],
        0.98: ["customs act sec 2"],
        None: ["customs act sec 3"],
    }
    assert set(coder.precisions) == {0.95}


def test_one_record_coded_code_by_code_makes_its_item_no_table_entry(
    store: ReviewStore, make_request: Any
) -> None:
    from dataclasses import replace

    req = make_request("open container", batch="l")
    (item_id,) = store.enqueue([replace(req, table_precision=0.95)])
    store.enqueue([replace(req, table_precision=0.97)])
    assert store.get(item_id).table_precision == 0.97  # the stricter table
    store.enqueue([replace(req, table_precision=0.9)])
    assert store.get(item_id).table_precision == 0.97
    store.enqueue([req])  # a record that asked for every code at its precision
    item = store.get(item_id)
    assert item.table_precision is None and item.occurrences == 4
    store.enqueue([replace(req, table_precision=0.99)])
    assert store.get(item_id).table_precision is None  # and stays so
    # Within one call too.
    (other,) = set(
        store.enqueue(
            [
                replace(make_request("b", batch="m"), table_precision=0.97),
                replace(make_request("b", batch="m"), table_precision=None),
            ],
            source="run-1",
        )
    )
    assert store.get(other).table_precision is None
    (third,) = set(
        store.enqueue(
            [
                replace(make_request("c", batch="m"), table_precision=0.96),
                replace(make_request("c", batch="m"), table_precision=0.97),
            ]
        )
    )
    assert store.get(third).table_precision == 0.97
