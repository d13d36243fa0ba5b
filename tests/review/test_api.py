"""/v1/reviews over HTTP (TestClient), on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest


@pytest.fixture
def queued(api: Any, make_request) -> list[int]:
    return api.store.enqueue(
        [
            make_request("Punched him in the face", top=0.41, occurrences=3, batch="b1"),
            make_request(
                "theft of cattle",
                codes=("050211", "0502"),
                top=0.22,
                occurrences=900,
                batch="legacy",
                origin="bulk",
            ),
            make_request("see file", codes=("0701",), top=0.05),
        ]
    )


def test_list_filter_order(api: Any, queued: list[int]) -> None:
    r = api.client.get("/v1/reviews", headers=api.h("alice"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["total"] == 3 and [i["top_confidence"] for i in body["items"]] == [0.05, 0.22, 0.41]
    item = body["items"][1]
    assert item["suggestions"][0]["code"] == "050211"
    assert [p["code"] for p in item["suggestions"][0]["path"]] == ["05", "0502", "05021", "050211"]
    assert all(p["label"] for p in item["suggestions"][0]["path"])
    r = api.client.get("/v1/reviews?order=occurrences", headers=api.h("alice"))
    assert [i["occurrences"] for i in r.json()["items"]] == [900, 3, 1]
    params = {
        "section": "05",
        "origin": "bulk",
        "batch": "legacy",
        "min_confidence": 0.2,
        "max_confidence": 0.3,
        "status": "pending",
        "created_from": "2000-01-01",
        "created_to": "2999-12-31",
    }
    r = api.client.get("/v1/reviews", params=params, headers=api.h("alice"))
    assert [i["id"] for i in r.json()["items"]] == [queued[1]]
    r = api.client.get("/v1/reviews?created_to=2000-01-01", headers=api.h("alice"))
    assert r.json()["total"] == 0


def test_claim_decide_history_flow(api: Any, queued: list[int]) -> None:
    first = queued[0]
    r = api.client.post(f"/v1/reviews/{first}/claim", headers=api.h("alice"))
    assert r.status_code == 200 and r.json()["claimed_by"] == "alice"
    assert r.json()["claim_expires_at"]
    r = api.client.post(
        f"/v1/reviews/{first}/decision",
        json={"action": "correct", "code": "020121", "note": "threat, not assault"},
        headers=api.h("alice"),
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert (done["status"], done["decision"], done["decided_code"], done["decided_by"]) == (
        "decided",
        "correct",
        "020121",
        "alice",
    )
    assert done["decided_label"]
    h = api.client.get(f"/v1/reviews/{first}/history", headers=api.h("bob")).json()
    assert [e["action"] for e in h["entries"]] == ["enqueued", "claimed", "correct"]
    last = h["entries"][-1]
    assert (last["actor"], last["from_code"], last["to_code"], last["model_version"]) == (
        "alice",
        "020111",
        "020121",
        "test-model-1",
    )
    assert last["note"] == "threat, not assault"
    one = api.client.get(f"/v1/reviews/{first}", headers=api.h("bob")).json()
    assert one["decisions"][0]["reviewer"] == "alice"
    # Memory remembers the code, but one reviewer is not enough to code identical texts.
    assert api.store.memory_agreement(["key-Punched him in the face"]) == {
        "key-Punched him in the face": (1, False)
    }
    assert api.store.memory_lookup(["key-Punched him in the face"]) == {}


def test_claim_next_and_empty_queue(api: Any, queued: list[int]) -> None:
    r = api.client.post(
        "/v1/reviews/claim-next", json={"order": "occurrences"}, headers=api.h("alice")
    )
    assert r.json()["item"]["id"] == queued[1]
    r = api.client.post("/v1/reviews/claim-next", headers=api.h("bob"))  # no body at all
    assert r.json()["item"]["id"] == queued[2]
    r = api.client.post("/v1/reviews/claim-next", json={"section": "11"}, headers=api.h("bob"))
    assert r.status_code == 200 and r.json() == {"item": None}


def test_error_paths(api: Any, queued: list[int], assert_error) -> None:
    a = queued[0]
    api.client.post(f"/v1/reviews/{a}/claim", headers=api.h("alice"))
    assert_error(api.client.post(f"/v1/reviews/{a}/claim", headers=api.h("bob")), 409, "conflict")
    assert_error(
        api.client.post(
            f"/v1/reviews/{a}/decision", json={"action": "accept"}, headers=api.h("bob")
        ),
        409,
        "conflict",
    )
    body = assert_error(
        api.client.post(
            f"/v1/reviews/{a}/decision",
            json={"action": "correct", "code": "999999"},
            headers=api.h("alice"),
        ),
        422,
        "unknown_decision_code",
    )
    assert body["context"] == {"code": "999999"}
    assert_error(
        api.client.post(
            f"/v1/reviews/{a}/decision",
            json={"action": "correct", "code": "2x"},
            headers=api.h("alice"),
        ),
        422,
        "invalid_code",
    )
    assert_error(
        api.client.post(
            f"/v1/reviews/{a}/decision", json={"action": "correct"}, headers=api.h("alice")
        ),
        422,
        "invalid_input",
    )
    assert_error(
        api.client.post(
            f"/v1/reviews/{a}/decision", json={"action": "approve"}, headers=api.h("alice")
        ),
        422,
        "validation_error",
    )
    assert_error(
        api.client.post(
            f"/v1/reviews/{a}/decision", json={"action": "skip", "extra": 1}, headers=api.h("alice")
        ),
        422,
        "validation_error",
    )
    assert_error(api.client.get("/v1/reviews/99999", headers=api.h("alice")), 404, "not_found")
    assert_error(api.client.get("/v1/reviews/99999/history", headers=api.h("alice")), 404)
    assert_error(api.client.post("/v1/reviews/99999/claim", headers=api.h("alice")), 404)
    assert_error(
        api.client.post(
            "/v1/reviews/99999/decision", json={"action": "skip"}, headers=api.h("alice")
        ),
        404,
    )
    assert_error(api.client.get("/v1/reviews/0", headers=api.h("alice")), 422)
    assert_error(api.client.get("/v1/reviews?status=nope", headers=api.h("alice")), 422)
    assert_error(api.client.get("/v1/reviews?section=5", headers=api.h("alice")), 422)
    assert_error(api.client.get("/v1/reviews?min_confidence=2", headers=api.h("alice")), 422)
    assert_error(api.client.post(f"/v1/reviews/{a}/release", headers=api.h("bob")), 409)
    # The failed attempts left the item with alice.
    assert api.client.get(f"/v1/reviews/{a}", headers=api.h("alice")).json()["claimed_by"] == (
        "alice"
    )
    # The offence text never appears in an error.
    assert "Punched" not in body["detail"] + str(body["context"])


def test_auth_and_roles(api: Any, queued: list[int], assert_error) -> None:
    assert_error(api.client.get("/v1/reviews"), 401, "unauthenticated")
    assert_error(api.client.get("/v1/reviews", headers={"Authorization": "Bearer iccs_wrong"}), 401)
    # A submitter key may not review (least privilege); an admin may.
    assert_error(api.client.get("/v1/reviews", headers=api.h("feeder")), 403, "forbidden")
    assert api.client.get("/v1/reviews", headers=api.h("boss")).status_code == 200
    # Flagging for double review and retiring memory are admin jobs.
    assert_error(
        api.client.post("/v1/reviews/double-review", json={"batch": "b1"}, headers=api.h("alice")),
        403,
    )
    assert_error(
        api.client.post(f"/v1/reviews/{queued[0]}/memory/retire", headers=api.h("alice")), 403
    )


def test_double_review_blind_and_stats(api: Any, queued: list[int]) -> None:
    r = api.client.post(
        "/v1/reviews/double-review", json={"item_ids": queued}, headers=api.h("boss")
    )
    assert r.json() == {"flagged": 3}
    a, b, c = queued
    api.client.post(f"/v1/reviews/{a}/decision", json={"action": "accept"}, headers=api.h("alice"))
    # Bob decides independently: he sees neither alice's code nor her note.
    seen = api.client.get(f"/v1/reviews/{a}", headers=api.h("bob")).json()
    assert seen["status"] == "pending" and seen["decisions"] == [] and seen["reviews_done"] == 1
    hist = api.client.get(f"/v1/reviews/{a}/history", headers=api.h("bob")).json()["entries"]
    assert [e["to_code"] for e in hist if e["actor"] == "alice" and e["action"] == "accept"] == [
        None
    ]
    admin_view = api.client.get(f"/v1/reviews/{a}", headers=api.h("boss")).json()
    assert admin_view["decisions"][0]["code"] == "020111"
    api.client.post(f"/v1/reviews/{a}/decision", json={"action": "accept"}, headers=api.h("bob"))
    for who in ("alice", "bob"):
        api.client.post(f"/v1/reviews/{b}/decision", json={"action": "reject"}, headers=api.h(who))
    api.client.post(f"/v1/reviews/{c}/decision", json={"action": "accept"}, headers=api.h("alice"))
    r = api.client.post(
        f"/v1/reviews/{c}/decision",
        json={"action": "correct", "code": "0201"},
        headers=api.h("bob"),
    )
    assert r.json()["status"] == "disputed"
    stats = api.client.get("/v1/reviews/stats", headers=api.h("alice")).json()
    assert stats["reviewer"] == "alice"
    assert stats["inter_reviewer"]["pairs"] == 3 and stats["inter_reviewer"]["agreeing"] == 2
    assert stats["inter_reviewer"]["rate"] == pytest.approx(2 / 3)
    assert stats["inter_reviewer"]["kappa"] is not None
    assert stats["reviewed_today"] == 6 and stats["reviewed_today_by_you"] == 3
    assert stats["remaining"] == 1 and stats["by_status"]["disputed"] == 1
    assert stats["model_agreement"] == pytest.approx(0.5) and stats["model_agreement_n"] == 2


def test_memory_retire_over_http(api: Any, queued: list[int], assert_error) -> None:
    a = queued[0]
    api.client.post(f"/v1/reviews/{a}/decision", json={"action": "accept"}, headers=api.h("alice"))
    r = api.client.post(f"/v1/reviews/{a}/memory/retire", headers=api.h("boss"))
    assert r.status_code == 200 and r.json()["retired_by"] == "boss"
    assert_error(api.client.post(f"/v1/reviews/{a}/memory/retire", headers=api.h("boss")), 404)


def test_openapi_documents_review_routes(api: Any) -> None:
    # The mini app has no /openapi.json of the full service; the router's own schema is built.
    spec = api.client.get("/openapi.json").json()
    decision = spec["paths"]["/v1/reviews/{item_id}/decision"]["post"]
    assert {"404", "409", "422"} <= set(decision["responses"])
    assert "/review" not in spec["paths"]  # the page is not part of the API


def test_third_reviewer_does_not_see_first_code_in_history(api: Any, queued: list[int]) -> None:
    # Issue 16 L1: the "disputed" audit row keeps reviewer 1's code in from_code.
    a = queued[0]
    api.client.post("/v1/reviews/double-review", json={"item_ids": [a]}, headers=api.h("boss"))
    for who, code in (("alice", "0101"), ("bob", "0201")):
        r = api.client.post(
            f"/v1/reviews/{a}/decision",
            json={"action": "correct", "code": code},
            headers=api.h(who),
        )
        assert r.status_code == 200, r.text
    assert r.json()["status"] == "disputed"
    for who in ("carol", "alice"):
        hist = api.client.get(f"/v1/reviews/{a}/history", headers=api.h(who)).json()["entries"]
        others = [e for e in hist if e["actor"] not in (who, "system")]
        shown = {e["from_code"] for e in others} | {e["to_code"] for e in others}
        assert not shown & {"0101", "0201"} - ({"0101"} if who == "alice" else set()), hist
    # The admin sees everything, and so does everyone once the item is settled.
    boss = api.client.get(f"/v1/reviews/{a}/history", headers=api.h("boss")).json()["entries"]
    assert "0101" in {e["from_code"] for e in boss}
    api.client.post(
        f"/v1/reviews/{a}/decision",
        json={"action": "correct", "code": "0201"},
        headers=api.h("carol"),
    )
    hist = api.client.get(f"/v1/reviews/{a}/history", headers=api.h("carol")).json()["entries"]
    assert "0101" in {e["from_code"] for e in hist}
