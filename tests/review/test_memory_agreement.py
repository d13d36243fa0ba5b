"""Decision memory needs agreement before it codes texts by itself (issue 16 #10, review M8)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from service.config import Settings
from service.review.store import ReviewStore


def _item(store: ReviewStore, make_request: Any, text: str, batch: str) -> int:
    (item_id,) = store.enqueue([make_request(text, key=f"k-{text}", batch=batch)])
    return item_id


def test_one_reviewer_is_not_enough(store: ReviewStore, make_request) -> None:
    assert store.memory_min_agreeing == 2
    store.decide(_item(store, make_request, "t", "b1"), "alice", "correct", code="0501")
    assert store.memory_lookup(["k-t"]) == {}
    assert store.memory_agreement(["k-t"]) == {"k-t": (1, False)}
    # A second reviewer, on the same text in another batch, agrees: now memory applies.
    store.decide(_item(store, make_request, "t", "b2"), "bob", "correct", code="0501")
    assert store.memory_lookup(["k-t"]) == {"k-t": "0501"}
    assert store.memory_agreement(["k-t"]) == {"k-t": (2, True)}
    # A dissenting newer decision pauses it: the newest code has one vote.
    store.decide(_item(store, make_request, "t", "b3"), "carol", "correct", code="0502")
    assert store.memory_lookup(["k-t"]) == {}
    # Each reviewer's latest code counts once: alice changing her mind makes 0502 agreed.
    store.decide(_item(store, make_request, "t", "b4"), "alice", "correct", code="0502")
    assert store.memory_lookup(["k-t"]) == {"k-t": "0502"}
    entry = next(e for e in store.memory_entries() if e.text_key == "k-t")
    assert (entry.decided_by, entry.decided_at is not None) == ("alice", True)


def test_an_admin_decision_is_enough_and_retire_resets(store: ReviewStore, make_request) -> None:
    store.decide(_item(store, make_request, "a", "b1"), "boss", "reject", by_admin=True)
    assert store.memory_lookup(["k-a"]) == {"k-a": "not_an_offence"}
    store.decide(_item(store, make_request, "r", "b1"), "alice", "correct", code="0501")
    store.decide(_item(store, make_request, "r", "b2"), "bob", "correct", code="0501")
    assert store.memory_lookup(["k-r"]) == {"k-r": "0501"}
    # Retired as wrong: one more reviewer with the same code does not bring it back alone.
    store.memory_retire("boss", text_key="k-r")
    store.decide(_item(store, make_request, "r", "b3"), "carol", "correct", code="0501")
    assert store.memory_lookup(["k-r"]) == {}


def test_min_agreeing_one_keeps_the_old_rule(store: ReviewStore, make_request) -> None:
    single = ReviewStore(store.engine, memory_min_agreeing=1)
    single.decide(_item(single, make_request, "s", "b1"), "alice", "correct", code="0501")
    assert single.memory_lookup(["k-s"]) == {"k-s": "0501"}


def test_memory_over_http(api: Any, make_request) -> None:
    (mine,) = api.store.enqueue([make_request("x", key="k-x")])
    (boss,) = api.store.enqueue([make_request("y", key="k-y")])
    for who, item in (("alice", mine), ("boss", boss)):
        r = api.client.post(
            f"/v1/reviews/{item}/decision",
            json={"action": "correct", "code": "0501"},
            headers=api.h(who),
        )
        assert r.status_code == 200, r.text
    assert api.store.memory_lookup(["k-x", "k-y"]) == {"k-y": "0501"}
    listed = api.client.get("/v1/reviews/memory", headers=api.h("boss"))
    assert listed.status_code == 200, listed.text
    entries = {e["text_key"]: e for e in listed.json()["entries"]}
    assert entries["k-x"]["agreeing"] == 1 and entries["k-x"]["active"] is False
    assert entries["k-x"]["decided_by"] == "alice" and entries["k-x"]["decided_at"]
    assert entries["k-y"]["active"] is True and "text" not in entries["k-y"]
    assert api.client.get("/v1/reviews/memory", headers=api.h("alice")).status_code == 403


def test_every_door_reads_the_setting(tmp_path: Path) -> None:
    from service.bulk.commands import open_review_store
    from service.review.commands import open_store

    settings = Settings(
        state_dir=tmp_path / "state", registry_dir=tmp_path / "r", memory_min_agreeing=3
    )
    for store in (open_store(settings), open_review_store(settings, required=True)):
        assert store.memory_min_agreeing == 3
        store.engine.dispose()
