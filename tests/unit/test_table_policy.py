"""A national list coded as a correspondence table: the target is the finished table's."""

import numpy as np
import pytest

from service.errors import TableThresholdsMissing
from service.models.calibration import PrecisionCurve
from service.models.policy import AUTO, REJECTED, REVIEW, Thresholds, decide
from training.review_sim import (
    TABLE_TARGETS,
    table_precision_by_held_out_source,
    table_thresholds,
    threshold_for,
)

PATH_CONF = {"05": 0.9, "0501": 0.8, "05011": 0.7, "050111": 0.62}
STRICT = {2: 0.95, 3: 0.95, 4: 0.95}


def test_an_entry_over_the_table_threshold_is_coded_whole() -> None:
    d = decide("050111", PATH_CONF, 0.0, STRICT, top_class=(0.62, 0.6))
    assert (d.status, d.assigned) == (AUTO, "050111")


def test_below_the_table_threshold_the_levels_decide() -> None:
    assert decide("050111", PATH_CONF, 0.0, STRICT, top_class=(0.62, 0.7)).status == REVIEW
    backs_off = decide("050111", PATH_CONF, 0.0, {2: 0.75, 3: 0.95}, top_class=(0.62, 0.7))
    assert (backs_off.status, backs_off.assigned) == (AUTO, "0501")


def test_a_non_offence_is_rejected_before_the_table_rule() -> None:
    assert decide("0501", {"05": 0.3, "0501": 0.3}, 0.7, STRICT, (0.3, 0.1)).status == REJECTED


def _thresholds(table: list[list[float]] | None) -> Thresholds:
    curve = PrecisionCurve.from_predictions(np.linspace(0, 1, 100), np.ones(100, bool))
    return Thresholds({4: curve}, None, table)


def test_table_threshold_is_that_of_the_nearest_target_at_or_above() -> None:
    th = _thresholds([[0.97, 0.8], [0.95, 0.7], [0.96, 0.75]])
    assert th.table_at(0.95) == 0.7
    assert th.table_at(0.951) == 0.75  # never the laxer 0.95 one
    assert th.table_at(0.90) == 0.7
    assert th.table_at(0.99) > 1.0  # past the strictest target learnt: never


def test_an_entry_without_table_thresholds_refuses_clearly() -> None:
    with pytest.raises(TableThresholdsMissing, match="retrain"):
        _thresholds(None).table_at(0.97)


def _lists(seed: int, n: int = 4000) -> tuple[np.ndarray, ...]:
    """Calibrated probabilities over five classes, in four lists."""
    rng = np.random.default_rng(seed)
    proba = rng.dirichlet(np.full(5, 0.3), size=n)
    classes = np.array(["0101", "0201", "0501", "0601", "0701"])
    top = proba.argmax(1)
    right = rng.random(n) < proba[np.arange(n), top]
    other = classes[(top + 1) % 5]
    truth = np.where(right, classes[top], other)
    folds = np.array([f"list{i % 4}" for i in range(n)])
    return proba, classes, truth, folds


def test_table_thresholds_rise_with_the_target_and_hold_the_table_on_a_new_list() -> None:
    proba, classes, truth, folds = _lists(3)
    found = table_thresholds(proba, classes, truth, folds)
    assert [t for t, _ in found] == list(TABLE_TARGETS)
    values = [th for _, th in found]
    assert values == sorted(values)
    # On a fresh list from the same model, coding at the 0.97 threshold and reviewing the
    # rest leaves a table right at 0.97 or better.
    p2, _, truth2, _ = _lists(4)
    at = dict((t, th) for t, th in found)[0.97]
    conf, top = p2.max(1), p2.argmax(1)
    coded = conf >= at
    wrong = (classes[top] != truth2) & coded
    assert 1 - wrong.mean() >= 0.97
    # ... coding more of it than if every machine-made code had to be right at 0.97.
    every_code = threshold_for(proba.max(1), classes[proba.argmax(1)] == truth, 0.97)
    assert at < every_code
    assert coded.mean() > (conf >= every_code).mean() + 0.05
    assert 1 - wrong.sum() / coded.sum() < 0.97


def test_no_held_out_lists_no_table_coding() -> None:
    proba, classes, truth, folds = _lists(5, n=0)
    assert all(th > 1.0 for _, th in table_thresholds(proba, classes, truth, folds))


def test_per_list_figures_use_thresholds_learnt_without_the_list() -> None:
    proba, classes, truth, folds = _lists(6)
    per = table_precision_by_held_out_source(proba, classes, truth, folds)
    assert set(per) == {"list0", "list1", "list2", "list3", "pooled"}
    for name in ("list0", "list3"):
        inside = folds == name
        others = table_thresholds(proba[~inside], classes, truth[~inside], folds[~inside])
        assert per[name]["0.97"]["threshold"] == dict((t, th) for t, th in others)[0.97]
    pooled = per["pooled"]
    assert pooled["0.97"]["auto_coded"] < pooled["0.90"]["auto_coded"]
    assert pooled["0.97"]["table_precision"] >= 0.965  # calibrated lists: the target holds
    assert pooled["0.97"]["auto_precision"] < pooled["0.97"]["table_precision"]
