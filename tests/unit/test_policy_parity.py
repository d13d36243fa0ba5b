"""Training measures the served policy: the same probabilities give the same decisions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from service.models.policy import AUTO, REJECTED, REVIEW, ClassColumns
from service.models.predictor import Predictor, load_predictor
from training.head import NA, top_codes
from training.policy_sim import PolicyReplay, decisions

TEXTS = [
    "kidnapping",
    "robbery with a knife",
    "burglary of a dwelling",
    "threat to kill",
    "drink driving",
    "pickpocketing",
    "theft of livestock",
    "assault",
    "sexual assault",
    "possession of cannabis",
    "criminal damage",
    "trafficking in persons",
    "stalking",
    "intentional homicide",
    "shoplifting",
    "see attached report",
    "welfare check, no offence disclosed",
    "lost property handed in",
    "civil dispute between neighbours",
    "traffic collision, no injuries, exchange of details",
    "warrant served",
    "fraud by false representation",
    "bribery of a public official",
    "carrying a concealed firearm",
    "illegal dumping of waste",
]


@pytest.fixture(scope="module")
def predictor(tiny_registry: Path) -> Predictor:
    return load_predictor(tiny_registry)


def _with_non_offence_mass(predictor: Predictor, proba: np.ndarray) -> np.ndarray:
    """The texts' probabilities, and again with 45% / 50% / 70% of the mass moved to "not an
    offence" (the tiny model rejects none of these texts; the cut-off sits between), and
    with all of it on each text's top class (what clears every threshold: the tiny model
    alone may auto-code none of these texts at a strict target)."""
    na = np.zeros(proba.shape[1])
    na[predictor.columns.non_offence] = 1.0
    sure = np.zeros_like(proba)
    sure[np.arange(len(proba)), proba.argmax(axis=1)] = 1.0
    return np.vstack([proba, *[(1 - w) * proba + w * na for w in (0.45, 0.5, 0.7)], sure])


@pytest.mark.parametrize("precision", [0.8, 0.95])
def test_training_decides_as_the_service_on_the_same_probabilities(
    predictor: Predictor, precision: float
) -> None:
    proba = _with_non_offence_mass(predictor, predictor.class_probabilities(TEXTS))
    classes = predictor.head.classes_
    thresholds = predictor.thresholds.at(precision)
    served = [
        predictor._decide_one(row, row @ predictor.head.node_matrix_, 5, thresholds)
        for row in proba
    ]
    assert {r.status for r in served} == {AUTO, REVIEW, REJECTED}  # not vacuous

    assert decisions(proba, classes, thresholds) == [
        r.assigned.code if r.status == AUTO and r.assigned else None for r in served
    ]
    assert list(top_codes(proba, classes)) == [
        NA if r.status == REJECTED else r.suggestions[0].code for r in served
    ]
    replay = PolicyReplay(proba, classes, top_codes(proba, classes))
    rows, auto, _ = replay.outcome(np.ones(len(proba), bool), thresholds)
    assert (rows, auto) == (len(proba), sum(r.status == AUTO for r in served))


@pytest.mark.parametrize("precision", [0.8, 0.95])
def test_classify_decides_as_the_training_replay(predictor: Predictor, precision: float) -> None:
    served = predictor.classify(TEXTS, min_precision=precision)
    proba = predictor.class_probabilities(TEXTS)
    t = predictor.thresholds
    assigned = decisions(proba, predictor.head.classes_, t.at(precision), t.reject_at(precision))
    assert assigned == [
        r.assigned.code if r.status == AUTO and r.assigned else None for r in served
    ]


def test_ties_go_to_the_first_column_in_ranking_and_in_the_top_code() -> None:
    columns = ClassColumns(["0101", "not_an_offence", "0501", "0701"])
    proba = np.array([[0.1, 0.2, 0.35, 0.35], [0.3, 0.6, 0.05, 0.05]])
    assert list(columns.top_offence(proba)) == [2, 0]
    assert [int(columns.ranked_offences(row)[0]) for row in proba] == [2, 0]
    assert list(columns.non_offence_probability(proba)) == [0.2, 0.6]
    assert list(top_codes(proba, np.array(columns.classes, dtype=object))) == ["0501", NA]


def test_a_head_without_non_offence_examples_never_rejects() -> None:
    columns = ClassColumns(["0101", "0501"])
    proba = np.array([[0.9, 0.1]])
    assert list(columns.non_offence_probability(proba)) == [0.0]
    assert list(top_codes(proba, np.array(columns.classes, dtype=object))) == ["0101"]


def test_answers_carry_the_heads_non_offence_probability(
    predictor: Predictor, monkeypatch: pytest.MonkeyPatch
) -> None:
    served = predictor.classify(TEXTS)
    scored = [t for t in TEXTS if t != "see attached report"]  # a placeholder: rejected by rule
    column = predictor.class_probabilities(scored)[:, predictor.columns.non_offence]
    by_text = dict(zip(TEXTS, served, strict=True))
    assert [by_text[t].non_offence_probability for t in scored] == [
        round(float(p), 4) for p in column
    ]
    assert by_text["see attached report"].non_offence_probability is None
    # A head trained without non-offence examples has no such probability: none is made up.
    monkeypatch.setattr(predictor.columns, "non_offence", -1)
    assert {r.non_offence_probability for r in predictor.classify(scored)} == {None}
