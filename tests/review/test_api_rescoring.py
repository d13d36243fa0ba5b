"""Over HTTP: a decision re-scores its list, the value order, decided neighbours (issue 14).

The review routes run with a fake coder on ``services.coder``: its ``rescore`` answers from a
table, ``decided_neighbours`` names decided items, and its predictor embeds texts as bags of
words, so the tests pin what the API does with the model's answers.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from .rescoring_fakes import FakeCoder, auto, review


@dataclass(frozen=True)
class DecidedNeighbour:
    """What ``Coder.decided_neighbours`` gives (service.models.decided.DecidedNeighbour)."""

    item_id: int
    text: str
    code: str
    similarity: float


class BagOfWords:
    """Encoder stand-in: texts sharing words are similar."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, t in enumerate(texts):
            for w in t.split():
                out[i, zlib.crc32(w.encode()) % 64] += 1.0
        return out


class FakePredictor:
    normalizer = staticmethod(str.lower)
    encoder = BagOfWords()


class ApiCoder(FakeCoder):
    def __init__(self, answers: dict[str, Any] | None = None) -> None:
        super().__init__(answers)
        self.predictor = FakePredictor()
        self.neighbours: list[DecidedNeighbour] = []
        self.fail = False

    def rescore(self, texts: list[str], min_precision: float | None = None) -> list[Any]:
        if self.fail:
            raise RuntimeError("model went away")
        return super().rescore(texts, min_precision)

    def decided_neighbours(self, texts: list[str], k: int = 3) -> list[list[DecidedNeighbour]]:
        return [self.neighbours[: k + 1] for _ in texts]  # one more, to show the cut


@pytest.fixture
def coded(api: Any) -> tuple[Any, ApiCoder]:
    coder = ApiCoder()
    api.client.app.state.services.coder = coder
    return api, coder


