"""The labelled-row contract shared by the corpus, training and review export.

Every labelled example, whatever its origin, is one :class:`LabelledRow`. The review
export writes this shape, so it lives in ``service`` (training imports it, not the reverse).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

NOT_AN_OFFENCE = "not_an_offence"
COLUMNS = (
    "text",
    "iccs_code",
    "source",
    "source_key",
    "language",
    "style",
    "confidence",
    "split_group",
)
CONFIDENCES = ("high", "medium", "low")
STYLES = (
    "official_title",  # ICCS title, description, inclusion or index term
    "police_shorthand",
    "statute",
    "court_charge",
    "narrative",
    "misspelled",
    "code_list",  # a national code list's own literal
    "non_offence",
    "review",  # a reviewer's decision fed back into training
)


@dataclass(frozen=True)
class LabelledRow:
    """One labelled offence text and its provenance."""

    text: str
    iccs_code: str
    source: str
    source_key: str
    language: str = "en"
    style: str = "police_shorthand"
    confidence: str = "high"
    split_group: str = ""

    @property
    def is_offence(self) -> bool:
        """False for texts labelled as not describing an offence."""
        return self.iccs_code != NOT_AN_OFFENCE

    def as_dict(self) -> dict[str, str]:
        """The row as a plain mapping in :data:`COLUMNS` order."""
        return {k: str(v) for k, v in asdict(self).items()}
