"""Decision policy: auto-code, back off to a shallower level, send to review, or reject.

Given the node probabilities of one record, walk the top suggestion's path from its deepest
level up to the division, and commit to the first code whose confidence clears that level's
threshold. A section alone is too coarse to publish, so the walk stops at divisions.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import numpy as np

from service.errors import TableThresholdsMissing
from service.labels import NOT_AN_OFFENCE
from service.models.calibration import PrecisionCurve, effective_target
from service.normalize import COMBINING_MARKS
from service.taxonomy import ancestor_at, level_of

AUTO, REVIEW, REJECTED = "auto", "review", "rejected"
SHALLOWEST_AUTO_LEVEL = 2
# Probability of "not an offence" at which the record is rejected rather than reviewed: the
# floor, and the whole rule for entries built before rejection was calibrated. A rejection is
# a decision nobody checks, so newer entries reject only where "not an offence" reaches the
# target precision on the held-out lists (:meth:`Thresholds.reject_at`): at 0.5, 64% of the
# records rejected on lists the model never saw were offences.
REJECT_PROBABILITY = 0.5
# Two letters make a word; in Chinese, Japanese and Korean one character does ("盗": theft).
_HAS_WORD = re.compile(r"[^\W\d_]{2,}|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
# Vowel signs between letters (Thai, Devanagari) are not letters to ``\w``: drop them first.
_MARKS = re.compile(f"[{COMBINING_MARKS}]")
# A whole record that only points elsewhere or holds nothing ("see file", "refer to attached
# report", "unknown", "TBC"): no description to code. Rejected by rule, because the model's
# "not an offence" is held to the target precision and such texts may fall short of its bar.
_PLACEHOLDER = re.compile(
    r"(?:(?:see|refer(?: to)?|as per)(?: the)?(?: attached| above| below)?"
    r"(?: file| report| narrative| notes?| attachment| statement| details)?|attached"
    r"|unknown|none|nil|null|tbc|tba|tbd|test|to follow)",
)
_NON_WORDS = re.compile(r"[\W_]+")


class ClassColumns:
    """Where the offence codes and "not an offence" sit among a head's classes.

    Serving (the predictor) and training (thresholds, the policy replay, evaluation) read
    probabilities through this one class, so both pick the same top code and reject the same
    records.
    """

    def __init__(self, classes: Iterable[object]) -> None:
        self.classes = [str(c) for c in classes]
        self.offence = np.array(
            [i for i, c in enumerate(self.classes) if c != NOT_AN_OFFENCE], dtype=np.intp
        )
        # -1: a head trained without non-offence examples (never rejects on content).
        self.non_offence = (
            self.classes.index(NOT_AN_OFFENCE) if NOT_AN_OFFENCE in self.classes else -1
        )

    def non_offence_probability(self, proba: np.ndarray) -> np.ndarray:
        """P(not an offence) of each row of ``proba`` (or of one row: a 0-d array)."""
        if self.non_offence < 0:
            return np.zeros(proba.shape[:-1])
        return np.asarray(proba[..., self.non_offence])

    def top_offence(self, proba: np.ndarray) -> np.ndarray:
        """Column of the most probable offence code per row (or of one row).

        Ties go to the first column, as in :meth:`ranked_offences`.
        """
        return np.asarray(self.offence[np.argmax(proba[..., self.offence], axis=-1)])

    def ranked_offences(self, proba: np.ndarray) -> np.ndarray:
        """Offence columns of one row, most probable first (ties: first column first)."""
        return self.offence[np.argsort(-proba[self.offence], kind="stable")]


def rejects(
    non_offence_probability: np.ndarray | float, at: float = REJECT_PROBABILITY
) -> np.ndarray:
    """Whether records with these "not an offence" probabilities are rejected (at ``at``)."""
    return np.asarray(non_offence_probability) >= at


@dataclass(frozen=True)
class Decision:
    """What the policy does with one record."""

    status: str
    assigned: str | None = None
    reason: str | None = None


def unusable_text_reason(text: str) -> str | None:
    """Why a text cannot describe an offence without looking at the model, or None."""
    if not text or not text.strip():
        return "empty_text"
    if not _HAS_WORD.search(_MARKS.sub("", text)):
        return "no_words"  # pure numbers, case numbers, punctuation
    if _PLACEHOLDER.fullmatch(_NON_WORDS.sub(" ", text.lower()).strip()):
        return "placeholder"
    return None


class Thresholds:
    """Per-level confidence thresholds derived from the calibration curves, and the top-code
    thresholds of a list coded as a correspondence table."""

    def __init__(
        self,
        curves: dict[int, PrecisionCurve],
        target_map: list[list[float]] | None = None,
        table: list[list[float]] | None = None,
        non_offence: PrecisionCurve | None = None,
    ) -> None:
        self.curves = curves
        # P(not an offence) -> precision of rejecting at it, on the held-out national lists;
        # None for entries built before it (they reject at REJECT_PROBABILITY).
        self.non_offence = non_offence
        # Target -> the stricter target that holds on sources the model never saw (from
        # training's cross-fitted replay); entries without one use the target as it is.
        self.target_map = target_map
        # [table target, top-code confidence] learnt on the held-out national lists
        # (training/review_sim.py ``table_thresholds``); None for entries built before them.
        self.table = sorted(table) if table else None
        self._cache: dict[float, dict[int, float]] = {}

    def reject_at(self, precision: float) -> float:
        """P(not an offence) at which a record is rejected for a target ``precision``: where
        rejecting reaches it on the held-out lists (through the target map, as the levels
        are), never below REJECT_PROBABILITY; above 1 (never: such records go to review) where
        no probability reaches it."""
        if self.non_offence is None:
            return REJECT_PROBABILITY
        effective = effective_target(self.target_map, precision)
        return max(REJECT_PROBABILITY, self.non_offence.threshold_for(effective))

    def table_at(self, precision: float) -> float:
        """Top-code confidence at which an entry of a list coded as a table is auto-coded, for
        a finished table right at ``precision``: the threshold of the nearest target learnt at
        or above it (never laxer); above 1 (never) past the strictest one."""
        if self.table is None:
            raise TableThresholdsMissing()
        for target, threshold in self.table:
            if target >= round(precision, 4):
                return float(threshold)
        return 1.01

    def at(self, precision: float) -> dict[int, float]:
        """Threshold per level for a target precision."""
        key = round(precision, 4)
        if key not in self._cache:
            effective = effective_target(self.target_map, precision)
            self._cache[key] = {
                lvl: curve.threshold_for(effective) for lvl, curve in self.curves.items()
            }
        return self._cache[key]


def decide(
    top_code: str,
    node_conf: dict[str, float],
    non_offence_prob: float,
    thresholds: dict[int, float],
    top_class: tuple[float, float] | None = None,
    reject_at: float = REJECT_PROBABILITY,
) -> Decision:
    """Apply the policy to one record.

    ``node_conf`` maps the codes on the top suggestion's path to their probabilities.
    ``top_class``: (probability of the top class, table threshold) for an entry of a list
    coded as a table: the top code is auto-coded whole once its probability reaches the
    threshold; below it the per-level walk decides as for any record. ``reject_at``: the
    P(not an offence) at which the record is rejected (:meth:`Thresholds.reject_at`).
    """
    if rejects(non_offence_prob, reject_at):
        return Decision(REJECTED, reason="not_an_offence")
    if top_class is not None and top_class[0] >= top_class[1]:
        return Decision(AUTO, assigned=top_code)
    for level in range(level_of(top_code), SHALLOWEST_AUTO_LEVEL - 1, -1):
        code = ancestor_at(top_code, level)
        if node_conf.get(code, 0.0) >= thresholds.get(level, 1.01):
            return Decision(AUTO, assigned=code)
    return Decision(REVIEW)


def decide_row(
    proba: np.ndarray,
    nodes: np.ndarray,
    node_index: dict[str, int],
    columns: ClassColumns,
    thresholds: dict[int, float],
    path: Callable[[str], list[str]],
    table_threshold: float | None = None,
    reject_at: float = REJECT_PROBABILITY,
) -> Decision:
    """The policy on one record's probabilities: what the service and training both call.

    ``proba`` is over ``columns.classes``; ``nodes`` the same row summed into every ICCS node
    (``node_index`` gives a code's position); ``path`` a code's path from its section down;
    ``table_threshold``: see :func:`decide` (the top class is the top offence class, as the
    threshold was learnt, unless "not an offence" is likelier still).
    """
    col = int(columns.top_offence(proba))
    top = columns.classes[col]
    node_conf = {code: float(nodes[node_index[code]]) for code in path(top)}
    non_offence = float(columns.non_offence_probability(proba))
    top_class = None
    if table_threshold is not None and float(proba[col]) >= non_offence:
        top_class = (float(proba[col]), table_threshold)
    return decide(top, node_conf, non_offence, thresholds, top_class, reject_at)
