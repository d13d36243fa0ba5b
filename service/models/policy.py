"""Decision policy: auto-code, back off to a shallower level, send to review, or reject.

Given the node probabilities of one record, walk the top suggestion's path from its deepest
level up to the division, and commit to the first code whose confidence clears that level's
threshold. A section alone is too coarse to publish, so the walk stops at divisions.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from service.models.calibration import PrecisionCurve, effective_target
from service.normalize import COMBINING_MARKS
from service.taxonomy import level_of

AUTO, REVIEW, REJECTED = "auto", "review", "rejected"
SHALLOWEST_AUTO_LEVEL = 2
# Probability of "not an offence" above which the record is rejected rather than reviewed.
REJECT_PROBABILITY = 0.5
# Two letters make a word; in Chinese, Japanese and Korean one character does ("盗": theft).
_HAS_WORD = re.compile(r"[^\W\d_]{2,}|[\u3040-\u30ff\u3400-\u9fff\uac00-\ud7af]")
# Vowel signs between letters (Thai, Devanagari) are not letters to ``\w``: drop them first.
_MARKS = re.compile(f"[{COMBINING_MARKS}]")


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
    return None


class Thresholds:
    """Per-level confidence thresholds derived from the calibration curves."""

    def __init__(
        self, curves: dict[int, PrecisionCurve], target_map: list[list[float]] | None = None
    ) -> None:
        self.curves = curves
        # Target -> the stricter target that holds on sources the model never saw (from
        # training's cross-fitted replay); entries without one use the target as it is.
        self.target_map = target_map
        self._cache: dict[float, dict[int, float]] = {}

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
) -> Decision:
    """Apply the policy to one record.

    ``node_conf`` maps the codes on the top suggestion's path to their probabilities.
    """
    if non_offence_prob >= REJECT_PROBABILITY:
        return Decision(REJECTED, reason="not_an_offence")
    for level in range(level_of(top_code), SHALLOWEST_AUTO_LEVEL - 1, -1):
        code = top_code[: {1: 2, 2: 4, 3: 5, 4: 6}[level]]
        if node_conf.get(code, 0.0) >= thresholds.get(level, 1.01):
            return Decision(AUTO, assigned=code)
    return Decision(REVIEW)
