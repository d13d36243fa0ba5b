"""The review store, run against SQLite and PostgreSQL alike (see conftest ``backend``)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, update

from service.coding import Coder
from service.db import AuditEntry, ReviewItem
from service.errors import Conflict, InvalidCode, InvalidInput, NotFound
from service.labels import NOT_AN_OFFENCE
from service.review.store import (
    ItemFilter,
    ReviewStore,
    UnknownDecisionCode,
    cohen_kappa,
)


def test_ping_and_enqueue_commits_before_return(store: ReviewStore, make_request) -> None:
    assert store.ping()
    ids = store.enqueue([make_request("a"), make_request("b")])
    assert len(ids) == 2 and ids[0] != ids[1]
    # A second store on the same engine (another instance) sees the items at once.
    other = ReviewStore(store.engine)
    assert [other.get(i).status for i in ids] == ["pending", "pending"]
    item = other.get(ids[0])
    assert item.section == "02" and item.top_code == "020111"
    assert item.model_version == "test-model-1"
    assert [e.action for e in other.history(ids[0])] == ["enqueued"]


def test_enqueue_merges_same_text_in_same_batch(store: ReviewStore, make_request) -> None:
    r = make_request("x", batch="legacy-2019", occurrences=3)
    first = store.enqueue([r, r])
    assert first[0] == first[1]
    again = store.enqueue([make_request("x", batch="legacy-2019", occurrences=10)])
    assert again == [first[0]]
    assert store.get(first[0]).occurrences == 16
    # Another batch, or no batch, is its own item.
    other = store.enqueue([make_request("x", batch="legacy-2020"), make_request("x")])
    assert len({first[0], *other}) == 3
    # Once decided, the same text queues anew (memory normally prevents that upstream).
    store.decide(first[0], "alice", "accept")
    assert store.enqueue([make_request("x", batch="legacy-2019")]) != [first[0]]


def test_enqueue_empty(store: ReviewStore) -> None:
    assert store.enqueue([]) == []
    assert store.memory_lookup([]) == {}


def test_list_filters_and_orders(store: ReviewStore, make_request) -> None:
    store.enqueue(
        [
            make_request("low", top=0.10, occurrences=1, batch="b1"),
            make_request("mid", codes=("0501", "05"), top=0.40, occurrences=50, batch="b1"),
            make_request("high", top=0.70, occurrences=5, batch="b2", origin="bulk"),
            make_request("theft", codes=("050211",), top=0.30, occurrences=7, origin="job"),
        ]
    )
    by_conf = store.list_items(ItemFilter())
    assert [i.text for i in by_conf.items] == ["low", "theft", "mid", "high"]
    assert by_conf.total == 4
    by_occ = store.list_items(ItemFilter(), order="occurrences")
    assert [i.text for i in by_occ.items] == ["mid", "theft", "high", "low"]
    assert {i.text for i in store.list_items(ItemFilter(section="05")).items} == {"mid", "theft"}
    assert [i.text for i in store.list_items(ItemFilter(batch="b1")).items] == ["low", "mid"]
    assert [i.text for i in store.list_items(ItemFilter(origin="bulk")).items] == ["high"]
    band = store.list_items(ItemFilter(min_confidence=0.3, max_confidence=0.4))
    assert [i.text for i in band.items] == ["theft", "mid"]
    page = store.list_items(ItemFilter(), limit=2, offset=2)
    assert [i.text for i in page.items] == ["mid", "high"] and page.total == 4
    today = datetime.now(UTC).date()
    assert store.list_items(ItemFilter(created_from=today, created_to=today)).total == 4
    assert store.list_items(ItemFilter(created_to=today - timedelta(days=1))).total == 0
    assert store.list_items(ItemFilter(status="decided")).total == 0
    with pytest.raises(InvalidInput):
        store.list_items(ItemFilter(status="bogus"))
    with pytest.raises(InvalidInput):
        store.list_items(order="random")


def test_claim_lease_and_conflicts(store: ReviewStore, make_request) -> None:
    (item_id,) = store.enqueue([make_request("a")])
    item = store.claim(item_id, "alice")
    assert item.status == "claimed" and item.claimed_by == "alice"
    assert item.claim_expires_at is not None
    with pytest.raises(Conflict):
        store.claim(item_id, "bob")
    with pytest.raises(Conflict):
        store.decide(item_id, "bob", "accept")
    # Re-claiming one's own item renews the lease.
    assert store.claim(item_id, "alice").claimed_by == "alice"
    with pytest.raises(NotFound):
        store.claim(9999, "alice")
    with pytest.raises(Conflict):
        store.release(item_id, "bob")
    assert store.release(item_id, "alice").status == "pending"
    actions = [e.action for e in store.history(item_id)]
    assert actions == ["enqueued", "claimed", "lease_renewed", "released"]


def _expire(store: ReviewStore, item_id: int) -> None:
    with store._sessions() as s, s.begin():
        s.execute(
            update(ReviewItem)
            .where(ReviewItem.id == item_id)
            .values(claim_expires_at=datetime.now(UTC) - timedelta(seconds=1))
        )


def test_expired_lease_returns_to_pending(store: ReviewStore, make_request) -> None:
    (item_id,) = store.enqueue([make_request("a")])
    store.claim(item_id, "alice")
    _expire(store, item_id)
    assert store.get(item_id).status == "pending"  # readers see the expiry at once
    # Another reviewer can take it over; the audit shows the expiry.
    assert store.claim(item_id, "bob").claimed_by == "bob"
    actions = [(e.actor, e.action) for e in store.history(item_id)]
    assert ("system", "lease_expired") in actions
    _expire(store, item_id)
    assert store.release_expired() == 1
    assert store.list_items(ItemFilter(status="pending")).total == 1
    # The reviewer whose lease ran out cannot decide on it any more without claiming again,
    # but a decision on a free item claims it in the same step.
    assert store.decide(item_id, "alice", "accept").status == "decided"


def test_decisions_accept_correct_reject_skip(store: ReviewStore, make_request) -> None:
    a, b, c, d, e = store.enqueue([make_request(t) for t in "abcde"])
    store.claim(a, "alice")
    done = store.decide(a, "alice", "accept", note="clear case")
    assert (done.status, done.decision, done.decided_code, done.decided_by) == (
        "decided",
        "accept",
        "020111",
        "alice",
    )
    assert store.decide(b, "alice", "accept", code="0201").decided_code == "0201"
    with pytest.raises(InvalidInput):
        store.decide(c, "alice", "accept", code="0701")  # valid code, but not suggested
    # Correct takes any code at any level.
    assert store.decide(c, "alice", "correct", code="07").decided_code == "07"
    assert store.decide(d, "alice", "reject").decided_code == NOT_AN_OFFENCE
    skipped = store.decide(e, "alice", "skip", note="unsure")
    assert skipped.status == "pending" and skipped.claimed_by is None
    with pytest.raises(Conflict):
        store.decide(a, "bob", "correct", code="0201")  # already decided
    hist = store.history(a)
    final = hist[-1]
    assert (final.actor, final.action, final.from_status, final.to_status) == (
        "alice",
        "accept",
        "claimed",
        "decided",
    )
    assert (final.from_code, final.to_code, final.model_version) == (
        "020111",
        "020111",
        "test-model-1",
    )
    assert final.note == "clear case"
    assert [x.action for x in store.decisions(e)] == ["skip"]


def test_bad_codes_and_actions(store: ReviewStore, make_request) -> None:
    (a,) = store.enqueue([make_request("a")])
    with pytest.raises(UnknownDecisionCode) as unknown:
        store.decide(a, "alice", "correct", code="999999")
    assert unknown.value.http_status == 422 and unknown.value.code == "unknown_decision_code"
    with pytest.raises(InvalidCode):
        store.decide(a, "alice", "correct", code="201")  # three digits: no ICCS level
    with pytest.raises(InvalidInput):
        store.decide(a, "alice", "correct")
    with pytest.raises(InvalidInput):
        store.decide(a, "alice", "approve")
    with pytest.raises(NotFound):
        store.decide(424242, "alice", "accept")
    # Failed attempts change nothing.
    assert store.get(a).status == "pending"


def test_claim_next_skips_own_and_others(store: ReviewStore, make_request) -> None:
    ids = store.enqueue(
        [
            make_request("a", top=0.2),
            make_request("b", top=0.1, codes=("0501",)),
            make_request("c", top=0.3),
        ]
    )
    first = store.claim_next("alice")
    assert first is not None and first.text == "b"
    second = store.claim_next("bob")
    assert second is not None and second.text == "a"
    store.decide(first.id, "alice", "skip")
    # Alice skipped b, so her next is c; b stays available to others.
    nxt = store.claim_next("alice")
    assert nxt is not None and nxt.text == "c"
    assert store.claim_next("carol", ItemFilter(section="05")).text == "b"
    assert store.claim_next("dave") is None
    assert sorted(ids) == sorted([first.id, second.id, nxt.id])


def test_claim_next_by_occurrences(store: ReviewStore, make_request) -> None:
    store.enqueue([make_request("rare", occurrences=1), make_request("common", occurrences=50000)])
    got = store.claim_next("alice", order="occurrences")
    assert got is not None and got.text == "common"


def test_decision_memory_and_retire(store: ReviewStore, make_request) -> None:
    store.memory_min_agreeing = 1  # one reviewer suffices here; see test_memory_agreement.py
    a, b = store.enqueue([make_request("a", key="ka"), make_request("b", key="kb")])
    store.decide(a, "alice", "correct", code="0501")
    store.decide(b, "alice", "reject")
    assert store.memory_lookup(["ka", "kb", "kc"]) == {"ka": "0501", "kb": NOT_AN_OFFENCE}
    # A skip writes no memory.
    (c,) = store.enqueue([make_request("c", key="kc")])
    store.decide(c, "alice", "skip")
    assert "kc" not in store.memory_lookup(["kc"])
    entry = store.memory_retire("admin", text_key="ka")
    assert entry.retired_by == "admin"
    assert store.memory_lookup(["ka"]) == {}
    assert store.history(a)[-1].action == "memory_retired"
    with pytest.raises(NotFound):
        store.memory_retire("admin", text_key="ka")
    with pytest.raises(NotFound):
        store.memory_retire("admin", text_key="nope")
    assert store.memory_retire("admin", item_id=b).text_key == "kb"
    # A new decision on the same text revives the entry with the new code.
    (a2,) = store.enqueue([make_request("a", key="ka")])
    store.decide(a2, "bob", "correct", code="0502")
    assert store.memory_lookup(["ka"]) == {"ka": "0502"}
    rows = store.reviewed_rows()
    assert [(r["item_id"], r["code"], r["reviewer"]) for r in rows] == [(a2, "0502", "bob")]


def test_double_review_agreement_and_dispute(store: ReviewStore, make_request) -> None:
    ids = store.enqueue([make_request(t, batch="audit") for t in "abcd"])
    assert store.flag_double_review("admin", batch="audit") == 4
    a, b, c, d = ids
    # Item a: both agree -> decided after the second.
    first = store.decide(a, "alice", "accept")
    assert first.status == "pending" and first.decision is None
    with pytest.raises(Conflict):
        store.claim(a, "alice")  # a second review needs a second person
    assert store.claim_next("alice") is not None  # ... so claim-next gives alice another item
    store.release_expired()
    assert store.decide(a, "bob", "accept").status == "decided"
    # Item b: they disagree -> disputed; a third reviewer settles it.
    store.release(store.list_items(ItemFilter(status="claimed")).items[0].id, "alice")
    store.decide(b, "alice", "accept")
    disputed = store.decide(b, "bob", "correct", code="0501")
    assert disputed.status == "disputed" and disputed.reviews_required == 3
    assert store.memory_lookup([disputed.text_key]) == {}
    settled = store.decide(b, "carol", "correct", code="0501")
    assert settled.status == "decided" and settled.decided_code == "0501"
    # Items c, d: agree on one, disagree on the other.
    store.decide(c, "alice", "reject")
    store.decide(c, "bob", "reject")
    store.decide(d, "alice", "correct", code="0201")
    store.decide(d, "bob", "correct", code="0201")
    stats = store.stats("alice")
    ir = stats.inter_reviewer
    assert (ir.pairs, ir.agreeing) == (4, 3)
    assert ir.rate == pytest.approx(0.75)
    assert ir.kappa == pytest.approx(
        cohen_kappa(
            [
                ("020111", "020111"),
                ("020111", "0501"),
                (NOT_AN_OFFENCE, NOT_AN_OFFENCE),
                ("0201", "0201"),
            ]
        )
    )
    assert stats.reviewed_today == 9 and stats.reviewed_today_by_you == 4


def test_flag_double_review_share_and_validation(store: ReviewStore, make_request) -> None:
    store.enqueue([make_request(str(i), batch="big") for i in range(10)])
    assert store.flag_double_review("admin", batch="big", share=0.2) == 2  # every 5th
    # Flagged items are not counted twice: the next call samples among the other 8.
    assert store.flag_double_review("admin", batch="big", share=0.2) == 2
    assert store.flag_double_review("admin", batch="big") == 6
    with pytest.raises(InvalidInput):
        store.flag_double_review("admin")
    with pytest.raises(InvalidInput):
        store.flag_double_review("admin", batch="big", share=0)


def test_stats_counts(store: ReviewStore, make_request) -> None:
    ids = store.enqueue(
        [
            make_request("a", occurrences=10),
            make_request("b", codes=("0501",), occurrences=5),
            make_request("c"),
        ]
    )
    store.decide(ids[0], "alice", "accept")  # agrees with the model
    store.decide(ids[1], "bob", "correct", code="0502")  # disagrees
    store.claim(ids[2], "alice")
    s = store.stats("alice")
    assert s.reviewed_today == 2 and s.reviewed_today_by_you == 1
    assert s.remaining == 1 and s.remaining_occurrences == 1
    assert s.by_status == {
        "pending": 0,
        "claimed": 1,
        "decided": 2,
        "disputed": 0,
        "auto_coded": 0,
    }
    assert s.pending_by_section == {"02": 1}
    assert s.model_agreement == pytest.approx(0.5) and s.model_agreement_n == 2
    assert s.inter_reviewer.pairs == 0 and s.inter_reviewer.rate is None
    tomorrow = datetime.now(UTC) + timedelta(days=1)
    assert store.stats(now=tomorrow).reviewed_today == 0


def test_audit_is_append_only(store: ReviewStore, make_request) -> None:
    (a,) = store.enqueue([make_request("a")])
    store.claim(a, "alice")
    store.decide(a, "alice", "correct", code="0201")
    with store._sessions() as s:
        rows = s.scalars(select(AuditEntry).order_by(AuditEntry.id)).all()
    before = [(r.id, r.action, r.to_status) for r in rows]
    store.memory_retire("admin", item_id=a)
    after = [(r.id, r.action, r.to_status) for r in store.history(a)]
    assert after[: len(before)] == before and len(after) == len(before) + 1
    with pytest.raises(NotFound):
        store.history(999)


def test_cohen_kappa() -> None:
    assert cohen_kappa([]) is None
    assert cohen_kappa([("a", "a"), ("b", "b")]) == pytest.approx(1.0)
    assert cohen_kappa([("a", "b"), ("b", "a")]) == pytest.approx(-1.0)
    assert cohen_kappa([("a", "a"), ("a", "a")]) == pytest.approx(1.0)
    # Textbook example: 20 AA, 5 AB, 10 BA, 15 BB -> po 0.7, pe 0.5, kappa 0.4.
    pairs = [("A", "A")] * 20 + [("A", "B")] * 5 + [("B", "A")] * 10 + [("B", "B")] * 15
    assert cohen_kappa(pairs) == pytest.approx(0.4)


class _FakePredictor:
    """Stands in for the model: everything goes to review with fixed suggestions."""

    version = "fake-1"
    default_precision = 0.95

    def decided_index(self) -> None:
        return None  # no nearest-example component to add decided examples to

    def classify(self, texts, top_k=5, min_precision=None, decided=None):  # type: ignore[no-untyped-def]
        from service.models.predictor import Classification, Suggestion

        s = Suggestion("0201", "Assaults and threats", 2, ["02", "0201"], 0.4)
        return [Classification([s], None, "review", None, self.version) for _ in texts]


def test_coder_uses_store_queue_and_memory(store: ReviewStore) -> None:
    store.memory_min_agreeing = 1  # one reviewer suffices here; see test_memory_agreement.py
    coder = Coder(_FakePredictor(), store)  # type: ignore[arg-type]
    out = coder.code(["Punched a man", "punched a MAN!"], record_ids=["r1", "r2"], batch="b")
    assert out[0].review_id == out[1].review_id is not None
    assert store.get(out[0].review_id).occurrences == 2
    store.decide(out[0].review_id, "alice", "correct", code="020111")
    again = coder.code(["PUNCHED A MAN"])
    assert again[0].source == "review_memory"
    assert again[0].result.status == "auto" and again[0].result.assigned.code == "020111"
    assert again[0].review_id is None
