import numpy as np

from service.models.calibration import (
    PrecisionCurve,
    expected_calibration_error,
    fit_temperature,
)
from service.models.policy import (
    AUTO,
    REJECT_PROBABILITY,
    REJECTED,
    REVIEW,
    Thresholds,
    decide,
    unusable_text_reason,
)


def test_temperature_recovers_overconfidence():
    rng = np.random.default_rng(1)
    n, k = 4000, 5
    y = rng.integers(0, k, n)
    true_logits = rng.normal(size=(n, k))
    true_logits[np.arange(n), y] += 1.0
    # A model three times too confident.
    t = fit_temperature(true_logits * 3.0, y)
    assert 2.4 < t < 3.6


def test_ece():
    conf = np.array([0.9] * 10)
    assert expected_calibration_error(conf, np.array([1] * 9 + [0])) < 1e-9
    assert abs(expected_calibration_error(conf, np.zeros(10)) - 0.9) < 1e-9


def test_threshold_reaches_precision():
    rng = np.random.default_rng(2)
    conf = rng.uniform(size=5000)
    correct = rng.uniform(size=5000) < conf  # calibrated by construction
    curve = PrecisionCurve.from_predictions(conf, correct)
    t = curve.threshold_for(0.95)
    assert correct[conf >= t].mean() >= 0.94
    assert curve.threshold_for(0.9) < t
    assert PrecisionCurve.from_dict(curve.to_dict()).threshold_for(0.95) == t


def test_unreachable_precision_never_auto_codes():
    curve = PrecisionCurve.from_predictions(np.array([0.9] * 50), np.array([False] * 50))
    assert curve.threshold_for(0.95) > 1.0


def test_policy_backs_off_to_the_group():
    conf = {"05": 0.99, "0501": 0.97, "05011": 0.96, "050111": 0.5}
    d = decide("050111", conf, 0.0, {2: 0.9, 3: 0.9, 4: 0.9})
    assert d == (d.__class__(AUTO, assigned="05011"))


def test_policy_reviews_when_only_the_section_is_sure():
    conf = {"05": 0.99, "0501": 0.6, "05011": 0.5, "050111": 0.4}
    assert decide("050111", conf, 0.0, {2: 0.9, 3: 0.9, 4: 0.9}).status == REVIEW


def test_policy_rejects_non_offences():
    assert decide("0501", {"05": 0.3, "0501": 0.3}, 0.7, {2: 0.1}).status == REJECTED


def test_a_likely_non_offence_below_the_reject_threshold_goes_to_review():
    conf = {"05": 0.3, "0501": 0.3}
    assert decide("0501", conf, 0.7, {2: 0.9}, reject_at=0.9).status == REVIEW
    assert decide("0501", conf, 0.95, {2: 0.9}, reject_at=0.9).status == REJECTED


def test_rejection_reaches_the_target_precision_on_its_curve_and_never_below_half():
    rng = np.random.default_rng(3)
    p_no = rng.uniform(size=5000)
    truly_not = rng.uniform(size=5000) < p_no**3  # P(no) overconfident: 0.7 is right 34%
    curve = PrecisionCurve.from_predictions(p_no, truly_not)
    t = Thresholds({}, non_offence=curve).reject_at(0.9)
    assert 0.9 < t <= 1.0 and truly_not[p_no >= t].mean() >= 0.89
    assert Thresholds({}, non_offence=curve).reject_at(0.8) <= t  # laxer target, lower bar
    assert Thresholds({}).reject_at(0.95) == REJECT_PROBABILITY  # an entry built before it
    sure = PrecisionCurve.from_predictions(p_no, np.ones(5000, bool))
    assert Thresholds({}, non_offence=sure).reject_at(0.95) == REJECT_PROBABILITY
    never = PrecisionCurve.from_predictions(p_no, np.zeros(5000, bool))
    assert Thresholds({}, non_offence=never).reject_at(0.95) > 1.0


def test_unusable_text():
    assert unusable_text_reason("") == "empty_text"
    assert unusable_text_reason("   ") == "empty_text"
    assert unusable_text_reason("CR-2019-004417") is None  # has letters: the model decides
    assert unusable_text_reason("12345") == "no_words"
    assert unusable_text_reason("--/--") == "no_words"
    assert unusable_text_reason("theft") is None
    for text in ("see file", "See attached report.", "refer to the narrative", "TBC", "unknown"):
        assert unusable_text_reason(text) == "placeholder", text
    for text in ("theft, see file", "see something suspicious", "attached a tracker to a car"):
        assert unusable_text_reason(text) is None, text
