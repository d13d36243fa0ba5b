"""The review simulation: oracle decisions, carry-over to similar entries, queue orders."""

from __future__ import annotations

import numpy as np
import pytest

from service.models.neighbours import NearestExamples
from training.config import TrainConfig
from training.evaluate import recipe_oof, recipe_oof_parts
from training.review_sim import (
    Learning,
    Rules,
    ScoreParts,
    SourceData,
    budget_cover,
    budget_threshold,
    context_confidence,
    fit_rules,
    list_threshold,
    pool,
    pool_ceilings,
    review_simulation_table,
    simulate,
    simulate_held_out_lists,
    simulate_review,
    summarise,
    table_ceiling,
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


def test_budget_threshold_spends_the_error_budget_on_the_whole_list() -> None:
    scores = np.linspace(1.0, 0.0, 100)
    correct = np.ones(100, bool)
    correct[[10, 30, 50, 70, 90]] = False
    # 2% of 100 rows: the set may hold two wrong codes, so it stops before the third (50).
    assert budget_threshold(scores, correct, 0.02) == pytest.approx(scores[49])
    assert budget_threshold(scores, correct, 0.05) == pytest.approx(scores[99])
    assert budget_threshold(scores[:30], np.zeros(30, bool), 0.01) > 1.0  # nothing to spend


def test_budget_cover_takes_the_best_threshold_in_hindsight() -> None:
    conf = np.array([0.9, 0.8, 0.8, 0.7, 0.6, 0.5])
    right = np.array([True, False, True, True, False, True])
    assert budget_cover(conf, right, 0) == 1  # the tie at 0.8 holds a wrong code
    assert budget_cover(conf, right, 1) == 4  # up to 0.7; 0.6 is the second error
    assert budget_cover(conf, right, 2) == 6
    assert budget_cover(conf[1:3], right[1:3], 0) == 0


def test_the_ceiling_counts_what_decisions_on_the_rest_could_bring() -> None:
    # Twins of 0201 and a lone 0501, the model unsure of all (its top is 0101): alone it codes
    # none in a table with no room for errors; with the rest decided each twin is sure and
    # right, and the lone entry stays wrong.
    data = _parts_list(
        [_axis(0), _axis(0, 0.05), _axis(1)], ["0201", "0201", "0501"], np.zeros((3, 3))
    )
    ceiling = table_ceiling(data, CLASSES, target=1.0)
    assert ceiling["rows"] == 3
    assert ceiling["machine_at_start"] == 0.0
    assert ceiling["machine_all_others_decided"] == pytest.approx(2 / 3, abs=1e-4)
    assert ceiling["right_at_start"] == 0.0
    assert ceiling["right_all_others_decided"] == pytest.approx(2 / 3, abs=1e-4)
    # The twins are each other's nearest entry; the lone entry's nearest has another code.
    assert ceiling["nearest_shares_code"] == pytest.approx(2 / 3, abs=1e-4)
    # Without the scorer's pieces only the start can be told.
    plain = SourceData(data.proba, data.truth, data.emb)
    assert "machine_all_others_decided" not in table_ceiling(plain, CLASSES, 1.0)
    pooled = pool_ceilings([ceiling, ceiling | {"rows": 6, "machine_all_others_decided": 0.0}])
    assert pooled["rows"] == 9
    assert pooled["machine_all_others_decided"] == pytest.approx(2 / 9, abs=1e-4)


def test_the_report_sets_each_list_against_its_ceiling() -> None:
    rng = np.random.default_rng(11)
    lists = {}
    for k in range(3):
        base = _clustered_list(rng, (6, 6, 6))
        n = len(base.truth)
        parts = ScoreParts(np.zeros((n, 3)), np.full((n, 3), 0.5), base.emb, 10.0, 1.0)
        lists[f"list{k}"] = SourceData.from_parts(parts, base.truth)
    result = simulate_review(lists, CLASSES, target=0.97)
    result["table_policy"] = simulate_review(lists, CLASSES, target=0.97, policy="table")
    assert result["ceiling"]["rows"] == 54
    report = review_simulation_table(result)
    assert "## How far decisions could go" in report
    c = result["per_source"]["list0"]["ceiling"]
    value = result["table_policy"]["per_source"]["list0"]["value"]["decision_share"]
    assert (
        f"| list0 | 18 | {c['machine_at_start']:.1%} | {c['machine_all_others_decided']:.1%} | "
        f"{1 - c['machine_all_others_decided']:.1%} | {value:.1%} | "
        f"{c['right_at_start']:.3f} | {c['right_all_others_decided']:.3f} | "
        f"{c['nearest_shares_code']:.3f} |"
    ) in report


def _scored_list(rng: np.random.Generator, n: int) -> SourceData:
    """A list whose top code is right with probability equal to its confidence."""
    conf = rng.uniform(0.4, 1.0, n)
    proba = np.column_stack([conf, (1 - conf) / 2, (1 - conf) / 2])
    truth = np.where(rng.random(n) < conf, CLASSES[0], CLASSES[1]).astype(object)
    return SourceData(proba, truth, unit_rows(rng.standard_normal((n, 8))))


def test_table_policy_auto_codes_more_and_keeps_the_table_at_the_target() -> None:
    rng = np.random.default_rng(7)
    lists = {f"list{k}": _scored_list(rng, 400) for k in range(4)}
    codes = simulate_review(lists, CLASSES, target=0.97, carry=False)["pooled"]["value"]
    table = simulate_review(lists, CLASSES, target=0.97, carry=False, policy="table")
    pooled = table["pooled"]["value"]
    assert table["mechanism"]["policy"] == "table"
    assert pooled["auto_at_start_share"] > codes["auto_at_start_share"]
    assert pooled["decision_share_weighted"] < codes["decision_share_weighted"]
    assert pooled["precision"] >= 0.97
    assert pooled["machine_precision"] < 0.97  # the budget is spent on machine codes
    assert codes["machine_precision"] >= 0.97


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


def _parts_list(
    emb: np.ndarray, truth: list[str], head: np.ndarray, train_sim: float = 0.2
) -> SourceData:
    """A list scored by its pieces: weight 10, temperature 1, the same training similarity
    for every class (so the head alone ranks the classes at the start)."""
    parts = ScoreParts(
        head=np.asarray(head, dtype=float),
        train_sim=np.full((len(truth), len(CLASSES)), train_sim),
        emb=unit_rows(np.asarray(emb, dtype=float)).astype(np.float32),
        weight=10.0,
        temperature=1.0,
    )
    return SourceData.from_parts(parts, np.array(truth, dtype=object))


def _axis(k: int, tilt: float = 0.0) -> list[float]:
    v = [0.0] * 8
    v[k] = 1.0
    v[7] = tilt
    return v


def test_a_decided_neighbour_makes_a_similar_entry_cross_the_threshold() -> None:
    # Entries 0 and 1 are near-twins of 0201; entry 2 is 0201 too but unlike them.
    data = _parts_list(
        [_axis(0), _axis(0, 0.05), _axis(1)], ["0201", "0201", "0201"], np.zeros((3, 3))
    )
    assert data.conf.max() < 0.5  # the model is unsure of all three
    rules = Rules(model=0.9, carry_same=1.01, carry_other=1.01, learn=0.9)
    curve = simulate(data, CLASSES, rules, "random", np.random.default_rng(0))
    # One of the twins is decided, the other is re-scored over 0.9 and coded; the third
    # (similarity 0 to both, below its training similarity 0.2) still needs a decision.
    assert curve.learnt == 1
    assert curve.decisions_to_code_all() == 2
    twin_learnt = 1 if curve.coded_by[1] == 0 else 0
    assert curve.coded_by[twin_learnt] == 1 - twin_learnt
    assert curve.coded_by[2] == 2
    assert curve.wrong[-1] == 0
    # Without learning, all three are decided.
    off = simulate(data, CLASSES, Rules(0.9, 1.01, 1.01), "random", np.random.default_rng(0))
    assert off.learnt == 0
    assert off.decisions_to_code_all() == 3


def test_no_entry_is_auto_coded_by_a_decision_that_is_not_its_neighbour() -> None:
    rng = np.random.default_rng(7)
    data = _clustered_list(rng, (8, 8, 8))
    n = len(data.truth)
    head = np.zeros((n, 3))
    sim = data.emb @ data.emb.T
    parts = ScoreParts(head, np.full((n, 3), 0.5), data.emb.astype(np.float32), 10.0, 1.0)
    data = SourceData.from_parts(parts, data.truth)
    rules = Rules(model=0.99, carry_same=1.01, carry_other=1.01, learn=0.95)
    for order in ("confidence", "random", "value"):
        curve = simulate(data, CLASSES, rules, order, np.random.default_rng(1))
        assert curve.decisions_to_code_all() == 3  # one decision per cluster
        assert curve.learnt == n - 3
        learnt = np.flatnonzero(curve.coded_by != np.arange(n))
        by = curve.coded_by[learnt]
        # Each learnt entry was coded by a decision on its own cluster, closer to it than
        # any training example of the code (0.5), and with that decision's code.
        assert (sim[by, learnt] > 0.5).all()
        assert (data.truth[by] == data.truth[learnt]).all()
        assert curve.wrong[-1] == 0


def test_learnt_codes_are_counted_in_the_precision() -> None:
    # Entry 1 is a near-twin of entry 0 but its gold code is another one: deciding 0 codes
    # 1 wrongly. Entry 2 (far) is decided.
    data = _parts_list(
        [_axis(0), _axis(0, 0.05), _axis(1)], ["0201", "0501", "0101"], np.zeros((3, 3))
    )
    rules = Rules(model=0.9, carry_same=1.01, carry_other=1.01, learn=0.9)
    data.proba[1, 0] = 0.0  # entry 1 is never picked first by confidence (it is the surest)
    data.proba[1] /= data.proba[1].sum()
    data.__post_init__()
    curve = simulate(data, CLASSES, rules, "confidence", np.random.default_rng(0))
    assert (curve.learnt, curve.learnt_wrong) == (1, 1)
    assert curve.machine_coded == 1 and curve.machine_wrong == 1
    assert curve.wrong[-1] == 1
    assert curve.final_precision() == pytest.approx(2 / 3)
    s = summarise(curve)
    assert s["learnt_precision"] == 0.0
    assert s["machine_precision"] == 0.0
    assert s["precision"] == pytest.approx(0.6667, abs=1e-4)
    pooled = pool([curve, curve])
    assert pooled["learnt_share"] == pytest.approx(1 / 3, abs=1e-4)
    assert pooled["machine_precision"] == 0.0


@pytest.mark.parametrize("decided_weight", [0.0, 4.0])
def test_the_learning_gain_is_kept_equal_to_its_definition(decided_weight: float) -> None:
    rng = np.random.default_rng(8)
    n, k = 60, 3
    lab = rng.integers(0, k, n)
    emb = unit_rows(np.eye(8)[lab] + 0.5 * rng.standard_normal((n, 8))).astype(np.float32)
    parts = ScoreParts(
        0.5 * rng.standard_normal((n, k)),
        rng.uniform(0.2, 0.6, (n, k)),
        emb,
        5.0,
        1.0,
        decided_weight,
    )
    pending = np.ones(n, bool)
    learning = Learning(parts, 0.8, pending, tolerance=0.0)
    for _ in range(15):
        idx = np.flatnonzero(pending)
        i = int(idx[np.argmax(learning.gain[idx])])
        pending[i] = False
        learning.close(np.array([i]))
        moved = learning.decide(i, int(lab[i]), pending)
        done = moved[learning.proba[moved].max(axis=1) >= 0.8]
        pending[done] = False
        learning.close(done)
        # From scratch: for each pending j and each i's candidate code c, does i's
        # similarity re-score j (beat its best for c) with a confidence in c of 0.8?
        expected = np.zeros(n)
        for a in np.flatnonzero(pending):
            for b in np.flatnonzero(pending):
                if a == b:
                    continue
                for c, p in zip(learning.cand[a], learning.pc[a], strict=True):
                    sim = learning.sim[b].copy()
                    if float(emb[a] @ emb[b]) <= sim[c]:
                        continue
                    sim[c] = float(emb[a] @ emb[b])
                    q = parts.proba(sim[None], np.array([b]))[0]
                    expected[a] += p * (q[c] >= 0.8)
        assert np.allclose(learning.gain[pending], expected[pending], atol=1e-3)


def test_value_order_decides_where_a_decision_codes_most() -> None:
    # 12 near-identical 0101 entries and 4 isolated ones; the model prefers 0101 everywhere.
    emb = [_axis(0, 0.01 * k) for k in range(12)] + [_axis(k) for k in range(1, 5)]
    head = np.tile([1.0, 0.0, 0.0], (16, 1))
    data = _parts_list(emb, ["0101"] * 12 + ["0201"] * 4, head)
    rules = Rules(model=0.99, carry_same=1.01, carry_other=1.01, learn=0.95)
    by_value = simulate(data, CLASSES, rules, "value", np.random.default_rng(0))
    assert by_value.coded[1] == 12  # the first decision coded the whole cluster
    assert by_value.decisions_to_code_all() == 5


def test_context_confidence_sees_the_rest_of_the_list_decided() -> None:
    data = _parts_list(
        [_axis(0), _axis(0, 0.05), _axis(1)], ["0201", "0201", "0101"], np.zeros((3, 3))
    )
    conf, right = context_confidence(data, CLASSES)
    assert conf[0] > 0.9 and conf[1] > 0.9  # each the other's decided twin
    assert right[0] and right[1]
    assert conf[2] == pytest.approx(data.conf[2])  # nothing near it


def test_learning_rules_follow_the_requested_mechanism() -> None:
    rng = np.random.default_rng(9)
    lists = {}
    for k in range(3):
        base = _clustered_list(rng, (5, 5, 5))
        n = len(base.truth)
        parts = ScoreParts(np.zeros((n, 3)), np.full((n, 3), 0.3), base.emb, 10.0, 1.0)
        lists[f"l{k}"] = SourceData.from_parts(parts, base.truth)
    model = fit_rules(lists, CLASSES, 0.97, learn="model", carry=False)
    assert model.learn == model.model
    assert (model.carry_same, model.carry_other) == (1.01, 1.01)
    assert fit_rules(lists, CLASSES, 0.97, learn="off").learn > 1.0
    # With the rest of its list decided every entry is right and sure: a threshold exists.
    assert fit_rules(lists, CLASSES, 0.97, learn="context").learn <= 1.0
    result = simulate_review(lists, CLASSES, 0.97, learn="context", carry=False)
    assert result["mechanism"]["learn"] == "context"
    assert result["mechanism"]["carry"] is False
    # A decision or two per 5-entry cluster; the rest learnt, all of it right.
    assert result["pooled"]["value"]["decision_share_weighted"] <= 18 / 45
    assert result["pooled"]["value"]["learnt_share"] >= 27 / 45
    assert result["pooled"]["value"]["precision"] == 1.0


def test_held_out_pieces_rebuild_the_out_of_fold_probabilities() -> None:
    rng = np.random.default_rng(10)
    words = {"0101": "homicide killing", "0201": "assault hitting", "0501": "theft stealing"}
    labels = np.array([CLASSES[k % 3] for k in range(90)], dtype=object)
    texts = [f"{words[c]} case {rng.integers(0, 50)}" for c in labels]
    emb = unit_rows(np.eye(24)[[k % 3 for k in range(90)]] + 0.3 * rng.standard_normal((90, 24)))
    folds = np.array([f"f{k % 4}" for k in range(90)], dtype=object)
    folds[::4] = ""  # rows always in training
    cfg = TrainConfig(
        include_reference=False,
        max_features=300,
        ngram_components=8,
        max_iter=40,
        calibration_folds={},
        neighbour_weight=20.0,
    )
    proba, classes, held = recipe_oof(texts, emb, labels, folds, cfg)
    proba2, classes2, held2, parts = recipe_oof_parts(texts, emb, labels, folds, cfg)
    assert list(classes2) == list(classes) and (held2 == held).all()
    assert np.allclose(proba2, proba)
    assert np.allclose(parts.proba(parts.train_sim), proba, atol=1e-6)
    assert np.allclose(np.linalg.norm(parts.emb, axis=1), 1.0, atol=1e-5)
    # Index-space rows (the pieces' embeddings) compare as the index does.
    train = np.flatnonzero(folds != "f1")
    index = NearestExamples(emb[train], labels[train], classes, dimensions=8)
    q, t = index.project(emb[:5]), index.project(emb[train])
    best = [(q @ t[labels[train] == c].T).max(axis=1) for c in classes]
    assert np.allclose(np.column_stack(best), index.scores(emb[:5]), atol=1e-5)


def test_hand_written_folds_alone_are_scored_without_a_temperature() -> None:
    # bench/encoder_compare.py --hw-only: no national list held out, nothing to calibrate on.
    rng = np.random.default_rng(11)
    words = {"0101": "homicide killing", "0201": "assault hitting", "0501": "theft stealing"}
    labels = np.array([CLASSES[k % 3] for k in range(60)], dtype=object)
    texts = [f"{words[c]} case {rng.integers(0, 50)}" for c in labels]
    emb = unit_rows(np.eye(24)[[k % 3 for k in range(60)]] + 0.3 * rng.standard_normal((60, 24)))
    folds = np.array([f"hw-fold{k % 2}" if k % 3 else "" for k in range(60)], dtype=object)
    cfg = TrainConfig(include_reference=False, max_features=300, max_iter=40)
    proba, classes, held = recipe_oof(texts, emb, labels, folds, cfg)
    assert (held == np.flatnonzero(folds != "")).all()
    assert np.allclose(proba.sum(axis=1), 1.0)
    assert (classes[proba.argmax(axis=1)] == labels[held]).mean() > 0.9


def test_a_list_lowers_its_threshold_only_on_a_sample_that_proves_it() -> None:
    conf = np.linspace(0.5, 0.89, 200)
    right = np.ones(200, bool)
    # 200 right answers below the model's 0.9: the lower bound clears 0.97 (0.985).
    assert list_threshold(conf, right, 0.97, 0.9) == pytest.approx(0.5)
    # 60 are too few to prove 0.97 at 95% (lower bound 0.951).
    assert list_threshold(conf[:60], right[:60], 0.97, 0.9) == 0.9
    # Errors at the low end push the list's threshold above them.
    right[:40] = False
    t = list_threshold(conf, right, 0.97, 0.9)
    assert conf[35] <= t < 0.9  # one error at most above it (160 right of 161)
    # Entries already above the model's threshold say nothing about the ones below it.
    assert list_threshold(np.full(300, 0.95), np.ones(300, bool), 0.97, 0.9) == 0.9


def test_the_sample_decides_first_and_its_threshold_codes_the_rest() -> None:
    rng = np.random.default_rng(11)
    n = 400
    proba = np.tile([0.8, 0.1, 0.1], (n, 1))  # sure enough of 0101, right everywhere
    data = SourceData(proba, np.array(["0101"] * n, dtype=object), unit_rows(rng.random((n, 4))))
    rules = Rules(model=0.9, carry_same=1.01, carry_other=1.01)
    curve = simulate(data, CLASSES, rules, "value", np.random.default_rng(0), sample=150)
    assert curve.decisions_to_code_all() == 150
    assert curve.own_threshold == pytest.approx(0.8)
    assert (curve.relaxed, curve.relaxed_wrong) == (250, 0)
    # Half of them wrong: the sample proves nothing, every entry is decided.
    data.truth[::2] = "0201"
    curve = simulate(data, CLASSES, rules, "value", np.random.default_rng(0), sample=150)
    assert curve.relaxed == 0 and curve.own_threshold == 0.9
    assert curve.decisions_to_code_all() == n