def test_a_correction_moves_similar_pending_items_at_once(
    coded: tuple[Any, ApiCoder], make_request: Any
) -> None:
    api, coder = coded
    a, b, c, d = api.store.enqueue(
        [
            make_request("customs act sec 3601", batch="list"),
            make_request("customs act sec 3602", batch="list"),
            make_request("customs act sec 12", batch="list"),
            make_request("a burglary", batch="list"),
        ]
    )
    coder.answers = {
        "customs act sec 3602": auto("0501", 0.99, [a]),
        "customs act sec 12": review("0501", 0.8),
    }
    r = api.client.post(
        f"/v1/reviews/{a}/decision",
        json={"action": "correct", "code": "0501"},
        headers=api.h("alice"),
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "decided"
    # "a burglary" shares no word with the decided text: not re-scored at all
    assert body["rescoring"] == {"considered": 2, "auto_coded": [b], "moved": [c], "failed": False}
    # The queue the page reloads shows it at once.
    pending = api.client.get(
        "/v1/reviews", params={"status": "pending", "batch": "list"}, headers=api.h("bob")
    ).json()
    assert {i["id"] for i in pending["items"]} == {c, d}
    assert {i["id"]: i["top_code"] for i in pending["items"]}[c] == "0501"
    got = api.client.get(f"/v1/reviews/{b}", headers=api.h("bob")).json()
    assert (got["status"], got["decided_code"], got["decided_by"]) == (
        "auto_coded",
        "0501",
        "system",
    )
    history = api.client.get(f"/v1/reviews/{b}/history", headers=api.h("bob")).json()["entries"]
    assert history[-1]["action"] == "auto_coded" and f"item(s) {a};" in history[-1]["note"]
    listed = api.client.get("/v1/reviews", params={"status": "auto_coded"}, headers=api.h("bob"))
    assert [i["id"] for i in listed.json()["items"]] == [b]
    stats = api.client.get("/v1/reviews/stats", headers=api.h("bob")).json()
    assert stats["auto_coded"] == 1 and stats["by_status"]["auto_coded"] == 1
    # it cannot be decided any more
    again = api.client.post(
        f"/v1/reviews/{b}/decision", json={"action": "accept"}, headers=api.h("bob")
    )
    assert again.status_code == 409


def test_a_skip_or_a_first_double_review_rescores_nothing(
    coded: tuple[Any, ApiCoder], make_request: Any
) -> None:
    api, coder = coded
    a, b = api.store.enqueue([make_request("s1", batch="l"), make_request("s2", batch="l")])
    coder.answers = {"s2": auto("0501", 0.99, [a])}
    r = api.client.post(
        f"/v1/reviews/{a}/decision", json={"action": "skip"}, headers=api.h("alice")
    )
    assert r.json()["rescoring"] is None and coder.asked == []
    api.store.flag_double_review("boss", item_ids=[a])
    r = api.client.post(
        f"/v1/reviews/{a}/decision", json={"action": "accept"}, headers=api.h("alice")
    )
    assert r.json()["status"] == "pending" and r.json()["rescoring"] is None
    assert api.store.get(b).status == "pending"


def test_a_failed_rescoring_never_fails_the_decision(
    coded: tuple[Any, ApiCoder], make_request: Any
) -> None:
    api, coder = coded
    a, b = api.store.enqueue(
        [
            make_request("forged cheque one", batch="l"),
            make_request("forged cheque two", batch="l"),
        ]
    )
    coder.fail = True
    r = api.client.post(
        f"/v1/reviews/{a}/decision", json={"action": "accept"}, headers=api.h("alice")
    )
    assert r.status_code == 200 and r.json()["status"] == "decided"
    assert r.json()["rescoring"]["failed"] is True
    assert api.store.get(a).status == "decided" and api.store.get(b).status == "pending"
    metrics = api.client.app.state.services.metrics.render().decode()
    assert 'iccs_review_rescoring_total{outcome="failed"} 1.0' in metrics


def test_without_a_model_decisions_work_as_before(api: Any, make_request: Any) -> None:
    a, b = api.store.enqueue([make_request("n1", batch="l"), make_request("n2", batch="l")])
    r = api.client.post(
        f"/v1/reviews/{a}/decision", json={"action": "accept"}, headers=api.h("alice")
    )
    assert r.status_code == 200 and r.json()["rescoring"] is None
    assert api.client.get(f"/v1/reviews/{b}", headers=api.h("alice")).json()["neighbours"] == []


def test_value_order_over_http(coded: tuple[Any, ApiCoder], make_request: Any) -> None:
    api, coder = coded
    x, y, z = api.store.enqueue(
        [
            make_request("theft of cattle and sheep", batch="v", top=0.5, occurrences=10),
            make_request("theft of cattle and sheep at night", batch="v", top=0.9, occurrences=100),
            make_request("forged cheque", batch="v", top=0.2, occurrences=20),
        ]
    )
    # Re-scoring keeps their answers; the point here is the values.
    coder.answers = {
        "theft of cattle and sheep": review("020111", 0.5),
        "theft of cattle and sheep at night": review("020111", 0.9),
        "forged cheque": review("020111", 0.2),
    }
    first = api.store.enqueue([make_request("unrelated words", batch="v", top=0.1)])[0]
    # a decision refreshes the list's values with the model's embeddings
    api.client.post(
        f"/v1/reviews/{first}/decision", json={"action": "accept"}, headers=api.h("bob")
    )

    def ids(order: str) -> list[int]:
        r = api.client.get(
            "/v1/reviews",
            params={"batch": "v", "status": "pending", "order": order},
            headers=api.h("alice"),
        )
        assert r.status_code == 200, r.text
        return [i["id"] for i in r.json()["items"]]

    # cattle (10 records) is worth its own and the 100 of its near-duplicate: first
    assert ids("value") == [x, z, y]
    assert ids("confidence") == [z, x, y]
    r = api.client.get(f"/v1/reviews/{x}", headers=api.h("alice")).json()
    assert r["priority"] == pytest.approx(0.5 * 110)
    claimed = api.client.post(
        "/v1/reviews/claim-next", json={"order": "value", "batch": "v"}, headers=api.h("alice")
    )
    assert claimed.json()["item"]["id"] == x
    bad = api.client.get("/v1/reviews", params={"order": "worth"}, headers=api.h("alice"))
    assert bad.status_code == 422


def test_neighbours_shown_but_never_an_undecided_or_blind_one(
    coded: tuple[Any, ApiCoder], make_request: Any
) -> None:
    api, coder = coded
    done, open_double, decided_double, item = api.store.enqueue(
        [
            make_request("assault with a bottle"),
            make_request("assault with a glass"),
            make_request("assault with a chair"),
            make_request("assault with a brick"),
        ]
    )
    api.store.decide(done, "bob", "correct", code="020111")
    api.store.flag_double_review("boss", item_ids=[open_double, decided_double])
    api.store.decide(open_double, "bob", "correct", code="0201")  # 1 of 2: still blind
    api.store.decide(decided_double, "bob", "correct", code="0201")
    api.store.decide(decided_double, "alice", "correct", code="0201")
    coder.neighbours = [
        DecidedNeighbour(open_double, "assault with a glass", "0201", 0.93),
        DecidedNeighbour(done, "assault with a bottle", "020111", 0.91),
        DecidedNeighbour(decided_double, "assault with a chair", "0201", 0.9),
        DecidedNeighbour(decided_double, "assault with a chair", "0201", 0.1),  # too far
    ]
    r = api.client.get(f"/v1/reviews/{item}", headers=api.h("alice"))
    assert r.status_code == 200
    assert r.json()["neighbours"] == [
        {"item_id": done, "text": "assault with a bottle", "code": "020111", "similarity": 0.91},
        {
            "item_id": decided_double,
            "text": "assault with a chair",
            "code": "0201",
            "similarity": 0.9,
        },
    ]
    # even an admin sees only settled items as examples
    r = api.client.get(f"/v1/reviews/{item}", headers=api.h("boss"))
    assert [n["item_id"] for n in r.json()["neighbours"]] == [done, decided_double]
    # listings carry none (one model call per item would be too many)
    listed = api.client.get("/v1/reviews", headers=api.h("alice")).json()["items"]
    assert all(i["neighbours"] == [] for i in listed)


def test_openapi_names_the_new_order_status_and_fields(coded: tuple[Any, ApiCoder]) -> None:
    api, _ = coded
    doc = api.client.get("/openapi.json").json()
    schemas = doc["components"]["schemas"]
    assert "value" in str(doc["paths"]["/v1/reviews"]["get"]["parameters"])
    assert {"neighbours", "priority"} <= set(schemas["ReviewItemResponse"]["properties"])
    assert "rescoring" in schemas["DecisionResponse"]["properties"]
