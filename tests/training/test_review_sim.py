"""The review simulation: oracle decisions, carry-over to similar entries, queue orders."""

from __future__ import annotations

import numpy as np
import pytest

from training.review_sim import (
    Rules,
    SourceData,
    fit_rules,
    simulate,
    simulate_held_out_lists,
    simulate_review,
    threshold_for,
    unit_rows,
)

CLASSES = np.array(["0101", "0201", "0501"], dtype=object)


def _clustered_list(
    rng: np.random.Generator, sizes: tuple[int, ...], shared: float = 0.0
) -> SourceData:
    """Entries in tight clusters (one gold code per cluster), the model unsure of all.

    ``shared`` adds a component common to every cluster (clusters alike but distinct).
    """
    emb, truth = [], []
    for k, size in enumerate(sizes):
        centre = np.zeros(16)
        centre[k] = 1.0
        centre[15] = shared
        emb.append(centre + 0.02 * rng.standard_normal((size, 16)))
        truth += [CLASSES[k % len(CLASSES)]] * size
    n = len(truth)
    proba = np.full((n, len(CLASSES)), 1 / len(CLASSES))
    proba[:, 0] += 0.01  # the top is always 0101, at a low confidence
    proba /= proba.sum(axis=1, keepdims=True)
    return SourceData(proba, np.array(truth, dtype=object), unit_rows(np.vstack(emb)))


def test_threshold_for_is_the_lowest_score_reaching_the_target() -> None:
    scores = np.linspace(1.0, 0.0, 100)
    correct = np.r_[np.ones(50, bool), np.zeros(50, bool)]
    assert threshold_for(scores, correct, 0.99) == pytest.approx(scores[49])
    assert threshold_for(scores, np.zeros(100, bool), 0.9) > 1.0  # never auto-code


def test_every_entry_is_coded_and_oracle_decisions_are_right() -> None:
    data = _clustered_list(np.random.default_rng(0), (5, 5, 5))
    never = Rules(model=1.01, carry_same=1.01, carry_other=1.01)
    curve = simulate(data, CLASSES, never, "random", np.random.default_rng(0))
    assert curve.decisions_to_code_all() == 15  # nothing automatic: every entry decided
    assert curve.coded == list(range(16))
    assert curve.wrong[-1] == 0
    assert curve.final_precision() == 1.0


def test_a_decision_carries_to_close_entries_only() -> None:
    data = _clustered_list(np.random.default_rng(1), (6, 4))
    rules = Rules(model=1.01, carry_same=0.95, carry_other=0.95)
    curve = simulate(data, CLASSES, rules, "random", np.random.default_rng(0))
    # One decision per cluster codes its cluster, and nothing of the other cluster.
    assert curve.decisions_to_code_all() == 2
    assert curve.carried == 8
    assert curve.wrong[-1] == 0


def test_value_order_decides_the_big_cluster_first() -> None:
    data = _clustered_list(np.random.default_rng(2), (1, 1, 1, 1, 12))
    data.proba[4:] = [0.5, 0.25, 0.25]  # the model is surest of the big cluster
    data.__post_init__()
    rules = Rules(model=1.01, carry_same=0.95, carry_other=0.95)
    by_value = simulate(data, CLASSES, rules, "value", np.random.default_rng(0))
    assert by_value.coded[1] == 12  # the first decision coded the 12-entry cluster
    by_confidence = simulate(data, CLASSES, rules, "confidence", np.random.default_rng(0))
    assert by_confidence.decisions_to_code_all() == by_value.decisions_to_code_all() == 5
    assert by_value.coded[1] > by_confidence.coded[1]


def test_the_model_auto_codes_above_its_threshold_and_its_errors_count() -> None:
    data = _clustered_list(np.random.default_rng(3), (3, 3))
    data.proba[:] = [0.9, 0.05, 0.05]  # sure of 0101 everywhere; the second cluster is 0201
    data.__post_init__()
    curve = simulate(data, CLASSES, Rules(0.8, 1.01, 1.01), "value", np.random.default_rng(0))
    assert curve.auto_at_start == 6
    assert curve.decisions_to_code_all() == 0
    assert curve.wrong[-1] == 3
    assert curve.final_precision() == 0.5


def test_rules_learnt_on_other_lists_carry_only_between_close_entries() -> None:
    rng = np.random.default_rng(4)
    # Clusters of 3 near-identical entries, far from each other: an entry's nearest
    # neighbours are its 2 twins (same code) and then unrelated entries (mostly not).
    others = {f"list{k}": _clustered_list(rng, (3,) * 12, shared=1.0) for k in range(4)}
    rules = fit_rules(others, CLASSES, 0.97)
    assert rules.model > 1.0  # the model is never sure enough here
    assert 0.5 < rules.carry_other <= 1.0  # above the bulk of unrelated pairs (0.5 alike)
    twin = others["list0"].emb[0] @ others["list0"].emb[1]
    assert rules.carry_other <= twin


def test_simulate_review_pools_every_order_and_list() -> None:
    rng = np.random.default_rng(5)
    lists = {f"list{k}": _clustered_list(rng, (20, 20, 20)) for k in range(3)}
    result = simulate_review(lists, CLASSES, target=0.97)
    assert set(result["per_source"]) == set(lists)
    for order in ("confidence", "random", "value"):
        pooled = result["pooled"][order]
        assert pooled["rows"] == 180
        assert 0.0 < pooled["decision_share_weighted"] <= 1.0
        assert pooled["curve"]["coded_share"][-1] == pytest.approx(1.0)
    assert (
        result["pooled"]["value"]["decision_share_weighted"]
        <= result["pooled"]["random"]["decision_share_weighted"]
    )


def test_held_out_rows_are_split_into_one_list_per_fold() -> None:
    rng = np.random.default_rng(6)
    parts = [_clustered_list(rng, (10, 10, 10)) for _ in range(3)]
    result = simulate_held_out_lists(
        np.vstack([p.proba for p in parts]),
        CLASSES,
        np.concatenate([p.truth for p in parts]),
        np.repeat(np.array(["uk", "us", "in"], dtype=object), 30),
        np.vstack([p.emb for p in parts]) * 3.0,  # not unit length: normalised inside
        target=0.97,
    )
    assert sorted(result["per_source"]) == ["in", "uk", "us"]
    assert all(result["per_source"][s]["value"]["rows"] == 30 for s in result["per_source"])
