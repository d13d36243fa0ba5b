"""Re-scoring with the real (tiny) model: a correction moves the near-duplicates of its list.

The texts are statute references the quick model has never seen: it spreads its probability
thin over them, so they are queued; once a reviewer codes one, its near-duplicates score high
for that code through the decided example (issue 14 §1).
"""

from __future__ import annotations

from typing import Any

import pytest

from service.coding import Coder
from service.review.rescoring import ValuedQueue, embeddings_of, rescore_after_decision
from service.review.store import AUTO_CODED, ReviewStore
from service.taxonomy import load_taxonomy

pytestmark = pytest.mark.slow

TEXTS = [
    "Violation of the Customs Modernization Act, Sec. 3601",
    "Violation of the Customs Modernization Act, Sec. 3602",
    "Violation of the Customs Modernization Act, Sec. 3603 (smuggling)",
    "Theft of a bicycle from a shed",
]
CODE = "08051"


def test_a_correction_rescores_and_may_auto_code_its_neighbours(
    store: ReviewStore, tiny_predictor: Any
) -> None:
    embed = embeddings_of(tiny_predictor)
    coder = Coder(tiny_predictor, ValuedQueue(store, store, embed))
    # min_precision 0.999: all four go to review, whatever the quick model thinks.
    recs = coder.code(TEXTS, batch="customs", min_precision=0.999)
    ids = [r.review_id for r in recs]
    assert all(i is not None for i in ids)
    a, b, c, bike = (store.get(i) for i in ids)  # type: ignore[arg-type]
    assert CODE not in {b.top_code, c.top_code, bike.top_code}
    # Queued with their value: the three statute references settle each other's records.
    assert a.priority == pytest.approx((1 - (a.top_confidence or 0)) * 3, abs=1e-4)
    assert bike.priority == pytest.approx(1 - (bike.top_confidence or 0), abs=1e-4)

    store.decide(a.id, "alice", "correct", code=CODE)
    out = rescore_after_decision(store, coder, a.id, embed=embed)
    assert out.considered == 2  # the bicycle theft is too far from it to be moved

    tax = load_taxonomy()
    for item in (store.get(b.id), store.get(c.id)):
        if item.status == AUTO_CODED:
            assert item.decided_code in [*tax.path(CODE)]
            last = store.history(item.id)[-1]
            assert last.action == "auto_coded" and f"review item(s) {a.id}" in (last.note or "")
        else:
            assert item.status == "pending" and item.top_code == CODE
    assert b.id in out.auto_coded + out.moved and c.id in out.auto_coded + out.moved
    after = store.get(bike.id)
    assert after.status == "pending" and after.top_code != CODE
    # The decided item is the nearest decided example of its neighbours.
    (near,) = coder.decided_neighbours([TEXTS[2]], k=1)
    assert [(n.item_id, n.code) for n in near] == [(a.id, CODE)]


def test_rescoring_is_never_laxer_than_the_service(store: ReviewStore, tiny_predictor: Any) -> None:
    coder = Coder(tiny_predictor, store)
    texts = TEXTS + ["Burglary of a dwelling at night", "Possession of cannabis"]
    default = coder.rescore(texts)
    laxer = coder.rescore(texts, min_precision=0.5)
    assert [r.status for r in laxer] == [r.status for r in default]
    strict = coder.rescore(texts, min_precision=0.999)
    assert "auto" not in {r.status for r in strict}


def test_coding_queues_items_with_the_precision_they_were_coded_at(
    store: ReviewStore, tiny_predictor: Any
) -> None:
    coder = Coder(tiny_predictor, store)
    strict = coder.code(TEXTS[:1], batch="a", min_precision=0.999)[0]
    default = coder.code(TEXTS[1:2], batch="b")[0]
    assert store.get(strict.review_id).min_precision == 0.999  # type: ignore[arg-type]
    if default.review_id is not None:
        assert store.get(default.review_id).min_precision == tiny_predictor.default_precision
