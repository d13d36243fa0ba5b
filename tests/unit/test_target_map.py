"""The precision an operator sets holds on sources the thresholds were not learnt on."""

import numpy as np

from service.labels import NOT_AN_OFFENCE
from service.models.calibration import PrecisionCurve, effective_target
from service.models.policy import Thresholds
from training.metrics import policy_outcome
from training.policy_sim import (
    PolicyReplay,
    cross_fitted_decisions,
    decisions,
    fit_target_map,
    per_source_precision,
)

CLASSES = np.array(["0101", "02011", "020111", "0501", "050211", NOT_AN_OFFENCE], dtype=object)


def _fake(n: int, seed: int, sharp: float) -> tuple[np.ndarray, np.ndarray]:
    """Probabilities whose top class is right more often the larger ``sharp`` is."""
    rng = np.random.default_rng(seed)
    truth = rng.choice(CLASSES, size=n)
    logits = rng.normal(size=(n, len(CLASSES)))
    logits[np.arange(n), [list(CLASSES).index(t) for t in truth]] += sharp
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    return proba, truth


def test_replay_matches_the_serving_policy():
    proba, truth = _fake(600, 1, 2.0)
    replay = PolicyReplay(proba, CLASSES, truth)
    everything = np.ones(len(truth), bool)
    for thresholds in ({2: 0.5, 3: 0.6, 4: 0.7}, {2: 0.9, 3: 0.95, 4: 0.99}, {2: 0.2}):
        assigned = decisions(proba, CLASSES, thresholds)
        expected = policy_outcome(assigned, truth)
        n, auto, right = replay.outcome(everything, thresholds)
        assert auto == expected["n_auto"]
        if auto:
            assert abs(right / auto - expected["precision"]) < 1e-9


def test_replay_curves_match_cross_fitted_decisions():
    proba, truth = _fake(900, 2, 2.5)
    folds = np.array(["a", "b", "c"] * 300, dtype=object)
    replay = PolicyReplay(proba, CLASSES, truth)
    assigned = cross_fitted_decisions(proba, CLASSES, truth, folds, 0.9)
    expected = policy_outcome(assigned, truth)
    total_auto = total_right = 0
    for f in "abc":
        curves = replay.curves(folds != f)
        th = {lvl: c.threshold_for(0.9) for lvl, c in curves.items()}
        _, auto, right = replay.outcome(folds == f, th)
        total_auto, total_right = total_auto + auto, total_right + right
    assert total_auto == expected["n_auto"]


def test_effective_target_never_below_the_target():
    assert effective_target(None, 0.95) == 0.95
    tmap = [[0.8, 0.85], [0.9, 0.97], [0.99, 0.995]]
    assert effective_target(tmap, 0.8) == 0.85
    assert 0.85 < effective_target(tmap, 0.85) < 0.97
    assert effective_target(tmap, 0.999) == 0.999
    assert effective_target([[0.8, 0.8], [0.99, 0.99]], 0.9) >= 0.9


def test_map_tightens_when_a_new_source_is_less_accurate_than_the_pool():
    # Two sharp sources and one blunt one: thresholds learnt on the sharp ones are too lax
    # for the blunt one, so the map must ask for a stricter effective target.
    parts = [_fake(800, 3, 4.0), _fake(800, 4, 4.0), _fake(800, 5, 1.0)]
    proba = np.vstack([p for p, _ in parts])
    truth = np.concatenate([t for _, t in parts])
    folds = np.repeat(np.array(["a", "b", "blunt"], dtype=object), 800)
    replay = PolicyReplay(proba, CLASSES, truth)
    tmap = fit_target_map(replay, folds)
    targets = [p for p, _ in tmap]
    effective = [e for _, e in tmap]
    assert all(e >= p for p, e in tmap)
    assert effective == sorted(effective)
    assert max(e - p for p, e in zip(targets, effective, strict=True)) > 0
    nested = per_source_precision(replay, folds, targets=(0.9,))
    assert set(nested) == {"a", "b", "blunt", "pooled"}
    assert nested["pooled"]["0.90"]["rows"] == len(truth)


def test_thresholds_apply_the_map():
    rng = np.random.default_rng(7)
    conf = rng.uniform(size=3000)
    correct = rng.uniform(size=3000) < conf
    curve = PrecisionCurve.from_predictions(conf, correct)
    plain = Thresholds({4: curve}).at(0.9)[4]
    mapped = Thresholds({4: curve}, [[0.8, 0.85], [0.99, 0.995]]).at(0.9)[4]
    assert mapped > plain


def test_a_worst_source_map_is_never_laxer_and_guards_the_blunt_source():
    parts = [_fake(800, 3, 4.0), _fake(800, 4, 4.0), _fake(800, 5, 1.5)]
    proba = np.vstack([p for p, _ in parts])
    truth = np.concatenate([t for _, t in parts])
    folds = np.repeat(np.array(["a", "b", "blunt"], dtype=object), 800)
    replay = PolicyReplay(proba, CLASSES, truth)
    pooled, worst = fit_target_map(replay, folds), fit_target_map(replay, folds, worst_source=True)
    assert all(w >= p for (_, p), (_, w) in zip(pooled, worst, strict=True))
    assert any(w > p for (_, p), (_, w) in zip(pooled, worst, strict=True))
    # Thresholds learnt on the sharp sources: the worst-source map is stricter on the blunt one.
    inside = folds == "blunt"
    curves = replay.curves(~inside)

    def blunt_precision(tmap: list[list[float]]) -> float:
        eff = effective_target(tmap, 0.9)
        th = {lvl: c.threshold_for(eff) for lvl, c in curves.items()}
        _, auto, right = replay.outcome(inside, th)
        return right / auto if auto else 1.0

    assert blunt_precision(worst) >= blunt_precision(pooled)
